"Vector store against the embedded client and a real `chroma run` server; concurrent writers; SIGKILL mid-ingest."
import json, os, signal, socket, sqlite3, subprocess, sys, time, urllib.request
from pathlib import Path
import numpy as np
import pytest
from conftest import cli
from ai_standards.vectordb import VectorStore, VectorStoreError, ingest, store_id
from ai_standards.chunking import Chunker, process_documents

def _clean_ids(folder:Path) -> set:
    "The collection ids a clean ingest of `folder` gives: each chunk id qualified by its resolved file path."
    return {store_id(str(Path(c['source']).resolve()), c['id']) for d in process_documents([folder], progress=False) for c in d['chunks']}

def _free_port():
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

@pytest.fixture(scope='module')
def chroma_server(tmp_path_factory):
    "A real Chroma server (`chroma run`, shipped with chromadb) on a free localhost port with a temporary data folder."
    port, data = _free_port(), tmp_path_factory.mktemp('chroma_server')
    exe = Path(sys.executable).parent/'chroma'
    log = open(data/'server.log', 'wb')  # a file, not a pipe: a full pipe would block the server
    proc = subprocess.Popen([str(exe), 'run', '--path', str(data/'db'), '--host', '127.0.0.1', '--port', str(port)],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f'http://127.0.0.1:{port}'
    for _ in range(120):
        try:
            urllib.request.urlopen(f'{url}/api/v2/heartbeat', timeout=1); break
        except Exception: time.sleep(0.5)
    else:
        proc.kill(); pytest.fail('chroma run did not answer its heartbeat within 60 s: ' + (data/'server.log').read_text()[-2000:])
    yield url
    proc.terminate(); proc.wait(timeout=30); log.close()

@pytest.fixture(params=['embedded', 'server'])
def store(request, tmp_path):
    if request.param == 'embedded': return VectorStore(tmp_path/'db', collection=f'c{os.getpid()}')
    return VectorStore(url=request.getfixturevalue('chroma_server'), collection=f'test-{request.node.name}'.replace('[', '-').replace(']', ''))

def test_ingest_search_reingest(store, sample_pdfs):
    first = ingest([sample_pdfs], store, progress=False)
    assert first['failures'] == [] and first['chunks_added'] == first['chunks_in_collection'] > 200
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

def test_server_down_names_the_url():
    port = _free_port()
    with pytest.raises(VectorStoreError, match=f'Chroma server at http://127.0.0.1:{port} is unreachable after 2 tries'):
        VectorStore(url=f'http://127.0.0.1:{port}', retries=2)
    r = cli('search', 'x', '--chroma-url', f'http://127.0.0.1:{port}')
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and f'127.0.0.1:{port}' in r.stderr

def test_cli_against_server(chroma_server, sample_pdfs):
    r = cli('ingest', sample_pdfs, '--chroma-url', chroma_server, '--collection', 'cli-test', '--json')
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)['chunks_added'] > 200
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

def test_sigkill_midway_then_rerun_gives_clean_result(tmp_path, nist_data):
    "Kill -9 an ingest of the NIST PDFs midway; running it again leaves exactly the ids of a clean ingest."
    db, cache = tmp_path/'db', tmp_path/'cache'
    env = {**os.environ, 'AI_STANDARDS_CACHE': str(cache)}  # a cold embedding cache, so the kill lands mid-embedding
    cmd = [sys.executable, '-m', 'ai_standards.cli', 'ingest', str(nist_data/'pdfs'), '--db', str(db), '--json']
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    def embedded():
        try:
            with sqlite3.connect(cache/'embeddings.sqlite', timeout=1) as c: return c.execute('SELECT count(*) FROM vec').fetchone()[0]
        except sqlite3.Error: return 0
    deadline = time.time() + 300
    while embedded() < 600 and proc.poll() is None and time.time() < deadline: time.sleep(0.5)
    assert proc.poll() is None, 'the ingest finished before it could be killed'
    os.killpg(proc.pid, signal.SIGKILL); proc.wait()  # the whole job dies at once, workers included, as in a crash
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1200)
    assert r.returncode == 0, r.stderr[-3000:]
    expected = _clean_ids(nist_data/'pdfs')
    store = VectorStore(db)
    got = store.collection.get(include=[])['ids']
    assert len(got) == len(set(got)) == len(expected) and set(got) == expected
