"""End to end through the CLI: train -> info -> classify -> evaluate -> search; a fresh process predicts identically;
SIGKILL during the classifier, the embedding fine-tune or the save resumes to the same result (with `--chroma-url`);
damaged model folders are refused with a clear message; `--strict` exit codes."""
import json, os, shutil, signal, subprocess, sys, time
from pathlib import Path
import pytest
from conftest import cli, cli_exe
from ai_standards.models import model_fingerprint, resolve_model
from ai_standards.pipeline import TrainedModel

TRAIN = ('--epochs', '4', '--embedding-epochs', '1')  # the settings of `ai-standards demo`, whose run is shared (conftest.py)

LABELS = ['business_continuity', 'energy_management', 'environmental_management', 'information_security', 'it_service_management',
          'occupational_health_safety', 'privacy', 'quality_management', 'risk_management', 'software_lifecycle']

def test_train_outputs(trained):
    out, res = trained
    assert res['models_dir'] == str(out.absolute()) and Path(res['report']).exists()
    assert res['evaluated_on'] == 'test' and res['results'][0]['model'] == 'default predictor (pool)'
    assert res['level'] == 'document' and res['n'] == 10  # one held-out document per category
    run = out.parent/'run'
    assert set(json.loads((run/'state.json').read_text())['steps']) == {'prepare', 'embed', 'store', 'classifier', 'embedding', 'evaluate', 'persist', 'report'}
    assert 'step 8/8 report' in (run/'run.log').read_text()
    assert not list((run/'04_classifier').glob('checkpoint-*'))  # checkpoints dropped once final/ is written
    figures = json.loads((out/'metrics.json').read_text())['embedding']  # the fine-tune's figures, saved by a fresh run too
    assert figures and {'before', 'after', 'guard'} <= set(figures)

def test_info_classify_evaluate_search(trained, sample_pdfs, tmp_path):
    "Known answers on the sample corpus: PRIV-201 is privacy, the breach-notification query finds PRIV-203 clause 2.2."
    out, res = trained
    r = cli('info', out, '--json'); assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info['labels'] == LABELS and set(info['components']) == {'classifier', 'embedding', 'ensemble'}
    priv = sample_pdfs/'privacy'/'PRIV-201.pdf'
    r = cli('classify', out, 'Visitors shall sign in at reception.', priv, '--json'); assert r.returncode == 0, r.stderr
    docs = json.loads(r.stdout)['documents']
    assert len(docs) == 2 and docs[0]['n_chunks'] == 1 and docs[0]['label'] in LABELS
    assert docs[1]['label'] == 'privacy' and docs[1]['top'][0]['label'] == 'privacy'  # PRIV-201 (a validation document)
    from ai_standards.chunking import process_documents
    expected = process_documents([priv], progress=False)[0]['chunks']
    assert [(c['clause'], c['page']) for c in docs[1]['chunks']] == [(c['clause'], c['page_start']) for c in expected]
    assert all(c['label'] in LABELS and 0 < c['probability'] <= 1 for c in docs[1]['chunks'])
    assert sum(c['label'] == 'privacy' for c in docs[1]['chunks']) > len(expected) / 2
    r = cli('evaluate', out, sample_pdfs, '--report', tmp_path/'rep', '--json'); assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout)
    assert m['n'] == 30 and (tmp_path/'rep'/'report.html').exists()
    assert sum(map(sum, m['confusion_matrix'])) == 30
    assert m['accuracy'] >= 0.8, m['accuracy']  # 20 of the 30 documents were trained or validated on; the floor is loose
    r = cli('search', 'notify the supervisory authority of a breach', '--db', res['database'], '--k', '1', '--json'); assert r.returncode == 0, r.stderr
    hit, = json.loads(r.stdout)
    assert (hit['file'], hit['clause'], hit['heading'], hit['label']) == ('PRIV-203.pdf', '2.2', 'Notification to the supervisory authority', 'privacy')

def test_unknown_labels_are_reported(trained, tmp_path):
    out, _ = trained
    rows = [dict(text='Visitors shall be escorted in secure areas at all times.', label='physical_security'),
            dict(text='Personal data breaches shall be notified to the authority within 72 hours.', label='privacy')]
    (tmp_path/'d.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in rows))
    r = cli('evaluate', out, tmp_path/'d.jsonl', '--level', 'chunk', '--json'); assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)['unknown_labels'] == ['physical_security']
    r = cli('evaluate', out, tmp_path/'d.jsonl', '--level', 'chunk'); assert 'labels the model does not know (scored as errors): physical_security' in r.stdout

def test_finished_run_folder_resumes(trained):
    """A run folder in the format earlier versions wrote (state.json and each step's files, unchanged since the runner
    kept its hand-offs in a dict) resumes by loading every step, to the same results and model folder."""
    from ai_standards.chunking import process_documents
    from ai_standards.pipeline import STEPS, AIStandardsTrainer
    out, res = trained
    run = out.parent/'run'
    assert set(json.loads((run/'state.json').read_text())) == {'fingerprint', 'config', 'steps'}
    assert set(json.loads((run/'01_prepare'/'training_data.json').read_text())) == \
           {'texts', 'labels', 'label_ids', 'metadata', 'label_map', 'n_unlabeled', 'splits', 'evaluated_on'}
    t = AIStandardsTrainer(run/'config.json')
    again = t.train_from_processed_data(process_documents([out.parent/'sample_pdfs'], progress=False))
    assert again['resumed'] == list(STEPS) and again['results'] == res['results']
    assert str(t.model_dir) == res['models_dir'] and t.ensemble.refit_rows  # the saved, refit default predictor

FRESH = """
import json, sys
from ai_standards.pipeline import AIStandardsTrainer
t = AIStandardsTrainer.from_models(sys.argv[1])
print(json.dumps({r['source']: r['label'] for r in t.classify(sys.argv[2:])}))
"""

def test_fresh_process_predicts_identically(trained):
    "The report's predictions (made by the training process) equal a fresh process's predictions from the saved folder."
    out, res = trained
    rep = Path(res['report']).parent
    preds = [json.loads(l) for l in open(rep/'predictions.jsonl')]
    data = json.loads((out.parent/'run'/'01_prepare'/'training_data.json').read_text())
    src = {m['doc_id']: m['source'] for m in data['metadata']}
    files = [src[p['id']] for p in preds]
    assert len(files) == 10
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

HOOK = """
import sys, time
from pathlib import Path
marker, where = Path(sys.argv[1]), sys.argv[2]
def block(*a, **k):
    marker.write_text(where); time.sleep(3600)  # the parent kills the process group here
if where == 'embedding':  # in the first optimizer step of the embedding fine-tune (step 5)
    import sentence_transformers as st
    st.SentenceTransformerTrainer.compute_loss = block
elif where == 'persist':  # in save_models, after the classifier, embedding model and ensemble are in its temporary folder
    import ai_standards.persistence as P
    P.build_manifest = block
from ai_standards.cli import main
sys.exit(main(sys.argv[3:]))
"""

def _kill_when(cmd, ready, timeout=1800):
    "Start `cmd` in its own process group; SIGKILL the group once `ready()` is true. Fails if the run ends first."
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env={**os.environ, 'HF_HUB_OFFLINE': '1'})
    t0 = time.time()
    while not ready() and p.poll() is None and time.time() - t0 < timeout: time.sleep(0.2)
    assert p.poll() is None, f'train ended (exit {p.returncode}) before it could be interrupted'
    os.killpg(p.pid, signal.SIGKILL); p.wait()

def test_sigkill_during_train_resumes_to_the_same_result(trained, sample_run, chroma_server, tmp_path):
    """Kill -9 during the classifier's epochs, during the embedding fine-tune and in the middle of saving the models; each
    rerun resumes at the killed step, and the last one ends with the results and predictions of the uninterrupted run.
    The run stores into a Chroma server (`train --chroma-url`), and its last rerun names a bad file with `--strict` (exit 1)."""
    _, clean = trained
    out, run, pdfs = tmp_path/'models', tmp_path/'models.run', sample_run['dir']/'sample_pdfs'  # the files the shared run trained on
    args = ['train', str(pdfs), '--out', str(out), *TRAIN, '--chroma-url', chroma_server, '--json']  # collection: standards_embeddings
    done = lambda: set(json.loads((run/'state.json').read_text())['steps'])
    _kill_when([cli_exe(), *args], lambda: bool(list((run/'04_classifier').glob('checkpoint-*/trainer_state.json'))))  # an epoch saved
    assert 'classifier' not in done() and {'prepare', 'embed', 'store'} <= done()
    marker = tmp_path/'marker'
    for where, finished, killed in (('embedding', 'classifier', 'embedding'), ('persist', 'evaluate', 'persist')):
        _kill_when([sys.executable, '-c', HOOK, str(marker), where, *args], lambda: marker.exists() and marker.read_text() == where)
        assert finished in done() and killed not in done(), (where, done())
    assert not out.exists() and list(tmp_path.glob('.models.tmp-*'))  # the save was cut before its rename
    (tmp_path/'bad.pdf').write_text('not a pdf')
    r = subprocess.run([cli_exe(), *args[:2], str(tmp_path/'bad.pdf'), *args[2:], '--strict'], capture_output=True, text=True, timeout=1800)
    assert r.returncode == 1, r.stderr[-3000:]  # --strict: finished, but a file failed
    resumed = json.loads(r.stdout)
    assert [Path(f['file']).name for f in resumed['failures']] == ['bad.pdf']
    log = (run/'run.log').read_text()
    assert all(f'step {n}/8 {s}: done earlier' in log for n, s in ((1, 'prepare'), (4, 'classifier'), (6, 'evaluate')))
    assert resumed['results'] == clean['results']
    assert [json.loads(l) for l in open(Path(resumed['report']).parent/'predictions.jsonl')] == \
           [json.loads(l) for l in open(Path(clean['report']).parent/'predictions.jsonl')]
    assert cli('info', out).returncode == 0 and not list(tmp_path.glob('.models.tmp-*'))
    r = cli(*args[:2], str(tmp_path/'bad.pdf'), *args[2:])  # the same without --strict: exit 0 (every step done earlier)
    assert r.returncode == 0, r.stderr[-3000:]
    r = cli('search', 'notify the supervisory authority of a breach', '--chroma-url', chroma_server, '--k', '1', '--json')
    assert r.returncode == 0 and (json.loads(r.stdout)[0]['file'], json.loads(r.stdout)[0]['clause']) == ('PRIV-203.pdf', '2.2')
    assert json.loads(r.stdout)[0]['label'] == 'privacy'
    from ai_standards.vectordb import VectorStore
    assert VectorStore(url=chroma_server).count() == 253  # the store step's chunks, once, after three kills

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

def test_default_train_fits_the_pool_without_transformer_training(sample_pdfs, tmp_path):
    "`train` without --classifier/--fine-tune: steps 4 and 5 skipped, the folder holds the pool and the base embedding model only."
    out = tmp_path/'m'
    r = cli('train', sample_pdfs, '--out', out, '--json', timeout=1800); assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout)
    steps = json.loads((tmp_path/'m.run'/'state.json').read_text())['steps']
    assert steps['classifier']['summary']['skipped'] and steps['embedding']['summary']['skipped']
    assert not (tmp_path/'m.run'/'04_classifier').exists() and not (out/'classifier').exists()
    assert res['embedding_source'] == 'base' and {'tfidf', 'embedding'} <= set(res['weights']) <= {'tfidf', 'embedding', 'knn_embedding'}
    assert 'classifier alone' not in {x['model'] for x in res['results']}
    r = cli('info', out, '--json'); assert r.returncode == 0, r.stderr
    assert set(json.loads(r.stdout)['components']) == {'embedding', 'ensemble'}
    r = cli('classify', out, sample_pdfs/'privacy'/'PRIV-201.pdf', '--json'); assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)['documents'][0]['label'] == 'privacy'
    assert model_fingerprint(str(out/'embedding')) == model_fingerprint(resolve_model())  # the base model, copied
    m = TrainedModel.from_models(out); assert m.classify([sample_pdfs/'privacy'/'PRIV-201.pdf'])[0]['label'] == 'privacy'
    s = m.ensemble.embedder.stats; assert s['cached'] > 0 and s['embedded'] == 0, s  # train's vectors, from the disk cache
