"The ai-standards command as a user runs it: exit codes, one-line errors, JSON output."
import json
from conftest import cli

def test_demo(tmp_path):
    r = cli('demo', '--out', tmp_path/'demo', '--json')
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert [x['model'] for x in s['results']][0] == 'default predictor (pool)'
    assert {'TF-IDF + LR', 'frozen embeddings + LR', 'classifier alone'} <= {x['model'] for x in s['results']}
    assert s['search']['hits'][0]['file'] == 'PRIV-203.pdf'
    assert (tmp_path/'demo'/'chroma_db').is_dir() and (tmp_path/'demo'/'models'/'manifest.json').exists()
    assert s['report'].endswith('report.html')
    labels = json.loads((tmp_path/'demo'/'models'/'label_map.json').read_text())['labels']
    assert len(labels) == 10 and s['classify']['label'] in labels
    for step in ('step 1/8 prepare', 'step 4/8 classifier', 'step 8/8 report'): assert step in r.stderr

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
