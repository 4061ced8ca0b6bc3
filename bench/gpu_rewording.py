"""The transformer path on CUDA (issue 28): mixed precision, the OOM back-off, and the classifier and embedding fine-tune
measured on the two validation regimes. Written to run once on a lent GPU machine (see bench/results/gpu_rewording.md).

Data: SP 800-53 Rev 5 records (one text per record, the tokenizer cuts at 256 tokens; no chunking on that machine).
- regime R (known controls reworded): fit on the statements of the 759 records outside the test split; the guidance rows
  are cut into two grouped halves (StratifiedGroupKFold(2, shuffle, seed 0), as bench_rewording.py cuts them); one half
  picks the classifier's epoch (or the fine-tune's guard and the pool weights), the other is scored; then the halves swap,
  so every guidance row is scored once.
- the test split (new controls): the classifier fitted on the training records' text, epoch picked on the pipeline's
  grouped validation carve, scored on the 248 test records.

Run there: python bench/gpu_rewording.py DATA.jsonl OUT_DIR
"""
import json, os, sys, time
from pathlib import Path
import numpy as np

def data_of(texts, labels, meta, names):
    ids = {l: i for i, l in enumerate(names)}
    return dict(texts=list(texts), labels=list(labels), label_ids=[ids[l] for l in labels], metadata=list(meta),
                label_map=dict(labels=names), embeddings=None, n_unlabeled=0)

def meta(r, split=None): return dict(id=r['id'], doc_id=r['id'], title=r['title'], heading=r['title'], group=r['parent'] or r['id'], split=split)

def main(src, out):
    import torch
    from sklearn.model_selection import StratifiedGroupKFold
    from ai_standards import training as T
    out, work = Path(out), Path(os.environ.get('WORK', '/tmp/gpu_rewording'))  # checkpoints stay out of OUT
    out.mkdir(parents=True, exist_ok=True); res = dict(started=time.strftime('%H:%M:%S'))
    smoke, dev = bool(os.environ.get('SMOKE')), T.pick_device()  # SMOKE=1: a few records, one epoch (a CPU check of the script)
    res['env'] = dict(torch=torch.__version__, cuda=torch.cuda.is_available(), device=torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu',
                      bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(), precision_flags=T._precision_flags(dev))
    print(res['env'], flush=True)
    recs = [json.loads(l) for l in open(src)]; names = sorted({r['family'] for r in recs})
    keep = [r for r in recs if r['suggested_split'] != 'test'][:120 if smoke else None]
    if smoke: recs = keep + [r for r in recs if r['suggested_split'] == 'test'][:40]
    E = 1 if smoke else int(os.environ.get('EPOCHS', 4))  # classifier epochs (the package's default is 4)
    y = np.array([names.index(r['family']) for r in keep]); groups = [r['parent'] or r['id'] for r in keep]
    halves = list(StratifiedGroupKFold(2, shuffle=True, random_state=0).split(keep, y, groups))
    n = len(keep)
    # R data: rows 0..n-1 statements, n..2n-1 guidance
    R = data_of([r['statement'] for r in keep] + [r['guidance'] for r in keep], [r['family'] for r in keep] * 2,
                [meta(r) for r in keep] * 2, names)

    # 1. OOM back-off: the first train() raises CUDA OOM; the batch must halve with accumulation, and training finish
    skip = os.environ.get('SKIP', '').split(',')  # steps to leave out (a CPU check of the others)
    real = T._weighted_trainer_class
    def oom_once():
        cls = real(); state = dict(raised=False)
        class OOMOnce(cls):
            def train(self, *a, **k):
                if not state['raised']: state['raised'] = True; raise torch.cuda.OutOfMemoryError('simulated')
                return super().train(*a, **k)
        return OOMOnce
    T._weighted_trainer_class = oom_once
    t0 = time.time()
    if 'oom' not in skip: c = T.train_classification_model(R, work/'oom', T.ClassifierConfig(epochs=1, batch_size=16), resume=False,
                                     splits=(list(range(min(200, n))), list(range(n, n + min(100, n))), []))
    T._weighted_trainer_class = real
    if 'oom' not in skip: res['oom_backoff'] = dict(batch_size=c['metrics']['batch_size'], accumulation=c['metrics']['gradient_accumulation_steps'],
                              device=c['metrics']['device'], seconds=round(time.time() - t0, 1))
    save = lambda: (out/'gpu_rewording.json').write_text(json.dumps(res, indent=1, default=str))  # after every step: a cut run keeps its figures
    print('oom', res.get('oom_backoff'), flush=True); save()

    # 2. classifier on regime R, both halves; mixed precision as the package sets it
    got, secs, clf_p = np.full(n, -1), [], []  # clf_p[k]: run k's probabilities on every guidance row (both halves)
    for k, (a, b) in enumerate(halves if 'clf_r' not in skip else []):
        t0 = time.time()
        c = T.train_classification_model(R, work/f'clf_r{k}', T.ClassifierConfig(epochs=E), resume=False,
                                         splits=(list(range(n)), [n + i for i in a], [n + i for i in b]))
        p = T.predict_proba(c['model'], c['tokenizer'], [R['texts'][n + i] for i in b]); got[b] = p.argmax(1); secs.append(time.time() - t0)
        clf_p.append(np.zeros((n, len(names)))); clf_p[-1][b] = p
        clf_p[-1][a] = T.predict_proba(c['model'], c['tokenizer'], [R['texts'][n + i] for i in a])  # the half that chose its epoch: pool weights
        res.setdefault('classifier_r_runs', []).append(dict(best_macro_f1_on_selection_half=c['metrics']['best_macro_f1'],
            seconds=round(secs[-1], 1), device=c['metrics']['device'], batch=c['metrics']['batch_size'],
            peak_gpu_mb=round(torch.cuda.max_memory_allocated() / 2**20) if torch.cuda.is_available() else None))
    from sklearn.metrics import f1_score
    res['classifier_R'] = dict(epochs=E, accuracy=float((got == y).mean()), macro_f1=float(f1_score(y, got, average='macro')), n=n,
                               right=(got == y).astype(int).tolist())
    print('classifier R', {k: v for k, v in res['classifier_R'].items() if k != 'right'}, flush=True); save()

    # 3. classifier on the test split (new controls), text = statement + guidance
    G = data_of([r['text'] for r in recs], [r['family'] for r in recs], [meta(r, r['suggested_split']) for r in recs], names)
    tr, va, te = T.split_training_data(G); t0 = time.time()
    if 'clf_g' not in skip: c = T.train_classification_model(G, work/'clf_g', T.ClassifierConfig(epochs=E), resume=False, splits=(tr, va, te))
    p = np.eye(len(names))[np.zeros(len(te), int)] if 'clf_g' in skip else T.predict_proba(c['model'], c['tokenizer'], [G['texts'][i] for i in te]); yt = np.array([G['label_ids'][i] for i in te])
    res['classifier_test'] = dict(accuracy=float((p.argmax(1) == yt).mean()), macro_f1=float(f1_score(yt, p.argmax(1), average='macro')),
                                  n=len(te), seconds=round(time.time() - t0, 1), per_epoch=None if 'clf_g' in skip else c['metrics']['validation'])
    print('classifier test', res['classifier_test'], flush=True); save()

    # 4. embedding fine-tune on regime R (triplets on the statements), then heads on base vs tuned vectors
    from bench_rewording import nearest_record
    from ai_standards.training import LinearHead, TfidfHead, encode, fit_pool_weights, pool_proba
    from sentence_transformers import SentenceTransformer
    base = SentenceTransformer(T.resolve_model(), device=dev); stm, gui = R['texts'][:n], R['texts'][n:]
    th = TfidfHead.fit(stm, y, len(names), 10.0).predict_proba(gui)
    figs = {}
    for k, (a, b) in enumerate(halves):
        t0 = time.time()
        ft = T.fine_tune_embedding_model(R, work/f'emb_r{k}', T.EmbeddingConfig(epochs=1 if smoke else 2), (list(range(n)), [n + i for i in a], []), resume=False)
        figs.setdefault('fine_tune_seconds', []).append(round(time.time() - t0, 1)); figs.setdefault('guard', []).append(ft['guard'])
        for name, m in (('base', base), ('tuned', ft['model'])):
            Xs, Xg = encode(m, stm), encode(m, gui)
            P = dict(tfidf=th, embedding=LinearHead.fit(Xs, y, len(names), 10.0).predict_proba(Xg),
                     knn=nearest_record(Xs, y, len(names))(Xg))
            if 'clf_r' not in skip: P['classifier'] = clf_p[k]
            combos = (('embedding',), ('knn',), ('tfidf', 'embedding'), ('tfidf', 'embedding', 'knn'))
            for combo in combos + ((('tfidf', 'embedding', 'knn', 'classifier'),) if 'clf_r' not in skip else ()):
                w = fit_pool_weights({v: P[v][a] for v in combo}, y[a])
                q = pool_proba({v: P[v][b] for v in combo}, w).argmax(1)
                figs.setdefault(f"{name}: {' + '.join(combo)}", np.full(n, -1))[b] = q
    res['fine_tune_R'] = {k: (dict(accuracy=float((v == y).mean()), macro_f1=float(f1_score(y, v, average='macro')), n=n,
                                   right=(v == y).astype(int).tolist())
                              if isinstance(v, np.ndarray) else v) for k, v in figs.items()}
    print('fine-tune R', json.dumps({k: {a: b for a, b in v.items() if a != 'right'} if isinstance(v, dict) else v
                                     for k, v in res['fine_tune_R'].items()}, default=str), flush=True); save()
    res['peak_gpu_mb'] = round(torch.cuda.max_memory_allocated() / 2**20) if torch.cuda.is_available() else None
    res['finished'] = time.strftime('%H:%M:%S'); save()

if __name__ == '__main__': main(*sys.argv[1:3])
