"""The stacked account model served: the trees' raw score plus its people's log-odds, before the
calibration, on the fast path exactly as the scikit-learn model computes it; the start told as one
reason family whose contribution, with the others', sums to the logit; a live start."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import logit
from toy_model import FEATURES, SPECS, TIERS_FITTED, leads

from leadscore.config import ScoreSettings
from leadscore.features.catalog import PEOPLE_SCORES
from leadscore.scoring.explain import tree_contributions
from leadscore.scoring.prepare import prepare_for
from leadscore.scoring.spec import Offset
from leadscore.serving.scorer import Scorer, _LightGBMPath
from leadscore.training.experiment import calibrate, fit_model, offset_of
from leadscore.training.models import make_stacked
from leadscore.training.spec import scoring_spec

COLUMN = PEOPLE_SCORES.name


def _accounts(rows: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """The toy leads as accounts whose people's chance carries most of the signal."""
    frame, y = leads(rows, seed)
    rng = np.random.default_rng(seed + 10)
    chance = np.clip(0.03 + 0.25 * y * rng.random(rows) + 0.05 * rng.random(rows), 0, 1)
    chance[rng.random(rows) < 0.05] = 0.0  # no people scored: the model's edge keeps it finite
    return frame.assign(**{COLUMN: chance}), y


@pytest.fixture(scope="module")
def stacked() -> tuple[Scorer, pd.DataFrame]:
    (train, y_train), (val, y_val) = _accounts(3000, 0), _accounts(1000, 1)
    offset = Offset(column=COLUMN, lead_model="lead-propensity", lead_version="4", edge=1e-4, reference=0.0)
    X_train, X_val = (frame[FEATURES.all].assign(**{COLUMN: frame[COLUMN]}) for frame in (train, val))
    model = make_stacked(FEATURES.categorical, COLUMN, offset.edge, {"n_estimators": 120, "num_leaves": 7})
    model = calibrate(fit_model(model, X_train, y_train, X_val, y_val), X_val, y_val)
    scale = ScoreSettings(reference_probability=0.05, reference_score=50, points_to_double_odds=8)
    spec = scoring_spec("stacked", model, FEATURES, None, TIERS_FITTED, scale, horizon_days=90,
                        offset=offset_of(model, offset))
    return Scorer(model, spec, "9", [*SPECS, PEOPLE_SCORES]), val


def _columns(scorer: Scorer, frame: pd.DataFrame) -> dict:
    return {name: frame[name].to_numpy() for name in scorer.feature_names}


def test_the_fast_path_adds_the_start_to_the_trees_before_the_calibration(stacked):
    scorer, accounts = stacked
    assert isinstance(scorer.path, _LightGBMPath) and scorer.spec.offset.reference < 0
    fast = scorer.evaluate(_columns(scorer, accounts), len(accounts)).probability
    expected = scorer.model.predict_proba(prepare_for(accounts, scorer.spec))[:, 1]
    assert np.abs(fast - expected).max() < 1e-9
    plain, _ = scorer.path.predict(_columns(scorer, accounts), len(accounts))
    assert np.abs(plain - expected).max() < 1e-9


def test_the_reason_families_with_the_people_s_scores_sum_to_the_logit(stacked):
    scorer, accounts = stacked
    result = scorer.path.evaluate(_columns(scorer, accounts), len(accounts))
    by_family = scorer.families.sums(result.contrib).sum(axis=1) + result.expected
    a, b = scorer.spec.calibration.a, scorer.spec.calibration.b
    assert np.abs(-(a * by_family + b) - logit(result.probability)).max() < 1e-9
    trained = tree_contributions(scorer.model, prepare_for(accounts, scorer.spec))
    assert np.abs(trained[0] - result.contrib).max() < 1e-9  # as training explains it
    assert np.abs(trained[1] - result.expected).max() < 1e-9


def test_the_people_s_scores_are_one_reason_and_a_higher_chance_raises_the_score(stacked):
    scorer, accounts = stacked
    one = accounts.head(1)
    scores, told = [], []
    for chance in (0.02, 0.2, 0.6):
        record = scorer.score_records(["C1"], _columns(scorer, one.assign(**{COLUMN: chance})))[0]
        scores.append(record["probability"])
        reasons = record["reasons_up"] + record["reasons_down"]
        told += [reason["text"] for reason in reasons if reason["family"] == "people_scores"]
    assert scores == sorted(scores) and scores[0] < scores[-1]
    assert told[-1] == "its people's scores: 60% chance that one of them converts"
    assert len(told) == 3  # told once per answer, up or down


def test_an_account_without_people_online_starts_at_the_average_account_not_near_zero(stacked):
    """No people online to score is not "its people will not convert": the start is the average
    account's (the spec's reference), where a chance of 0 would start at log-odds(1e-4)."""
    scorer, accounts = stacked
    one = accounts.head(1)
    unknown = scorer.score_records(["C1"], _columns(scorer, one.assign(**{COLUMN: np.nan})))[0]
    average = 1 / (1 + np.exp(-scorer.spec.offset.reference))  # the chance whose log-odds is the reference
    typical = scorer.score_records(["C1"], _columns(scorer, one.assign(**{COLUMN: average})))[0]
    cold = scorer.score_records(["C1"], _columns(scorer, one.assign(**{COLUMN: 0.0})))[0]
    assert unknown["probability"] == pytest.approx(typical["probability"], abs=1e-9)
    assert unknown["probability"] > 5 * cold["probability"]
    assert "people_scores" not in [r["family"] for r in unknown["reasons_up"] + unknown["reasons_down"]]
    expected = scorer.model.predict_proba(prepare_for(one.assign(**{COLUMN: np.nan}), scorer.spec))[:, 1]
    assert unknown["probability"] == pytest.approx(expected[0], abs=1e-6)  # as scikit-learn (rounded)
