"""The scorer: the LightGBM matrix path gives exactly what the scikit-learn pipeline gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.features.catalog import FeatureSpec
from leadscore.serving.scorer import Scorer, _GeneralPath, _LightGBMPath
from leadscore.training.experiment import FeatureSet, calibrate, fit_model, prepare
from leadscore.training.models import make_lightgbm, make_logistic
from leadscore.training.tiers import fit_tiers

FEATURES = FeatureSet(numeric=["visits_30d", "employees", "opens_90d"],
                      categorical=["seniority", "industry"], zero_when_missing=["visits_30d", "opens_90d"])
SPECS = [FeatureSpec("visits_30d", "int", "", "visited the site {value} times in the last 30 days"),
         FeatureSpec("employees", "int", "", "works at a company with {value} employees"),
         FeatureSpec("opens_90d", "int", "", "opened {value} emails in the last 90 days"),
         FeatureSpec("seniority", "string", "", "seniority: {value}"),
         FeatureSpec("industry", "string", "", "industry: {value}")]
RULES = {"fit": [{"feature": "employees", "op": ">=", "value": 1000, "points": 20, "reason": "big company"},
                 {"feature": "seniority", "op": "in", "value": ["vp", "c_level"], "points": 30,
                  "reason": "senior"}],
         "interest": [{"feature": "opens_90d", "op": ">=", "value": 2, "points": 10, "reason": "opens"},
                      {"feature": "visits_30d", "op": ">=", "value": 1, "points": 20, "reason": "visits"}],
         "mql_threshold": 60}
TIERS = {"tiers": [{"name": "high-value", "when": {"score_min": {"top_share": 0.05}, "fit_score_min": 40}},
                   {"name": "high-potential", "when": {"score_min": {"top_share": 0.15}}},
                   {"name": "to-verify", "when": {"interest_score_min": 30, "completeness_max": 0.6}},
                   {"name": "to-nurture", "when": {"fit_score_min": 30}},
                   {"name": "low-conversion", "when": {}}],
         "routing": {name: {"action": name, "channel": "crm", "description": name}
                     for name in ["high-value", "high-potential", "to-verify", "to-nurture",
                                  "low-conversion"]}}


def _leads(rows: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Leads with missing values everywhere, an unseen category, and a real signal."""
    rng = np.random.default_rng(seed)
    visits = rng.poisson(1.5, rows).astype(float)
    frame = pd.DataFrame({
        "pid": [f"P{seed}-{i}" for i in range(rows)],
        "visits_30d": np.where(rng.random(rows) < 0.2, np.nan, visits),
        "employees": np.where(rng.random(rows) < 0.1, np.nan, rng.lognormal(6, 1.5, rows).round()),
        "opens_90d": rng.poisson(2, rows).astype(float),
        "seniority": rng.choice(["vp", "manager", "staff", "c_level", None], rows),
        "industry": rng.choice(["software", "retail", "banking", None], rows),
    })
    size = np.log1p(frame["employees"].fillna(0))
    logit = -3 + 0.8 * visits + 0.6 * (frame["seniority"] == "vp") + 0.3 * size
    return frame, (rng.random(rows) < 1 / (1 + np.exp(-logit + 2))).astype(int)


def _scorer(kind: str) -> tuple[Scorer, pd.DataFrame]:
    train, y_train = _leads(3000, 0)
    val, y_val = _leads(1000, 1)
    X_train, X_val = prepare(train, FEATURES), prepare(val, FEATURES)
    model = (make_lightgbm(FEATURES.categorical, {"n_estimators": 120, "num_leaves": 7})
             if kind == "lightgbm" else make_logistic(FEATURES.numeric, FEATURES.categorical))
    model = calibrate(fit_model(model, X_train, y_train, X_val, y_val), X_val, y_val)
    metadata = {"model_kind": kind, "numeric": FEATURES.numeric, "categorical": FEATURES.categorical,
                "zero_when_missing": FEATURES.zero_when_missing, "rules": RULES, "horizon_days": 90,
                "score": {"reference_probability": 0.05, "reference_score": 50, "points_to_double_odds": 8}}
    return Scorer(model, {**metadata, "tiers": TIERS_FITTED}, "7", SPECS), val


def _fitted_tiers() -> dict:
    validation = pd.DataFrame({"score": np.linspace(0, 100, 200), "fit_score": 50.0, "interest_score": 0.0,
                               "completeness": 1.0})
    return fit_tiers(TIERS, validation)


TIERS_FITTED = _fitted_tiers()


@pytest.fixture(scope="module")
def lightgbm() -> tuple[Scorer, pd.DataFrame]:
    return _scorer("lightgbm")


def test_a_calibrated_lightgbm_takes_the_matrix_path_and_logistic_the_general_one(lightgbm):
    scorer, _ = lightgbm
    assert isinstance(scorer.path, _LightGBMPath)
    assert isinstance(_scorer("logistic_regression")[0].path, _GeneralPath)


def test_the_matrix_path_equals_the_pipeline_in_probability_parts_tiers_and_reasons(lightgbm):
    scorer, leads = lightgbm
    leads = pd.concat([leads, leads.head(3).assign(industry="never-seen-industry", seniority=None)])
    general = Scorer(scorer.model, scorer.metadata, "7", SPECS)
    general.path = _GeneralPath(scorer.model, scorer.features)
    fast, slow = scorer.score_frame(leads), general.score_frame(leads)
    expected = scorer.model.predict_proba(prepare(leads, FEATURES))[:, 1]
    assert np.allclose([r.probability for r in fast], expected.round(6), atol=1e-6)
    assert [r.model_dump() for r in fast] == [r.model_dump() for r in slow]
    assert len({r.tier for r in fast}) >= 3  # the comparison covers several tiers


def test_reasons_are_at_most_the_limit_each_way_strongest_first_and_in_words(lightgbm):
    scorer, leads = lightgbm
    for response in scorer.score_frame(leads.head(50)):
        assert len(response.reasons_up) <= 5 and len(response.reasons_down) <= 5
        assert all(r.impact > 0 for r in response.reasons_up)
        assert all(r.impact < 0 for r in response.reasons_down)
        impacts = [abs(r.impact) for r in response.reasons_up]
        assert impacts == sorted(impacts, reverse=True)
    visitor = leads[leads["visits_30d"] >= 3].head(1)
    texts = [r.text for r in scorer.score_frame(visitor)[0].reasons_up]
    assert any(t.startswith("visited the site") and "in the last 30 days" in t for t in texts)


def test_a_feature_row_with_missing_features_scores_like_unknown_values(lightgbm):
    scorer, _ = lightgbm
    sparse = scorer.score_columns([None], {"visits_30d": [4]})[0]
    full = scorer.score_columns([None], {"visits_30d": [4], "employees": [None], "opens_90d": [None],
                                         "seniority": [None], "industry": [None]})[0]
    assert sparse == full
    assert sparse.fit_score == 0 and sparse.interest_score == pytest.approx(100 * 20 / 30, abs=0.1)


def test_fit_and_interest_scores_are_the_share_of_rule_points(lightgbm):
    scorer, _ = lightgbm
    row = {"employees": [5000], "seniority": ["vp"], "opens_90d": [0], "visits_30d": [0]}
    response = scorer.score_columns(["P1"], row)[0]
    assert response.fit_score == 100.0 and response.interest_score == 0.0
