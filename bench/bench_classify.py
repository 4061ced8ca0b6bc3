"""`classify` against `ingest` on the 17 shared NIST PDFs (issue 11: classify within 2x of ingest).

The same CLI commands a user runs, each in a fresh process, timed from the shell, in one run:

1. `ingest PDFS --db DB` with a cold embedding cache (every chunk embedded);
2. `classify MODEL PDFS --json` right after, same cache: the saved default predictor pools the base model, whose folder
   the model keeps byte for byte, so its vectors are the ones `ingest` cached;
3. `classify MODEL PDFS --json` with another cold cache (every chunk embedded again);
4. `ingest PDFS --db DB2` with the warm cache (what a re-ingest or a second database costs).

MODEL is a folder written by `ai-standards train` with the default settings (default: the one
`bench/bench_generalization.py` leaves in bench/_work/generalization/run/models; train one first).

Run: python bench/bench_classify.py [--model DIR]   -> bench/results/classify.{md,json}
"""
import argparse, json, os, shutil, sys, tempfile
from pathlib import Path
from bench_search import cold_search  # wall, CPU and peak memory of one command in a fresh process

HERE = Path(__file__).parent
EXE = str(Path(sys.executable).parent/'ai-standards')

def timed(args:list, cache:Path) -> dict:
    "Run `ai-standards ARGS` with AI_STANDARDS_CACHE=cache: wall and CPU seconds, peak memory, stdout."
    r = cold_search([EXE, *map(str, args)], {'AI_STANDARDS_CACHE': str(cache)})
    return dict(wall_s=round(r['wall'], 1), cpu_s=round(r['cpu'], 1), peak_rss_mb=round(r['rss_mb']), stdout=r['out'])

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--model', type=Path, default=HERE/'_work'/'generalization'/'run'/'models')
    ap.add_argument('--data', type=Path, default=Path(os.environ.get('AI_STANDARDS_DATA', '../shared/data')))
    ap.add_argument('--keep-db', type=Path, help='keep the database of step 1 here (e.g. for bench_search.py --pdf-db)')
    a = ap.parse_args()
    pdfs = a.data/'pdfs'
    if not pdfs.is_dir(): sys.exit(f'no NIST PDFs at {pdfs}: set AI_STANDARDS_DATA')
    if not (a.model/'manifest.json').exists(): sys.exit(f'no model folder at {a.model}: run bench/bench_generalization.py first')
    work = Path(tempfile.mkdtemp(prefix='bench_classify_'))
    warm, cold = work/'cache', work/'cache_cold'
    rows = {}
    rows['1. ingest, cold cache'] = timed(['ingest', pdfs, '--db', work/'db', '--json'], warm)
    rows['2. classify after ingest (same cache)'] = timed(['classify', a.model, pdfs, '--json'], warm)
    rows['3. classify, cold cache'] = timed(['classify', a.model, pdfs, '--json'], cold)
    rows['4. ingest again, warm cache (new database)'] = timed(['ingest', pdfs, '--db', work/'db2', '--json'], warm)
    ing = json.loads(rows['1. ingest, cold cache']['stdout'])
    docs = json.loads(rows['2. classify after ingest (same cache)']['stdout'])['documents']
    cold_docs = json.loads(rows['3. classify, cold cache']['stdout'])['documents']
    same = [d['label'] for d in docs] == [d['label'] for d in cold_docs]
    diff = max(abs(x['probability'] - y['probability']) for x, y in zip(docs, cold_docs))
    base = rows['1. ingest, cold cache']['wall_s']
    load = os.getloadavg()
    md = ['# classify against ingest: 17 NIST PDFs', '',
          f"{len(docs)} documents, {sum(d['n_chunks'] for d in docs)} chunks; model {a.model}; "
          f"load average at the end {load[0]:.1f} on {os.cpu_count()} CPUs. Each command is a fresh process (imports and "
          f"model load included). Cold and warm classify give the same document labels: {same} "
          f"(largest probability difference {diff:.4f}).", '',
          '| command | wall s | CPU s | peak MB | wall / cold ingest |', '|---|---|---|---|---|']
    md += [f"| {k} | {r['wall_s']} | {r['cpu_s']} | {r['peak_rss_mb']} | {r['wall_s'] / base:.2f} |" for k, r in rows.items()]
    print('\n'.join(md))
    out = dict(rows={k: {x: y for x, y in r.items() if x != 'stdout'} for k, r in rows.items()}, documents=len(docs),
               chunks=sum(d['n_chunks'] for d in docs), same_labels=same, max_probability_difference=diff, load=load, model=str(a.model),
               ingest_summary={k: v for k, v in ing.items() if isinstance(v, (int, float, str))})
    (HERE/'results').mkdir(exist_ok=True)
    (HERE/'results'/'classify.md').write_text('\n'.join(md) + '\n')
    (HERE/'results'/'classify.json').write_text(json.dumps(out, indent=1))
    if a.keep_db: shutil.rmtree(a.keep_db, ignore_errors=True); shutil.move(work/'db', a.keep_db)
    shutil.rmtree(work, ignore_errors=True)

if __name__ == '__main__': main()
