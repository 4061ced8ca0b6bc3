"Training data is refused with clear errors before training; evaluation figures equal hand-computed answers, chunk and document level."
import json
import numpy as np
import pytest
from ai_standards.chunking import process_documents
from ai_standards.training import create_training_data, split_training_data, TrainingDataError
from ai_standards.evaluation import evaluate_model, write_report, plot_confusion

@pytest.fixture(scope='module')
def processed(sample_pdfs): return process_documents([sample_pdfs], progress=False)

def test_bad_training_data(processed):
    unlabeled = [dict(d, chunks=[dict(c, label=None) for c in d['chunks']]) for d in processed[:2]]
    with pytest.raises(TrainingDataError, match=r'no labeled chunks \(\d+ unlabeled\)'): create_training_data(unlabeled, embed=False)
    one = [dict(d, chunks=[dict(c, label='only') for c in d['chunks']]) for d in processed[:3]]
    with pytest.raises(TrainingDataError, match="only one class \\('only'\\)"): create_training_data(one, embed=False)
    data = create_training_data(processed, embed=False)
    assert data['n_unlabeled'] == 0 and data['label_map']['labels'] == sorted(set(data['labels']))
    lonely = dict(data, metadata=[dict(m, group='g' if l == 'privacy' else m['group']) for m, l in zip(data['metadata'], data['labels'])])
    with pytest.raises(TrainingDataError, match="class 'privacy' has 1 document group"): split_training_data(lonely)
    with pytest.raises(TrainingDataError, match='differ in length'): split_training_data(dict(data, labels=data['labels'][:-1]))

def test_given_split_is_honoured(processed):
    marked = [dict(d, metadata=dict(d['metadata'], suggested_split='test' if i % 3 == 0 else 'train')) for i, d in enumerate(processed)]
    data = create_training_data(marked, embed=False)
    tr, va, te = split_training_data(data)
    assert {data['metadata'][i]['split'] for i in te} == {'test'} and not set(te) & (set(tr) | set(va))
    assert not {data['metadata'][i]['group'] for i in tr} & {data['metadata'][i]['group'] for i in va}

class Fixed:
    "A predictor with fixed class probabilities per text: the known-answer case below."
    classes_ = ['a', 'b', 'c']
    def __init__(self, proba:dict): self.proba = proba
    def predict_proba(self, texts): return np.array([self.proba[t] for t in texts])
    def predict(self, texts): return [self.classes_[j] for j in self.predict_proba(texts).argmax(1)]

# Six chunks of three documents, listed out of document order. Chunk argmax: a b | b b | c a (4 of 6 right).
# Document means: D1 (0.45, 0.55, 0) -> b (wrong: a), D2 (0.1, 0.7, 0.2) -> b, D3 (0.35, 0.1, 0.55) -> c (2 of 3 right).
CASE = [('t1', 'a', 'D1', (0.6, 0.4, 0.0)), ('t3', 'b', 'D2', (0.0, 0.9, 0.1)), ('t2', 'a', 'D1', (0.3, 0.7, 0.0)),
        ('t5', 'c', 'D3', (0.0, 0.2, 0.8)), ('t4', 'b', 'D2', (0.2, 0.5, 0.3)), ('t6', 'c', 'D3', (0.7, 0.0, 0.3))]

@pytest.fixture
def known():
    data = dict(texts=[t for t, *_ in CASE], labels=[l for _, l, *_ in CASE], metadata=[dict(id=t, doc_id=d) for t, _, d, _ in CASE])
    return Fixed({t: p for t, _, _, p in CASE}), data

def test_chunk_level_figures_are_the_hand_computed_ones(known, tmp_path):
    pred, data = known
    r = evaluate_model(pred, data, level='chunk')
    # per class (P, R, F1): a (1/2, 1/2, 1/2), b (2/3, 1, 4/5), c (1, 1/2, 2/3); two true items per class
    assert (r['n'], r['labels'], r['ids']) == (6, ['a', 'b', 'c'], ['t1', 't3', 't2', 't5', 't4', 't6'])
    assert r['y_pred'] == ['a', 'b', 'b', 'c', 'b', 'a'] and r['y_true'] == ['a', 'b', 'a', 'c', 'b', 'c']
    assert r['accuracy'] == pytest.approx(4/6) and r['micro_f1'] == pytest.approx(4/6)
    assert r['macro_precision'] == pytest.approx((1/2 + 2/3 + 1) / 3) and r['macro_recall'] == pytest.approx((1/2 + 1 + 1/2) / 3)
    assert r['macro_f1'] == pytest.approx((1/2 + 4/5 + 2/3) / 3) and r['weighted_f1'] == pytest.approx((1/2 + 4/5 + 2/3) / 3)
    assert r['report']['b']['precision'] == pytest.approx(2/3) and r['report']['c']['recall'] == pytest.approx(1/2)
    assert r['confusion_matrix'] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]  # rows: true a, b, c; columns: predicted

def test_document_level_groups_chunks_by_document(known, tmp_path):
    pred, data = known
    r = evaluate_model(pred, data, level='document')
    assert (r['n'], r['ids'], r['y_true'], r['y_pred']) == (3, ['D1', 'D2', 'D3'], ['a', 'b', 'c'], ['b', 'b', 'c'])
    # per class (P, R, F1): a (0, 0, 0), b (1/2, 1, 2/3), c (1, 1, 1)
    assert r['accuracy'] == pytest.approx(2/3) and r['macro_f1'] == pytest.approx((0 + 2/3 + 1) / 3)
    assert r['macro_precision'] == pytest.approx(1/2) and r['weighted_recall'] == pytest.approx(2/3)
    assert r['confusion_matrix'] == [[0, 1, 0], [0, 1, 0], [0, 0, 1]]
    write_report(tmp_path, dict(r, title='t', created='now', models={'fixed': r}), {'confusion_matrix': plot_confusion(r)})
    m = json.loads((tmp_path/'metrics.json').read_text())
    assert m['accuracy'] == pytest.approx(2/3) and m['macro_f1'] == pytest.approx(5/9)
    assert [json.loads(l) for l in open(tmp_path/'predictions.jsonl')] == \
           [dict(id='D1', true='a', pred='b'), dict(id='D2', true='b', pred='b'), dict(id='D3', true='c', pred='c')]
    html = (tmp_path/'report.html').read_text()
    assert 'data:image/png;base64,' in html and 'src="confusion' not in html
