"""Training quality on SP 800-53 Rev 5 (suggested split: train -> test, whole controls unseen), through the whole pipeline
(`AIStandardsTrainer.train`, the same as `ai-standards train ... --label-field family`), with its default settings.

Compared in the same run on the same split, scored per control (a record's chunk probabilities averaged), on the test controls:
the default predictor (a pool of TF-IDF and embedding heads, weights fitted on validation), the fine-tuned classifier alone, TF-IDF (1-2 grams) + logistic
regression, and frozen base embeddings + logistic regression. Also kNN (k=5) macro-F1 of the fine-tuned embeddings against the
base model on the test controls, the forgetting guard's plain-retrieval figures, and wall time and peak memory of the whole run.

Run: python bench/bench_training.py   -> bench/results/training.{md,json}
"""
import argparse, json, os, resource, shutil, sys, time
from pathlib import Path
import numpy as np

def main():
    ap = argparse.ArgumentParser(); ap.add_argument('--out', default=str(Path(__file__).parent/'_work'/'training'))
    a = ap.parse_args()
    from ai_standards.sample import shared_data_dir
    from ai_standards.pipeline import AIStandardsTrainer, _base_model
    from ai_standards.training import aggregate_by, knn_scores
    data_dir = shared_data_dir()
    if data_dir is None: sys.exit('NIST data not found: set AI_STANDARDS_DATA (see ../shared/data/README.md); nothing measured')
    shutil.rmtree(a.out, ignore_errors=True)
    t0 = time.time()
    t = AIStandardsTrainer(run_dir=str(Path(a.out)/'run'), label_field='family', progress=False)
    res = t.train([data_dir/'nist_sp800_53r5_controls.jsonl'])
    total = time.time() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # kNN on test controls: mean chunk embedding per control, base vs fine-tuned, same split
    run = Path(a.out)/'run'
    d = json.loads((run/'01_prepare'/'training_data.json').read_text())
    tr, te = d['splits']['train'] + d['splits']['validation'], d['splits']['test']
    def per_control(model, rows):
        e = model.encode([d['texts'][i] for i in rows], batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
        keys, m = aggregate_by([d['metadata'][i]['doc_id'] for i in rows], e)
        lab = {d['metadata'][i]['doc_id']: d['labels'][i] for i in rows}
        return m / np.linalg.norm(m, axis=1, keepdims=True), [lab[k] for k in keys]
    knn = {}
    for name, model in (('base', _base_model(t)), ('fine-tuned', t.embedding_model)):
        (xtr, ytr), (xte, yte) = per_control(model, tr), per_control(model, te)
        knn[name] = knn_scores(xtr, ytr, xte, yte)
    steps = json.loads((run/'state.json').read_text())['steps']
    guard = json.loads((run/'05_embedding'/'figures.json').read_text())['guard']
    rows = res['results']
    best_base = max(r['macro_f1'] for r in rows if r['model'] in ('TF-IDF + LR', 'frozen embeddings + LR'))
    best_bal = max(r['macro_f1'] for r in rows if r['model'].endswith('LR (balanced)'))
    table = '\n'.join(['| model | accuracy | macro-F1 |', '|---|---|---|'] +
                      [f"| {r['model']} | {r['accuracy']:.4f} | {r['macro_f1']:.4f} |" for r in rows])
    table += (f"\n\n{res['n']} test controls ({res['level']} level). Pool weights (fitted on validation by maximum likelihood): {res['weights']}.\n"
              f"Best baseline macro-F1 {best_base:.4f}; target {best_base + 0.05:.4f}; default predictor {rows[0]['macro_f1']:.4f} "
              f"({rows[0]['macro_f1'] - best_base:+.4f} against the best baseline). Against the class-balanced baselines (best {best_bal:.4f}): "
              f"{rows[0]['macro_f1'] - best_bal:+.4f}.\n"
              f"kNN (k=5) on test controls, macro-F1: base embeddings {knn['base']['macro_f1']:.4f}, fine-tuned {knn['fine-tuned']['macro_f1']:.4f} "
              f"(accuracy {knn['base']['accuracy']:.4f} -> {knn['fine-tuned']['accuracy']:.4f}); forgetting guard kept alpha={guard['alpha']}, "
              f"plain retrieval nDCG@10 on validation {guard.get('base_plain_ndcg10', 0):.4f} (base) -> {guard.get('plain_ndcg10', 0):.4f}.\n"
              f"Whole pipeline (8 steps, seconds and process peak memory after the step: " +
              ', '.join(f"{k} {v['seconds']:.0f}s/{v['summary'].get('peak_rss_mb', '?')}MB" for k, v in steps.items()) +
              f"): {total/60:.1f} min, peak memory {peak:.0f} MB, {os.cpu_count()} CPU cores.")
    print(table)
    out = Path(__file__).parent/'results'; out.mkdir(exist_ok=True)
    (out/'training.md').write_text('# Training benchmark: SP 800-53 Rev 5, suggested split, whole pipeline\n\n' + table + '\n')
    (out/'training.json').write_text(json.dumps(dict(results=rows, weights=res['weights'], knn=knn, guard=guard, minutes=round(total/60, 2),
                                                     peak_rss_mb=round(peak), steps={k: v['seconds'] for k, v in steps.items()},
                                                     summaries={k: v['summary'] for k, v in steps.items()}), indent=1, default=str))

if __name__ == '__main__': main()
