"""The README's shell commands as a new user runs them: every `ai-standards` line parses with the command's own parser, and
the cheap ones run, word for word, in a fresh git copy of the checkout, which they must leave with no untracked file.
The sample-corpus block runs always; the NIST block where $AI_STANDARDS_DATA holds the data. Commands that take many
minutes (the demo, NIST training, the 17 PDFs, the crosswalk, the docs build) run only with `--run-slow`, which CI does not
pass: the demo is what tests/test_cli.py::test_demo runs, and the crosswalk's figures are tests/test_crosswalk.py's."""
import os, re, shlex, subprocess
from pathlib import Path
import pytest
from conftest import ROOT, cli_exe, repo_copy

SETUP = ('python3.11 -m venv', 'source .venv/bin/activate', 'pip install -e', 'pytest ')  # the install and the suite itself
HEAVY = ('ai-standards demo', 'ai-standards train $AI_STANDARDS_DATA', 'ai-standards ingest $AI_STANDARDS_DATA/pdfs',
         'ai-standards crosswalk', 'python .ci/build_docs.py')
NEEDS_SERVER = '--chroma-url'  # `ingest standards/ --chroma-url ...`: the user's own folder and server; parsed, not run

def readme_blocks() -> list[list[str]]:
    "The README's ```sh blocks, each a list of commands: continuation lines joined, `&&` chains split, comments dropped."
    blocks = []
    for b in re.findall(r'```sh\n(.*?)```', (ROOT/'README.md').read_text(), re.S):
        cmds = []
        for line in re.sub(r'\\\n\s*', ' ', b).splitlines():
            line = re.sub(r'(?:^|\s+)#\s.*$', '', line)  # a comment: '  # ...' after the command (none inside quotes)
            cmds += [c.strip() for c in line.split(' && ') if c.strip()]
        blocks.append(cmds)
    return blocks

def test_readme_has_the_commands():
    "The blocks this test knows: setup, the suite, the sample corpus, the NIST example, the docs build."
    cmds = [c for b in readme_blocks() for c in b]
    assert 'source .venv/bin/activate' in cmds and not any(c.startswith('.venv/bin/') for c in cmds)  # one way: the venv active
    assert any(c.startswith('ai-standards search') for c in cmds) and any('crosswalk' in c for c in cmds)
    docs = next(b for b in readme_blocks() if any('build_docs' in c for c in b))
    assert docs[0] == 'pip install -e ".[dev]"'  # the docs need nbdev and smalldocs, which `pip install -e .` leaves out

def test_readme_commands_parse():
    "Every `ai-standards` command in the README is accepted by the CLI's parser; every other command is a known one."
    from ai_standards.cli import build_parser
    for cmd in (c for b in readme_blocks() for c in b):
        if cmd.startswith('ai-standards '):
            argv = shlex.split(os.path.expandvars(cmd.replace('$AI_STANDARDS_DATA', '/data')))[1:]
            try: build_parser().parse_args(argv)
            except SystemExit as e: pytest.fail(f'the README command does not parse (exit {e.code}): {cmd}')
        else: assert cmd.startswith(SETUP + ('export AI_STANDARDS_DATA=', 'python .ci/build_docs.py')), cmd

@pytest.fixture(scope='module')
def clone(tmp_path_factory):
    "A fresh git repository holding the checkout's files, as a clone would: the README's commands run at its root."
    d = repo_copy(tmp_path_factory.mktemp('clone')/'ai_standards')
    git = lambda *a: subprocess.run(['git', '-c', 'user.name=t', '-c', 'user.email=t@t', *a], cwd=d, check=True, capture_output=True)
    git('init', '-q'); git('add', '-A'); git('commit', '-qm', 'clone')
    return d

def untracked(d:Path) -> list[str]:
    return subprocess.run(['git', 'status', '--porcelain', '--untracked-files=all'], cwd=d, capture_output=True, text=True).stdout.split('\n')[:-1]

def run_block(cmds:list[str], d:Path, slow:bool) -> list[tuple[str, str]]:
    "Run the block's commands in order in `d` with bash, the venv's `ai-standards` on PATH; (command, stdout) of those run."
    env = {**os.environ, 'PATH': f'{Path(cli_exe()).parent}{os.pathsep}{os.environ["PATH"]}'}
    done = []
    for cmd in cmds:
        if cmd.startswith('export AI_STANDARDS_DATA='):  # the README names the default; a set variable (CI, conftest) wins
            env.setdefault('AI_STANDARDS_DATA', cmd.split('=', 1)[1]); continue
        if cmd.startswith(SETUP) or NEEDS_SERVER in cmd or (cmd.startswith(HEAVY) and not slow): continue
        r = subprocess.run(['bash', '-c', cmd], cwd=d, env=env, capture_output=True, text=True, timeout=3600)
        assert r.returncode == 0, f'{cmd}\nexit {r.returncode}\n{r.stderr[-3000:]}'
        done.append((cmd, r.stdout))
    return done

def test_readme_sample_commands(clone, request):
    "The sample-corpus block, word for word: each command exits 0, search cites a clause, nothing untracked is left behind."
    block = next(b for b in readme_blocks() if any('ai_standards/sample_corpus' in c for c in b))
    done = dict(run_block(block, clone, request.config.getoption('--run-slow')))
    assert {c.split()[1] for c in done} >= {'chunk', 'ingest', 'search', 'train', 'classify', 'info'}
    hits = next(out for c, out in done.items() if c.startswith('ai-standards search'))
    assert re.search(r'^1\. .*PRIV-203\.md p\.1 §2\.\d ', hits, re.M) and '#' not in hits, hits  # a clause, no Markdown marks
    assert untracked(clone) == []

def test_readme_nist_commands(clone, nist_data, request):
    "The NIST block where the data is present: the controls ingest and the identifier search (the rest with --run-slow)."
    block = next(b for b in readme_blocks() if any('AC-2(1)' in c for c in b))
    done = dict(run_block(block, clone, request.config.getoption('--run-slow')))
    hits = next(out for c, out in done.items() if c.startswith('ai-standards search'))
    scale, first = hits.splitlines()[:2]
    assert scale.startswith('score: ') and first.startswith('1. [0.') and ' §AC-2(1) ' in first, hits  # one scale: no 10.569
    assert first.endswith('(requirement, AC)  identifier match') and ' p.1 ' not in first, hits  # a record: no page
    assert untracked(clone) == []
