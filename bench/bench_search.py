"""Search benchmark: dense vs lexical vs hybrid on the SP 800-53 Rev 5 records, and one-query latency from a cold process.

Two query sets, each cut by the records' `suggested_split`: the fusion is chosen on the `train` rows (validation) and only
reported on the `test` rows.
* title -> text: each record's title is the query and the record is the answer. The records are ingested WITHOUT their titles
  (a temporary JSONL with the title field removed), so no side can match the title string itself.
* identifiers: every control id in three spellings (`AC-2(1)`, `AC-02(01)`, `ac-2.1`); the record is the answer.
A record counts as found at the rank of its best chunk. Same model (all-MiniLM-L6-v2) on every side.
Latency: `ai-standards search` from a fresh shell process per mode on a database (default: the 17 shared PDFs), median of 3;
wall seconds depend on the machine's load, so user+sys CPU seconds are reported beside them.
Run: python bench/bench_search.py [--pdf-db DIR]   -> bench/results/search.{md,json}
"""
import argparse, json, os, resource, statistics, subprocess, sys, tempfile, time
from pathlib import Path
import numpy as np

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get('AI_STANDARDS_DATA', HERE.parent.parent/'shared'/'data'))
WORK = HERE/'_work'
FUSIONS = {'hybrid rrf': dict(fusion='rrf', identifier_first=False), 'hybrid rrf + identifier first': dict(fusion='rrf', identifier_first=True)}
FUSIONS |= {f'hybrid score a={a}' + (' + identifier first' if idf else ''): dict(fusion='score', alpha=a, identifier_first=idf)
            for a in (0.3, 0.5, 0.7) for idf in (False, True)}

def spellings(label:str) -> list[str]:
    "AC-2(1) -> ['AC-2(1)', 'AC-02(01)', 'ac-2.1']."
    fam, rest = label.split('-', 1)
    num, enh = (rest.rstrip(')').split('(') + [None])[:2]
    return [label, f'{fam}-{int(num):02d}' + (f'({int(enh):02d})' if enh else ''), f'{fam.lower()}-{num}' + (f'.{enh}' if enh else '')]

def build_db(records:list[dict], db:Path):
    "Ingest the records without their titles (cached embeddings make a re-run fast)."
    from ai_standards.vectordb import VectorStore, ingest
    from ai_standards.lexical import after_ingest  # writes the search index at the end of the ingest
    if (db/'chroma.sqlite3').exists(): return
    src = WORK/'rev5_untitled.jsonl'; src.parent.mkdir(parents=True, exist_ok=True)
    src.write_text(''.join(json.dumps({k: v for k, v in r.items() if k != 'title'}) + '\n' for r in records))
    ingest([src], VectorStore(db), progress=False, label_field='family', after=after_ingest)

def record_ranks(ix, queries:list[str], answers:list[str], qvecs:np.ndarray, mode:str, fusion:dict) -> np.ndarray:
    "Rank (1-based) of each query's answer record, by its best chunk; 10**9 when lexical search does not match it at all."
    rec = np.array([r['doc_id'].split(':', 1)[1] for r in ix.rows])
    out = []
    for q, a, v in zip(queries, answers, qvecs):
        s, _, lex = ix.scores(q, mode, v, **fusion)
        if mode == 'lexical': s = np.where(lex > 0, s, -np.inf)
        if not np.isfinite(s[rec == a]).any(): out.append(10**9); continue
        out.append(list(dict.fromkeys(rec[np.argsort(-s, kind='stable')])).index(a) + 1)
    return np.array(out)

def summarize(r:np.ndarray) -> dict:
    return dict(n=len(r), hit_at_1=round(float((r <= 1).mean()), 3), recall_at_10=round(float((r <= 10).mean()), 3),
                mrr_at_10=round(float(np.where(r <= 10, 1 / r, 0).mean()), 3))

def quality(db:Path, records:list[dict]) -> list[dict]:
    from ai_standards.lexical import open_index
    from ai_standards.models import Embedder
    ix, emb = open_index(db), Embedder()
    sets = {'title -> text': [(r['title'], r['id'], r['suggested_split']) for r in records],
            'identifiers (3 spellings)': [(s, r['id'], r['suggested_split']) for r in records for s in spellings(r['label'])]}
    rows = []
    for name, qs in sets.items():
        qv = emb.generate_embeddings([q for q, _, _ in qs])
        for split in ('train', 'test'):
            sel = [i for i, (_, _, s) in enumerate(qs) if s == split]
            qq, aa = [qs[i][0] for i in sel], [qs[i][1] for i in sel]
            for mode, fusion in [('dense', {}), ('lexical', {})] + [('hybrid', f) for f in FUSIONS.values()]:
                label = mode if mode != 'hybrid' else next(k for k, v in FUSIONS.items() if v == fusion)
                t = time.perf_counter(); r = record_ranks(ix, qq, aa, qv[sel], mode, fusion)
                rows.append(dict(queries=name, split='validation (train)' if split == 'train' else 'test', method=label,
                                 **summarize(r), ms_per_query=round(1000 * (time.perf_counter() - t) / len(sel), 2)))
                print(rows[-1], flush=True)
    return rows

def cold_search(args:list[str], env:dict|None=None) -> dict:
    "Wall and CPU seconds and peak memory of one command in a fresh process (measured by /usr/bin/time, not inherited)."
    env = {**os.environ, 'HF_HUB_OFFLINE': '1', **(env or {})}
    r = subprocess.run(['/usr/bin/time', '-f', '%e %U %S %M', *args], capture_output=True, text=True, env=env)
    if r.returncode: sys.exit(f'failed: {args}: {r.stderr[-2000:]}')
    wall, user, sys_, rss = r.stderr.strip().splitlines()[-1].split()
    return dict(wall=float(wall), cpu=float(user) + float(sys_), rss_mb=int(rss) / 1024, out=r.stdout)

def latency(db:Path, query:str, runs:int=3, before:bool=True) -> list[dict]:
    exe = str(Path(sys.executable).parent/'ai-standards')
    before_cmd = [sys.executable, '-c', 'import sys; from ai_standards.vectordb import VectorStore; '
              'print(VectorStore(sys.argv[1]).search(sys.argv[2], k=5)[0]["id"])', str(db), query]
    cmds = {f'search --mode {m}': [exe, 'search', query, '--db', str(db), '--mode', m] for m in ('lexical', 'dense', 'hybrid')}
    if before: cmds['VectorStore.search (before this change: chromadb + sentence-transformers)'] = before_cmd
    rows = []
    for name, cmd in cmds.items():
        cold_search(cmd)  # first run syncs the index or warms the page cache; not counted
        r = [cold_search(cmd) for _ in range(runs)]
        rows.append(dict(command=name, query=query, runs=runs, median_wall_s=round(statistics.median(x['wall'] for x in r), 2),
                         median_cpu_s=round(statistics.median(x['cpu'] for x in r), 2), peak_rss_mb=round(max(x['rss_mb'] for x in r))))
        print(rows[-1], flush=True)
    return rows

def table(rows:list[dict]) -> str:
    cols = list(rows[0])
    return '\n'.join(['| ' + ' | '.join(cols) + ' |', '|' + '---|' * len(cols)] + ['| ' + ' | '.join(str(r[c]) for c in cols) + ' |' for r in rows])

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--pdf-db', type=Path, help='a database of the 17 PDFs for the latency runs (default: ingest one under bench/_work)')
    ap.add_argument('--skip-latency', action='store_true')
    a = ap.parse_args()
    if not (DATA/'nist_sp800_53r5_controls.jsonl').exists(): sys.exit(f'NIST data not found at {DATA}: set AI_STANDARDS_DATA')
    records = [json.loads(l) for l in open(DATA/'nist_sp800_53r5_controls.jsonl')]
    db = WORK/'rev5_untitled_db'; build_db(records, db)
    q = quality(db, records)
    lat = []
    if not a.skip_latency:
        pdf_db = a.pdf_db or WORK/'pdf_db'
        if not (pdf_db/'chroma.sqlite3').exists():
            subprocess.run([str(Path(sys.executable).parent/'ai-standards'), 'ingest', str(DATA/'pdfs'), '--db', str(pdf_db), '--json'], check=True)
        lat = latency(pdf_db, 'media sanitization of flash memory devices')
        lat += latency(pdf_db, 'AC-2(1)', before=False)
    out = HERE/'results'; out.mkdir(exist_ok=True)
    (out/'search.json').write_text(json.dumps(dict(quality=q, latency=lat, load_average=os.getloadavg()), indent=1))
    val = [r for r in q if r['split'].startswith('validation') and r['method'].startswith('hybrid')]
    means = {m: np.mean([r['mrr_at_10'] for r in val if r['method'] == m]) for m in FUSIONS}
    best = max(means, key=means.get)
    md = ['# Search benchmark', '', f'{len(records)} SP 800-53 Rev 5 records ingested without titles ({sum(r["suggested_split"] == "train" for r in records)} '
          'validation = suggested_split train, the rest test); all-MiniLM-L6-v2 on every side. A query is answered when its record '
          'comes back; the fusion default is chosen on the validation rows.', '',
          f'Chosen on validation (mean MRR@10 over the two query sets): **{best}** ({means[best]:.3f}); '
          f'the library default is {__import__("ai_standards.lexical", fromlist=["x"]).DEFAULT_FUSION}.', '', table(q)]
    if lat: md += ['', f'## One search from a cold process on the 17-PDF database (median of 3; load average '
                   f'{os.getloadavg()[0]:.1f} on 2 cores: wall seconds include waiting for a CPU, CPU seconds do not)', '', table(lat)]
    (out/'search.md').write_text('\n'.join(md) + '\n'); print('\n'.join(md))

if __name__ == '__main__': main()
