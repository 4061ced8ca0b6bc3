"Shared fixtures: offline Hugging Face, the sample corpus as PDFs, and the NIST data (skipped with a message when absent)."
import os
os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
import shutil, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent

def pytest_addoption(parser):
    parser.addoption('--run-slow', action='store_true', help='also run notebook cells marked #| slow')

@pytest.fixture(scope='session')
def root(): return ROOT

@pytest.fixture(scope='session')
def sample_pdfs(tmp_path_factory):
    "The built-in sample corpus rendered to PDF (10 category folders, 30 files, manifest.csv)."
    from ai_standards.sample import render_sample_pdfs
    return render_sample_pdfs(tmp_path_factory.mktemp('sample')/'pdfs')

@pytest.fixture(scope='session')
def nist_data():
    "The shared NIST data folder; the test is skipped, saying why, when it is absent."
    from ai_standards.sample import shared_data_dir
    d = shared_data_dir()
    if d is None: pytest.skip('NIST data not found: set AI_STANDARDS_DATA to the folder of ../shared/data (see its README.md)')
    return d

def cli(*args, cwd=None, timeout=600, env=None):
    "Run the installed `ai-standards` command; return the CompletedProcess (text mode)."
    exe = shutil.which('ai-standards') or str(Path(sys.executable).parent/'ai-standards')
    return subprocess.run([exe, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=timeout,
                          env={**os.environ, **(env or {})})
