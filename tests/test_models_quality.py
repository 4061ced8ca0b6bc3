"The default predictor: pooled, calibrated, refit on every row; metrics over the labels present; classify keeps record ids."
import json
import numpy as np
import pytest
from ai_standards.chunking import process_documents
from ai_standards.training import create_training_data, split_training_data, fit_ensemble, refit_ensemble, pool_proba
from ai_standards.evaluation import evaluate_model, subset

PROBES = {'Backups shall be encrypted and restoration shall be tested every quarter.': 'business_continuity',
          'The organization shall obtain consent before processing personal data of a data subject.': 'privacy',
          'Workers shall wear fall protection harnesses when working at height.': 'occupational_health_safety',
          'Electricity consumption of significant energy uses shall be metered monthly.': 'energy_management'}

@pytest.fixture(scope='module')
def base_model():
    from sentence_transformers import SentenceTransformer
    from ai_standards.models import default_model_path
    return SentenceTransformer(default_model_path(), device='cpu')

@pytest.fixture(scope='module')
def fitted(sample_pdfs, base_model):
    data = create_training_data(process_documents([sample_pdfs], progress=False), embed=False)
    splits = split_training_data(data)
    return data, splits, fit_ensemble(data, None, base_model, splits)

def test_clear_requirements_get_their_category_with_a_probability_that_means_something(fitted):
    _, _, ens = fitted
    p = ens.predict_proba(list(PROBES))
    assert [ens.classes_[j] for j in p.argmax(1)] == list(PROBES.values())
    assert (p.max(1) > 0.3).all(), p.max(1)  # flat probabilities (0.1 = chance over 10 classes) were the old failure

def test_pool_weights_come_from_validation_only(fitted):
    data, (tr, va, te), ens = fitted
    assert ens.validation['n'] == len(va) and {'tfidf', 'embedding'} <= set(ens.weights) <= {'tfidf', 'embedding', 'knn_embedding'}
    assert ens.weights['tfidf'] > 0 and ens.weights['embedding'] > 0  # both heads carry information on the sample corpus

def test_refit_learns_every_labeled_row(fitted):
    data, (tr, va, te), ens = fitted
    ens.embedding_source = 'base'
    full = refit_ensemble(ens, data)
    assert full.refit_rows == len(data['texts']) and full.weights == ens.weights
    assert full.embedding_source == 'base'  # the pipeline reloads the pool with the embedding model it was fitted with
    words = lambda rows: {w for i in rows for w in ens.tfidf.vectorizer.build_analyzer()(data['texts'][i]) if ' ' not in w}
    only_held_out = words(set(va) | set(te)) - words(tr)  # terms of held-out documents that no training row uses
    assert only_held_out and not only_held_out & set(ens.tfidf.vectorizer.vocabulary_)
    assert only_held_out <= set(full.tfidf.vectorizer.vocabulary_)

def test_document_probabilities_are_calibrated_on_validation_documents(fitted):
    _, _, ens = fitted
    from ai_standards.training import temperature_at
    d = ens.validation['documents']  # pseudo-documents of validation rows, a second draw from the one [a, b] was fitted on
    t = temperature_at(ens.doc_temperature, [2, 300])  # t = a + b ln n: grows with the number of chunks
    assert t[0] > 1 and t[1] >= t[0] and d['n'] > 0 and d['ece'] < d['ece_share'], d  # averaged shares are too modest

def test_document_calibration_known_answer():
    from ai_standards.training import calibrate_shares, document_ece
    assert calibrate_shares(np.array([.5, .25, .25]), 2.0) == pytest.approx(np.array([2 / 3, 1 / 6, 1 / 6]))
    shares, truth = np.array([[.62, .38], [.64, .36], [.27, .73], [.45, .55]]), [0, 0, 1, 0]
    # top shares .62 and .64 (bin .6-.7, both right), .73 (bin .7-.8, right), .55 (bin .5-.6, wrong)
    assert document_ece(shares, truth) == pytest.approx((2 * (1 - .63) + (1 - .73) + .55) / 4)
    assert document_ece(shares, truth, 50.0) < document_ece(shares, truth)  # sharpened towards 1

def test_pool_is_a_product_of_experts():
    flat, sure = np.array([[.5, .5]]), np.array([[.8, .2]])
    assert pool_proba(dict(a=flat, b=sure), dict(a=1, b=1)) == pytest.approx(np.array([[.8, .2]]))

class Fixed:
    "Fixed probabilities over three labels: known answers."
    classes_ = ['a', 'b', 'c']
    def predict_proba(self, texts):
        return np.array([[.85, .1, .05], [.3, .65, .05], [.1, .85, .05], [.2, .75, .05], [.1, .25, .65], [.95, .03, .02]])[:len(texts)]

SIX = dict(texts=list('uvwxyz'), labels=list('aabbba'), metadata=[dict(id=f'c{i}', doc_id=d) for i, d in enumerate('112223')])

def test_macro_average_over_present_labels_known_answer():
    r = evaluate_model(Fixed(), SIX)
    assert r['y_pred'] == list('abbbca') and r['accuracy'] == pytest.approx(4 / 6)
    assert r['macro_f1'] == pytest.approx((0.8 + 2 / 3) / 2)  # 'c' never occurs in the truth: not averaged in as a zero
    assert r['absent_labels'] == ['c'] and r['present_labels'] == ['a', 'b']
    assert r['macro_precision'] == pytest.approx((1 + 2 / 3) / 2) and r['macro_recall'] == pytest.approx(2 / 3)

def test_calibration_error_known_answer():
    r = evaluate_model(Fixed(), SIX)
    assert r['calibration']['ece'] == pytest.approx((2 * .65 + .25 + 2 * .15 + .05) / 6)
    d = evaluate_model(Fixed(), SIX, level='document')
    assert (d['ids'], d['y_pred'], d['n']) == (['1', '2', '3'], list('aba'), 3) and 'too few' in d['warning']

def test_classify_keeps_jsonl_ids_and_fields(fitted, tmp_path):
    from ai_standards.pipeline import AIStandardsTrainer
    _, _, ens = fitted
    f = tmp_path/'reqs.jsonl'
    f.write_text('\n'.join(json.dumps(dict(id=f'REQ-{i}', owner='ops', text=t)) for i, t in enumerate(PROBES)) + '\n')
    t = AIStandardsTrainer(); t.ensemble = ens
    res = t.classify([f])
    assert [r['id'] for r in res] == ['REQ-0', 'REQ-1', 'REQ-2', 'REQ-3']
    assert all(r['fields']['owner'] == 'ops' for r in res) and [r['label'] for r in res] == list(PROBES.values())

def test_every_cpu_backend_stays_within_the_quality_gate():
    from ai_standards.models import Embedder, TorchEncoder, QUALITY_TEXTS
    texts = QUALITY_TEXTS + list(PROBES)
    fp32 = Embedder(backend='torch', cache=False, device='cpu')
    ref = fp32.sentence_transformer.encode(texts, normalize_embeddings=True)  # sentence-transformers' own fp32 encode
    assert (fp32.generate_embeddings(texts) * ref).sum(1).min() >= 0.9999  # the fused fp32 forward: float rounding only
    assert isinstance(fp32._fast[False], TorchEncoder) and fp32._fast[False].fused
    for backend in ('torch-bf16', 'onnx-int8', 'auto'):
        e = Embedder(backend=backend, cache=False, device='cpu')
        assert (e.generate_embeddings(texts) * ref).sum(1).min() >= 0.99, backend
    fast = Embedder(backend='torch-bf16', cache=False, device='cpu')
    fast.generate_embeddings(texts[:1])
    assert isinstance(fast._fast[True], TorchEncoder)  # bf16 on CPU runs with weights cast once, not under autocast

def test_embedder_methods_are_methods_not_module_api():
    from ai_standards import models
    assert 'generate_embeddings' not in models.__all__ and callable(models.Embedder.generate_embeddings)
    assert isinstance(models.Embedder.__dict__['dimension'], property)

def test_bf16_kernels_run_where_the_cpu_has_them_and_torch_elsewhere(monkeypatch, tmp_path):
    import torch
    from ai_standards import models
    from ai_standards.models import Embedder, TorchEncoder, QUALITY_TEXTS
    st = Embedder(backend='torch', cache=False, device='cpu').sentence_transformer
    runs_here = models._KERNEL_CPU_FLAGS <= models._cpu_flags() and models._build_kernels(32) is not None
    enc = TorchEncoder(st)  # bf16
    assert enc.kernels == ('avx512-bf16 kernels' if runs_here else 'torch')
    assert TorchEncoder(st, dtype=torch.float32).kernels == 'torch'  # the kernels are bf16 only
    monkeypatch.setenv('AI_STANDARDS_KERNELS', 'torch')
    off = TorchEncoder(st)
    assert off.kernels == 'torch'
    assert (enc.encode(QUALITY_TEXTS) * off.encode(QUALITY_TEXTS)).sum(1).min() >= 0.999
    monkeypatch.delenv('AI_STANDARDS_KERNELS')
    monkeypatch.setattr(models, '_BF16_KERNELS', {})  # a fresh process on a machine whose compiler refuses the flags
    monkeypatch.setenv('AI_STANDARDS_CACHE', str(tmp_path)); monkeypatch.setenv('CC', 'false')
    broken = TorchEncoder(st)
    assert broken.kernels == 'torch' and not list(tmp_path.rglob('*.so'))
    assert (broken.encode(QUALITY_TEXTS) * off.encode(QUALITY_TEXTS)).sum(1).min() >= 0.9999
