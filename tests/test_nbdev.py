"The library is what the notebooks export, every notebook runs, and the README is what index.ipynb renders to."
import filecmp, shutil, subprocess, sys
from pathlib import Path
import pytest
from conftest import ROOT

BIN = Path(sys.executable).parent
NOTEBOOKS = sorted(p.relative_to(ROOT/'nbs').as_posix() for p in [*(ROOT/'nbs').glob('*.ipynb'), *(ROOT/'nbs').glob('tutorials/*.ipynb')])

def test_export_in_sync(tmp_path):
    "nbdev_export on a copy of the notebooks writes exactly the committed ai_standards/*.py."
    shutil.copy(ROOT/'settings.ini', tmp_path)
    shutil.copytree(ROOT/'nbs', tmp_path/'nbs', ignore=shutil.ignore_patterns('_work', '.ipynb_checkpoints', '_quarto.yml', 'nbdev.yml', 'sidebar.yml'))
    subprocess.run([BIN/'nbdev_export'], cwd=tmp_path, check=True, capture_output=True)
    made = {p.name for p in (tmp_path/'ai_standards').glob('*.py')}
    have = {p.name for p in (ROOT/'ai_standards').glob('*.py')}
    assert made == have, f'modules differ: only exported {made - have}, only committed {have - made}'
    stale = [n for n in sorted(made) if not filecmp.cmp(tmp_path/'ai_standards'/n, ROOT/'ai_standards'/n, shallow=False)]
    assert not stale, f'ai_standards/ is out of step with nbs/ for {stale}: run nbdev_export and commit'

@pytest.mark.parametrize('nb', NOTEBOOKS)
def test_notebook(nb, request):
    "Each notebook runs top to bottom (cells flagged notest/slow skipped unless --run-slow)."
    flags = ['--flags', 'slow'] if request.config.getoption('--run-slow') else []
    r = subprocess.run([BIN/'nbdev_test', '--path', f'nbs/{nb}', '--n_workers', '0', *flags], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-8000:]

def test_readme_current():
    "README.md is the rendering of nbs/index.ipynb."
    r = subprocess.run([sys.executable, ROOT/'.ci'/'build_docs.py', 'check-readme'], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
