"""Vector store against the embedded client and a real `chroma run` server; concurrent writers (folder and server); SIGKILL
mid-ingest; an incremental ingest equals a fresh one; what prune may and may not delete."""
import json, os, shutil, signal, sqlite3, subprocess, sys, time
from pathlib import Path
import numpy as np
import pytest
from conftest import cli, free_port, kill_ingest_midway
from ai_standards.vectordb import VectorStore, VectorStoreError, ingest, store_id
from ai_standards.chunking import Chunker, process_documents
from ai_standards.sample import render_markdown_pdf, sample_corpus_dir

def _clean_ids(paths) -> set:
    "The collection ids a clean ingest of `paths` (a folder or a list) gives: each chunk id qualified by its resolved file path."
    paths = paths if isinstance(paths, list) else [paths]
    return {store_id(str(Path(c['source']).resolve()), c['id']) for d in process_documents(paths, progress=False) for c in d['chunks']}

N_SAMPLE_CHUNKS = 253  # the sample corpus as PDFs, default chunker (256 tokens, overlap 32)

@pytest.fixture(params=['embedded', 'server'])
def store(request, tmp_path):
    if request.param == 'embedded': return VectorStore(tmp_path/'db', collection=f'c{os.getpid()}')
    return VectorStore(url=request.getfixturevalue('chroma_server'), collection=f'test-{request.node.name}'.replace('[', '-').replace(']', ''))

def test_ingest_search_reingest(store, sample_pdfs):
    first = ingest([sample_pdfs], store, progress=False)
    assert first['failures'] == [] and first['chunks_added'] == first['chunks_in_collection'] == N_SAMPLE_CHUNKS
    again = ingest([sample_pdfs], store, progress=False)
    assert (again['chunks_added'], again['chunks_removed'], again['chunks_unchanged']) == (0, 0, first['chunks_added'])
    hits = store.search('test the restoration of backups', k=3, requirements_only=True)
    assert hits[0]['file'] == 'BCM-703.pdf' and hits[0]['clause'] == '3.3' and all(h['normative_level'] == 'requirement' for h in hits)
    assert all(h['label'] == 'privacy' for h in store.search('consent withdrawal', k=4, label='privacy'))
    assert {h['file'] for h in store.search('consent', k=3, document='PRIV-202.pdf')} == {'PRIV-202.pdf'}

def test_bad_input_is_refused(store):
    v = np.eye(8, dtype=np.float32)[:2]; meta = [{'id': 'a'}, {'id': 'b'}]
    with pytest.raises(VectorStoreError, match='length mismatch: 2 embeddings, 1 texts, 2 metadata'): store.store_embeddings_in_db(v, ['x'], meta)
    with pytest.raises(VectorStoreError, match='empty text'): store.store_embeddings_in_db(v, ['x', ''], meta)
    with pytest.raises(VectorStoreError, match='NaN'): store.store_embeddings_in_db(v * np.nan, ['x', 'y'], meta)
    assert store.store_embeddings_in_db(v, ['x', 'y'], meta) == 2
    with pytest.raises(VectorStoreError, match='holds 8-dimensional embeddings'): store.store_embeddings_in_db(np.ones((1, 4)), ['z'], [{'id': 'z'}])
    assert store.count() == 2
    with pytest.raises(VectorStoreError, match='query is empty'): store.search('  ')

def test_get_reads_ids_in_batches(store):
    "`VectorStore.get`, the public read: ids given are read `max_batch` at a time, the fields of each chunk stay together."
    v = np.eye(8, dtype=np.float32)[:5]; meta = [{'id': f'c{i}', 'source': 'a.pdf' if i < 3 else 'b.pdf'} for i in range(5)]
    store.store_embeddings_in_db(v, [f't{i}' for i in range(5)], meta)
    ids = sorted(store.get(include=())['ids']); store.max_batch = 2  # three reads
    got = store.get(ids, include=('documents', 'embeddings', 'metadatas'))
    assert sorted(got['ids']) == ids and np.asarray(got['embeddings']).shape == (5, 8)
    assert {m['id']: d for m, d in zip(got['metadatas'], got['documents'])} == {f'c{i}': f't{i}' for i in range(5)}
    assert {m['id'] for m in store.get(where={'source': 'b.pdf'})['metadatas']} == {'c3', 'c4'}
    assert store.get([], include=('documents',)) == {'ids': [], 'documents': []}

def test_label_field_ingest_into_a_new_store_then_again(tmp_path):
    "A --label-field ingest into an empty store, then again: the second reads nothing (every chunk has its label)."
    recs = tmp_path/'recs.jsonl'
    recs.write_text(''.join(json.dumps(dict(id=f'ac-{i}', label=f'AC-{i}', family='AC', kind='control', title=f'Control {i}',
                                            text=f'Review the accounts of system {i} every month.')) + '\n' for i in (1, 2)))
    store = VectorStore(tmp_path/'db')
    first = ingest([recs], store, progress=False, label_field='family')
    again = ingest([recs], store, progress=False, label_field='family')
    assert first['chunks_added'] > 0 and (again['chunks_added'], again['files_unchanged']) == (0, 1)
    assert again['chunks_unchanged'] == first['chunks_added']

def test_server_down_names_the_url():
    port = free_port()
    with pytest.raises(VectorStoreError, match=f'Chroma server at http://127.0.0.1:{port} is unreachable after 2 tries'):
        VectorStore(url=f'http://127.0.0.1:{port}', retries=2)
    r = cli('search', 'x', '--chroma-url', f'http://127.0.0.1:{port}')
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and f'127.0.0.1:{port}' in r.stderr

def test_cli_against_server(chroma_server, sample_pdfs):
    r = cli('ingest', sample_pdfs, '--chroma-url', chroma_server, '--collection', 'cli-test', '--json')
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)['chunks_added'] == N_SAMPLE_CHUNKS
    r = cli('search', 'notify the supervisory authority of a breach', '--chroma-url', chroma_server, '--collection', 'cli-test', '--json')
    assert r.returncode == 0 and json.loads(r.stdout)[0]['file'] == 'PRIV-203.pdf'

def test_two_concurrent_ingests_one_folder(tmp_path, sample_pdfs):
    db = tmp_path/'db'
    procs = [subprocess.Popen([sys.executable, '-m', 'ai_standards.cli', 'ingest', str(sample_pdfs), '--db', str(db), '--json'],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    expected = _clean_ids(sample_pdfs)
    store = VectorStore(db)
    assert store.count() == len(expected) and store.ids_where({'kind': 'pdf'}) == expected

# three of the NIST PDFs, 208 chunks: real layout across several files for a kill mid-embedding, a fraction of all 17's time
NIST_SUBSET = ['NIST.FIPS.199.pdf', 'NIST.SP.800-40r3.pdf', 'NIST.SP.800-18r1.pdf']

def test_sigkill_midway_then_rerun_gives_clean_result(tmp_path, nist_data):
    "Kill -9 an ingest of NIST PDFs midway; running it again leaves exactly the ids of a clean ingest."
    db, pdfs = tmp_path/'db', [nist_data/'pdfs'/f for f in NIST_SUBSET]
    cmd, env = kill_ingest_midway(pdfs, db, tmp_path/'cache', at_least=80)
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1200)
    assert r.returncode == 0, r.stderr[-3000:]
    expected = _clean_ids(pdfs)
    store = VectorStore(db)
    got = store.collection.get(include=[])['ids']
    assert len(got) == len(set(got)) == len(expected) and set(got) == expected

def test_two_concurrent_ingests_one_server(chroma_server, sample_pdfs):
    "Two ingests into one collection of one Chroma server at once (no file lock covers a server): one copy of each chunk."
    cmd = [sys.executable, '-m', 'ai_standards.cli', 'ingest', str(sample_pdfs), '--chroma-url', chroma_server, '--collection', 'two-writers', '--json']
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=900) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    expected = _clean_ids(sample_pdfs)
    store = VectorStore(url=chroma_server, collection='two-writers')
    assert store.count() == len(expected) == N_SAMPLE_CHUNKS and store.ids_where({'kind': 'pdf'}) == expected

def _snapshot(store:VectorStore) -> dict:
    "Every stored chunk: id -> (text, metadata, embedding rounded to 5 decimals)."
    got = store.collection.get(include=['documents', 'metadatas', 'embeddings'])
    return {i: (t, m, tuple(np.round(e, 5))) for i, t, m, e in zip(got['ids'], got['documents'], got['metadatas'], got['embeddings'])}

def _new_version(folder:Path, name:str='ENRG-1003'):
    "Replace folder/energy_management/NAME.pdf by a new version: one requirement reworded."
    md = (sample_corpus_dir()/'energy_management'/f'{name}.md').read_text()
    edited = md.replace('A measurement and verification plan shall be prepared', 'A measurement and verification plan shall be approved')
    assert edited != md
    (folder/'new.md').write_text(edited)
    render_markdown_pdf(folder/'new.md', folder/'energy_management'/f'{name}.pdf'); (folder/'new.md').unlink()

def test_incremental_ingest_equals_fresh_ingest(tmp_path, sample_pdfs):
    "After one file changes, re-ingesting into the old store leaves exactly what a fresh ingest of the folder stores."
    folder = tmp_path/'pdfs'; shutil.copytree(sample_pdfs, folder)
    store = VectorStore(tmp_path/'inc')
    ingest([folder], store, progress=False)
    victim = str((folder/'energy_management'/'ENRG-1003.pdf').resolve())
    old = store.ids_where({'source': victim})
    _new_version(folder)
    r = ingest([folder], store, progress=False)
    new = store.ids_where({'source': victim})
    assert r['failures'] == [] and r['files_unchanged'] == 29 and r['chunks_removed'] == len(old) and r['chunks_added'] == len(new)
    assert not old & new and r['chunks_unchanged'] == N_SAMPLE_CHUNKS - len(old)
    fresh = VectorStore(tmp_path/'fresh'); ingest([folder], fresh, progress=False)
    assert _snapshot(store) == _snapshot(fresh)

def test_prune_limits(tmp_path, sample_pdfs):
    """prune deletes the chunks of files gone from the ingested folders, and nothing else: not files outside them (even in
    a folder whose name starts the same), not files that still exist but failed to read this time."""
    a, a2 = tmp_path/'a', tmp_path/'a2'
    shutil.copytree(sample_pdfs/'privacy', a); shutil.copytree(sample_pdfs/'risk_management', a2)
    store = VectorStore(tmp_path/'db')
    ingest([a, a2], store, progress=False)
    n = {p.name: len(store.ids_where({'source': str(p.resolve())})) for p in [*a.glob('*.pdf'), *a2.glob('*.pdf')]}
    assert len(n) == 6 and all(n.values())
    (a2/'RISK-601.pdf').unlink()  # gone, but outside the folder ingested below
    (a/'PRIV-202.pdf').write_bytes(b'%PDF-1.4 damaged')  # still there, unreadable now: its stored chunks stay
    (a/'PRIV-203.pdf').unlink()  # gone from the ingested folder: pruned
    r = ingest([a], store, prune=True, progress=False)
    assert [Path(f['file']).name for f in r['failures']] == ['PRIV-202.pdf']
    assert r['chunks_removed'] == n['PRIV-203.pdf'] and r['chunks_in_collection'] == sum(n.values()) - n['PRIV-203.pdf']
    assert store.ids_where({'source': str((a2/'RISK-601.pdf').resolve())}) and store.ids_where({'source': str((a/'PRIV-202.pdf').resolve())})

def test_cli_prune(tmp_path, sample_pdfs):
    "`ingest --prune` removes a deleted file's chunks; without --prune they stay."
    folder, db = tmp_path/'pdfs', tmp_path/'db'
    shutil.copytree(sample_pdfs/'privacy', folder)
    r = cli('ingest', folder, '--db', db, '--json'); assert r.returncode == 0, r.stderr
    total = json.loads(r.stdout)['chunks_in_collection']
    gone = folder/'PRIV-201.pdf'
    n = len(VectorStore(db).ids_where({'source': str(gone.resolve())})); gone.unlink()
    r = cli('ingest', folder, '--db', db, '--json'); assert r.returncode == 0, r.stderr
    assert (json.loads(r.stdout)['chunks_removed'], json.loads(r.stdout)['chunks_in_collection']) == (0, total)
    r = cli('ingest', folder, '--db', db, '--prune', '--json'); assert r.returncode == 0, r.stderr
    assert (json.loads(r.stdout)['chunks_removed'], json.loads(r.stdout)['chunks_in_collection']) == (n, total - n) and n > 0

def test_cli_ingest_strict(tmp_path, sample_pdfs):
    "A file that fails is listed and the rest goes in: exit 0, or 1 with --strict."
    (tmp_path/'bad.pdf').write_text('not a pdf')
    for flags, code in (((), 0), (('--strict',), 1)):
        r = cli('ingest', sample_pdfs/'privacy', tmp_path/'bad.pdf', '--db', tmp_path/f'db{code}', *flags, '--json')
        assert r.returncode == code, r.stderr
        s = json.loads(r.stdout)
        assert s['documents'] == 3 and [Path(f['file']).name for f in s['failures']] == ['bad.pdf']

def test_cli_rerun_with_a_bad_file_is_not_an_error(tmp_path, sample_pdfs):
    folder, db = tmp_path/'pdfs', tmp_path/'db'
    shutil.copytree(sample_pdfs/'privacy', folder)
    assert cli('ingest', folder, '--db', db).returncode == 0
    (folder/'bad.pdf').write_text('not a pdf')
    r = cli('ingest', folder, '--db', db, '--json')
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)['files_unchanged'] == 3

def test_identical_files_keep_their_own_chunks(tmp_path, sample_pdfs):
    folder = tmp_path/'pdfs'; (folder/'x').mkdir(parents=True)
    shutil.copy(sample_pdfs/'privacy'/'PRIV-201.pdf', folder/'PRIV-201.pdf'); shutil.copy(folder/'PRIV-201.pdf', folder/'x'/'copy.pdf')
    store = VectorStore(tmp_path/'db')
    ingest([folder], store, progress=False)
    assert store.ids_where({'file': 'PRIV-201.pdf'}) and store.ids_where({'file': 'copy.pdf'})
