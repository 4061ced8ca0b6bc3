#!/usr/bin/env python
"""Build README.md and the docs site from the notebooks, with or without Quarto.

    python .ci/build_docs.py readme        # README.md from nbs/index.ipynb
    python .ci/build_docs.py check-readme  # exit 1 when README.md is not what nbs/index.ipynb renders to
    python .ci/build_docs.py site          # the docs site in _docs/: nbdev_docs with Quarto, else nbdev processing + smalldocs
    python .ci/build_docs.py all           # README.md, then the site
"""
import json, re, shutil, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def processed_notebooks(force:bool=False) -> Path:
    "Run nbdev's notebook processing (directives, front matter, show_doc) into `_proc/`; return that folder."
    from nbdev.config import get_config
    from nbdev.serve import proc_nbs
    cfg = get_config(path=ROOT)
    proc_nbs(str(cfg.nbs_path), n_workers=0, force=force)
    proc = cfg.config_path/'_proc'
    for nb in proc.rglob('*.ipynb'): quiet_outputs(nb)
    return proc

NOISE = re.compile(r'^(?:(?:INFO|DEBUG|SUCCESS|TRACE): .*'      # loguru lines below WARNING (notebooks log as LEVEL: message)
                   r'|.*\d+%\|.*|\s*'                           # progress bars (tqdm: "Computing widget examples: 0%|...")
                   r'|.*:\d+: \w*Warning: .*)$')                 # Python warnings (the next line, the source, goes with them)

def _quiet_text(text:str) -> str:
    "Stream text without log lines below WARNING, progress bars, or Python warnings and their source lines."
    out, skip = [], False
    for line in re.split(r'\r?\n|\r', text):
        if skip and line.startswith('  '): continue
        skip = bool(re.match(r'.*:\d+: \w*Warning: ', line))
        if not NOISE.match(line): out.append(line)
    return '\n'.join(out) + '\n' if out else ''

def quiet_outputs(nb:Path):
    "Drop log chatter, warnings and progress bars (stderr) and widgets from a processed notebook's outputs; one box per stream."
    d = json.loads(nb.read_text())
    for c in d['cells']:
        outs = []
        for o in c.get('outputs', []):
            if o.get('output_type') == 'stream':
                text = ''.join(o['text'])
                if o['name'] == 'stderr' and not (text := _quiet_text(text)): continue
                if outs and outs[-1].get('output_type') == 'stream' and outs[-1]['name'] == o['name']:
                    outs[-1]['text'] += text; continue
                o = o | {'text': text}
            elif any('widget' in k for k in o.get('data', {})): continue
            outs.append(o)
        if 'outputs' in c: c['outputs'] = outs
    nb.write_text(json.dumps(d, indent=1, ensure_ascii=False))

def _page_links(md:str) -> str:
    "Point links to module pages (`documents.html`) at their notebooks, which GitHub renders."
    def repl(m):
        nbs = sorted((ROOT/'nbs').glob(f'[0-9]*_{m[1]}.ipynb'))
        return f'](nbs/{nbs[0].name})' if nbs else m[0]
    def tut(m):
        nbs = sorted((ROOT/'nbs'/'tutorials').glob(f'*{m[1]}.ipynb'))
        return f'](nbs/tutorials/{nbs[0].name})' if nbs else m[0]
    md = re.sub(r'\]\(tutorials/([a-z_]+)\.html\)', tut, md)
    return re.sub(r'\]\(([a-z_]+)\.html\)', repl, md)

def _outputs(cell) -> list:
    out = []
    for o in cell.get('outputs', []):
        text = ''.join(o.get('text', '')) or ''.join(o.get('data', {}).get('text/plain', ''))
        text = re.sub(r'\x1b\[[0-9;]*m', '', text)
        if text.strip(): out.append('```\n' + text.rstrip('\n') + '\n```')
    return out

def render_readme() -> str:
    "README text from the processed index notebook: title and summary, prose, code with its outputs."
    nb = json.loads((processed_notebooks()/'index.ipynb').read_text())
    parts = []
    for c in nb['cells']:
        src = ''.join(c['source'])
        if c['cell_type'] == 'raw' and src.startswith('---'):
            fm = dict(re.findall(r'^(title|description): (.*(?:\n  .*)*)', src, re.M))
            parts.append(f"# {fm.get('title', 'ai_standards')}\n\n> {' '.join(fm.get('description', '').split())}")
        elif c['cell_type'] == 'markdown': parts.append(_page_links(src))
        elif c['cell_type'] == 'code' and src.strip():
            if parts and parts[-1].startswith('```python\n'): parts[-1] = parts[-1][:-4] + '\n' + src + '\n```'  # imports + code: one block
            else: parts.append('```python\n' + src + '\n```')
            parts += _outputs(c)
    return '\n\n'.join(parts) + '\n'

def _apply_output_files(proc:Path):
    "Rename processed notebooks to their `output-file` page names (nbdev sets them; smalldocs names pages after files)."
    renames = {}
    for nb in sorted(proc.rglob('*.ipynb')):
        cells = json.loads(nb.read_text())['cells']
        m = re.search(r'^output-file: (\S+)\.html$', ''.join(cells[0]['source']), re.M) if cells else None
        if m and nb.stem != m[1]:
            nb.rename(nb.with_name(m[1] + '.ipynb')); renames[nb.relative_to(proc).as_posix()] = nb.with_name(m[1] + '.ipynb').relative_to(proc).as_posix()
    for yml in (proc/'sidebar.yml',):
        if yml.exists():
            text = yml.read_text()
            for a, b in renames.items(): text = text.replace(a, b)
            yml.write_text(text)

def build_site() -> Path:
    "The docs site in `_docs/`: `nbdev_docs` where Quarto is installed, otherwise the same processed notebooks through smalldocs."
    import os
    os.chdir(ROOT)  # nbdev finds settings.ini from the working directory
    bin_ = Path(sys.executable).parent
    if shutil.which('quarto'):
        subprocess.run([bin_/'nbdev_docs'], check=True); return ROOT/'_docs'
    import nbdev.doclinks
    from nbdev.quarto import refresh_quarto_yml, nbdev_sidebar
    refresh_quarto_yml()  # nbs/nbdev.yml: title, site url, output-dir _docs
    nbdev.doclinks._build_modidx()
    nbdev_sidebar.__wrapped__(path=ROOT/'nbs')  # nbs/sidebar.yml
    shutil.rmtree(ROOT/'_proc', ignore_errors=True)
    proc = processed_notebooks(force=True)
    _apply_output_files(proc)
    shutil.rmtree(proc/'_docs', ignore_errors=True)
    subprocess.run([bin_/'smalldocs', 'render', str(proc)], check=True)
    shutil.rmtree(ROOT/'_docs', ignore_errors=True); shutil.move(str(proc/'_docs'), str(ROOT/'_docs'))
    return ROOT/'_docs'

def main(cmd:str='readme') -> int:
    if cmd == 'site': print(f'site written to {build_site()}'); return 0
    if cmd == 'all': return main('readme') or main('site')
    if cmd == 'readme': (ROOT/'README.md').write_text(render_readme()); print('wrote README.md'); return 0
    if cmd == 'check-readme':
        ok = (ROOT/'README.md').read_text() == render_readme()
        print('README.md is up to date' if ok else 'README.md is stale: run python .ci/build_docs.py readme')
        return 0 if ok else 1
    print(__doc__); return 2

if __name__ == '__main__': sys.exit(main(*sys.argv[1:]))
