"""Code-shape figures of issue 13, per module: median code-cell lines, share of exported definitions with a test or example
right under them, functions over 50 lines, lines over 120 characters, names exported by two modules.

Run: python .ci/style_metrics.py [--check]   (--check exits 1 when a module misses a target)
"""
import ast, json, re, statistics, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = dict(median_cell=6, tested_share=0.5, max_function=50, long_share=0.05)

def cells(nb:Path):
    "The notebook's cells as (kind, source lines)."
    return [(c['cell_type'], ''.join(c['source']).splitlines()) for c in json.loads(nb.read_text())['cells']]

def is_exported(src): return any(re.match(r'#\|\s*(export|exports)\b', l) for l in src)

def code_lines(src): return [l for l in src if l.strip() and not l.lstrip().startswith('#|')]

def defined_names(src):
    "Top-level names a cell defines (functions, classes, assignments), parsed; magics and shell lines are dropped."
    try: tree = ast.parse('\n'.join(l for l in src if not l.lstrip().startswith(('%', '!'))))
    except SyntaxError: return []
    out = []
    for n in tree.body:
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)): out.append(n.name)
    return out

def notebook_figures(nb:Path) -> dict:
    "Median code-cell length and the share of exported definitions followed by a non-exported cell that uses them."
    cs = [(k, s) for k, s in cells(nb) if k == 'code']
    lens = [len(code_lines(s)) for _, s in cs if code_lines(s)]
    defs, tested = 0, 0
    for i, (_, s) in enumerate(cs):
        if not is_exported(s): continue
        nxt = next((t for _, t in cs[i+1:] if code_lines(t)), None)
        for name in defined_names(s):
            if name.startswith('_'): continue
            defs += 1
            tested += bool(nxt and not is_exported(nxt) and re.search(rf'\b{re.escape(name)}\b', '\n'.join(nxt)))
    return dict(median_cell=statistics.median(lens) if lens else 0, exported_defs=defs,
                tested_share=round(tested / defs, 2) if defs else 1.0)

def module_figures(py:Path) -> dict:
    "Functions over 50 lines and the share of lines over 120 characters in an exported module."
    text = py.read_text(); lines = text.splitlines(); tree = ast.parse(text)
    long_fns = sorted((n.end_lineno - n.lineno + 1, n.name) for n in ast.walk(tree)
                      if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno + 1 > 50)
    code = [l for l in lines if l.strip() and not l.startswith('# %%')]
    return dict(long_functions=[f'{name} ({n})' for n, name in long_fns],
                long_share=round(sum(len(l) > 120 for l in code) / max(len(code), 1), 3))

def exported_twice() -> dict:
    "Names that appear in the `__all__` of more than one module."
    seen = {}
    for py in sorted((ROOT/'ai_standards').glob('*.py')):
        m = re.search(r'__all__\s*=\s*(\[.*?\])', py.read_text(), re.S)
        for name in (ast.literal_eval(m.group(1)) if m else []): seen.setdefault(name, []).append(py.stem)
    return {k: v for k, v in seen.items() if len(v) > 1}

def main(check=False):
    bad, rows = [], []
    for nb in sorted((ROOT/'nbs').glob('[0-9]*.ipynb')):
        m = re.search(r'#\|\s*default_exp\s+([\w.]+)', nb.read_text())
        if not m: continue
        f = notebook_figures(nb) | module_figures(ROOT/'ai_standards'/f'{m.group(1)}.py')
        rows.append((nb.stem, f))
        if f['median_cell'] > TARGETS['median_cell']: bad.append(f"{nb.stem}: median code cell {f['median_cell']} lines")
        if f['tested_share'] < TARGETS['tested_share']: bad.append(f"{nb.stem}: {f['tested_share']:.0%} of exported definitions tested right under")
        if f['long_functions']: bad.append(f"{nb.stem}: functions over 50 lines: {', '.join(f['long_functions'])}")
        if f['long_share'] > TARGETS['long_share']: bad.append(f"{nb.stem}: {f['long_share']:.1%} of lines over 120 characters")
    twice = exported_twice()
    bad += [f'{k} exported by {", ".join(v)}' for k, v in twice.items()]
    print('| notebook | median code cell | exported defs | tested right under | lines > 120 | functions > 50 lines |')
    print('|---|---|---|---|---|---|')
    for nb, f in rows:
        print(f"| {nb} | {f['median_cell']} | {f['exported_defs']} | {f['tested_share']:.0%} | {f['long_share']:.1%} | "
              f"{len(f['long_functions'])} |")
    print(f'\nnames exported by two modules: {len(twice)}')
    if bad: print('\nmisses:\n' + '\n'.join(f'- {b}' for b in bad))
    return 1 if check and bad else 0

if __name__ == '__main__': sys.exit(main('--check' in sys.argv))
