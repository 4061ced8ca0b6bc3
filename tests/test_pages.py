"""What the docs pages show: a code cell that only checks (asserts, test_eq...) is hidden, in the notebooks issue 30 went
through; the examples and their outputs stay. (03, 04, 05 and 07a were left to the developers working in them.)"""
import ast, json
import pytest
from conftest import ROOT

CHECKED = ['02_chunking', '04a_lexical', '06_evaluation', '07_persistence', '08_pipeline', '09_cli']

def only_checks(src:str) -> bool:
    "True when every statement of a code cell is an assert or a fastcore test_* call."
    try: body = ast.parse(src).body
    except SyntaxError: return False
    call = lambda s: isinstance(s, ast.Expr) and isinstance(s.value, ast.Call) and getattr(s.value.func, 'id', '').startswith('test_')
    return bool(body) and all(isinstance(s, ast.Assert) or call(s) for s in body)

@pytest.mark.parametrize('name', CHECKED)
def test_check_cells_are_hidden(name):
    cells = json.loads((ROOT/'nbs'/f'{name}.ipynb').read_text())['cells']
    skip = {'c028a', 'c028b', 'c028c', 'c028d', 'c028e', 'c028f', 'c028g', 'c028t'} if name == '09_cli' else set()  # crosswalk: the lead's
    shown = [c['id'] for c in cells if c['cell_type'] == 'code' and c['id'] not in skip and not ''.join(c['source']).lstrip().startswith('#|')
             and only_checks(''.join(c['source']))]
    assert shown == [], f'{name}: check-only cells shown on the page: {shown} (add #| hide)'
