"""How should a document's label come from its chunks? Candidate rules by grouped CV on training rows (issue 11).

A document's label is the argmax of its chunks' mean pooled probability (`DOC_RULES['mean']`). This script scores that
rule against the alternatives on documents built from the SP 800-53 Rev 5 training rows (the `suggested_split` test
controls left out; the PDFs and the CSF mapping never read): each base control with its enhancements is one document
(226 of them), titled by the base control's title. Folds as bench_generalization's check 0 (`recipe_folds`): heads on
the fold's training rows, pool weights on a validation carve of them, the held-out fold's documents scored.

Candidates:
- the other `DOC_RULES`: vote, geometric mean, confidence-weighted mean;
- background share removed: mean minus the probability each family gets, on the validation carve, on other families'
  rows (discounting a family, such as PM, that draws generic prose);
- a title term: log mean + w · log p(title), the pool's probabilities on the document's title alone, w = 0.1 to 1
  (a publication's title names what it mainly addresses).

A rule replaces the mean only if it is ahead by more than two standard errors of the paired difference over documents.

Run: python bench/bench_document_rules.py   -> bench/results/document_rules.{md,json}
"""
import os, resource, sys, time
from pathlib import Path
import numpy as np

TITLE_WEIGHTS = (0.1, 0.25, 0.5, 1.0)

def background(p, y):
    "Each family's mean probability on rows whose label is another family."
    return np.array([p[y != c, c].mean() if (y != c).any() else 0.0 for c in range(p.shape[1])])

def run(data_dir, folds=5):
    from sentence_transformers import SentenceTransformer
    from ai_standards.models import default_model_path
    from ai_standards.training import DOC_RULES, HEAD_C, TfidfHead, LinearHead, encode, fit_pool_weights, pool_proba
    from bench_generalization import training_rows, recipe_folds
    data, rows = training_rows(data_dir)
    n, Y, meta, texts = len(data['label_map']['labels']), np.array(data['label_ids']), data['metadata'], data['texts']
    group = np.array([m['group'] for m in meta])
    title = {m['group']: m['title'] for m in meta if m['doc_id'].split(':')[-1] == m['group']}  # the base control's title
    st = SentenceTransformer(default_model_path(), device='cpu'); X = encode(st, texts)
    names = list(DOC_RULES) + ['background share removed'] + [f'title term, w = {w}' for w in TITLE_WEIGHTS]
    right, truth = {k: [] for k in names}, []
    for itr, iva, held in recipe_folds(data, rows, folds):
        th = TfidfHead.fit([texts[i] for i in itr], Y[itr], n, HEAD_C['tfidf']); eh = LinearHead.fit(X[itr], Y[itr], n, HEAD_C['embedding'])
        heads = lambda t, Z: dict(tfidf=th.predict_proba(t), embedding=eh.predict_proba(Z))
        pva = heads([texts[i] for i in iva], X[iva]); weights = fit_pool_weights(pva, Y[iva])
        bg = background(pool_proba(pva, weights), Y[iva])
        p = pool_proba(heads([texts[i] for i in held], X[held]), weights)
        docs = list(dict.fromkeys(group[held])); titles = [title[g] for g in docs]
        pt = pool_proba(heads(titles, encode(st, titles)), weights)
        for g, ptitle in zip(docs, pt):
            ix = np.flatnonzero(group[held] == g); P = p[ix]; truth.append(int(Y[held][ix[0]]))
            for k, rule in DOC_RULES.items(): right[k].append(int(rule(P).argmax()))
            right['background share removed'].append(int((P.mean(0) - bg).argmax()))
            for w in TITLE_WEIGHTS:
                right[f'title term, w = {w}'].append(int((np.log(P.mean(0)) + w * np.log(np.clip(ptitle, 1e-12, 1))).argmax()))
    return _summary(right, np.array(truth))

def _summary(got, truth):
    from sklearn.metrics import f1_score
    ok = {k: (np.array(v) == truth).astype(float) for k, v in got.items()}; out = {}
    for k, v in got.items():
        d = ok[k] - ok['mean']
        out[k] = dict(accuracy=float(ok[k].mean()), macro_f1=float(f1_score(truth, v, average='macro', labels=sorted(set(truth)))),
                      n=len(truth), minus_default=float(d.mean()), difference_se=float(d.std(ddof=1) / np.sqrt(len(d))))
    return out

def main():
    from ai_standards.sample import shared_data_dir
    from bench_views import write_results
    data_dir = shared_data_dir()
    if data_dir is None: sys.exit('NIST data not found: set AI_STANDARDS_DATA (see ../shared/data/README.md); nothing measured')
    t0 = time.time(); res = run(data_dir)
    minutes, peak = (time.time() - t0) / 60, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    md = ['# Document rules: candidates by grouped 5-fold CV on SP 800-53 training rows', '',
          f'{minutes:.1f} min, process peak {peak:.0f} MB, {os.cpu_count()} CPU cores. n = {next(iter(res.values()))["n"]} documents '
          '(a base control with its enhancements, titled by the base control) over the folds; the test split left out.', '',
          '| rule | accuracy per document | macro-F1 | difference from the mean (± s.e., paired over documents) |', '|---|---|---|---|']
    md += [f"| {k} | {r['accuracy']:.3f} | {r['macro_f1']:.3f} | {r['minus_default']:+.3f} ± {r['difference_se']:.3f} |" for k, r in res.items()]
    write_results('document_rules', md, res, minutes, peak, 'rule', 'the mean')

if __name__ == '__main__': main()
