"The ai-standards command as a user runs it: exit codes, one-line errors, JSON output."
import json
import pytest
from conftest import cli

def test_demo(sample_run):
    "The shared trained sample run is `ai-standards demo --json` (conftest.py): what it prints and leaves on disk."
    assert sample_run['returncode'] == 0, sample_run['stderr'][-3000:]
    s, out, stderr = sample_run['results'], sample_run['dir'], sample_run['stderr']
    assert [x['model'] for x in s['results']][0] == 'default predictor (pool)'
    assert {'TF-IDF + LR', 'frozen embeddings + LR', 'classifier alone'} <= {x['model'] for x in s['results']}
    assert s['search']['hits'][0]['file'] == 'PRIV-203.pdf'
    assert (out/'chroma_db').is_dir() and (out/'models'/'manifest.json').exists()
    assert s['report'].endswith('report.html')
    labels = json.loads((out/'models'/'label_map.json').read_text())['labels']
    assert len(labels) == 10 and s['classify']['label'] in labels  # one sentence: too little text for a stable label
    for step in ('step 1/8 prepare', 'step 4/8 classifier', 'step 8/8 report'): assert step in stderr

def test_plain_demo_trains_what_train_trains():
    "`demo` as the README runs it: the pool predictor only, as `train` by default; the transformers are opt-in."
    from ai_standards.cli import build_parser, demo_config
    cfg = lambda *a: demo_config(build_parser().parse_args(['demo', *a]))
    plain, train = cfg(), build_parser().parse_args(['train', 'docs', '--out', 'm'])
    assert (plain.train_classifier, plain.fine_tune_embeddings) == (False, False)
    assert (train.classifier, train.fine_tune) == (False, False)  # the same default as train's
    assert cfg('--epochs', '2').train_classifier and cfg('--epochs', '2').classifier.epochs == 2  # --epochs implies it
    assert cfg('--classifier').train_classifier and cfg('--fine-tune').fine_tune_embeddings
    assert 'what train trains by default' in cli('demo', '--help').stdout.replace('\n', ' ').replace('  ', ' ')

def test_classify_text_never_prints_certainty():
    "A document scored 0.99996 / 0.00004 reads >0.99 / <0.01, not 1.00 / 0.00 (the sample model's one-line text did)."
    from ai_standards.cli import _classify_text
    top = [dict(label='business_continuity', probability=0.99996), dict(label='software_lifecycle', probability=0.00004)]
    chunk = dict(page=1, clause=None, label='business_continuity', probability=0.9988, normative_level='requirement', text='x')
    doc = dict(label='business_continuity', probability=0.99996, top=top, title='Backups', source='<text>', n_chunks=1,
               chunks=[chunk])
    text = _classify_text([doc], 5)
    assert 'business_continuity >0.99' in text and 'software_lifecycle <0.01' in text, text
    assert '1.00' not in text and '0.00' not in text, text

def test_chunk_jsonl_out(tmp_path, sample_pdfs):
    r = cli('chunk', sample_pdfs/'privacy', '--manifest', sample_pdfs/'manifest.csv', '--out', tmp_path/'c.jsonl', '--json')
    assert r.returncode == 0, r.stderr
    rows = [json.loads(l) for l in open(tmp_path/'c.jsonl')]
    assert len(rows) == json.loads(r.stdout)['chunks'] and {x['label'] for x in rows} == {'privacy'}

def test_errors_are_one_line(tmp_path):
    r = cli('chunk', tmp_path/'nothing-here')
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [f'ai-standards chunk: error: no documents could be read from {tmp_path/"nothing-here"}; nothing-here: no such file or folder']

def test_usage_errors_exit_2():
    assert cli('chunk').returncode == 2
    assert cli('no-such-command').returncode == 2
    r = cli('--help'); assert r.returncode == 0 and 'demo' in r.stdout

def test_an_oscal_catalog_is_read_like_jsonl(tmp_path):
    "A folder holding an OSCAL catalog and other JSON: the catalog's controls are labeled by family; the rest is ignored."
    ctl = lambda i, text, **kw: dict(id=i, title=f'Title {i}', props=[dict(name='label', value=i.upper())],
                                     parts=[dict(name='statement', prose=text)], **kw)
    groups = [dict(id='ac', title='Access Control', controls=[
                  ctl('ac-2', 'Manage system accounts and review them.', controls=[ctl('ac-2.1', 'Automate it.')])]),
              dict(id='ir', title='Incident Response', controls=[ctl('ir-4', 'Handle incidents.')])]
    (tmp_path/'catalog.json').write_text(json.dumps({'catalog': {'uuid': 'u', 'groups': groups}}))
    (tmp_path/'settings.json').write_text('{"theme": "dark"}')
    r = cli('chunk', tmp_path, '--json', '--out', tmp_path/'c.jsonl')
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert (s['documents'], s['documents_by_label']) == (3, {'AC': 2, 'IR': 1}), s
    assert 'settings.json' in json.dumps(s) and not s.get('failures'), s
    rows = [json.loads(l) for l in open(tmp_path/'c.jsonl')]
    assert [(x['clause'], x['heading']) for x in rows] == [('AC-2', 'Title ac-2'), ('AC-2.1', 'Title ac-2.1'),
                                                           ('IR-4', 'Title ir-4')]

def _png_size(path) -> tuple[int, int]:
    import struct
    return struct.unpack('>II', open(path, 'rb').read()[16:24])

def check_report(report_dir):
    "The demo's report as a reader meets it: the first row named as the CLI names it, each metric explained, plots sized."
    md = (report_dir/'report.md').read_text()
    table = md.split('## Model and baselines')[1].split('\n|---')[1].split('\n')
    assert table[1].startswith('| default predictor (pool) |'), table[:2]
    assert '## Per class (default predictor (pool))' in md
    assert 'Expected calibration error' in md and 'confident: mean top probability' in md  # the ECE in one sentence
    ece = json.loads((report_dir/'metrics.json').read_text())['calibration']['ece']
    assert ('read them as a ranking of the labels' in md) == (ece >= 0.1), ece  # why a high ECE sits beside the accuracy
    for words in ('Macro P, R and F1:', 'silhouette, -1 to 1:', 'MRR@10: mean of 1 / rank', 'nDCG@10:', 'same_label,'):
        assert words in md, words
    w, h = _png_size(report_dir/'f1_by_class.png')
    assert h < 1000, (w, h)  # 10 classes x 6 rows: was about 1,700 px tall

@pytest.mark.sample_run
def test_demo_report_reads_as_the_cli_says(request):
    run = request.getfixturevalue('sample_run')
    check_report(run['dir']/'run'/'06_evaluate'/'report')
    assert 'evaluate: fitting the baselines' in run['stderr']  # the evaluate step says what it is doing, phase by phase

def test_coverage_keeps_its_own_warnings(sample_pdfs, tmp_path, monkeypatch, capsys):
    "The profile's warnings are added to the ones `coverage` gives (its scale warning), not written over them."
    import ai_standards.coverage as coverage_module
    from ai_standards.cli import main
    cat = {'catalog': {'uuid': 'c', 'groups': [{'id': 'mp', 'title': 'Media', 'controls': [
        {'id': 'mp-6', 'title': 'Media Sanitization', 'parts': [{'name': 'statement', 'prose': 'Sanitize media.'}]}]}]}}
    prof = {'profile': {'uuid': 'p', 'metadata': {'title': 'Mini'},
                        'imports': [{'href': 'cat.json', 'include-controls': [{'with-ids': ['mp-6', 'zz-9']}]}]}}
    (tmp_path/'cat.json').write_text(json.dumps(cat)); (tmp_path/'prof.json').write_text(json.dumps(prof))
    monkeypatch.setattr(coverage_module, '_scale_warning', lambda n, fitted_on=31: ['scale warning'])
    code = main(['coverage', str(sample_pdfs/'privacy'), '--catalog', str(tmp_path/'cat.json'),
                 '--profile', str(tmp_path/'prof.json'), '--json'])
    warnings = json.loads(capsys.readouterr().out)['warnings']
    assert code == 0 and warnings[0] == 'scale warning' and len(warnings) == 2 and 'zz-9' in warnings[1], warnings
