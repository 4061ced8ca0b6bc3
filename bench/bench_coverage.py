"""Coverage and crosswalk-decision benchmark on the shared data: calibrated decisions against the baselines a user would assemble.

Coverage dev task (issue 27): the CSF 2.0 subcategory texts as "the organization's documents", the SP 800-53 Rev 5 MODERATE
baseline (OSCAL profile, 287 controls) as the scope; a control is addressed when NIST's crosswalk links some subcategory to it.
The decision (`coverage.COVERAGE_CALIBRATION`) is fitted on the Govern (GV) subcategories and checked on Identify (ID); every
baseline's threshold is chosen on GV too (best F1 there). Baselines: best MiniLM cosine between a document and the control
(`label title. text`), best BM25 score, best TF-IDF (1-2 gram) cosine.
Decision by wording (the default): each split's verbatim share picks the paraphrase decision (fitted on GV) or the verbatim one
(fitted on DER, the derived standard below, and scored on DER out of fold).
Crosswalk decisions: CSF GV/ID onto the 1,007 Rev 5 records; pair precision / recall / F1 of the linked pairs on ID, against
MiniLM top-k and the crosswalk's own ranking cut at a fixed k (each k chosen on GV). The link decision
(`crosswalk.LINK_CALIBRATION`) is refitted here on GV and printed beside the shipped one.
Protect, Detect, Respond and Recover are not in the shared data and are not used.
Near-verbatim check (dev): a derived standard built here from the training-split (`suggested_split` train) records' own
statement lines (a random 50-90% of each record's lines, assignments filled in as prose, a quarter of the requirements merged
with a second record's), mapped onto all 1,007 records: recall@5 and MRR of the crosswalk with and without its verbatim term,
against TF-IDF cosine, in the same run. The verbatim weight and floor were chosen on this set and on GV.
`--timing`: `coverage` of the 17 shared PDFs against MODERATE from files (beside a plain `ingest` of them) and from an
ingested database, each timed in its own process.
Run: python bench/bench_coverage.py [--timing]   -> bench/results/coverage.{md,json}
"""
import json, os, subprocess, sys, time
from pathlib import Path
import numpy as np

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get('AI_STANDARDS_DATA', HERE.parent.parent/'shared'/'data'))
WORK = HERE/'_work'/'coverage'

def setup():
    from ai_standards.coverage import scope_controls
    from ai_standards.crosswalk import load_items, add_related, oscal_related
    scope, rp = scope_controls(DATA/'raw'/'NIST_SP-800-53_rev5_catalog.json', DATA/'raw'/'NIST_SP-800-53_rev5_MODERATE-baseline_profile.json')
    csf = load_items([DATA/'crosswalks'/'csf2_to_sp800_53r5.jsonl'])
    rev5 = load_items([DATA/'nist_sp800_53r5_controls.jsonl'])
    add_related(rev5, oscal_related(DATA/'raw'/'NIST_SP-800-53_rev5_catalog.json'))
    return scope, rp, csf, rev5

def coverage_signals(docs, scope, emb):
    "Every named control-level feature of the shipped method, and the baselines' scores, each (n_controls,)."
    from ai_standards.coverage import _cosines, _coverage_feature_table, COVERAGE_METHOD
    from ai_standards.crosswalk import Embedded, score_matrix, DEFAULT_METHOD
    from ai_standards.lexical import bm25_index, bm25_scores, query_tokens, tokenize
    from sklearn.feature_extraction.text import TfidfVectorizer
    src, tgt = Embedded(docs, emb), Embedded(scope, emb, 'target')
    cos = _cosines(src, tgt, DEFAULT_METHOD['top_sentences'])
    feats = _coverage_feature_table(score_matrix(src, tgt, docs, scope, COVERAGE_METHOD, dense=cos), cos)  # as coverage() scores
    ctext = [f"{c['label']} {c['title']}. {c['text']}" for c in scope]; dtext = [d['text'] for d in docs]
    minilm = (emb.generate_embeddings(dtext) @ emb.generate_embeddings(ctext).T).max(0)
    bm = bm25_index([tokenize(t) for t in ctext]); bm25 = np.stack([bm25_scores(bm, query_tokens(t), len(scope)) for t in dtext]).max(0)
    v = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit(ctext + dtext)
    tfidf = (v.transform(dtext) @ v.transform(ctext).T).toarray().max(0)
    return feats, dict(minilm=minilm, bm25=bm25, tfidf=tfidf)

def truth(docs, scope, field='sp800_53r5'):
    from ai_standards.crosswalk import truth_links
    named = {x for d in docs for x in truth_links(d, field)}
    return np.array([c['id'] in named for c in scope])

SPLITS = ('GV', 'ID', 'DER')  # DER: the derived standard (dev, built from training-split records), coverage of its links

def coverage_selection(sig, y):
    "Each candidate feature set's 5-fold CV AP on GV and AP on DER when fitted on GV; the mean of the two chooses."
    from ai_standards.coverage import COVERAGE_FEATURE_SETS
    from ai_standards.crosswalk import _out_of_fold, fit_calibration
    from sklearn.metrics import average_precision_score as ap
    out = []
    for names in COVERAGE_FEATURE_SETS:
        X = {f: np.stack([sig[f][0][n] for n in names], 1) for f in ('GV', 'DER')}
        cv = ap(y['GV'], _out_of_fold(X['GV'], y['GV'], 0.1)); der = ap(y['DER'], fit_calibration(X['GV'], y['GV'], names).probability(X['DER']))
        out.append(dict(features=names, gv_cv_ap=round(cv, 3), der_ap=round(der, 3), mean=round((cv + der) / 2, 3)))
    return out

def coverage_tables(scope, csf, emb):
    from ai_standards.coverage import COVERAGE_CALIBRATION, coverage_status
    from ai_standards.crosswalk import best_threshold, decision_metrics, fit_calibration
    docs = {fn: [d for d in csf if d['meta']['function'] == fn] for fn in ('GV', 'ID')} | {'DER': derived_standard()}
    sig = {fn: coverage_signals(docs[fn], scope, emb) for fn in SPLITS}
    y = {fn: truth(docs[fn], scope, 'links' if fn == 'DER' else 'sp800_53r5') for fn in SPLITS}
    selection = coverage_selection(sig, y); chosen = max(selection, key=lambda r: r['mean'])['features']
    X = lambda fn, names: np.stack([sig[fn][0][n] for n in names], 1)
    refit = fit_calibration(X('GV', chosen), y['GV'], chosen, 'refit in this run on GV')
    rows = []
    for name, cal in (('ai_standards coverage (shipped calibration)', COVERAGE_CALIBRATION), ('the same, refitted in this run on GV', refit)):
        p = {fn: cal.probability(X(fn, cal.features)) for fn in SPLITS}
        rows.append(dict(method=name, threshold=cal.threshold, **{fn: decision_metrics(p[fn] >= cal.threshold, y[fn], p[fn]) for fn in SPLITS}))
    rows.append(wording_row(docs, scope, sig, y, X))
    for b, label in (('minilm', 'best MiniLM cosine per control'), ('bm25', 'best BM25 per control'), ('tfidf', 'best TF-IDF cosine per control')):
        t = best_threshold(sig['GV'][1][b], y['GV'])[0]
        rows.append(dict(method=label, threshold=round(float(t), 4), **{fn: decision_metrics(sig[fn][1][b] >= t, y[fn], sig[fn][1][b], calibrated=False) for fn in SPLITS}))
    shipped = COVERAGE_CALIBRATION.probability(X('ID', COVERAGE_CALIBRATION.features)); RELIABILITY['controls (coverage), ID'] = (shipped, y['ID'])
    status = {s: sum(coverage_status(float(q), COVERAGE_CALIBRATION) == s for q in shipped) for s in ('addressed', 'partial', 'gap')}
    return rows, refit, {fn: int(y[fn].sum()) for fn in SPLITS} | dict(n=len(scope)), status, selection

def link_tables(csf, rev5, emb):
    from ai_standards.crosswalk import (Embedded, LINK_CALIBRATION, LINK_FEATURE_SETS, decision_metrics, fit_calibration,
                                        link_features, score_matrix, truth_links, source_context, context_keys, CONTEXT_WEIGHT,
                                        title_sets, LINK_DEPTH)
    src, tgt = Embedded(csf, emb), Embedded(rev5, emb, 'target')
    S0 = score_matrix(src, tgt, csf, rev5); keys = context_keys(csf)
    pos = {t['id']: j for j, t in enumerate(rev5)}; enh = np.array([bool(t.get('parent')) for t in rev5])
    known = [{pos[x] for x in truth_links(s, 'sp800_53r5') if x in pos} for s in csf]
    fn = np.array([s['meta']['function'] for s in csf]); sets = title_sets(rev5)
    context = [dict(weight=w, **{f: ranks(source_context(S0, keys, w), known, np.flatnonzero(fn == f)) for f in ('GV', 'ID')})
               for w in CONTEXT_WEIGHTS]  # the weight is chosen on GV (recall@10 + MRR); ID only reports
    S = source_context(S0, keys, CONTEXT_WEIGHT); orders = np.argsort(-S, 1, kind='stable')
    ctext = [f"{t['label']} {t['title']}. {t['text']}" for t in rev5]
    cos = emb.generate_embeddings([s['text'] for s in csf]) @ emb.generate_embeddings(ctext).T
    corder = np.argsort(-cos, 1, kind='stable')
    def rows(idx, names, K=LINK_DEPTH):
        X, y = [], []
        for i in idx:
            js = orders[i, :K]; X.append(link_features(S[i], js, enh, names, sets)); y += [j in known[i] for j in js]
        return np.concatenate(X), np.array(y), sum(len(known[i]) for i in idx)
    def topk(order, f, k):
        called, y, npos = [], [], 0
        for i in np.flatnonzero(fn == f):
            npos += len(known[i]); js = order[i, :k]; y += [j in known[i] for j in js]; called += [True] * len(js)
        return decision_metrics(called, y, n_positive=npos)
    gv = np.flatnonzero(fn == 'GV')
    selection = [dict(features=names, **grouped_cv(gv, names, rows, fit_calibration, decision_metrics, depth=LINK_DEPTH))
                 for names in LINK_FEATURE_SETS]
    chosen = max(selection, key=lambda r: r['f1'])['features']  # the best mean over the repeats
    Xg, yg, ng = rows(gv, chosen)
    refit = fit_calibration(Xg, yg, chosen, 'refit in this run on GV', n_positive=ng, groups=np.repeat(gv, LINK_DEPTH))
    out = []
    for name, cal in (('crosswalk linked (shipped calibration)', LINK_CALIBRATION), ('the same, refitted in this run on GV', refit)):
        r = {}
        for f in ('GV', 'ID'):
            X, y, npos = rows(np.flatnonzero(fn == f), cal.features); p = cal.probability(X)
            r[f] = decision_metrics(p >= cal.threshold, y, p, n_positive=npos)
            if cal is LINK_CALIBRATION and f == 'ID': RELIABILITY['links (crosswalk), ID'] = (p, y)
        out.append(dict(method=name, k='-', **r))
    S, orders = source_context(S0, keys, 0), np.argsort(-S0, 1, kind='stable')  # the same recipe without the context step
    Xg0, yg0, _ = rows(gv, chosen); cal0 = fit_calibration(Xg0, yg0, chosen, 'GV, no context step', n_positive=ng, groups=np.repeat(gv, LINK_DEPTH))
    r = {}
    for f in ('GV', 'ID'):
        X, y, npos = rows(np.flatnonzero(fn == f), chosen); p = cal0.probability(X); r[f] = decision_metrics(p >= cal0.threshold, y, p, n_positive=npos)
    out.append(dict(method='the same without the context step (refitted on GV)', k='-', **r))
    S, orders = source_context(S0, keys, CONTEXT_WEIGHT), np.argsort(-source_context(S0, keys, CONTEXT_WEIGHT), 1, kind='stable')
    for name, order in (('crosswalk ranking cut at a fixed k', orders), ('MiniLM cosine top-k', corder)):
        k = max(range(1, 21), key=lambda k: topk(order, 'GV', k)['f1'])
        out.append(dict(method=name, k=k, GV=topk(order, 'GV', k), ID=topk(order, 'ID', k)))
    return out, refit, selection, context

WORDING = {}  # each split's verbatim share and the regime it picks; the verbatim decision refitted in this run on DER

def wording_row(docs, scope, sig, y, X) -> dict:
    """The default decision: the regime each split's verbatim share picks. Where that is the verbatim decision (fitted on DER),
    DER is scored out of fold: 5 stratified folds over its controls, the decision refitted on the other four each time."""
    from ai_standards.coverage import COVERAGE_CALIBRATION, VERBATIM_COVERAGE_CALIBRATION, decision_for, verbatim_share
    from ai_standards.crosswalk import decision_metrics, fit_calibration
    from sklearn.model_selection import StratifiedKFold
    names, r = VERBATIM_COVERAGE_CALIBRATION.features, {}
    for fn in SPLITS:
        share = verbatim_share(docs[fn], scope); cal, regime = decision_for(share)
        WORDING[fn] = dict(verbatim_share=round(share, 3), regime=regime, documents=len(docs[fn]))
        x = X(fn, cal.features); p = cal.probability(x); called = p >= cal.threshold
        if regime == 'verbatim' and fn == 'DER':
            for tr, te in StratifiedKFold(5, shuffle=True, random_state=0).split(x, y[fn]):
                c = fit_calibration(x[tr], y[fn][tr], names); p[te] = c.probability(x[te]); called[te] = p[te] >= c.threshold
        r[fn] = decision_metrics(called, y[fn], p)
    WORDING['verbatim_refit'] = fit_calibration(X('DER', names), y['DER'], names, 'refit in this run on DER').__dict__
    return dict(method='ai_standards coverage, decision by wording (the default; DER out of fold)',
                threshold=COVERAGE_CALIBRATION.threshold, **r)

CONTEXT_WEIGHTS = (0, 0.25, 0.5, 0.75, 1.0, 1.5)

def ranks(S, known, idx) -> dict:
    "Recall@10 and MRR of score rows `idx` against their known links (a crosswalk item's ranking metrics)."
    from ai_standards.crosswalk import ranking_metrics
    where = np.argsort(np.argsort(-S[idx], 1, kind='stable'), 1) + 1
    m = ranking_metrics([[int(where[n, j]) for j in known[i]] for n, i in enumerate(idx) if known[i]])
    return {k: round(m[k], 3) for k in ('recall@10', 'mrr')}

CV_REPEATS = 20  # one dealing of 31 sources into 5 folds moves F1 by a few hundredths: the selection takes the mean of 20

def grouped_cv(idx, names, rows, fit_calibration, decision_metrics, depth, folds=5, repeats=CV_REPEATS):
    """Pair P/R/F1 of the link decision with `names` by 5-fold CV over GV sources (a source's `depth` candidates in one fold; P/R/F1
    pooled over the held-out folds), each the mean of `repeats` dealings of the sources into folds at random, with F1's standard error."""
    runs = []
    for seed in range(repeats):
        perm, called, y, npos = np.random.default_rng(seed).permutation(idx), [], [], 0
        for f in range(folds):
            test, train = np.sort(perm[f::folds]), np.setdiff1d(idx, perm[f::folds])
            X, yt, nt = rows(train, names); cal = fit_calibration(X, yt, names, n_positive=nt, groups=np.repeat(train, depth))
            Xs, ys, ns = rows(test, names); called += list(cal.probability(Xs) >= cal.threshold); y += list(ys); npos += ns
        runs.append(decision_metrics(called, y, n_positive=npos))
    out = {k: round(float(np.mean([r[k] for r in runs])), 3) for k in ('precision', 'recall', 'f1')}
    return out | dict(f1_se=round(float(np.std([r['f1'] for r in runs], ddof=1) / np.sqrt(repeats)), 3), repeats=repeats)

RELIABILITY = {}  # name -> (probabilities, truth) on the check data, for the plot

def reliability_plot(path):
    "Observed share of yes against mean probability per bin, one panel per decision, with ECE and n."
    import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt
    from ai_standards.crosswalk import binary_calibration
    fig, axes = plt.subplots(1, len(RELIABILITY), figsize=(4.2 * len(RELIABILITY), 4))
    for ax, (name, (p, y)) in zip(np.atleast_1d(axes), RELIABILITY.items()):
        c = binary_calibration(p, y); b = [r for r in c['bins'] if r['n']]
        ax.plot([0, 1], [0, 1], ls=':', c='grey', label='perfect')
        ax.scatter([r['probability'] for r in b], [r['observed'] for r in b], s=[12 + 3 * np.sqrt(r['n']) for r in b], label='bins (area ~ n)')
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel='predicted probability', ylabel='observed share', title=f"{name}: ECE {c['ece']:.3f}, n={c['n']}")
        ax.title.set_fontsize(9); ax.legend(fontsize=8, loc='upper left')
    fig.tight_layout(); fig.savefig(path, dpi=110); plt.close(fig)

TIMING = r'''
import json, sys, time
from pathlib import Path
t = time.perf_counter()
from ai_standards.cli import main
code = main(sys.argv[1:])
print(json.dumps(dict(seconds=time.perf_counter() - t, code=code)))
'''

def timed(*argv, cache=None) -> dict:
    "Seconds of one CLI command in its own process; `cache`: its own (cold) embedding cache folder."
    env = {**os.environ, 'HF_HUB_OFFLINE': '1'} | ({'AI_STANDARDS_CACHE': str(cache)} if cache else {})
    r = subprocess.run([sys.executable, '-c', TIMING, *map(str, argv)], capture_output=True, text=True, env=env)
    if r.returncode: print(r.stderr[-2000:]); sys.exit(f'failed: {argv}')
    return json.loads(r.stdout.strip().splitlines()[-1])

def timing() -> dict:
    import shutil
    shutil.rmtree(WORK, ignore_errors=True); WORK.mkdir(parents=True)
    prof = ('--catalog', DATA/'raw'/'NIST_SP-800-53_rev5_catalog.json', '--profile', DATA/'raw'/'NIST_SP-800-53_rev5_MODERATE-baseline_profile.json')
    # ingest and coverage from files each start from a cold embedding cache of their own, as a new user's would;
    # coverage from the database then runs with the cache ingest left (the controls' sentences are cached by then)
    out = dict(ingest_cold=timed('ingest', DATA/'pdfs', '--db', WORK/'db', '--json', cache=WORK/'cache_ingest'))
    out['coverage_from_files_cold'] = timed('coverage', DATA/'pdfs', *prof, '--json', cache=WORK/'cache_files')
    out['coverage_from_db'] = timed('coverage', '--db', WORK/'db', *prof, '--json', cache=WORK/'cache_ingest')
    out['coverage_from_db_again'] = timed('coverage', '--db', WORK/'db', *prof, '--json', cache=WORK/'cache_ingest')
    return {k: round(v['seconds'], 1) for k, v in out.items()}

def derived_standard(n=150, seed=0) -> list[dict]:
    "Requirements built from training-split records' own sentences: the near-verbatim regime."
    import re
    from ai_standards.crosswalk import item
    rng = np.random.default_rng(seed)
    train = [r for r in map(json.loads, open(DATA/'nist_sp800_53r5_controls.jsonl')) if r['suggested_split'] == 'train']
    def lines(r):
        ls = [re.sub(r'\[Assignment: organization-defined ([^\]]+)\]', r'the \1 the organization defines', l.strip())
              for l in r['statement'].split('\n') if l.strip()]
        ls = [re.sub(r'^(\(?[a-z0-9]{1,2}[.)]\s*)', '', re.sub(r'\[Selection[^\]]*\]', 'as applicable', l)) for l in ls]
        keep = sorted(rng.choice(len(ls), max(1, int(len(ls) * rng.uniform(0.5, 0.9))), replace=False))
        return ' '.join(ls[i] for i in keep)
    out = []
    for n_, i in enumerate(rng.choice(len(train), n, replace=False)):
        r = train[i]; text, links = lines(r), [r['id']]
        if n_ % 4 == 0: o = train[rng.integers(len(train))]; text += ' ' + lines(o); links.append(o['id'])
        out.append(item(f'D{n_}', 'The organization shall: ' + text, file='derived', meta={'links': links}))
    return out

def verbatim_table(rev5, emb) -> list[dict]:
    from ai_standards.crosswalk import Embedded, score_matrix, ranking_metrics, truth_links, source_context, context_keys
    from sklearn.feature_extraction.text import TfidfVectorizer
    src = derived_standard(); pos = {t['id']: j for j, t in enumerate(rev5)}
    se, te = Embedded(src, emb), Embedded(rev5, emb, 'target')
    ttext = [f"{t['title']}\n{t['text']}" for t in rev5]; v = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit(ttext)
    def metrics(M):
        ranks = []
        for i, s in enumerate(src):
            where = np.empty(len(rev5), int); where[np.argsort(-M[i], kind='stable')] = np.arange(1, len(rev5) + 1)
            ranks.append([int(where[pos[x]]) for x in truth_links(s, 'links')])
        return ranking_metrics(ranks)
    return [dict(method='TF-IDF (1-2 grams) cosine', **metrics((v.transform([s['text'] for s in src]) @ v.transform(ttext).T).toarray())),
            dict(method='crosswalk without the verbatim term', **metrics(score_matrix(se, te, src, rev5, dict(verbatim_weight=0)))),
            dict(method='crosswalk default (verbatim term)', **metrics(source_context(score_matrix(se, te, src, rev5), context_keys(src))))]

def fmt(m, keys=('precision', 'recall', 'f1', 'average_precision', 'roc_auc', 'ece')):
    return ' | '.join(f"{m[k]:.3f}" if k in m else '–' for k in keys)

def main():
    if not DATA.exists(): sys.exit(f'NIST data not found at {DATA}: set AI_STANDARDS_DATA (see its README.md)')
    from ai_standards.models import Embedder
    from ai_standards.crosswalk import LINK_DEPTH
    t0 = time.time(); emb = Embedder()
    scope, rp, csf, rev5 = setup()
    cov, cov_refit, n, status, cov_selection = coverage_tables(scope, csf, emb)
    links, link_refit, link_selection, context = link_tables(csf, rev5, emb)
    verbatim = verbatim_table(rev5, emb)
    times = timing() if '--timing' in sys.argv else None
    res = dict(verbatim=verbatim, coverage=cov, coverage_refit=cov_refit.__dict__, coverage_selection=cov_selection, wording=WORDING, truth=n, id_status=status, links=links, link_refit=link_refit.__dict__, link_selection=link_selection, context=context,
               timing=times, seconds=round(time.time() - t0, 1))
    out = HERE/'results'; out.mkdir(exist_ok=True)
    (out/'coverage.json').write_text(json.dumps(res, indent=1, default=float))
    reliability_plot(out/'coverage_reliability.png')
    md = ['# Coverage and crosswalk decisions on the shared data', '',
          f"Scope: {rp.title}, {n['n']} controls. Documents: CSF 2.0 subcategories; a control is addressed when NIST's crosswalk "
          f"links one of them to it. GV (dev, everything fitted and every threshold chosen here): 31 documents, {n['GV']} controls "
          f"addressed; ID (check): 21 documents, {n['ID']} addressed. n = {n['n']} controls per row: small enough that differences "
          "of a few hundredths in AP are noise.", '',
          '| method | threshold | GV P | GV R | GV F1 | GV AP | GV AUC | GV ECE | ID P | ID R | ID F1 | ID AP | ID AUC | ID ECE |',
          '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|']
    md += [f"| {r['method']} | {r['threshold']:.3f} | {fmt(r['GV'])} | {fmt(r['ID'])} |" for r in cov]
    md += ['', f"DER (dev): the derived standard of the near-verbatim check below ({n['DER']} MODERATE controls among its links), "
           "as the organization's documents; thresholds from GV, except in the decision-by-wording row, where DER's verbatim share "
           "picks the verbatim decision, fitted on DER and scored here out of fold.", '',
           '| method | DER P | DER R | DER F1 | DER AP | DER AUC | DER ECE |', '|---|---|---|---|---|---|---|']
    md += [f"| {r['method']} | {fmt(r['DER'])} |" for r in cov]
    md += ['', 'Feature sets for the coverage decision (`COVERAGE_FEATURE_SETS`), both measures on dev data: AP of 5-fold '
           'out-of-fold probabilities on GV, and AP on DER of the model fitted on GV. The best mean is refitted above and shipped as '
           '`COVERAGE_CALIBRATION`:', '', '| features | GV CV AP | DER AP | mean |', '|---|---|---|---|']
    md += [f"| {' + '.join(r['features'])} | {r['gv_cv_ap']:.3f} | {r['der_ap']:.3f} | {r['mean']:.3f} |" for r in cov_selection]
    md += ['', 'Verbatim share (passages whose TF-IDF cosine to a MODERATE control reaches `VERBATIM_COSINE`) and the regime it '
           f"picks at `VERBATIM_SHARE`: " + '; '.join(f"{fn} {w['verbatim_share']:.3f} ({w['documents']} documents): {w['regime']}"
                                                    for fn, w in WORDING.items() if fn in SPLITS) + '.', '',
           f"Verbatim decision refitted in this run on DER: {WORDING['verbatim_refit']}"]
    md += ['', f"ID statuses with the shipped calibration: {status}.", '', f"Refitted coverage calibration: {cov_refit.__dict__}", '',
           '## Crosswalk decisions: CSF 2.0 -> 1,007 SP 800-53 Rev 5 records', '',
           'Pair precision / recall / F1 of the pairs called links (recall over all of NIST\'s links, 238 on GV, 204 on ID); AP, AUC and '
           f'ECE of the probability over the {LINK_DEPTH} best candidates of each subcategory. k of the top-k rows chosen on GV.', '',
           '| method | k | GV P | GV R | GV F1 | GV AP | GV AUC | GV ECE | ID P | ID R | ID F1 | ID AP | ID AUC | ID ECE |',
           '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|']
    md += [f"| {r['method']} | {r['k']} | {fmt(r['GV'])} | {fmt(r['ID'])} |" for r in links]
    md += ['', 'Feature sets for the link decision, grouped 5-fold cross-validation over the 31 GV subcategories (each fold fits '
           'the model and its threshold on the other folds; P/R/F1 pooled over the held-out folds), each the mean of '
           f'{CV_REPEATS} random dealings of the subcategories into folds (± the standard error of F1). The best is the one '
           'refitted above and shipped as `LINK_CALIBRATION`:', '', '| features | CV P | CV R | CV F1 |', '|---|---|---|---|']
    md += [f"| {' + '.join(r['features'])} | {r['precision']:.3f} | {r['recall']:.3f} | {r['f1']:.3f} ± {r['f1_se']:.3f} |" for r in link_selection]
    md += ['', 'The context step\'s weight (`crosswalk.CONTEXT_WEIGHT`: a source\'s scores gain this times the mean of its CSF '
           'category\'s), chosen on GV by recall@10 + MRR of the ranking; ID only reports:', '',
           '| weight | GV R@10 | GV MRR | ID R@10 | ID MRR |', '|---|---|---|---|---|']
    md += [f"| {r['weight']} | {r['GV']['recall@10']:.3f} | {r['GV']['mrr']:.3f} | {r['ID']['recall@10']:.3f} | {r['ID']['mrr']:.3f} |" for r in context]
    md += ['', f"Refitted link calibration: {link_refit.__dict__}", '',
           '## Near-verbatim wording: a derived standard built from training-split records (dev)', '',
           f"{verbatim[0]['n_sources']} requirements, {verbatim[0]['n_links']} links, onto the 1,007 Rev 5 records.", '',
           '| method | R@1 | R@5 | R@10 | MRR |', '|---|---|---|---|---|']
    md += [f"| {r['method']} | {r['recall@1']:.3f} | {r['recall@5']:.3f} | {r['recall@10']:.3f} | {r['mrr']:.3f} |" for r in verbatim]
    md += ['']
    if times: md += ['## Time (2 cores, each in its own process, cold start included)', '', '| run | seconds |', '|---|---|'] + \
                    [f'| {k} | {v} |' for k, v in times.items()] + ['']
    md += ['![Reliability of the shipped decisions on ID](coverage_reliability.png)', '',
           'Reliability on the check data (ID): each dot is a bin of probabilities; on the diagonal the probability is the observed share.', '']
    md += [f"Whole run {res['seconds']} s. Run: `python bench/bench_coverage.py{' --timing' if times else ''}`"]
    (out/'coverage.md').write_text('\n'.join(md) + '\n'); print('\n'.join(md))

if __name__ == '__main__': main()
