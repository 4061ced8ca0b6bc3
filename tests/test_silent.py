"""Nothing silently wrong (issue 31): labels that change on re-ingest, skipped folders, emptied folders under --prune,
labels that silently become None, errors that read like tracebacks, privacy, and text the model cannot judge."""
import contextlib, io, json, os, shutil, signal, subprocess, sys, time
from pathlib import Path
import pytest
from conftest import cli
from ai_standards.cli import main
from ai_standards.models import Embedder
from ai_standards.vectordb import VectorStore, ingest

def run_main(*argv):
    "`ai-standards ARGV` in this process: (exit code, stdout, stderr)."
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err): code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()

@pytest.fixture(scope='module')
def embedder(): return Embedder(backend='torch')

@pytest.fixture
def lib(tmp_path, sample_pdfs):
    "A small library: two privacy PDFs in a category folder, with a manifest beside the folder."
    d = tmp_path/'lib'
    (d/'privacy').mkdir(parents=True)
    for f in ('PRIV-201.pdf', 'PRIV-202.pdf'): shutil.copy(sample_pdfs/'privacy'/f, d/'privacy'/f)
    (d/'manifest.csv').write_text('file,category\nprivacy/PRIV-201.pdf,privacy\nprivacy/PRIV-202.pdf,privacy\n')
    return d

def labels(db:Path, file:str) -> set:
    return {m.get('label') for m in VectorStore(db, create=False).metadata_where({'file': file}).values()}

# --- 1. a changed label reaches the store -----------------------------------------------------------------------------

def test_a_file_first_ingested_by_name_gets_its_folder_label(tmp_path, lib):
    "Ingested by name (no manifest is read: no label), then with its folder: relabelled, nothing embedded again."
    db = tmp_path/'db'
    code, out, err = run_main('ingest', lib/'privacy'/'PRIV-201.pdf', '--db', db, '--json'); assert code == 0, err
    assert labels(db, 'PRIV-201.pdf') == {None}
    code, out, err = run_main('ingest', lib, '--db', db, '--json'); assert code == 0, err
    s = json.loads(out)
    assert labels(db, 'PRIV-201.pdf') == {'privacy'}
    n201 = len(VectorStore(db, create=False).ids_where({'file': 'PRIV-201.pdf'}))
    assert (s['chunks_relabelled'], s['chunks_unchanged']) == (n201, n201) and n201 > 0  # kept, not embedded again
    code, out, err = run_main('search', 'personal data', '--db', db, '--label', 'privacy', '--k', '30', '--json')
    assert code == 0, err
    assert 'PRIV-201.pdf' in {h['file'] for h in json.loads(out)}

def test_an_edited_manifest_label_relabels_without_embedding(tmp_path, lib, embedder):
    db = VectorStore(tmp_path/'db')
    first = ingest([lib], db, embedder, progress=False)
    (lib/'manifest.csv').write_text('file,category\nprivacy/PRIV-201.pdf,data_protection\nprivacy/PRIV-202.pdf,privacy\n')
    n = embedder.stats['embedded']
    r = ingest([lib], db, embedder, progress=False)
    assert (r['files_unchanged'], r['chunks_added'], embedder.stats['embedded'] - n) == (1, 0, 0)
    assert r['chunks_relabelled'] == len(db.ids_where({'file': 'PRIV-201.pdf'})) > 0
    assert labels(tmp_path/'db', 'PRIV-201.pdf') == {'data_protection'} and labels(tmp_path/'db', 'PRIV-202.pdf') == {'privacy'}
    assert r['chunks_in_collection'] == first['chunks_in_collection']

def test_another_label_field_relabels_jsonl_records(tmp_path, embedder):
    recs = tmp_path/'recs.jsonl'
    recs.write_text('\n'.join(json.dumps(dict(id=f'r{i}', family=f'F{i % 2}', category=f'C{i}',
                                              text=f'Requirement {i}: the system shall log event {i}.')) for i in range(4)))
    db = VectorStore(tmp_path/'db')
    ingest([recs], db, embedder, progress=False)
    assert {m['label'] for m in db.metadata_where({'file': 'recs.jsonl'}).values()} == {'C0', 'C1', 'C2', 'C3'}
    r = ingest([recs], db, embedder, label_field='family', progress=False)
    assert (r['chunks_added'], r['chunks_relabelled']) == (0, 4)
    assert {m['label'] for m in db.metadata_where({'file': 'recs.jsonl'}).values()} == {'F0', 'F1'}

# --- 4. prune never empties a folder without --force ------------------------------------------------------------------

def test_prune_refuses_to_empty_a_folder(tmp_path, lib):
    db = tmp_path/'db'
    code, out, err = run_main('ingest', lib, '--db', db, '--json'); assert code == 0, err
    n = json.loads(out)['chunks_in_collection']
    for f in (lib/'privacy').iterdir(): f.unlink()  # the mount point of a share that is not mounted
    code, out, err = run_main('ingest', lib, '--db', db, '--prune')
    assert code == 1 and err.strip() == (f'ai-standards ingest: error: prune refused: {lib.resolve()} holds no documents '
        f'now, and pruning would remove all {n} chunks of its 2 file(s) (an emptied folder, or a share that is not '
        'mounted?); nothing was deleted. To remove them, run again with --prune --force'), err
    assert VectorStore(db, create=False).count() == n
    code, out, err = run_main('ingest', lib, '--db', db, '--prune', '--force', '--json')
    assert code == 0 and json.loads(out)['chunks_removed'] == n, err
    assert run_main('ingest', lib, '--db', db, '--force')[0] == 2  # --force alone is a usage error

# --- 3. an unreadable subfolder is a failure, not a silent skip -------------------------------------------------------

def _unprivileged() -> list:
    "A command prefix that runs without root's power to read any folder (none needed when not root)."
    if os.geteuid() != 0: return []
    if not shutil.which('setpriv'): pytest.skip('running as root without setpriv: cannot make a folder unreadable')
    return ['setpriv', '--bounding-set', '-dac_override,-dac_read_search,-fowner', '--inh-caps', '-all', '--']

def test_an_unreadable_subfolder_is_reported(tmp_path):
    lib = tmp_path/'lib'; (lib/'ok').mkdir(parents=True); (lib/'locked').mkdir()
    text = 'Access control. The organization shall review accounts every quarter and remove unused ones.\n'
    (lib/'ok'/'a.txt').write_text(text); (lib/'locked'/'b.txt').write_text(text)
    (lib/'locked').chmod(0)
    try:
        cmd = [*_unprivileged(), sys.executable, '-m', 'ai_standards.cli', 'chunk', str(lib), '--json']
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        strict = subprocess.run(cmd + ['--strict'], capture_output=True, text=True, timeout=300)
    finally: (lib/'locked').chmod(0o755)
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s['documents'] == 1 and s['failures'] == [dict(file=str(lib/'locked'), reason='folder cannot be read '
                                                          '(Permission denied): the documents in it were not read')], s
    assert strict.returncode == 1

# --- 5. labels that silently become None ------------------------------------------------------------------------------

def test_a_label_field_no_record_has_is_a_warning(tmp_path):
    recs = tmp_path/'recs.jsonl'
    recs.write_text('\n'.join(json.dumps(dict(id=f'r{i}', family='AC', text=f'The system shall log event {i}.'))
                              for i in range(3)))
    code, out, err = run_main('chunk', recs, '--label-field', 'NOSUCH')
    assert code == 0, err
    assert (f"  WARNING {recs}: 3 of 3 record(s) have no 'NOSUCH' value, so no label (--label-field; the records' "
            "fields: family, id)") in out.splitlines(), out
    assert run_main('chunk', recs, '--label-field', 'NOSUCH', '--strict')[0] == 1
    assert run_main('chunk', recs, '--label-field', 'family', '--strict')[0] == 0

def test_a_manifest_row_with_a_typo_is_named(tmp_path):
    lib = tmp_path/'flat'; lib.mkdir()
    text = 'Backups. The organization shall test the restoration of backups every quarter and record the results.\n'
    for f in ('BCM-1.txt', 'BCM-2.txt'): (lib/f).write_text(text.replace('quarter', f))
    (lib/'manifest.csv').write_text('file,category\nBCM-1.txt,business_continuity\nBCM-Z.txt,business_continuity\n')
    code, out, err = run_main('chunk', lib, '--json')
    assert code == 0, err
    s = json.loads(out)
    assert s['documents_by_label'] == {'None': 1, 'business_continuity': 1}
    assert s['warnings'] == [
        dict(file=str(lib/'BCM-2.txt'), reason=f"no row in {lib/'manifest.csv'} and no category folder, so no label "
                                               "(a typo in the row for 'BCM-Z.txt'?)"),
        dict(file=str(lib/'manifest.csv'), reason=f"row 'BCM-Z.txt' matches no file in {lib}: its label "
                                                  "'business_continuity' was not used")]
    assert run_main('chunk', lib, '--strict')[0] == 1

# --- non-UTF-8 bytes in a JSONL: the line is reported and skipped, the batch goes on ----------------------------------

def test_a_non_utf8_jsonl_line_is_skipped_with_file_and_line(tmp_path):
    good, bad = tmp_path/'a_good.jsonl', tmp_path/'b_bad.jsonl'
    good.write_text(json.dumps(dict(id='g', text='The system shall log every event.')) + '\n')
    bad.write_bytes(b'{"id":"1","text":"Records shall be kept."}\n{"id":"2","text":"Stra\xdfe shall be swept."}\n'
                    b'{"id":"3","text":"Keys shall be rotated."}\n')
    code, out, err = run_main('chunk', tmp_path, '--json')
    assert code == 0, err
    s = json.loads(out)
    assert s['documents'] == 3 and s['failures'] == [
        dict(file=f'{bad}:2', reason='not UTF-8 text (byte 0xdf at column 23); save the file as UTF-8')]

# --- errors that read like tracebacks ---------------------------------------------------------------------------------

NOTE = 'Backups. The organization shall test the restoration of backups every quarter and record the results.\n'

def test_a_damaged_database_is_named(tmp_path, embedder):
    note = tmp_path/'note.txt'; note.write_text(NOTE)
    db = tmp_path/'db'; ingest([note], VectorStore(db), embedder, progress=False)
    with open(db/'chroma.sqlite3', 'r+b') as f: f.write(b'\xff' * 100)  # the header: 'file is not a database'
    for argv in (('search', 'backup', '--db', db), ('ingest', note, '--db', db)):
        code, out, err = run_main(*argv)
        assert code == 1 and err.strip() == (f'ai-standards {argv[0]}: error: the database {db}/chroma.sqlite3 is damaged '
            '(file is not a database): restore its folder from a backup, or move the folder away and ingest again'), err

def test_a_search_during_the_first_ingest_says_one_is_running(tmp_path):
    db = tmp_path/'db'; db.mkdir(); lock = db/'.ai_standards.lock'
    holder = subprocess.Popen([sys.executable, '-c', f'from filelock import FileLock; import time; l = FileLock({str(lock)!r}); '
                               'l.acquire(); print("held", flush=True); time.sleep(120)'], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'held'
        code, out, err = run_main('search', 'backup', '--db', db)
    finally: holder.kill(); holder.wait()
    assert code == 1 and err.strip() == (f'ai-standards search: error: nothing to search in {db} yet: an ingest into it '
                                         'is running; search again when it finishes'), err
    code, out, err = run_main('search', 'backup', '--db', db)  # no ingest running: the usual advice
    assert code == 1 and 'run `ai-standards ingest` first' in err, err

def test_chunk_max_tokens_names_the_option_at_fault(tmp_path):
    note = tmp_path/'note.txt'; note.write_text(NOTE)
    code, out, err = run_main('chunk', note, '--max-tokens', '0')
    assert code == 2 and err.strip() == 'ai-standards chunk: error: --max-tokens must be at least 1, not 0', err
    code, out, err = run_main('chunk', note, '--max-tokens', '40')
    assert code == 2 and err.strip() == ('ai-standards chunk: error: --max-tokens 40 is too small for --overlap 32: a chunk '
                                         'must hold more than twice the overlap (--max-tokens 68 or more, or a smaller '
                                         '--overlap)'), err
    assert run_main('chunk', note, '--max-tokens', '68')[0] == 0

def test_demo_out_a_file(tmp_path):
    f = tmp_path/'out.txt'; f.write_text('x')
    code, out, err = run_main('demo', '--out', f)
    assert code == 1 and err.strip() == (f'ai-standards demo: error: {f} is a file, not a folder: --out names the folder '
                                         'for all the demo writes (made when missing)'), err

def test_train_on_one_label_per_record_suggests_a_label_field(tmp_path):
    recs = tmp_path/'controls.jsonl'
    recs.write_text('\n'.join(json.dumps(dict(id=f'c-{i}', label=f'C-{i}', family=f'F{i % 12}',
                                              text=f'Control {i}: the organization shall review item {i}.'))
                              for i in range(150)))
    code, out, err = run_main('train', recs, '--out', tmp_path/'models', '--json')
    assert code == 1 and err.strip().splitlines()[-1] == ("ai-standards train: error: 150 distinct labels over 150 "
        "labelled documents ('C-0', 'C-1', 'C-2', ...; from the default label field): nearly every document is a class of its own, too few to learn "
        "or to split. Group them: --label-field family (12 values)?"), err
    assert len(err) < 400 and not (tmp_path/'models').exists()

# --- Ctrl-C, SIGTERM, kill -9: no worker tracebacks, no workers left behind ------------------------------------------

def _children(pid:int) -> set:
    "Pids of the live processes whose parent is `pid`."
    out = set()
    for st in Path('/proc').glob('[0-9]*/stat'):
        try: f = st.read_text().rsplit(')', 1)[1].split()
        except OSError: continue
        if int(f[1]) == pid and f[0] != 'Z': out.add(int(st.parent.name))
    return out

def _alive(pids) -> set:
    def live(p):
        try: return Path(f'/proc/{p}/stat').read_text().rsplit(')', 1)[1].split()[0] != 'Z'
        except OSError: return False
    return {p for p in pids if live(p)}

@pytest.fixture(scope='module')
def many_pdfs(sample_pdfs, tmp_path_factory):
    "1,200 PDFs (the sample corpus forty times): seconds of reading, so the signal lands while the workers read."
    d = tmp_path_factory.mktemp('many')
    for i in range(40):
        for f in sample_pdfs.rglob('*.pdf'): shutil.copy(f, d/f'{i}-{f.name}')
    return d

def _sigint_default():
    "In the child: Ctrl-C's default action, which a shell's background job (`pytest ... &`) would otherwise pass down ignored."
    signal.signal(signal.SIGINT, signal.SIG_DFL)

def _start_reading(folder:Path):
    "`ai-standards chunk FOLDER` in its own session, returned once its reader processes are running."
    env = {**os.environ, 'PYTHONUNBUFFERED': '1'}
    proc = subprocess.Popen([sys.executable, '-m', 'ai_standards.cli', 'chunk', str(folder), '--json'], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=_sigint_default)
    deadline = time.time() + 120
    while len(_children(proc.pid)) < 2 and proc.poll() is None and time.time() < deadline: time.sleep(0.05)
    time.sleep(0.5)  # the workers import their modules and take jobs
    assert proc.poll() is None, 'the chunk run finished before it could be interrupted'
    return proc, _children(proc.pid)

def _gone_soon(pids, seconds=10) -> set:
    deadline = time.time() + seconds
    while _alive(pids) and time.time() < deadline: time.sleep(0.1)
    return _alive(pids)

@pytest.mark.skipif(sys.platform != 'linux', reason='reads /proc')
def test_ctrl_c_prints_one_line_and_leaves_no_workers(many_pdfs):
    proc, kids = _start_reading(many_pdfs)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group gets SIGINT
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 1 and 'Traceback' not in err and err.strip().splitlines()[-1] == 'interrupted', err
    assert len([l for l in err.splitlines() if l.strip() and 'reading' not in l]) == 1, err
    assert not _gone_soon(kids), 'reader processes outlived the command'

@pytest.mark.skipif(sys.platform != 'linux', reason='reads /proc')
@pytest.mark.parametrize('sig', [signal.SIGTERM, signal.SIGKILL])
def test_workers_die_with_their_parent(many_pdfs, sig):
    proc, kids = _start_reading(many_pdfs)
    os.kill(proc.pid, sig)  # the parent only, as a service manager or kill -9 does
    proc.wait(timeout=60)
    left = _gone_soon(kids)
    for p in left: os.kill(p, signal.SIGKILL)
    assert not left, f'{len(left)} reader process(es) outlived a {signal.Signals(sig).name} of their parent'

# --- privacy: no telemetry, no network -------------------------------------------------------------------------------

GUARD = '''import os, socket, traceback
def _note(what):
    with open(os.environ['NET_GUARD_LOG'], 'a') as f: f.write(what + '\\n' + ''.join(traceback.format_stack(limit=15)) + '----\\n')
def getaddrinfo(host, *a, **k):
    _note(f'getaddrinfo {host}'); raise socket.gaierror(-3, 'network blocked by the test')
socket.getaddrinfo = getaddrinfo
_connect = socket.socket.connect
def connect(self, addr):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _note(f'connect {addr}'); raise OSError(101, 'network blocked by the test')
    return _connect(self, addr)
socket.socket.connect = connect
'''

def offline_run(tmp_path:Path, *argv):
    "`ai-standards ARGV` with a fresh HOME, the Hugging Face offline switches unset and every IP connection refused and logged."
    guard = tmp_path/'guard'; guard.mkdir(exist_ok=True); (guard/'sitecustomize.py').write_text(GUARD)
    env = {k: v for k, v in os.environ.items() if k not in ('HF_HUB_OFFLINE', 'TRANSFORMERS_OFFLINE', 'ORT_DISABLE_TELEMETRY')}
    from ai_standards.models import default_cache_dir
    env |= dict(HOME=str(tmp_path/'home'), AI_STANDARDS_CACHE=str(default_cache_dir()), NET_GUARD_LOG=str(tmp_path/'net.log'),
                PYTHONPATH=os.pathsep.join([str(guard), *filter(None, [os.environ.get('PYTHONPATH')])]))
    r = subprocess.run([sys.executable, '-m', 'ai_standards.cli', *map(str, argv)], capture_output=True, text=True,
                       env=env, timeout=600)
    net = (tmp_path/'net.log').read_text() if (tmp_path/'net.log').exists() else ''
    return r, net

def test_ingest_and_search_write_no_telemetry_and_attempt_no_connection(tmp_path):
    note = tmp_path/'note.txt'; note.write_text(NOTE)
    for argv in (('ingest', note, '--db', tmp_path/'db'), ('search', 'backup restoration', '--db', tmp_path/'db')):
        r, net = offline_run(tmp_path, *argv)
        assert r.returncode == 0, r.stderr
        assert not net, f'{argv[0]} attempted network connections:\n{net[:3000]}'
    assert not (tmp_path/'home'/'.cache'/'Microsoft').exists(), 'ONNX Runtime wrote its telemetry folder'

# --- out of domain ----------------------------------------------------------------------------------------------------

def test_classify_flags_text_it_cannot_judge():
    "A Chinese information-security sentence and an emoji string are flagged, not given a confident label."
    from ai_standards.cli import _classify_text
    from ai_standards.pipeline import TrainedModel
    from ai_standards.training import EnsembleClassifier, TfidfHead
    texts = ['Backups shall be restored and tested every quarter.', 'Incidents shall be reported to the response team.',
             'Backup copies shall be kept offsite and tested.', 'Security incidents shall be logged and analysed.']
    t = TrainedModel(); t.ensemble = EnsembleClassifier(['backup', 'incident'], dict(tfidf=1.0),
                                                        tfidf=TfidfHead.fit(texts, [0, 1, 0, 1], 2))
    res = t.classify(['组织应当制定信息安全策略，并定期评审其有效性。', '🙂🚀🔥💯✨', 'Backups shall be tested every quarter.',
                      'Le fromage est délicieux avec du vin rouge et du pain.'])
    assert [r['out_of_domain'] for r in res] == ['written mostly in CJK script, not the language the model learned',
                                                 'no words to judge', None, 'few words the model knows (0 of 11)']
    lines = _classify_text(res, 0).splitlines()
    assert lines[0].startswith('out of domain (written mostly in CJK script, not the language the model learned): a guess, ')
    assert lines[2].startswith('backup ')

def test_commands_on_a_trained_model_attempt_no_connection(tmp_path, trained, sample_pdfs):
    "classify, info and evaluate on a saved model folder, with the HF offline switches unset: no DNS lookup, no connection."
    models, _, pdfs = *trained, sample_pdfs
    runs = [('classify', models, 'Backups of critical systems shall be restored and tested quarterly.'),
            ('info', models, '--quick'), ('evaluate', models, pdfs/'privacy', pdfs/'business_continuity', '--manifest', pdfs/'manifest.csv')]
    for argv in runs:
        r, net = offline_run(tmp_path, *argv)
        assert r.returncode == 0, r.stderr[-2000:]
        assert not net, f'{argv[0]} attempted network connections:\n{net[:3000]}'

def test_a_label_field_warning_comes_on_every_ingest(tmp_path):
    "The second ingest of unchanged records with the same wrong --label-field warns (and fails under --strict) again."
    recs = tmp_path/'recs.jsonl'
    recs.write_text('\n'.join(json.dumps(dict(id=f'r{i}', family='AC', text=f'The system shall log event {i}.')) for i in range(3)))
    runs = [run_main('ingest', recs, '--db', tmp_path/'db', '--label-field', 'NOSUCH', '--strict', '--json') for _ in range(2)]
    assert [code for code, _, _ in runs] == [1, 1], runs
    assert [len(json.loads(out)['warnings']) for _, out, _ in runs] == [1, 1]
    assert json.loads(runs[1][1])['chunks_added'] == 0  # read again, nothing embedded again
