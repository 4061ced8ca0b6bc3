"""Training quality on SP 800-53 Rev 5 (suggested split: train -> test, whole controls unseen): the fine-tuned classifier
against TF-IDF + logistic regression and frozen base embeddings + logistic regression, all trained on the same split in this run;
kNN macro-F1 of the fine-tuned embeddings against the base model; wall time and peak memory of the whole training.

Scores are per control (a record's chunks are classified and their probabilities averaged), on the 248 test controls.
Run: python bench/bench_training.py [--epochs N]   -> bench/results/training.{md,json}
"""
import argparse, json, os, resource, sys, time
from pathlib import Path
import numpy as np

def main():
    ap = argparse.ArgumentParser(); ap.add_argument('--epochs', type=float, default=4); ap.add_argument('--emb-epochs', type=float, default=1)
    ap.add_argument('--out', default=str(Path(__file__).parent/'_work'/'training'))
    a = ap.parse_args()
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from ai_standards.sample import shared_data_dir
    from ai_standards.chunking import process_documents
    from ai_standards.models import Embedder
    from ai_standards.training import (create_training_data, split_training_data, train_classification_model, ClassifierConfig,
                                       fine_tune_embedding_model, EmbeddingConfig, predict_proba, aggregate_by, knn_scores)
    data_dir = shared_data_dir()
    if data_dir is None: sys.exit('NIST data not found: set AI_STANDARDS_DATA (see ../shared/data/README.md); nothing measured')
    t_start = time.time()
    docs = process_documents([data_dir/'nist_sp800_53r5_controls.jsonl'], label_field='family', progress=False)
    data = create_training_data(docs)
    tr, va, te = split_training_data(data)
    names = data['label_map']['labels']
    doc_label = {d['doc_id']: d['label'] for d in docs}
    doc_text = {d['doc_id']: '\n'.join(c['text'] for c in d['chunks']) for d in docs}
    split_of = {d['doc_id']: d['metadata']['suggested_split'] for d in docs}
    train_docs = [d for d in doc_text if split_of[d] == 'train']; test_docs = [d for d in doc_text if split_of[d] == 'test']
    y_train, y_test = [doc_label[d] for d in train_docs], [doc_label[d] for d in test_docs]
    rows, probs = [], {}
    def score(name, pred, extra=None):
        rows.append(dict(model=name, accuracy=round(accuracy_score(y_test, pred), 4), macro_f1=round(f1_score(y_test, pred, average='macro'), 4), **(extra or {})))
    # baselines, on whole records like the README's reference figure
    tfidf = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
    lr = LogisticRegression(max_iter=2000, C=10).fit(tfidf.fit_transform([doc_text[d] for d in train_docs]), y_train)
    probs['tfidf'] = lr.predict_proba(tfidf.transform([doc_text[d] for d in test_docs]))
    score('TF-IDF (1-2 grams) + logistic regression', lr.classes_[probs['tfidf'].argmax(1)])
    emb = Embedder()
    def doc_emb(model_embed, ids):  # mean of a record's chunk embeddings, renormalized
        keys, e = aggregate_by([data['metadata'][i]['doc_id'] for i in range(len(data['texts']))], model_embed(data['texts']))
        pos = {k: j for j, k in enumerate(keys)}; x = e[[pos[d] for d in ids]]
        return x / np.linalg.norm(x, axis=1, keepdims=True)
    base_embed = lambda texts: emb.generate_embeddings(texts)
    lr_e = LogisticRegression(max_iter=3000, C=10).fit(doc_emb(base_embed, train_docs), y_train)
    probs['frozen'] = lr_e.predict_proba(doc_emb(base_embed, test_docs))
    score('frozen base embeddings + logistic regression', lr_e.classes_[probs['frozen'].argmax(1)])
    # fine-tuned classifier
    t0 = time.time()
    clf = train_classification_model(data, Path(a.out)/'classifier', ClassifierConfig(epochs=a.epochs), resume=False)
    t_clf = time.time() - t0
    p = predict_proba(clf['model'], clf['tokenizer'], [data['texts'][i] for i in te])
    keys, pd_ = aggregate_by([data['metadata'][i]['doc_id'] for i in te], p)
    order = [keys.index(d) for d in test_docs]; probs['clf'] = pd_[order]
    score(f'fine-tuned classifier ({a.epochs:g} epochs, chunk probabilities averaged per control)', [names[j] for j in probs['clf'].argmax(1)],
          dict(seconds=round(t_clf), best_val_macro_f1=round(clf['metrics']['best_macro_f1'], 4)))
    assert list(lr.classes_) == names == list(lr_e.classes_)
    for w in (0.5,):
        ens = w * probs['clf'] + (1 - w) * probs['tfidf']
        score(f'ensemble: {w:g} x fine-tuned + {1-w:g} x TF-IDF probabilities', [names[j] for j in ens.argmax(1)])
    # embedding fine-tune: kNN macro-F1 on test records, base vs tuned
    t0 = time.time()
    tuned = fine_tune_embedding_model(data, Path(a.out)/'embedding', EmbeddingConfig(epochs=a.emb_epochs), (tr, va, te), resume=False)
    t_emb = time.time() - t0
    tuned_embed = lambda texts: tuned['model'].encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    knn_base = knn_scores(doc_emb(base_embed, train_docs), y_train, doc_emb(base_embed, test_docs), y_test)
    knn_tuned = knn_scores(doc_emb(tuned_embed, train_docs), y_train, doc_emb(tuned_embed, test_docs), y_test)
    total = time.time() - t_start
    peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    best_base = max(r['macro_f1'] for r in rows[:2])
    cols = ['model', 'accuracy', 'macro_f1']
    table = '\n'.join(['| ' + ' | '.join(cols) + ' |', '|---|---|---|'] + ['| ' + ' | '.join(str(r[c]) for c in cols) + ' |' for r in rows])
    table += (f"\n\nkNN (k=5) on test controls, macro-F1: base embeddings {knn_base['macro_f1']:.4f}, fine-tuned {knn_tuned['macro_f1']:.4f} "
              f"(accuracy {knn_base['accuracy']:.4f} -> {knn_tuned['accuracy']:.4f}); forgetting guard kept alpha={tuned['guard']['alpha']}, "
              f"plain retrieval nDCG@10 {tuned['guard'].get('base_plain_ndcg10', 0):.4f} -> {tuned['guard'].get('plain_ndcg10', 0):.4f}.\n"
              f"Best baseline macro-F1 {best_base:.4f}; target {best_base + 0.05:.4f}.\n"
              f"Whole run (chunking, embeddings, both baselines, classifier {t_clf:.0f}s, embedding fine-tune {t_emb:.0f}s): {total/60:.1f} min, "
              f"peak memory {peak:.0f} MB, {os.cpu_count()} CPU cores.")
    print(table)
    res = Path(__file__).parent/'results'; res.mkdir(exist_ok=True)
    (res/'training.md').write_text('# Training benchmark: SP 800-53 Rev 5, suggested split\n\n' + table + '\n')
    (res/'training.json').write_text(json.dumps(dict(rows=rows, knn_base=knn_base, knn_tuned=knn_tuned, guard=tuned['guard'],
                                                     minutes=round(total/60, 2), peak_rss_mb=round(peak), classifier=clf['metrics']), indent=1, default=str))

if __name__ == '__main__': main()
