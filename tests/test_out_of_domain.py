"""Text far from every training item (issue 31): English with common words, but about something else entirely, is
flagged by `classify` on the trained sample model instead of getting a confident label; in-domain text is not."""
import pytest
from ai_standards.pipeline import TrainedModel

RECIPE = ('Preheat the oven to 200 degrees. Rub the chicken with olive oil, garlic and a pinch of salt, then roast it '
          'for forty minutes until the skin is golden. Let it rest before carving, and serve it with roast potatoes '
          'and a green salad.')
MATCH = ('The home side took the lead after ten minutes when their striker headed in a corner. The visitors equalised '
         'just before half time, and a late penalty won the match for the home team in front of a sold-out stadium.')
IN_DOMAIN = 'Backups of critical systems shall be restored and tested at least quarterly.'

@pytest.fixture(scope='module')
def model(trained):
    return TrainedModel.from_models(trained[0])

def test_the_sample_model_keeps_a_far_threshold_set_on_validation_rows(model):
    ens = model.ensemble
    assert 'knn_embedding' in ens.knn and 0 < ens.far_cosine < 1, (set(ens.knn), ens.far_cosine)

def test_a_recipe_and_a_match_report_are_far_from_every_training_item(model):
    res = model.classify([RECIPE, MATCH])
    for r in res:
        assert (r['out_of_domain'] or '').startswith('far from every training item (nearest cosine '), r['out_of_domain']
        assert f"is above {model.ensemble.far_cosine:.2f})" in r['out_of_domain']

def test_an_in_domain_requirement_is_not_flagged(model):
    r, = model.classify([IN_DOMAIN])
    assert r['out_of_domain'] is None and r['label'] == 'business_continuity', (r['out_of_domain'], r['label'])

def test_a_model_saved_without_the_threshold_does_not_check(model):
    "An old model folder (no far_cosine in ensemble.json) loads with None: the recipe gets no far-from-training flag."
    old = model.ensemble.far_cosine
    try:
        model.ensemble.far_cosine = None
        r, = model.classify([RECIPE])
        assert r['out_of_domain'] is None or not r['out_of_domain'].startswith('far'), r['out_of_domain']
    finally: model.ensemble.far_cosine = old
