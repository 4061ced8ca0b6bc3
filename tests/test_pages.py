"""What the docs pages show: a code cell that only checks (asserts, test_eq...) is hidden, in the notebooks issue 30 went
through; the examples and their outputs stay. Every module notebook."""
import ast, json
import pytest
from conftest import ROOT

CHECKED = sorted(p.stem for p in (ROOT/'nbs').glob('[0-9]*.ipynb'))

def only_checks(src:str) -> bool:
    "True when every statement of a code cell is an assert or a fastcore test_* call."
    try: body = ast.parse(src).body
    except SyntaxError: return False
    call = lambda s: isinstance(s, ast.Expr) and isinstance(s.value, ast.Call) and getattr(s.value.func, 'id', '').startswith('test_')
    return bool(body) and all(isinstance(s, ast.Assert) or call(s) for s in body)

@pytest.mark.parametrize('name', CHECKED)
def test_check_cells_are_hidden(name):
    cells = json.loads((ROOT/'nbs'/f'{name}.ipynb').read_text())['cells']
    shown = [c['id'] for c in cells if c['cell_type'] == 'code' and not ''.join(c['source']).lstrip().startswith('#|')
             and only_checks(''.join(c['source']))]
    assert shown == [], f'{name}: check-only cells shown on the page: {shown} (add #| hide)'
