"Coverage: profile resolution through the CLI, the JSON/CSV/HTML/OSCAL outputs, from files and from a database, truth metrics, bad input, NIST's MODERATE baseline."
import csv, json, subprocess
import pytest
from conftest import cli

CATALOG = {'catalog': {'uuid': 'c', 'metadata': {'title': 'Mini'}, 'groups': [
    {'id': 'ac', 'title': 'Access Control', 'props': [{'name': 'label', 'value': 'AC'}], 'controls': [
        {'id': 'ac-2', 'title': 'Account Management', 'props': [{'name': 'label', 'value': 'AC-2'}],
         'parts': [{'name': 'statement', 'prose': 'Create, enable, modify, disable and remove accounts. Review accounts for compliance.'}],
         'controls': [{'id': 'ac-2.1', 'title': 'Automated System Account Management', 'props': [{'name': 'label', 'value': 'AC-2(1)'}],
                       'parts': [{'name': 'statement', 'prose': 'Support the management of system accounts using automated mechanisms.'}]}]}]},
    {'id': 'mp', 'title': 'Media Protection', 'props': [{'name': 'label', 'value': 'MP'}], 'controls': [
        {'id': 'mp-6', 'title': 'Media Sanitization', 'props': [{'name': 'label', 'value': 'MP-6'}],
         'parts': [{'name': 'statement', 'prose': 'Sanitize system media prior to disposal, release out of organizational control, or release for reuse.'}]}]},
    {'id': 'pe', 'title': 'Physical and Environmental Protection', 'props': [{'name': 'label', 'value': 'PE'}], 'controls': [
        {'id': 'pe-3', 'title': 'Physical Access Enforcement', 'props': [{'name': 'label', 'value': 'PE-3'}],
         'parts': [{'name': 'statement', 'prose': 'Enforce physical access authorizations at entry and exit points to the facility.'}]}]}]}}
DOCS = [dict(id='POL-1', text='User accounts are created on approval, reviewed every quarter and removed when staff leave.', covers=['ac-2']),
        dict(id='POL-2', text='All storage media shall be sanitized with approved tools before disposal or reuse.', covers=['mp-6'])]

def profile(ids, href='cat.json'):
    return {'profile': {'uuid': 'p', 'metadata': {'title': 'Mini baseline'}, 'imports': [{'href': href, 'include-controls': [{'with-ids': ids}]}]}}

@pytest.fixture
def files(tmp_path):
    (tmp_path/'cat.json').write_text(json.dumps(CATALOG))
    (tmp_path/'base.json').write_text(json.dumps(profile(['ac-2', 'mp-6', 'pe-3'])))
    (tmp_path/'docs.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in DOCS))
    return tmp_path

def run(files, *extra):
    return cli('coverage', files/'docs.jsonl', '--catalog', files/'cat.json', '--profile', files/'base.json', *extra)

def test_json_and_files(files):
    r = run(files, '--json', '--truth-field', 'covers', '--csv', files/'c.csv', '--html', files/'c.html', '--oscal', files/'c.oscal.json')
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert [c['control_id'] for c in res['controls']] == ['ac-2', 'mp-6', 'pe-3']  # the profile's controls, not ac-2.1
    c = {c['control_id']: c for c in res['controls']}
    assert set(c['mp-6']) == {'control_id', 'label', 'title', 'family', 'status', 'probability', 'evidence', 'reason'}
    assert set(c['mp-6']['evidence'][0]) >= {'source_id', 'file', 'page', 'clause', 'text', 'score'}
    assert c['mp-6']['evidence'][0]['source_id'] == 'POL-2' and c['ac-2']['evidence'][0]['source_id'] == 'POL-1'
    assert c['pe-3']['status'] == 'gap' and 'nearest passage' in c['pe-3']['reason']
    assert c['mp-6']['probability'] > c['pe-3']['probability']
    assert res['summary']['controls'] == 3 and set(res['summary']['by_family']) == {'AC', 'MP', 'PE'}
    m = res['metrics']; assert (m['n'], m['positives'], m['truth_field']) == (3, 2, 'covers')
    rows = list(csv.DictReader(open(files/'c.csv', encoding='utf-8')))
    assert [r['control_id'] for r in rows] == ['ac-2', 'mp-6', 'pe-3'] and rows[2]['status'] == 'gap' and rows[2]['reason']
    page = (files/'c.html').read_text()
    assert '<h2>Gaps by family</h2>' in page and 'PE-3' in page and 'POL-2' in page
    doc = json.loads((files/'c.oscal.json').read_text())
    assert res['oscal_validated_by'].startswith('compliance-trestle')
    mapping = doc['mapping-collection']['mappings'][0]
    assert mapping['target-resource'] == {'type': 'profile', 'href': 'base.json'} and mapping['source-resource']['href'] == 'docs.jsonl'
    gaps = [x['control_id'] for x in res['controls'] if x['status'] == 'gap']
    assert mapping['target-gap-summary']['unmapped-controls'][0]['with-ids'] == gaps

def test_regime(files):
    "The decision follows the documents' wording; --regime overrides it; an unknown regime is a usage error."
    from ai_standards.coverage import COVERAGE_CALIBRATION, VERBATIM_COVERAGE_CALIBRATION, VERBATIM_SHARE
    auto = json.loads(run(files, '--json').stdout)['summary']
    assert auto['regime'] == ('verbatim' if auto['verbatim_share'] >= VERBATIM_SHARE else 'paraphrase')
    for regime, cal in (('verbatim', VERBATIM_COVERAGE_CALIBRATION), ('paraphrase', COVERAGE_CALIBRATION)):
        s = json.loads(run(files, '--json', '--regime', regime).stdout)['summary']
        assert (s['regime'], s['threshold'], s['verbatim_share']) == (regime, cal.threshold, auto['verbatim_share'])
    r = run(files, '--regime', 'copied')
    assert r.returncode == 2 and "invalid choice: 'copied'" in r.stderr

def test_text_output(files):
    r = run(files)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith('3 controls in scope, 2 document passages') and 'PE-3 Physical Access Enforcement' in r.stdout

def test_from_an_ingested_database(files):
    assert cli('ingest', files/'docs.jsonl', '--db', files/'db').returncode == 0
    r = cli('coverage', '--db', files/'db', '--catalog', files/'cat.json', '--profile', files/'base.json', '--json')
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert {c['control_id']: c['evidence'][0]['source_id'] for c in res['controls']}['mp-6'] == 'POL-2'

def test_html_renders_in_chromium(files, tmp_path):
    from test_docs import _chromium
    exe = _chromium()
    if exe is None: pytest.skip("headless browser check skipped: Debian's chromium is not installed and apt-get could not install it")
    assert run(files, '--html', files/'c.html').returncode == 0
    r = subprocess.run([exe, '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
                        '--disable-component-update', '--disable-sync', f'--user-data-dir={tmp_path/"chrome"}', '--dump-dom',
                        (files/'c.html').as_uri()], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and 'Gaps by family' in r.stdout and 'Physical Access Enforcement' in r.stdout, r.stderr[-500:]

def test_bad_input(files):
    (files/'away.json').write_text(json.dumps(profile(['ac-2'], href='https://example.org/x/other.json')))
    r = cli('coverage', files/'docs.jsonl', '--catalog', files/'missing.json', '--profile', files/'away.json')
    assert r.returncode == 1 and 'missing.json: no such catalog file' in r.stderr
    (files/'extra.json').write_text(json.dumps(profile(['ac-2', 'zz-9'])))
    r = cli('coverage', files/'docs.jsonl', '--catalog', files/'cat.json', '--profile', files/'extra.json', '--json')
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)['warnings'] == ['extra.json: 1 control id(s) not in cat.json: zz-9']
    r = cli('coverage', files/'docs.jsonl', '--catalog', files/'cat.json', '--csv', files/'nowhere'/'c.csv')
    assert r.returncode == 1 and 'does not exist' in r.stderr
    r = cli('coverage', '--catalog', files/'cat.json')
    assert r.returncode == 2 and 'say which documents' in r.stderr
    (files/'loop.json').write_text(json.dumps(profile(['ac-2'], href='loop.json')))
    r = cli('coverage', files/'docs.jsonl', '--catalog', files/'cat.json', '--profile', files/'loop.json')
    assert r.returncode == 1 and 'profile import cycle' in r.stderr

def test_profile_wherever_a_catalog_is(files):
    "ingest and crosswalk --to take a profile and give only its controls."
    r = cli('ingest', files/'base.json', '--db', files/'pdb', '--json')
    assert r.returncode == 0 and json.loads(r.stdout)['documents'] == 3, r.stdout + r.stderr
    r = cli('crosswalk', files/'docs.jsonl', '--to', files/'base.json', '--k', '5', '--json')
    assert r.returncode == 0, r.stderr
    assert {x['target_id'] for m in json.loads(r.stdout)['mappings'] for x in m['matches']} == {'ac-2', 'mp-6', 'pe-3'}

def test_nist_moderate_from_csf(nist_data, tmp_path):
    "The issue's command: CSF 2.0 GV/ID subcategories against the MODERATE baseline, with NIST's links as the truth."
    r = cli('coverage', nist_data/'crosswalks'/'csf2_to_sp800_53r5.jsonl', '--catalog', nist_data/'raw'/'NIST_SP-800-53_rev5_catalog.json',
            '--profile', nist_data/'raw'/'NIST_SP-800-53_rev5_MODERATE-baseline_profile.json', '--truth-field', 'sp800_53r5',
            '--json', '--oscal', tmp_path/'cov.json', timeout=1800)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout); m = res['metrics']
    assert (res['summary']['controls'], m['positives']) == (287, 69)
    assert m['average_precision'] > 0.7 and m['roc_auc'] > 0.85 and m['f1'] > 0.6, m  # dev + check data; the check alone is in bench/results/coverage.md

def test_on_a_chroma_server_collection(files, chroma_server):
    "A team's shared server: the documents ingested there, assessed from their stored vectors."
    r = cli('ingest', files/'docs.jsonl', '--chroma-url', chroma_server, '--collection', 'coverage-docs', '--json')
    assert r.returncode == 0, r.stderr
    r = cli('coverage', '--chroma-url', chroma_server, '--collection', 'coverage-docs', '--catalog', files/'cat.json',
            '--profile', files/'base.json', '--json')
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res['summary']['documents'] == 2 and {c['evidence'][0]['source_id'] for c in res['controls']} <= {'POL-1', 'POL-2'}
