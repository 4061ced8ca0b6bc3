"""Does the default predictor beat the classical baselines on text worded unlike the training catalog? (issue 11)

One run of the whole pipeline (`AIStandardsTrainer.train`, the same as `ai-standards train JSONL --label-field family`) on the
SP 800-53 Rev 5 JSONL with default settings, then three checks of "different wording, same labels", each with the baselines
trained on the same rows in the same run, after a check of the recipe itself on the training rows:

0. grouped 5-fold cross-validation on the training rows (the test split left out): the recipe fitted in each fold as the
   pipeline fits it, against the baselines on the same rows (mean, standard error over folds, and the folds it wins);
0b. known controls reworded (issue 28): the training records cut into two grouped halves; every model learns one half's
   records in full and the other half's control statements only, and is scored on that other half's discussion texts
   (then the halves swap: n = 759); the recipe is `fit_ensemble` as the pipeline calls it;

1. the `suggested_split` test controls (the model and every setting chosen without them; baselines on the training rows);
2. the 17 shared NIST PDFs: document label (chunk probabilities averaged) against the manifest's `category`, by the saved
   model (refit on all 1,007 records) and by baselines trained on all 1,007 records;
3. the 52 CSF 2.0 subcategories of `crosswalks/csf2_to_sp800_53r5.jsonl`: right when the predicted family is the family of
   one of the subcategory's linked controls; same models as 2.

Baselines: TF-IDF (word 1-2 grams) + LR, class-balanced (C=1 and C=10) and plain (C=10); frozen base embeddings + LR,
class-balanced (C=1) and plain (C=10). Check 2 also gives the document ECE of the saved model's chunk share, of one
temperature for every length and of its calibrated document probability (t = a + b ln n), and the leave-one-PDF-out ECE
of the choice between the two designs (n = 17).
In checks 1-3 each baseline is also paired with the default item by item (`evaluation.paired_comparison`): the items
only one of the two gets right, and the exact McNemar p-value of the difference.
Time and process peak memory per pipeline step come from the run's state.json.

Run: python bench/bench_generalization.py   -> bench/results/generalization.{md,json}
     python bench/bench_generalization.py --transformers   -> the same with the HF classifier and the embedding fine-tune
                                                                     (train --classifier --fine-tune), to generalization_transformers.*
     python bench/bench_generalization.py --quick   -> the same checks for the default predictor's recipe (pool of the
     TF-IDF and base-embedding heads, weights on validation, refit) without training the two transformers (minutes, not an hour)
"""
import argparse, json, os, resource, shutil, sys, time
from pathlib import Path
import numpy as np

def baselines(texts, labels):
    "The four baselines of every report, fitted on `texts`."
    from ai_standards.evaluation import tfidf_baseline, EmbeddingBaseline
    from ai_standards.models import Embedder
    emb = Embedder()
    return {'TF-IDF + LR (balanced)': tfidf_baseline(texts, labels, 'balanced', 1.0),
            'TF-IDF + LR (balanced, C 10)': tfidf_baseline(texts, labels, 'balanced', 10.0), 'TF-IDF + LR': tfidf_baseline(texts, labels),
            'frozen embeddings + LR (balanced)': EmbeddingBaseline(emb, 'balanced', 1.0).fit(texts, labels),
            'frozen embeddings + LR': EmbeddingBaseline(emb).fit(texts, labels)}

def doc_labels(model, docs, shares=None):
    "Each document's label: the argmax of its chunks' mean probability (its share per label, appended to `shares`)."
    texts = [c['text'] for d in docs for c in d['chunks']]
    p = np.asarray(model.predict_proba(texts)); out, i = [], 0
    for d in docs:
        n = len(d['chunks']); m = p[i:i+n].mean(0) if n else None; i += n
        out.append(str(model.classes_[int(m.argmax())]) if n else None)
        if shares is not None: shares.append(m)
    return out

def document_calibration(m, S, n, truth, got):
    """Check 2's document probabilities: ECE of the chunk share, of one temperature for every length (fitted on validation
    pseudo-documents beside the saved one), of the saved length-dependent temperature, and leave-one-PDF-out: for each
    PDF, the design (one t or t by length) with the lower log-loss on the other 16 PDFs, scored on the held-out one."""
    from ai_standards.training import calibration, calibrate_shares
    t, docs = getattr(m, 'doc_temperature', None), (getattr(m, 'validation', None) or {}).get('documents', {})
    cands = {'share': None, 'one t': docs.get('one_t'), 'by length': t}
    P = {k: calibrate_shares(S, v, n) for k, v in cands.items() if v is not None or k == 'share'}
    y = np.array([list(m.classes_).index(l) for l in truth]); nll = lambda Q, i: -np.log(np.clip(Q[i, y[i]], 1e-12, 1)).mean()
    oof = []
    for i in range(len(y)):
        rest = np.arange(len(y)) != i; best = min((k for k in P if k != 'share'), key=lambda k: nll(P[k], rest))
        oof.append(P[best][i].max())
    out = {f'ece_{k}': calibration(truth, got, Q.max(1))['ece'] for k, Q in P.items()} | {f'top_{k}': [round(float(x), 3) for x in Q.max(1)] for k, Q in P.items()}
    return out | dict(doc_temperature=t, one_t=cands['one t'], ece_loo=calibration(truth, got, np.array(oof))['ece'], n_chunks=n,
                      validation_documents={k: v for k, v in docs.items() if k != 'temperature'})

def full(a, data_dir):
    "The whole pipeline with default settings; the saved (refit) model and baselines on all records."
    from ai_standards.pipeline import AIStandardsTrainer
    from ai_standards.chunking import process_documents
    from ai_standards.training import create_training_data
    if not a.keep: shutil.rmtree(a.out, ignore_errors=True)
    os.environ['AI_STANDARDS_CACHE'] = str(Path(a.out)/'cache')  # a cold embedding cache: the time is a first run's
    t0 = time.time()
    extra = dict(train_classifier=True, fine_tune_embeddings=True) if a.transformers else {}
    t = AIStandardsTrainer(run_dir=str(Path(a.out)/'run'), label_field='family', progress=False, **extra)
    res = t.train([data_dir/'nist_sp800_53r5_controls.jsonl'])
    train_min, peak = (time.time() - t0) / 60, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    steps = json.loads((Path(a.out)/'run'/'state.json').read_text())['steps']
    if a.keep:  # a resumed run: its time and peak are the recorded steps', not this process's
        train_min = sum(v['seconds'] for v in steps.values()) / 60
        peak = max(v['summary'].get('peak_rss_mb') or 0 for v in steps.values())
    saved = AIStandardsTrainer.from_models(res['models_dir'])
    records = create_training_data(process_documents([data_dir/'nist_sp800_53r5_controls.jsonl'], saved.get_chunker(),
                                                     label_field='family', progress=False), embed=False)
    models = {'default predictor (saved, refit)': saved.predictor} | baselines(records['texts'], records['labels'])
    return res, models, saved.get_chunker(), steps, train_min, peak

def quick(data_dir):
    "The default predictor's recipe on base embeddings: fit on training rows, weights on validation, test report, refit."
    from sentence_transformers import SentenceTransformer
    from ai_standards.chunking import Chunker, process_documents
    from ai_standards.evaluation import evaluate_model, subset, pair_with
    from ai_standards.models import default_model_path
    from ai_standards.training import create_training_data, split_training_data, fit_ensemble, refit_ensemble
    t0, chunker = time.time(), Chunker()
    data = create_training_data(process_documents([data_dir/'nist_sp800_53r5_controls.jsonl'], chunker, label_field='family',
                                                  progress=False), embed=False)
    tr, va, te = split_training_data(data)
    ens = fit_ensemble(data, None, SentenceTransformer(default_model_path(), device='cpu'), (tr, va, te))
    train, test = subset(data, tr), subset(data, te)
    scored = {'default predictor (pool)': ens} | baselines(train['texts'], train['labels'])
    results = pair_with({n: evaluate_model(m, test, 'document') for n, m in scored.items()}, 'default predictor (pool)')
    res = dict(n=results['default predictor (pool)']['n'], weights=ens.weights, embedding_source='base', validation=ens.validation,
               ece=results['default predictor (pool)']['calibration']['ece'], trained_on=f'all {len(data["texts"])} labeled rows (refit)',
               results=[dict(model=n, accuracy=r['accuracy'], macro_f1=r['macro_f1']) | ({'paired': r['paired']} if 'paired' in r else {})
                        for n, r in results.items()])
    full_ens = refit_ensemble(ens, data)
    models = {'default predictor (refit)': full_ens} | baselines(data['texts'], data['labels'])
    steps = dict(quick=dict(seconds=time.time() - t0, summary=dict(peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))))
    return res, models, chunker, steps, (time.time() - t0) / 60, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def training_rows(data_dir):
    "SP 800-53 records as training data (not embedded) and the rows outside its test split, as the pipeline splits them."
    from ai_standards.chunking import Chunker, process_documents
    from ai_standards.training import create_training_data, split_training_data
    data = create_training_data(process_documents([data_dir/'nist_sp800_53r5_controls.jsonl'], Chunker(), label_field='family',
                                                  progress=False), embed=False)
    tr, va, _ = split_training_data(data)
    return data, np.array(sorted(tr + va))

def recipe_folds(data, rows, folds=5):
    "Grouped stratified k folds of `rows`, each (training, validation carve, held out) as the pipeline carves validation."
    from sklearn.model_selection import StratifiedGroupKFold
    from ai_standards.training import _group_split
    y, g = [data['labels'][i] for i in rows], [data['metadata'][i]['group'] for i in rows]
    for a, b in StratifiedGroupKFold(folds, shuffle=True, random_state=0).split(rows, y, g):
        itr, iva = _group_split(data, [int(i) for i in rows[a]], 0.2, 42, 'validation')
        yield itr, iva, [int(i) for i in rows[b]]

def fold_stats(v):
    "Mean accuracy, its standard error over folds, mean macro-F1, n and per-fold accuracy of (accuracy, macro-F1, n) rows."
    v = np.array(v, dtype=float)
    return dict(accuracy=float(v[:, 0].mean()), se=float(v[:, 0].std(ddof=1) / np.sqrt(len(v))), macro_f1=float(v[:, 1].mean()),
                n=int(v[:, 2].sum()), folds=[round(x, 3) for x in v[:, 0]])

def recipe_cv(data_dir, folds=5):
    "The recipe as the pipeline evaluates it, by grouped k-fold CV on the training rows (the test split left out)."
    from sentence_transformers import SentenceTransformer
    from ai_standards.evaluation import evaluate_model, subset
    from ai_standards.models import default_model_path
    from ai_standards.training import fit_ensemble
    data, rows = training_rows(data_dir)
    st, scores = SentenceTransformer(default_model_path(), device='cpu'), {}
    for itr, iva, held in recipe_folds(data, rows, folds):
        ens = fit_ensemble(data, None, st, (itr, iva, held)); train = subset(data, itr)
        for n, m in ({'default predictor (pool)': ens} | baselines(train['texts'], train['labels'])).items():
            r = evaluate_model(m, subset(data, held), 'document')
            scores.setdefault(n, []).append((r['accuracy'], r['macro_f1'], r['n']))
    default = np.array(scores['default predictor (pool)'], dtype=float)[:, 0]
    return {n: fold_stats(v) | dict(default_wins=int((np.array(v, dtype=float)[:, 0] < default).sum())) for n, v in scores.items()}

def reworded_check(data_dir):
    """Check 0b, known controls reworded: two grouped halves A, B of the training records (test split left out). Every model
    learns A's records in full (their chunks, as the pipeline reads them) and only B's control statements, and is scored
    on B's discussion (guidance) texts; then A and B swap, so each record's discussion is scored once. The default recipe is
    `fit_ensemble` as the pipeline calls it (heads on a grouped carve's training rows, weights on the carve and on the
    reworded pairs inside the training rows); the baselines learn the same training rows."""
    from sklearn.model_selection import StratifiedGroupKFold
    from sentence_transformers import SentenceTransformer
    from ai_standards.evaluation import subset
    from ai_standards.models import default_model_path
    from ai_standards.training import fit_ensemble, _group_split
    data, rows = training_rows(data_dir)
    recs = {r['id']: r for r in map(json.loads, open(data_dir/'nist_sp800_53r5_controls.jsonl')) if r.get('suggested_split') != 'test'}
    ids, st, names = sorted(recs), SentenceTransformer(default_model_path(), device='cpu'), data['label_map']['labels']
    y = [recs[i]['family'] for i in ids]; g = [recs[i]['parent'] or i for i in ids]
    pred, truth = {}, []
    for a, b in StratifiedGroupKFold(2, shuffle=True, random_state=0).split(ids, y, g):
        A, B = {ids[i] for i in a}, [ids[i] for i in b]
        keep = [i for i in rows if data['metadata'][i]['doc_id'].split(':', 1)[-1] in A]  # A's chunks, as the pipeline reads them
        d = dict(texts=[data['texts'][i] for i in keep] + [recs[r]['statement'] for r in B],
                 labels=[data['labels'][i] for i in keep] + [recs[r]['family'] for r in B],
                 metadata=[data['metadata'][i] for i in keep] + [dict(doc_id=r, group=recs[r]['parent'] or r, split=None) for r in B],
                 label_map=data['label_map'])
        d['label_ids'] = [names.index(l) for l in d['labels']]
        tr, va = _group_split(d, list(range(len(d['texts']))), 0.2, 42, 'validation')  # the pipeline's carve
        ens, train = fit_ensemble(d, None, st, (tr, va, [])), subset(d, tr)
        gui = [recs[r]['guidance'] for r in B]; truth += [recs[r]['family'] for r in B]
        for n, m in ({'default predictor (pool)': ens} | baselines(train['texts'], train['labels'])).items():
            pred.setdefault(n, []).extend(str(m.classes_[j]) for j in np.asarray(m.predict_proba(gui)).argmax(1))
    return pred, truth

def document_lines(d):
    "The report's paragraph on check 2's document probabilities."
    rng = lambda k: f"{min(d['top_' + k]):.2f}-{max(d['top_' + k]):.2f}"
    v, n = d['validation_documents'], len(d['top_share'])
    return [f"Document probabilities on the {n} PDFs ({min(d['n_chunks'])}-{max(d['n_chunks'])} chunks; n = {n}, too few for a calibration "
            f"figure to be more than a sign): ECE of the chunk share {d['ece_share']:.3f} (top shares {rng('share')}); one temperature for "
            f"every length (t = {d['one_t']}, the design before issue 28 item 3): ECE {d.get('ece_one t', float('nan')):.3f} (top {rng('one t') if 'top_one t' in d else '?'}); "
            f"calibrated with the saved temperature t = a + b ln n, [a, b] = {d['doc_temperature']}: ECE {d['ece_by length']:.3f} "
            f"(top probabilities {rng('by length')}). Leave-one-PDF-out, the design (one t or t by length) chosen by log-loss on the "
            f"other {n - 1} PDFs: ECE {d['ece_loo']:.3f}. On the validation pseudo-documents (n = {v.get('n')}, a second draw): ECE of the "
            f"share {v.get('ece_share', float('nan')):.3f}, one t {v.get('ece_one_t', float('nan')):.3f}, t by length {v.get('ece', float('nan')):.3f}.", '']

def main():
    ap = argparse.ArgumentParser(); ap.add_argument('--out', default=str(Path(__file__).parent/'_work'/'generalization'))
    ap.add_argument('--keep', action='store_true', help='resume the run folder instead of starting over')
    ap.add_argument('--quick', action='store_true', help='the default predictor from base embeddings; no transformer training')
    ap.add_argument('--transformers', action='store_true', help='also train the HF classifier and fine-tune the embeddings (train --classifier --fine-tune)')
    a = ap.parse_args()
    from ai_standards.sample import shared_data_dir
    from ai_standards.chunking import process_documents
    from ai_standards.evaluation import paired_comparison, paired_cells
    data_dir = shared_data_dir()
    if data_dir is None: sys.exit('NIST data not found: set AI_STANDARDS_DATA (see ../shared/data/README.md); nothing measured')
    if a.quick: res, models, chunker, steps, train_min, peak = quick(data_dir)
    else: res, models, chunker, steps, train_min, peak = full(a, data_dir)
    from sklearn.metrics import f1_score
    rw_pred, rw_truth = reworded_check(data_dir)
    rw_right = {n: [p == t for p, t in zip(v, rw_truth)] for n, v in rw_pred.items()}
    checks = {'0. SP 800-53 training rows, grouped 5-fold CV': recipe_cv(data_dir),
              '0b. SP 800-53 training rows, known controls reworded (statement learnt, discussion scored)': {
                  n: dict(accuracy=float(np.mean(r)), macro_f1=float(f1_score(rw_truth, rw_pred[n], average='macro')), n=len(r))
                  | ({} if n.startswith('default') else dict(paired=paired_comparison(rw_right['default predictor (pool)'], r)))
                  for n, r in rw_right.items()},
              '1. SP 800-53 test controls': {r['model']: {k: v for k, v in r.items() if k != 'model'} | dict(n=res['n']) for r in res['results']}}
    pdfs = process_documents([data_dir/'pdfs'], chunker, manifest=data_dir/'pdfs'/'manifest.csv', progress=False)
    truth = [d['label'] for d in pdfs]
    csf = [json.loads(l) for l in open(data_dir/'crosswalks'/'csf2_to_sp800_53r5.jsonl')]
    fams = [{x.split('-')[0].upper() for x in r['sp800_53r5']} for r in csf]
    pdf_res, csf_res, timing, items = {}, {}, {}, {}
    for name, m in models.items():
        t1 = time.time(); shares = []; got = doc_labels(m, pdfs, shares)
        right = [g == y for g, y in zip(got, truth)]
        pdf_res[name] = dict(accuracy=float(np.mean(right)), right=int(sum(right)), n=len(truth), predicted=dict(zip([Path(d['source']).name for d in pdfs], got)))
        if name.startswith('default'): pdf_res[name] |= document_calibration(m, np.stack(shares), [len(d['chunks']) for d in pdfs], truth, got)
        pred = [str(m.classes_[j]) for j in np.asarray(m.predict_proba([r['text'] for r in csf])).argmax(1)]
        csf_right = [p in f for p, f in zip(pred, fams)]
        csf_res[name] = dict(accuracy=float(np.mean(csf_right)), n=len(csf))
        timing[name] = round(time.time() - t1, 1); items.setdefault('pdf', {})[name], items.setdefault('csf', {})[name] = right, csf_right
    for key, rows in (('pdf', pdf_res), ('csf', csf_res)):  # each baseline paired with the default, item by item
        first = next(v for k, v in items[key].items() if k.startswith('default'))
        for k, v in items[key].items():
            if not k.startswith('default'): rows[k]['paired'] = paired_comparison(first, v)
    checks['2. 17 NIST PDFs (document label)'], checks['3. CSF 2.0 subcategories (linked family)'] = pdf_res, csf_res
    md = ['# Generalization: the default predictor against the baselines on differently worded text', '',
          ('Quick mode (no transformer training): ' if a.quick else 'Whole pipeline on SP 800-53 Rev 5 (' + ('--classifier --fine-tune' if a.transformers else 'default settings') + ', cold embedding cache): ') + f'{train_min:.1f} min, process peak {peak:.0f} MB, {os.cpu_count()} CPU cores.',
          'Per step (seconds / peak MB after the step): ' + ', '.join(f"{k} {v['seconds']:.0f}s/{v['summary'].get('peak_rss_mb', '?')}MB" for k, v in steps.items()),
          '', f"Default predictor: pool weights {res.get('weights')} ({res.get('embedding_source')} embeddings), fitted on validation; "
          f"test ECE {res.get('ece') if res.get('ece') is None else round(res['ece'], 3)}; saved model learned from {res.get('trained_on')}.", '']
    pdf_default = next(v for k, v in pdf_res.items() if k.startswith('default'))
    if 'ece_share' in pdf_default: md += document_lines(pdf_default)
    for check, rows in checks.items():
        n, cv = next(iter(rows.values()))['n'], 'folds' in next(iter(rows.values()))
        md += [f'## {check} (n = {n})', '']
        if cv:
            md += ['Each fold: the recipe fitted on the other folds as the pipeline fits it (heads on training rows, pool weights on a',
                   'validation carve), the baselines on the same training rows; scored per document (record). n counts every fold.', '',
                   '| model | accuracy (± s.e. over folds) | macro-F1 | per fold | folds the default predictor wins |', '|---|---|---|---|---|']
            md += [f"| {k} | {v['accuracy']:.3f} ± {v['se']:.3f} | {v['macro_f1']:.3f} | {' '.join(f'{x:.3f}' for x in v['folds'])} | "
                   + ('–' if k.startswith('default') else f"{v['default_wins']} of {len(v['folds'])}") + ' |' for k, v in rows.items()]
        else:
            md += ['| model | accuracy | macro-F1 | only the default right / only this right | McNemar p |', '|---|---|---|---|---|']
            md += [f"| {k} | {v['accuracy']:.3f} | " + (f"{v['macro_f1']:.3f}" if 'macro_f1' in v else '–') + f" | {paired_cells(v.get('paired'))} |"
                   for k, v in rows.items()]
        base = {k: v for k, v in rows.items() if 'LR' in k}; best = max(base, key=lambda k: base[k]['accuracy'])
        default = next(v for k, v in rows.items() if k.startswith('default'))
        p = base[best].get('paired')
        md += ['', f"Best baseline by accuracy: {best} {base[best]['accuracy']:.3f}; default predictor {default['accuracy']:.3f} "
               f"({default['accuracy'] - base[best]['accuracy']:+.3f})." + (f" Exact McNemar p = {p['p_value']:.3f} ({p['only_first_right']} "
               f"items only the default gets right, {p['only_second_right']} only the baseline)." if p else '')
               + (' n < 30: too few to rank models.' if n < 30 else ''), '']
    print('\n'.join(md))
    out = Path(__file__).parent/'results'; out.mkdir(exist_ok=True)
    name = 'generalization_quick' if a.quick else 'generalization_transformers' if a.transformers else 'generalization'
    (out/f'{name}.md').write_text('\n'.join(md) + '\n')
    (out/f'{name}.json').write_text(json.dumps(dict(checks=checks, train_minutes=round(train_min, 2), peak_rss_mb=round(peak),
        steps={k: dict(seconds=v['seconds'], peak_rss_mb=v['summary'].get('peak_rss_mb')) for k, v in steps.items()},
        weights=res.get('weights'), embedding_source=res.get('embedding_source'), ece=res.get('ece'), trained_on=res.get('trained_on'),
        predict_seconds=timing), indent=1, default=str))

if __name__ == '__main__': main()
