"""The library is what the notebooks export, every notebook runs, and the README is what index.ipynb renders to.
Everything here works on copies of the checkout, so test order does not matter and nothing rewrites the checkout."""
import filecmp, os, shutil, subprocess, sys
from pathlib import Path
import pytest
from conftest import ROOT, repo_copy

BIN = Path(sys.executable).parent
NOTEBOOKS = sorted(p.relative_to(ROOT/'nbs').as_posix() for p in [*(ROOT/'nbs').glob('*.ipynb'), *(ROOT/'nbs').glob('tutorials/*.ipynb')])
# Notebooks that only need *a* trained sample model: they resume the session's shared run (conftest.sample_run)
# through $AI_STANDARDS_SAMPLE_RUN instead of training their own.
SHARED_RUN = {'08_pipeline.ipynb', '09_cli.ipynb', 'tutorials/01_sample_pipeline.ipynb'}

def test_export_in_sync(tmp_path):
    "nbdev_export on a copy of the notebooks writes exactly the committed ai_standards/ (modules and _modidx.py)."
    shutil.copy(ROOT/'settings.ini', tmp_path)
    shutil.copytree(ROOT/'nbs', tmp_path/'nbs', ignore=shutil.ignore_patterns('_work', '.ipynb_checkpoints', '_quarto.yml', 'nbdev.yml', 'sidebar.yml'))
    subprocess.run([BIN/'nbdev_export'], cwd=tmp_path, check=True, capture_output=True)
    made = {p.name for p in (tmp_path/'ai_standards').glob('*.py')}
    have = {p.name for p in (ROOT/'ai_standards').glob('*.py')}
    assert made == have, f'modules differ: only exported {made - have}, only committed {have - made}'
    stale = [n for n in sorted(made) if not filecmp.cmp(tmp_path/'ai_standards'/n, ROOT/'ai_standards'/n, shallow=False)]
    assert not stale, f'ai_standards/ is out of step with nbs/ for {stale}: run nbdev_export and commit'

@pytest.fixture(scope='module')
def nb_copy(tmp_path_factory):
    "Notebooks run in a copy of the checkout: their `nbdev_export()` cells and `_work/` files land there."
    return repo_copy(tmp_path_factory.mktemp('nbs_run'))

@pytest.mark.parametrize('nb', [pytest.param(n, marks=pytest.mark.sample_run) if n in SHARED_RUN else n for n in NOTEBOOKS])
def test_notebook(nb, request, nb_copy):
    "Each notebook runs top to bottom (cells flagged notest/slow skipped unless --run-slow)."
    flags = ['--flags', 'slow'] if request.config.getoption('--run-slow') else []
    env = dict(os.environ)
    if nb in SHARED_RUN:
        run = request.getfixturevalue('sample_run')
        assert run['returncode'] == 0, 'the shared sample run failed: ' + run['stderr'][-3000:]
        env['AI_STANDARDS_SAMPLE_RUN'] = str(run['dir'])
    r = subprocess.run([BIN/'nbdev_test', '--path', f'nbs/{nb}', '--n_workers', '0', *flags], cwd=nb_copy, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-8000:]

def test_readme_current(tmp_path):
    "README.md is the rendering of nbs/index.ipynb (rendered in a copy: the processing writes _proc/)."
    d = repo_copy(tmp_path)
    r = subprocess.run([sys.executable, d/'.ci'/'build_docs.py', 'check-readme'], cwd=d, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
