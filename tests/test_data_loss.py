"""No silent data loss (issue 14): kill -9 while adding a document to a database, prune of a missing folder, the same
file in two folders, empty arguments, exit codes on reruns, and one-line messages for the mistakes a new user makes."""
import contextlib, hashlib, http.server, io, json, os, random, shutil, signal, sqlite3, subprocess, sys, threading, time
from pathlib import Path
import pytest
from fpdf import FPDF
from conftest import cli
from ai_standards.chunking import process_documents
from ai_standards.cli import main
from ai_standards.models import Embedder
from ai_standards.vectordb import VectorStore, VectorStoreError, ingest, store_id, _problem

WORDS = ('access audit backup boundary change configuration contingency control data device encryption event '
         'identity incident integrity key log media monitoring network password patch personnel physical privacy '
         'record recovery review risk role session software supplier system test threat training user vendor').split()

def big_pdf(path:Path, sections:int=600, seed:int=0) -> Path:
    "A long standard: `sections` short numbered clauses of distinct text, one chunk each (600 -> 600 chunks, 34 pages)."
    rng = random.Random(seed)
    pdf = FPDF(); pdf.set_auto_page_break(True, 15); pdf.add_page()
    for i in range(sections):
        a, b, c = rng.sample(WORDS, 3)
        pdf.set_font('Helvetica', 'B', 10)
        pdf.multi_cell(0, 5, f'{i // 20 + 1}.{i % 20 + 1} {a.title()} {b} requirements', new_x='LMARGIN', new_y='NEXT')
        pdf.set_font('Helvetica', '', 10)
        text = (f'The organization shall review the {a} {b} plan for {c} every {rng.randint(2, 90)} days and '
                f'record clause {i} findings on {" ".join(rng.sample(WORDS, 4))}.')
        pdf.multi_cell(0, 5, text, new_x='LMARGIN', new_y='NEXT')
    pdf.output(str(path)); return path

def clean_ids(*paths) -> set:
    "The collection ids a clean ingest of `paths` gives: each chunk id qualified by its resolved file."
    return {store_id(str(Path(c['source']).resolve()), c['id']) for d in process_documents(list(paths), progress=False)
            for c in d['chunks']}

def run_main(*argv, cwd=None):
    "`ai-standards ARGV` in this process: (exit code, stdout, stderr)."
    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    try:
        if cwd: os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err): code = main([str(a) for a in argv])
    finally: os.chdir(old)
    return code, out.getvalue(), err.getvalue()

def one_line(err:str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]

def says(err:str, cmd:str, msg:str):
    "Assert that stderr is exactly the one line `ai-standards CMD: error: MSG`."
    assert one_line(err) == f'ai-standards {cmd}: error: {msg}'

@pytest.fixture(scope='module')
def embedder(): return Embedder(backend='torch')

@pytest.fixture(scope='module')
def privacy(sample_pdfs, tmp_path_factory):
    "The three privacy PDFs of the sample corpus, in a folder of their own."
    d = tmp_path_factory.mktemp('privacy')/'privacy'
    shutil.copytree(sample_pdfs/'privacy', d)
    return d

@pytest.fixture(scope='module')
def privacy_db(privacy, embedder, tmp_path_factory):
    "An embedded database holding the privacy PDFs (read by the message tests, never written)."
    db = tmp_path_factory.mktemp('privacy_db')/'db'
    ingest([privacy], VectorStore(db), embedder, progress=False)
    return db

# --- 1. kill -9 while adding a large PDF to an existing database ------------------------------------------------------

def _stored(db:Path) -> int:
    "Chunks stored so far, read from Chroma's sqlite file without opening a client (another process is writing)."
    try:
        with contextlib.closing(sqlite3.connect(f'file:{db}/chroma.sqlite3?mode=ro', uri=True, timeout=5)) as c:
            return c.execute('SELECT count(*) FROM embeddings').fetchone()[0]
    except sqlite3.Error: return -1

def test_kill9_while_adding_a_large_pdf_then_rerun_gives_a_clean_ingest(tmp_path, privacy):
    """Ingest 3 PDFs, add a 600-chunk PDF (written in batches of 256), kill -9 the ingest once its first batch is stored
    and kill the rerun once its first batch is stored too; the third run must complete the document: a clean ingest."""
    lib = tmp_path/'lib'; shutil.copytree(privacy, lib)
    db, env = tmp_path/'db', {**os.environ, 'AI_STANDARDS_CACHE': str(tmp_path/'cache')}  # cold: batches take time
    cmd = [sys.executable, '-m', 'ai_standards.cli', 'ingest', str(lib), '--db', str(db), '--json',
           '--backend', 'torch']  # no backend probe in the cold cache: the kills are what is tested
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    base = json.loads(r.stdout)['chunks_in_collection']
    big_pdf(lib/'big.pdf')
    expected = clean_ids(lib)
    assert len(expected) == base + 600
    for threshold in (base + 256, base + 512):  # after the first batch of a fresh add, then of a resumed one
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                                start_new_session=True)
        deadline = time.time() + 900
        while _stored(db) < threshold and proc.poll() is None and time.time() < deadline: time.sleep(0.05)
        if proc.poll() is not None:  # too fast to kill between batches: fine only if it left the collection complete
            assert _stored(db) == len(expected), f'an ingest ended with {_stored(db)} of {len(expected)} chunks stored'
            pytest.skip('the ingest finished before the kill could land between two batches')
        os.killpg(proc.pid, signal.SIGKILL); proc.wait()
        # what the kill left durable: a client replays Chroma's write log, which the sqlite table polled above can trail
        at_kill = VectorStore(db, create=False).collection.count()
        if at_kill == len(expected): pytest.skip('the kill landed after the last batch was stored')
        assert threshold <= at_kill < len(expected)  # the kill left big.pdf incomplete
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    s = json.loads(r.stdout)
    assert (s['files_unchanged'], s['chunks_added']) == (3, len(expected) - at_kill)
    assert s['chunks_in_collection'] == len(expected)
    again = json.loads(subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900).stdout)
    assert (again['files_unchanged'], again['chunks_added'], again['chunks_removed']) == (4, 0, 0)
    got = VectorStore(db, create=False).collection.get(include=[])['ids']
    assert len(got) == len(set(got)) == len(expected) and set(got) == expected

class _Killed(Exception): pass

class _DiesAfter(VectorStore):
    "A store whose writes die after `n` batches, as a process killed in the middle of a file would."
    def __init__(self, path, n): super().__init__(path); self.n = n
    def store_embeddings_in_db(self, *args, **kwargs):
        if self.n == 0: raise _Killed()
        self.n -= 1; return super().store_embeddings_in_db(*args, **kwargs)

@pytest.mark.parametrize('batches', [1, 2, 3])
def test_interrupted_after_any_batch_is_completed_by_the_next_ingest(tmp_path, privacy, embedder, batches):
    "PRIV-202 (9 chunks) in batches of 2, cut short after 1, 2 or 3 batches: the next ingest adds what is missing."
    doc = privacy/'PRIV-202.pdf'
    with pytest.raises(_Killed): ingest([doc], _DiesAfter(tmp_path/'db', batches), embedder, batch=2, progress=False)
    store = VectorStore(tmp_path/'db')
    assert store.count() == 2 * batches and store.file_hashes()[str(doc.resolve())] == (None, 2 * batches)
    r = ingest([doc], store, embedder, batch=2, progress=False)
    assert (r['files_unchanged'], r['chunks_unchanged'], r['chunks_added']) == (0, 2 * batches, 9 - 2 * batches)
    assert set(store.collection.get(include=[])['ids']) == clean_ids(doc)

# --- 2. prune never deletes on the strength of a missing path ---------------------------------------------------------

def test_prune_of_a_missing_folder_deletes_nothing(tmp_path, privacy, embedder):
    lib = tmp_path/'share'; shutil.copytree(privacy, lib)
    db = tmp_path/'db'; store = VectorStore(db)
    n = ingest([lib], store, embedder, progress=False)['chunks_in_collection']
    shutil.rmtree(lib)  # the share is not mounted
    code, out, err = run_main('ingest', lib, '--db', db, '--prune')
    assert code == 1
    says(err, 'ingest', f'prune refused: {lib} does not exist (a typo, or a share that is not mounted?); '
                        'nothing was read or deleted')
    with pytest.raises(VectorStoreError, match='prune refused'):
        ingest([lib], store, embedder, prune=True, progress=False)
    assert VectorStore(db).count() == n

def test_prune_refuses_a_file_it_cannot_check(tmp_path, monkeypatch):
    import ai_standards.vectordb as V
    def stat(p, *a, **k): raise PermissionError(13, 'Permission denied', p)
    monkeypatch.setattr(V.os, 'stat', stat)
    with pytest.raises(VectorStoreError, match=r'prune refused: /x/a.pdf cannot be checked \(Permission denied\)'):
        V._vanished('/x/a.pdf')

# --- 3. the same file in two folders ----------------------------------------------------------------------------------

def test_same_file_in_two_folders_keeps_two_sets_of_citations(tmp_path, privacy, embedder):
    doc = privacy/'PRIV-203.pdf'
    a, b = tmp_path/'a', tmp_path/'b'
    for d in (a, b): d.mkdir(); shutil.copy(doc, d/doc.name)
    store = VectorStore(tmp_path/'db')
    n = len(clean_ids(a))
    assert [ingest([d], store, embedder, progress=False)['chunks_added'] for d in (a, b)] == [n, n]
    assert store.count() == 2 * n and store.sources() == {str((a/doc.name).resolve()), str((b/doc.name).resolve())}
    (b/doc.name).unlink()
    assert ingest([b], store, embedder, prune=True, force=True, progress=False)['chunks_removed'] == n  # b is empty now
    assert set(store.collection.get(include=[])['ids']) == clean_ids(a)
    first = str((a/doc.name).resolve())
    hits = store.search('notify the supervisory authority of a breach', k=3, document=first, embedder=embedder)
    assert len(hits) == 3 and {h['source'] for h in hits} == {first}

# --- 4. empty arguments -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize('argv', [('chunk', ''), ('ingest', ' '), ('classify', 'models', ''), ('search', ''),
                                  ('ingest', 'x.pdf', '--db=')])
def test_empty_arguments_are_refused_at_once(tmp_path, argv):
    r = cli(*argv, cwd=tmp_path, timeout=120)
    n = next(i for i, a in enumerate(argv, 1) if not a.split('=', 1)[-1].strip())
    assert r.returncode == 2 and r.stdout == ''
    assert one_line(r.stderr) == (f'ai-standards {argv[0]}: error: argument {n} is empty ({argv[n-1]!r}): '
                                  'an unset shell variable? Give a file, folder or text')
    assert list(tmp_path.iterdir()) == []  # nothing read, nothing created (no chroma_db/)

# --- 5. the same exit code on the same input --------------------------------------------------------------------------

def _bad_files(folder:Path) -> dict:
    "Six files that cannot be read, with the start of each reason."
    (folder/'empty.pdf').write_bytes(b'')
    (folder/'fake.pdf').write_text('<html>not a pdf</html>')
    (folder/'blank.txt').write_text('   \n')
    (folder/'short.txt').write_text('See annex A.\n')
    (folder/'binary.md').write_bytes(b'\x00\x01' * 100)
    scan = FPDF(); scan.add_page(); scan.rect(20, 20, 100, 150, style='F'); scan.output(str(folder/'scan.pdf'))
    return {'empty.pdf': 'empty file', 'fake.pdf': 'not a PDF', 'blank.txt': 'no text', 'binary.md': 'binary file',
            'short.txt': 'too short to be a document', 'scan.pdf': 'no extractable text'}

def test_rerun_with_a_bad_file_exits_like_the_first_ingest_and_lists_every_failure(tmp_path, privacy, embedder):
    lib = tmp_path/'lib'; shutil.copytree(privacy, lib)
    bad = _bad_files(lib)
    db = tmp_path/'db'
    runs = [run_main('ingest', lib, '--db', db) for _ in range(2)] + [run_main('ingest', lib, '--db', db, '--strict')]
    assert [c for c, _, _ in runs] == [0, 0, 1]
    for code, out, err in runs:
        lines = [l.split('FAILED ', 1)[1].split(': ', 1) for l in out.splitlines() if 'FAILED' in l]
        failed = {Path(f).name: reason for f, reason in lines}
        assert failed.keys() == bad.keys() and all(failed[f].startswith(r) for f, r in bad.items()), out
    assert 'documents read' in runs[1][1] and '3 files unchanged' in runs[1][1]

def test_nothing_readable_at_all_exits_1_naming_every_failure(tmp_path):
    (tmp_path/'only_bad').mkdir(); bad = _bad_files(tmp_path/'only_bad')
    code, out, err = run_main('chunk', tmp_path/'only_bad', '--json')
    line = one_line(err)
    assert code == 1 and line.startswith(f'ai-standards chunk: error: no documents could be read from {tmp_path}')
    assert all(f'{f}: {r}' in line for f, r in bad.items()), line

# --- 6. one clear line for each mistake -------------------------------------------------------------------------------

def test_db_naming_a_file(tmp_path):
    f = tmp_path/'notes.txt'; f.write_text('x')
    for cmd in (('search', 'backups'), ('ingest', f)):
        code, out, err = run_main(*cmd, '--db', f)
        assert code == 1
        says(err, cmd[0], f'{f} is a file, not a database folder: name a folder (it is created when missing)')

class _EmptyNotFound(http.server.BaseHTTPRequestHandler):
    "What a proxy or a filter in front of an unroutable address answers: 404 with an empty body."
    def do_GET(self): self.send_response(404); self.send_header('Content-Length', '0'); self.end_headers()
    def log_message(self, *a): pass

class _WebPage(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass

@pytest.mark.parametrize('handler', [_WebPage, _EmptyNotFound])
def test_chroma_url_that_is_not_chroma(handler):
    web = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    url = f'http://127.0.0.1:{web.server_address[1]}'
    try: code, out, err = run_main('search', 'backups', '--chroma-url', url)
    finally: web.shutdown()
    assert code == 1
    says(err, 'search', f'{url} does not answer as a Chroma server (HTTP 404 for /api/v2/auth/identity): check the '
                        'address and port (`chroma run` listens on http://localhost:8000)')

def test_server_problem_is_never_empty():
    "An error whose message is empty (what chromadb raises for some addresses) still says something."
    def chained(*errs):
        for inner, outer in zip(errs[1:], errs):
            outer.__context__ = inner
        return errs[0]
    assert _problem(chained(ValueError(''), Exception(''), OSError('[Errno 101] Network is unreachable'))) == \
        '[Errno 101] Network is unreachable'
    assert _problem(chained(ValueError(''), Exception(''))) == 'ValueError'
    assert _problem(ValueError('<!DOCTYPE HTML><html>...</html>')) == 'ValueError'

def test_search_k_0_is_refused_before_any_model_or_database_is_opened(tmp_path):
    code = ('import sys; from ai_standards.cli import main; '
            'rc = main(["search", "backups", "--k", "0", "--db", "nodb"]); '
            'print(rc, "torch" in sys.modules, "chromadb" in sys.modules)')
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.stdout.split() == ['2', 'False', 'False'], r.stderr
    assert one_line(r.stderr) == 'ai-standards search: error: --k must be 1 or more, got 0'
    assert not (tmp_path/'nodb').exists()

def test_one_line_text_file_is_too_short_not_a_scan(tmp_path):
    f = tmp_path/'note.txt'; f.write_text('Scope: all sites.\n')
    code, out, err = run_main('chunk', f, '--json')
    assert code == 1
    says(err, 'chunk', f'no documents could be read from {f}; note.txt: too short to be a document: '
                       '13 letters or digits, fewer than 20 a page')

def test_folder_of_unsupported_files_says_what_was_skipped(tmp_path):
    d = tmp_path/'docs'; d.mkdir()
    for n in ('a.docx', 'b.docx', 'c.html', '.hidden.pdf'): (d/n).write_text('x')
    for cmd in ('chunk', 'ingest'):
        code, out, err = run_main(cmd, d, '--json', *(['--db', tmp_path/'db'] if cmd == 'ingest' else []))
        assert code == 1
        says(err, cmd, f'no documents found in {d}: 3 file(s) of other types ignored (.docx 2, .html 1); '
                       'documents are .pdf, .txt, .md, .jsonl or OSCAL catalog .json files')
    assert not (tmp_path/'db').exists()

def _snapshot(folder:Path) -> dict:
    return {str(f.relative_to(folder)): (f.stat().st_mtime_ns, hashlib.sha256(f.read_bytes()).hexdigest())
            for f in sorted(folder.rglob('*')) if f.is_file()}

def test_search_on_a_read_only_database_reads_and_changes_nothing(tmp_path, privacy_db):
    db = tmp_path/'ro_db'; shutil.copytree(privacy_db, db)
    before = _snapshot(db)
    for p in [db, *db.rglob('*')]: p.chmod(p.stat().st_mode & ~0o222)
    argv = [sys.executable, '-m', 'ai_standards.cli', 'search', 'withdraw consent', '--db', str(db), '--json',
            '--k', '2']
    if os.geteuid() == 0:  # root writes anyway: drop the capabilities that override file permissions
        if not shutil.which('setpriv'): pytest.skip('running as root without setpriv: cannot make a folder read-only')
        drop = ['setpriv', '--bounding-set', '-dac_override,-dac_read_search,-fowner', '--inh-caps', '-all', '--']
        argv = drop + argv
        probe = subprocess.run(drop + [sys.executable, '-c', f'open({str(db/"x")!r}, "w")'], capture_output=True)
        assert probe.returncode != 0 and not (db/'x').exists(), 'the folder is still writable'
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=tmp_path)
        assert r.returncode == 0, r.stderr[-2000:]
        assert json.loads(r.stdout)[0]['file'].startswith('PRIV-')
        assert _snapshot(db) == before and list(tmp_path.iterdir()) == [db]
    finally:
        for p in [db, *db.rglob('*')]: p.chmod(p.stat().st_mode | 0o200)

def test_misspelt_collection_is_an_error_listing_the_collections(privacy_db):
    code, out, err = run_main('search', 'consent', '--db', privacy_db, '--collection', 'standard_embeddings')
    assert code == 1
    says(err, 'search', f"no collection 'standard_embeddings' at {privacy_db}; it holds 'standards_embeddings' "
                        '(--collection)')
    assert [c.name for c in VectorStore(privacy_db).client.list_collections()] == ['standards_embeddings']

def test_search_without_db_creates_nothing(tmp_path):
    r = cli('search', 'backups', cwd=tmp_path, timeout=300)
    assert r.returncode == 1
    says(r.stderr, 'search', 'no Chroma database at chroma_db (no such folder): run `ai-standards ingest` first, '
                             'or name the database folder with --db')
    assert list(tmp_path.iterdir()) == []

def test_pipeline_failure_and_resume_messages_agree(tmp_path):
    from ai_standards.pipeline import PipelineError, RunState
    failed = str(PipelineError('classifier', tmp_path, ValueError('labels')))
    assert failed.endswith('fix the cause and run the same command again to resume at this step (if the fix changes '
                           'the documents, their labels or the settings, add --restart)')
    st = RunState(tmp_path); st.bind('old data', {}); st.bind('fixed data', {})  # step 1 failed: nothing to resume
    assert st.d['fingerprint'] == 'fixed data'
    st.finish('prepare', {}, 1.0)
    with pytest.raises(ValueError) as e: RunState(tmp_path).bind('changed data', {})
    assert 'different data' in str(e.value) and 'add --restart' in str(e.value)
