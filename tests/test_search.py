"Hybrid search: identifier spellings, the search index after re-ingest / prune / kill -9, the server path, the CLI."
import json, os, shutil
from pathlib import Path
import pytest
from conftest import cli, kill_ingest_midway
from ai_standards.lexical import (after_ingest, db_signature, find_identifiers, index_dir, normalize_identifier, open_index,
                                  query_tokens, read_state, search_collection)
from ai_standards.vectordb import VectorStore, ingest

@pytest.mark.parametrize('spellings, canonical', [
    (['AC-2(1)', 'AC-02(01)', 'ac-2.1', 'AC-2 (1)', 'ac2(1)', 'control AC-2(1)'], 'ac-2.1'),
    (['A.5.1', 'a.5.1', 'Annex A.5.1'], 'a.5.1'), (['clause 4.2', 'Clause 4.2', '§4.2', 'section 4.2', '4.2'], '4.2'),
    (['3.2.1', '03.02.01'], '3.2.1'), (['GV.OC-01', 'gv.oc-1'], 'gv.oc-1')])
def test_identifier_spellings(spellings, canonical):
    assert {normalize_identifier(s) for s in spellings} == {canonical}
    assert query_tokens(spellings[0]) == ['§' + canonical, '#' + canonical]

def test_words_are_not_identifiers():
    assert [normalize_identifier(s) for s in ['access control', '42', 'AC-2 and AC-3', 'pre-2000']] == [None] * 4
    assert find_identifiers('Related: AC-2(1), SI-12; see 3.2.1 and non-2 words.') == ['ac-2.1', 'si-12', '3.2.1']

def _index_matches_collection(db:Path, collection='standards_embeddings') -> bool:
    "The saved index holds exactly the collection's chunk ids."
    ix, ids = open_index(db, collection=collection), VectorStore(db, collection=collection).collection.get(include=[])['ids']
    return sorted(ix.ids) == sorted(ids)

def test_index_follows_reingest_and_prune(tmp_path, sample_pdfs):
    pdfs = tmp_path/'pdfs'; shutil.copytree(sample_pdfs, pdfs); db = tmp_path/'db'; store = VectorStore(db)
    first = ingest([pdfs], store, progress=False, after=after_ingest)
    state = read_state(index_dir(db))
    assert state['count'] == first['chunks_in_collection'] and state['signature'] == db_signature(db)  # written by the ingest hook
    ingest([pdfs], store, progress=False, after=after_ingest)
    assert read_state(index_dir(db))['ids_sha256'] == state['ids_sha256']
    hits = search_collection('clause 3.3', db=db, k=3, mode='lexical', document='BCM-703.pdf')
    assert (hits[0]['file'], hits[0]['clause']) == ('BCM-703.pdf', '3.3')
    next(pdfs.rglob('BCM-703.pdf')).unlink()
    s = ingest([pdfs], store, prune=True, progress=False, after=after_ingest)
    assert s['chunks_removed'] > 0 and _index_matches_collection(db)
    assert all(h['file'] != 'BCM-703.pdf' for h in search_collection('restoration of backups', db=db, k=10, mode='lexical'))

def test_ingest_writes_the_index_only_when_passed_the_hook(tmp_path):
    "Importing `lexical` registers nothing: `ingest` writes the search index only when given `after=after_ingest`."
    docs = tmp_path/'docs'; docs.mkdir(); (docs/'note.txt').write_text('1 Scope\nBackups shall be tested every month.\n')
    ingest([docs], VectorStore(tmp_path/'plain'), progress=False)
    assert read_state(index_dir(tmp_path/'plain')) is None
    s = ingest([docs], VectorStore(tmp_path/'hooked'), progress=False, after=after_ingest)
    assert read_state(index_dir(tmp_path/'hooked'))['count'] == s['chunks_in_collection'] > 0

def test_kill9_midway_then_search_is_consistent(tmp_path, sample_pdfs):
    "Kill -9 an ingest while it writes to Chroma; the next search brings the index in line with what Chroma holds."
    db = tmp_path/'db'
    _, env = kill_ingest_midway([sample_pdfs], db, tmp_path/'cache', at_least=40)
    stored = VectorStore(db).count()
    r = cli('search', 'backups', '--db', db, '--mode', 'lexical', '--json', env=env)
    assert r.returncode in (0, 1), r.stderr  # 1 only when the kill came before any chunk was stored
    assert read_state(index_dir(db))['count'] == stored and _index_matches_collection(db)
    assert not [p for p in index_dir(db).iterdir() if p.name.endswith('.tmp')]

def test_server_path(chroma_server, sample_pdfs, tmp_path):
    env = {'AI_STANDARDS_CACHE': str(tmp_path/'cache')}
    r = cli('ingest', sample_pdfs, '--chroma-url', chroma_server, '--collection', 'lexical-test', '--json')
    assert r.returncode == 0, r.stderr
    r = cli('search', 'clause 3.3 backups', '--chroma-url', chroma_server, '--collection', 'lexical-test', '--json', '--k', '3', env=env)
    assert r.returncode == 0, r.stderr
    assert (json.loads(r.stdout)[0]['file'], json.loads(r.stdout)[0]['clause']) == ('BCM-703.pdf', '3.3')
    os.environ['AI_STANDARDS_CACHE'] = env['AI_STANDARDS_CACHE']
    try:
        folder = index_dir(url=chroma_server, collection='lexical-test')
        assert read_state(folder)['count'] == VectorStore(url=chroma_server, collection='lexical-test').count()
        store = VectorStore(url=chroma_server, collection='lexical-test')
        store.delete_ids(store.ids_where({'file': 'BCM-703.pdf'}))  # written by another client: the index must notice
        hits = search_collection('restoration of backups', url=chroma_server, collection='lexical-test', k=10, mode='lexical')
        assert hits and all(h['file'] != 'BCM-703.pdf' for h in hits)
    finally: del os.environ['AI_STANDARDS_CACHE']

def test_bad_arguments_are_usage_errors(tmp_path):
    for args in (['--k', 'x'], ['--mode', 'fuzzy']):
        r = cli('search', 'x', '--db', tmp_path/'none', *args)
        assert r.returncode == 2 and 'usage:' in r.stderr, r.stderr
    r = cli('search', 'x', '--db', tmp_path/'none', '--k', '0')  # one line, before anything loads (tests/test_data_loss.py)
    assert r.returncode == 2 and r.stderr.strip() == 'ai-standards search: error: --k must be 1 or more, got 0', r.stderr
    r = cli('search', '   ', '--db', tmp_path/'none')
    assert r.returncode == 2 and "argument 2 is empty ('   ')" in r.stderr  # the CLI's check of every argument
    r = cli('search', 'x', '--db', tmp_path/'none', '--mode', 'lexical')
    assert r.returncode == 1 and 'no Chroma database at' in r.stderr and len(r.stderr.strip().splitlines()) == 1

def test_identifier_query_finds_its_control_first(tmp_path, nist_data):
    "The issue's case: `search \"AC-2(1)\"` after ingesting Rev 5 records (the AC, PL and SI families, to stay small)."
    recs = [l for l in open(nist_data/'nist_sp800_53r5_controls.jsonl') if json.loads(l)['family'] in ('AC', 'PL', 'SI')]
    (tmp_path/'rev5.jsonl').write_text(''.join(recs))
    assert cli('ingest', tmp_path/'rev5.jsonl', '--db', tmp_path/'db', '--label-field', 'family').returncode == 0
    for q in ('AC-2(1)', 'AC-02(01)', 'ac-2.1'):
        r = cli('search', q, '--db', tmp_path/'db', '--json')
        assert r.returncode == 0 and json.loads(r.stdout)[0]['clause'] == 'AC-2(1)', (q, r.stdout[:300], r.stderr)
    r = cli('search', 'AC-2(1)', '--db', tmp_path/'db', '--json', '--mode', 'dense')
    assert json.loads(r.stdout)[0]['clause'] != 'AC-2(1)'  # what the issue measured: dense search alone misses it
