"""Issue 13's code-shape targets hold for every module notebook (`.ci/style_metrics.py --check`): median code cell <= 6 lines,
a test or example under at least half the exported definitions, no function over 50 lines, under 5% of lines over 120
characters, no name exported by two modules."""
import subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def test_code_shape_targets():
    r = subprocess.run([sys.executable, str(ROOT/'.ci'/'style_metrics.py'), '--check'], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert 'names exported by two modules: 0' in r.stdout
