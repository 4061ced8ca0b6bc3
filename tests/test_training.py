"Training data is refused with clear errors before training; evaluation figures match scikit-learn on the saved predictions."
import json
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support
from ai_standards.chunking import process_documents
from ai_standards.training import create_training_data, split_training_data, TrainingDataError
from ai_standards.evaluation import evaluate_model, tfidf_baseline, write_report, subset, plot_confusion

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

def test_report_figures_match_sklearn(processed, tmp_path):
    data = create_training_data(processed, embed=False)
    tr, va, _ = split_training_data(data)
    train, test = subset(data, tr), subset(data, va)
    r = evaluate_model(tfidf_baseline(train['texts'], train['labels']), test)
    write_report(tmp_path, dict(r, title='t', created='now', models={'tfidf': r}), {'confusion_matrix': plot_confusion(r)})
    m = json.loads((tmp_path/'metrics.json').read_text())
    rows = [json.loads(l) for l in open(tmp_path/'predictions.jsonl')]
    y, p = [x['true'] for x in rows], [x['pred'] for x in rows]
    assert m['accuracy'] == pytest.approx(accuracy_score(y, p))
    assert m['macro_f1'] == pytest.approx(f1_score(y, p, average='macro', labels=m['labels'], zero_division=0))
    assert m['weighted_recall'] == pytest.approx(precision_recall_fscore_support(y, p, average='weighted', labels=m['labels'], zero_division=0)[1])
    html = (tmp_path/'report.html').read_text()
    assert 'data:image/png;base64,' in html and 'src="confusion' not in html
