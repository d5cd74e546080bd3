"""A toy lead model for the serving tests: a calibrated LightGBM or logistic regression on
five features (missing values, an unseen category, a real signal), with rules and tiers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadscore.config import ScoreSettings
from leadscore.features.catalog import FeatureSpec
from leadscore.scoring.prepare import prepare
from leadscore.scoring.spec import FeatureSet, RuleSet, TierTable
from leadscore.serving.scorer import Scorer
from leadscore.training.experiment import calibrate, fit_model
from leadscore.training.models import make_lightgbm, make_logistic
from leadscore.training.spec import scoring_spec
from leadscore.training.tiers import fit_tiers

FEATURES = FeatureSet(numeric=["visits_30d", "employees", "opens_90d"],
                      categorical=["seniority", "industry"], zero_when_missing=["visits_30d", "opens_90d"])
SPECS = [FeatureSpec("visits_30d", "int", "", "visited the site {value} times in the last 30 days"),
         FeatureSpec("employees", "int", "", "works at a company with {value} employees"),
         FeatureSpec("opens_90d", "int", "", "opened {value} emails in the last 90 days"),
         FeatureSpec("seniority", "string", "", "seniority: {value}"),
         FeatureSpec("industry", "string", "", "industry: {value}")]
RULES = RuleSet.model_validate({
    "fit": [{"feature": "employees", "op": ">=", "value": 1000, "points": 20, "reason": "big company"},
            {"feature": "seniority", "op": "in", "value": ["vp", "c_level"], "points": 30,
             "reason": "senior"}],
    "interest": [{"feature": "opens_90d", "op": ">=", "value": 2, "points": 10, "reason": "opens"},
                 {"feature": "visits_30d", "op": ">=", "value": 1, "points": 20, "reason": "visits"}],
    "mql_threshold": 60})
TIERS = TierTable.model_validate({
    "tiers": [{"name": "high-value", "when": {"score_min": {"top_share": 0.05}, "fit_score_min": 40}},
              {"name": "high-potential", "when": {"score_min": {"top_share": 0.15}}},
              {"name": "to-verify", "when": {"interest_score_min": 30, "completeness_max": 0.6}},
              {"name": "to-nurture", "when": {"fit_score_min": 30}},
              {"name": "low-conversion", "when": {}}],
    "routing": {name: {"action": name, "channel": "crm", "description": name}
                for name in ["high-value", "high-potential", "to-verify", "to-nurture", "low-conversion"]}})


def leads(rows: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
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


def make_scorer(kind: str) -> tuple[Scorer, pd.DataFrame]:
    train, y_train = leads(3000, 0)
    val, y_val = leads(1000, 1)
    X_train, X_val = prepare(train, FEATURES), prepare(val, FEATURES)
    model = (make_lightgbm(FEATURES.categorical, {"n_estimators": 120, "num_leaves": 7})
             if kind == "lightgbm" else make_logistic(FEATURES.numeric, FEATURES.categorical))
    model = calibrate(fit_model(model, X_train, y_train, X_val, y_val), X_val, y_val)
    scale = ScoreSettings(reference_probability=0.05, reference_score=50, points_to_double_odds=8)
    spec = scoring_spec(kind, model, FEATURES, RULES, TIERS_FITTED, scale, horizon_days=90)
    return Scorer(model, spec, "7", SPECS), val


def fitted_tiers() -> TierTable:
    validation = pd.DataFrame({"score": np.linspace(0, 100, 200), "fit_score": 50.0, "interest_score": 0.0,
                               "completeness": 1.0})
    return fit_tiers(TIERS, validation)


TIERS_FITTED = fitted_tiers()
