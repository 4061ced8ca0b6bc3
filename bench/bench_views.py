"""Which views should the default predictor pool? Candidates against the default, by grouped CV on training rows (issue 11).

The default predictor pools two heads (word 1-2-gram TF-IDF + LR, base-embedding + LR), weights fitted on a validation
carve. Each candidate below changes one thing; all are scored by the same grouped 5-fold cross-validation on the
SP 800-53 Rev 5 training rows (the `suggested_split` test controls left out, the PDFs and CSF never read), each fold
fitted as the pipeline fits it (heads on the fold's training rows, pool weights on a validation carve of them), scored
per record (chunk probabilities averaged). TF-IDF + LR (class-balanced), the best baseline of bench_generalization's
check 0, is the peer in the same run.

Candidates:
- a third head on character 3-5-grams (`char_wb`, min_df 2), C = 1 or 10;
- each chunk prefixed with its title (a control's title; a PDF's document title), for both heads;
- a third head: cosine to each class's mean embedding (a prototype head; its temperature is its pool weight);
- one joint LR on the word TF-IDF features and the embeddings side by side (C = 3), alone and pooled with the embedding head;
- the word TF-IDF head with other vectorizer settings: min_df 2 and max_df 0.5; English stop words removed; unigrams only;
- with --model DIR: the same pool on another sentence-transformers model's embeddings (e.g. all-mpnet-base-v2 from
  bench/fetch_mpnet.py).

Run: python bench/bench_views.py [--model bench/_work/all-mpnet-base-v2]   -> bench/results/views.{md,json}
"""
import argparse, json, os, resource, sys, time
from pathlib import Path
import numpy as np

CHAR = dict(analyzer='char_wb', ngram_range=(3, 5), sublinear_tf=True, min_df=2)
WORD_VARIANTS = {'word TF-IDF: min_df 2, max_df 0.5': dict(min_df=2, max_df=0.5),
                 'word TF-IDF: English stop words removed': dict(stop_words='english'),
                 'word TF-IDF: unigrams only': dict(ngram_range=(1, 1))}

def tfidf_view(texts, y, n, C, **settings):
    "A class-balanced LR on TF-IDF with `TFIDF_SETTINGS` changed by `settings` (e.g. `CHAR`); returns texts -> probabilities."
    from sklearn.feature_extraction.text import TfidfVectorizer
    from ai_standards.training import TFIDF_SETTINGS, LinearHead
    v = TfidfVectorizer(**(TFIDF_SETTINGS | settings)); h = LinearHead.fit(v.fit_transform(texts), y, n, C)
    return lambda t: h.predict_proba(v.transform(t))

def prototype_head(X, y, n):
    "Cosine similarity to each class's normalized mean embedding, as probabilities: softmax(20·cosine); the pool weight rescales it."
    from scipy.special import softmax
    cen = np.stack([X[y == c].mean(0) if (y == c).any() else np.zeros(X.shape[1]) for c in range(n)])
    cen /= np.linalg.norm(cen, axis=1, keepdims=True) + 1e-12
    return lambda Z: softmax(20 * Z @ cen.T, axis=1)

def joint_head(texts, X, y, n, C=3.0):
    "One class-balanced LR on word TF-IDF features and embeddings side by side; returns (texts, vectors) -> probabilities."
    from scipy.sparse import hstack, csr_matrix
    from sklearn.feature_extraction.text import TfidfVectorizer
    from ai_standards.training import TFIDF_SETTINGS, LinearHead
    v = TfidfVectorizer(**TFIDF_SETTINGS).fit(texts); both = lambda t, Z: hstack([v.transform(t), csr_matrix(Z)]).tocsr()
    h = LinearHead.fit(both(texts, X), y, n, C)
    return lambda t, Z: h.predict_proba(both(t, Z))

def run(data_dir, models, folds=5):
    from sentence_transformers import SentenceTransformer
    from ai_standards.evaluation import tfidf_baseline
    from ai_standards.models import default_model_path
    from ai_standards.training import HEAD_C, TfidfHead, LinearHead, encode, fit_pool_weights, pool_proba
    from bench_generalization import training_rows, recipe_folds
    data, rows = training_rows(data_dir)
    n, Y, keys = len(data['label_map']['labels']), np.array(data['label_ids']), [m['doc_id'] for m in data['metadata']]
    plain = data['texts']; titled = [f"{m['title']}\n{t}" for t, m in zip(plain, data['metadata'])]
    base = SentenceTransformer(default_model_path(), device='cpu')
    emb = {'base': encode(base, plain), 'base, titled': encode(base, titled)}
    for name, path in models: emb[name] = encode(SentenceTransformer(path, device='cpu'), plain)
    scores = {}
    for itr, iva, held in recipe_folds(data, rows, folds):
        def word(texts):
            h = TfidfHead.fit([texts[i] for i in itr], Y[itr], n, HEAD_C['tfidf'])
            return lambda r: h.predict_proba([texts[i] for i in r])
        def dense(X):
            h = LinearHead.fit(X[itr], Y[itr], n, HEAD_C['embedding']); return lambda r: h.predict_proba(X[r])
        def view(C, **settings):
            h = tfidf_view([plain[i] for i in itr], Y[itr], n, C, **settings); return lambda r: h([plain[i] for i in r])
        w, e = word(plain), dense(emb['base'])
        proto = prototype_head(emb['base'][itr], Y[itr], n); jh = joint_head([plain[i] for i in itr], emb['base'][itr], Y[itr], n)
        joint = lambda r: jh([plain[i] for i in r], emb['base'][r])
        candidates = {'default pool (word TF-IDF + base embeddings)': dict(tfidf=w, embedding=e),
                      '+ character 3-5-gram head, C = 1': dict(tfidf=w, embedding=e, chars=view(1.0, **CHAR)),
                      '+ character 3-5-gram head, C = 10': dict(tfidf=w, embedding=e, chars=view(10.0, **CHAR)),
                      'title prefixed to each chunk': dict(tfidf=word(titled), embedding=dense(emb['base, titled'])),
                      '+ prototype head (cosine to class mean embeddings)': dict(tfidf=w, embedding=e, prototype=lambda r: proto(emb['base'][r])),
                      'joint LR on word TF-IDF and embeddings, C = 3': dict(joint=joint),
                      'joint LR, pooled with the embedding head': dict(joint=joint, embedding=e)}
        candidates |= {name: dict(tfidf=view(HEAD_C['tfidf'], **settings), embedding=e) for name, settings in WORD_VARIANTS.items()}
        for name, _ in models: candidates[f'embeddings of {name}'] = dict(tfidf=w, embedding=dense(emb[name]))
        for name, heads in candidates.items():
            weights = fit_pool_weights({v: f(iva) for v, f in heads.items()}, Y[iva])
            p = pool_proba({v: f(held) for v, f in heads.items()}, weights)
            scores.setdefault(name, []).append(_score(keys, held, Y, p))
        peer = tfidf_baseline([plain[i] for i in itr], [data['labels'][i] for i in itr], 'balanced', 1.0)  # as bench_generalization
        p = peer.predict_proba([plain[i] for i in held])[:, [list(peer.classes_).index(l) for l in data['label_map']['labels']]]
        scores.setdefault('TF-IDF + LR (balanced), the best baseline', []).append(_score(keys, held, Y, p))
    return _summary(scores)

def _score(keys, held, Y, p):
    "Per-record accuracy, macro-F1 and n of chunk probabilities `p` (columns in label-id order) for rows `held`."
    from sklearn.metrics import f1_score
    from ai_standards.training import aggregate_by
    order, pd_ = aggregate_by([keys[i] for i in held], p); truth = dict(zip([keys[i] for i in held], Y[held]))
    yt = [truth[o] for o in order]; got = pd_.argmax(1)
    return float(np.mean(got == yt)), float(f1_score(yt, got, average='macro', labels=sorted(set(yt)))), len(yt)

def _summary(scores):
    from bench_generalization import fold_stats
    base = np.array(scores['default pool (word TF-IDF + base embeddings)'], float)[:, 0]; out = {}
    for name, v in scores.items():
        d = np.array(v, float)[:, 0] - base
        out[name] = fold_stats(v) | dict(minus_default=float(d.mean()), folds_above_default=int((d > 0).sum()),
                                         difference_se=float(d.std(ddof=1) / np.sqrt(len(d))))
    return out

def write_results(name, md, res, minutes, peak, what, default):
    "Add the verdict (a `what` replaces `default` only when ahead by two paired standard errors) to `md`; write results/`name`.*"
    ahead = [k for k, r in res.items() if r['minus_default'] > 2 * r['difference_se'] > 0 and 'baseline' not in k]
    md += ['', f'A {what} replaces {default} only if it is ahead by more than two standard errors of the paired difference: '
           + (f"ahead: {', '.join(ahead)}." if ahead else f'none is, so {default} stays (the selection protocol in nbs/05_training.ipynb).')]
    out = Path(__file__).parent/'results'; out.mkdir(exist_ok=True)
    (out/f'{name}.md').write_text('\n'.join(md) + '\n')
    (out/f'{name}.json').write_text(json.dumps(dict(minutes=round(minutes, 2), peak_rss_mb=round(peak), results=res), indent=1))
    print('\n'.join(md))

def main():
    ap = argparse.ArgumentParser(); ap.add_argument('--model', action='append', default=[], help='another sentence-transformers folder')
    a = ap.parse_args()
    from ai_standards.sample import shared_data_dir
    data_dir = shared_data_dir()
    if data_dir is None: sys.exit('NIST data not found: set AI_STANDARDS_DATA (see ../shared/data/README.md); nothing measured')
    t0 = time.time(); res = run(data_dir, [(Path(m).name, m) for m in a.model])
    minutes, peak = (time.time() - t0) / 60, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    md = ['# Views of the default predictor: candidates by grouped 5-fold CV on SP 800-53 training rows', '',
          f'{minutes:.1f} min, process peak {peak:.0f} MB, {os.cpu_count()} CPU cores. n = {next(iter(res.values()))["n"]} records over '
          'the folds (the test split left out). Each fold: heads on its training rows, pool weights on a validation carve.', '',
          '| candidate | accuracy (± s.e. over folds) | macro-F1 | per fold | difference from the default (± s.e.) | folds above it |',
          '|---|---|---|---|---|---|']
    for name, r in res.items():
        md.append(f"| {name} | {r['accuracy']:.3f} ± {r['se']:.3f} | {r['macro_f1']:.3f} | {' '.join(f'{x:.3f}' for x in r['folds'])} | "
                  f"{r['minus_default']:+.3f} ± {r['difference_se']:.3f} | {r['folds_above_default']} of {len(r['folds'])} |")
    write_results('views', md, res, minutes, peak, 'candidate', 'the default pool')

if __name__ == '__main__': main()
