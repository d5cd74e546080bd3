"""The scorer: the LightGBM matrix path gives exactly what the scikit-learn pipeline gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from toy_model import FEATURES, SPECS, make_scorer

from leadscore.scoring.prepare import prepare
from leadscore.serving.schemas import ScoreResponse
from leadscore.serving.scorer import Scorer, _GeneralPath, _LightGBMPath


def _responses(scorer: Scorer, pids: list, columns: dict) -> list[ScoreResponse]:
    """The scorer's records, validated against the API's response model."""
    return [ScoreResponse.model_validate(record) for record in scorer.score_records(pids, columns)]


def _score(scorer: Scorer, frame: pd.DataFrame) -> list[ScoreResponse]:
    columns = {name: frame[name].to_numpy() for name in scorer.feature_names}
    return _responses(scorer, list(frame["pid"]), columns)


@pytest.fixture(scope="module")
def lightgbm() -> tuple[Scorer, pd.DataFrame]:
    return make_scorer("lightgbm")


def test_a_calibrated_lightgbm_takes_the_matrix_path_and_logistic_the_general_one(lightgbm):
    scorer, _ = lightgbm
    assert isinstance(scorer.path, _LightGBMPath)
    assert isinstance(make_scorer("logistic_regression")[0].path, _GeneralPath)


def test_the_matrix_path_equals_the_pipeline_in_probability_parts_tiers_and_reasons(lightgbm):
    scorer, leads = lightgbm
    leads = pd.concat([leads, leads.head(3).assign(industry="never-seen-industry", seniority=None)])
    general = Scorer(scorer.model, scorer.spec, "7", SPECS)
    general.path = _GeneralPath(scorer.model, scorer.spec)
    fast, slow = _score(scorer, leads), _score(general, leads)
    expected = scorer.model.predict_proba(prepare(leads, FEATURES))[:, 1]
    assert np.allclose([r.probability for r in fast], expected.round(6), atol=1e-6)
    assert [r.model_dump() for r in fast] == [r.model_dump() for r in slow]
    assert len({r.tier for r in fast}) >= 3  # the comparison covers several tiers


def test_reasons_are_at_most_the_limit_each_way_strongest_first_and_in_words(lightgbm):
    scorer, leads = lightgbm
    for response in _score(scorer, leads.head(50)):
        assert len(response.reasons_up) <= 5 and len(response.reasons_down) <= 5
        assert all(r.impact > 0 for r in response.reasons_up)
        assert all(r.impact < 0 for r in response.reasons_down)
        impacts = [abs(r.impact) for r in response.reasons_up]
        assert impacts == sorted(impacts, reverse=True)
    visitor = leads[leads["visits_30d"] >= 3].head(1)
    texts = [r.text for r in _score(scorer, visitor)[0].reasons_up]
    assert any(t.startswith("visited the site") and "in the last 30 days" in t for t in texts)


def test_a_feature_row_with_missing_features_scores_like_unknown_values(lightgbm):
    scorer, _ = lightgbm
    sparse = _responses(scorer, [None], {"visits_30d": [4]})[0]
    full = _responses(scorer, [None], {"visits_30d": [4], "employees": [None], "opens_90d": [None],
                                         "seniority": [None], "industry": [None]})[0]
    assert sparse == full
    assert sparse.fit_score == 0 and sparse.interest_score == pytest.approx(100 * 20 / 30, abs=0.1)


def test_fit_and_interest_scores_are_the_share_of_rule_points(lightgbm):
    scorer, _ = lightgbm
    row = {"employees": [5000], "seniority": ["vp"], "opens_90d": [0], "visits_30d": [0]}
    response = _responses(scorer, ["P1"], row)[0]
    assert response.fit_score == 100.0 and response.interest_score == 0.0


def test_a_spec_that_does_not_fit_its_model_is_refused(lightgbm):
    scorer, _ = lightgbm
    shuffled = {name: levels[::-1] for name, levels in scorer.spec.levels.items()}
    with pytest.raises(ValueError, match="levels are not the model's"):
        Scorer(scorer.model, scorer.spec.model_copy(update={"levels": shuffled}), "8", SPECS)
    with pytest.raises(ValueError, match="no label horizon"):
        Scorer(scorer.model, scorer.spec.model_copy(update={"horizon_days": None}), "9", SPECS)


def test_rows_as_lists_score_as_the_same_rows_as_arrays_and_a_non_number_as_unknown(lightgbm):
    """The service hands the scorer lists of Python values (None when unknown), the batch job numpy
    columns: the records must not depend on which."""
    scorer, leads = lightgbm
    leads = leads.head(60)
    arrays = {name: leads[name].to_numpy() for name in scorer.feature_names}
    lists = {name: [None if pd.isna(value) else value for value in leads[name]]
             for name in scorer.feature_names}
    pids = list(leads["pid"])
    assert scorer.score_records(pids, lists) == scorer.score_records(pids, arrays)
    one = {name: values[:1] for name, values in lists.items()}
    assert scorer.score_records(pids[:1], {**one, "employees": ["many"]}) == \
        scorer.score_records(pids[:1], {**one, "employees": [None]})


@pytest.mark.parametrize("kind", ["lightgbm", "logistic_regression"])
def test_a_shadow_score_is_the_full_scores_probability_score_and_tier_without_reasons(kind):
    scorer, leads = make_scorer(kind)
    leads = pd.concat([leads, leads.head(3).assign(industry="never-seen-industry", seniority=None)])
    columns = {name: leads[name].to_numpy() for name in scorer.feature_names}
    pids, times = list(leads["pid"]), [f"2026-11-0{i % 9 + 1}" for i in range(len(leads))]
    full, shadow = scorer.score_records(pids, columns, times), scorer.shadow_records(pids, columns, times)
    keys = ["pid", "probability", "score", "tier", "model_version", "feature_timestamp"]
    assert [{k: r[k] for k in keys} for r in shadow] == [{k: r[k] for k in keys} for r in full]
    assert all(r["reasons_up"] == r["reasons_down"] == [] for r in shadow)
    assert len({r["tier"] for r in shadow}) >= 3
