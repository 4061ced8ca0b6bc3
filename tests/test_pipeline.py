"""End to end through the CLI: train -> info -> classify -> evaluate -> search; a fresh process predicts identically;
SIGKILL during train resumes to the same result; damaged model folders are refused with a clear message."""
import json, os, shutil, signal, subprocess, sys, time
from pathlib import Path
import pytest
from conftest import cli

TRAIN = ('--epochs', '3', '--embedding-epochs', '1')

def _train_cmd(sample_pdfs, out):
    exe = shutil.which('ai-standards') or str(Path(sys.executable).parent/'ai-standards')
    return [exe, 'train', str(sample_pdfs), '--out', str(out), *TRAIN, '--json']

@pytest.fixture(scope='module')
def trained(sample_pdfs, tmp_path_factory):
    "An uninterrupted `ai-standards train` of the sample corpus: (model dir, results)."
    out = tmp_path_factory.mktemp('train')/'models'
    r = cli('train', sample_pdfs, '--out', out, *TRAIN, '--json', timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    return out, json.loads(r.stdout)

def test_train_outputs(trained):
    out, res = trained
    assert res['models_dir'] == str(out.absolute()) and Path(res['report']).exists()
    assert res['evaluated_on'] == 'test' and res['results'][0]['model'] == 'default predictor (pool)'
    run = out.parent/'models.run'
    assert set(json.loads((run/'state.json').read_text())['steps']) == {'prepare', 'embed', 'store', 'classifier', 'embedding', 'evaluate', 'persist', 'report'}
    assert 'step 8/8 report' in (run/'run.log').read_text()
    assert not list((run/'04_classifier').glob('checkpoint-*'))  # checkpoints dropped once final/ is written

def test_info_classify_evaluate_search(trained, sample_pdfs, tmp_path):
    out, res = trained
    r = cli('info', out, '--json'); assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert len(info['labels']) == 10 and set(info['components']) == {'classifier', 'embedding', 'ensemble'}
    r = cli('classify', out, 'Visitors shall sign in at reception.', sample_pdfs/'privacy'/'PRIV-201.pdf', '--json'); assert r.returncode == 0, r.stderr
    docs = json.loads(r.stdout)['documents']
    assert len(docs) == 2 and docs[0]['n_chunks'] == 1 and docs[1]['n_chunks'] > 1 and docs[1]['label'] in info['labels']
    assert all(c['label'] in info['labels'] and 0 < c['probability'] <= 1 for c in docs[1]['chunks'])
    r = cli('evaluate', out, sample_pdfs, '--report', tmp_path/'rep', '--json'); assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout)
    assert 0 <= m['accuracy'] <= 1 and 'macro_f1' in m and (tmp_path/'rep'/'report.html').exists()
    r = cli('search', 'personal data breach notification', '--db', res['database'], '--k', '1', '--json'); assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)[0]['label'] == 'privacy'

def test_unknown_labels_are_reported(trained, tmp_path):
    out, _ = trained
    rows = [dict(text='Visitors shall be escorted in secure areas at all times.', label='physical_security'),
            dict(text='Personal data breaches shall be notified to the authority within 72 hours.', label='privacy')]
    (tmp_path/'d.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in rows))
    r = cli('evaluate', out, tmp_path/'d.jsonl', '--level', 'chunk', '--json'); assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)['unknown_labels'] == ['physical_security']
    r = cli('evaluate', out, tmp_path/'d.jsonl', '--level', 'chunk'); assert 'labels the model does not know (scored as errors): physical_security' in r.stdout

FRESH = """
import json, sys
from ai_standards.pipeline import AIStandardsTrainer
t = AIStandardsTrainer.from_models(sys.argv[1])
print(json.dumps({r['source']: r['label'] for r in t.classify(sys.argv[2:])}))
"""

def test_fresh_process_predicts_identically(trained, sample_pdfs):
    "The report's predictions (made by the training process) equal a fresh process's predictions from the saved folder."
    out, res = trained
    rep = Path(res['report']).parent
    preds = [json.loads(l) for l in open(rep/'predictions.jsonl')]
    data = json.loads((out.parent/'models.run'/'01_prepare'/'training_data.json').read_text())
    src = {m['doc_id']: m['source'] for m in data['metadata']}
    files = [src[p['id']] for p in preds]
    r = subprocess.run([sys.executable, '-c', FRESH, str(out), *files], capture_output=True, text=True, env={**os.environ, 'HF_HUB_OFFLINE': '1'})
    assert r.returncode == 0, r.stderr[-2000:]
    fresh = json.loads(r.stdout)
    assert [fresh[f] for f in files] == [p['pred'] for p in preds]

PLAIN = """
import sys
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from sentence_transformers import SentenceTransformer
m = AutoModelForSequenceClassification.from_pretrained(sys.argv[1] + '/classifier'); AutoTokenizer.from_pretrained(sys.argv[1] + '/classifier')
e = SentenceTransformer(sys.argv[1] + '/embedding', device='cpu').encode(['backup testing'])
assert 'ai_standards' not in sys.modules
print(m.config.num_labels, e.shape[1])
"""

def test_plain_libraries_load_the_folders(trained):
    out, _ = trained
    r = subprocess.run([sys.executable, '-c', PLAIN, str(out)], capture_output=True, text=True, env={**os.environ, 'HF_HUB_OFFLINE': '1'})
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ['10', '384']

def test_sigkill_during_train_resumes_to_the_same_result(trained, sample_pdfs, tmp_path):
    _, clean = trained
    out = tmp_path/'models'; run = tmp_path/'models.run'
    p = subprocess.Popen(_train_cmd(sample_pdfs, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                         env={**os.environ, 'HF_HUB_OFFLINE': '1'})
    t0 = time.time()
    while not list((run/'04_classifier').glob('checkpoint-*')) and p.poll() is None and time.time() - t0 < 900: time.sleep(0.2)
    assert p.poll() is None, 'train ended before it could be interrupted'
    os.killpg(p.pid, signal.SIGKILL); p.wait()
    done = set(json.loads((run/'state.json').read_text())['steps'])
    assert 'classifier' not in done and {'prepare', 'embed', 'store'} <= done
    r = subprocess.run(_train_cmd(sample_pdfs, out), capture_output=True, text=True, env={**os.environ, 'HF_HUB_OFFLINE': '1'}, timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    resumed = json.loads(r.stdout)
    log = (run/'run.log').read_text()
    assert 'step 1/8 prepare: done earlier' in log
    assert resumed['results'] == clean['results']
    assert [json.loads(l) for l in open(Path(resumed['report']).parent/'predictions.jsonl')] == \
           [json.loads(l) for l in open(Path(clean['report']).parent/'predictions.jsonl')]

def _damaged(trained, tmp_path, edit):
    out, _ = trained
    d = tmp_path/'copy'; shutil.copytree(out, d); edit(d)
    return d

def test_truncated_weights_refused(trained, tmp_path):
    def truncate(d):
        w = d/'classifier'/'model.safetensors'; w.write_bytes(w.read_bytes()[:4096])
    d = _damaged(trained, tmp_path, truncate)
    for args in (('info', d), ('classify', d, 'some text')):
        r = cli(*args)
        assert r.returncode == 1
        line, = r.stderr.strip().splitlines()[-1:]
        assert 'classifier/model.safetensors is 4,096 bytes, the manifest says' in line and '(truncated or replaced)' in line

def test_edited_manifest_refused(trained, tmp_path):
    def edit(d):
        m = json.loads((d/'manifest.json').read_text()); m['labels'] = list(reversed(m['labels'])); (d/'manifest.json').write_text(json.dumps(m))
    r = cli('classify', _damaged(trained, tmp_path, edit), 'some text')
    assert r.returncode == 1 and 'manifest.json was edited after the models were saved' in r.stderr

def test_bad_config_is_one_line(tmp_path, sample_pdfs):
    (tmp_path/'c.toml').write_text('max_token = 3\n')
    r = cli('train', sample_pdfs, '--out', tmp_path/'m', '--config', tmp_path/'c.toml')
    assert r.returncode == 1 and r.stderr.strip().splitlines()[-1].startswith('ai-standards train: error: ') and 'unknown setting(s) max_token' in r.stderr

@pytest.mark.skipif('not config.getoption("--run-slow")', reason='slow: trains on all of SP 800-53 (use --run-slow)')
def test_nist_train_and_classify(nist_data, tmp_path):
    out = tmp_path/'nist'
    r = cli('train', nist_data/'nist_sp800_53r5_controls.jsonl', '--label-field', 'family', '--out', out, '--json', timeout=7200)
    assert r.returncode == 0, r.stderr[-3000:]
    r = cli('classify', out, 'The organization employs multifactor authentication for network access to privileged accounts.', '--json')
    assert json.loads(r.stdout)['documents'][0]['label'] == 'IA'
