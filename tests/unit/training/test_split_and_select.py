from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from leadscore.config import TrainingSettings
from leadscore.scoring.estimators import RuleBaseline
from leadscore.scoring.metrics import expected_calibration_error
from leadscore.scoring.prepare import prepare
from leadscore.scoring.spec import FeatureSet
from leadscore.training.dataset import split_by_time
from leadscore.training.experiment import Comparison, best_candidate, calibrate


def _snapshots(n: int) -> pd.DataFrame:
    times = pd.date_range("2026-01-05", periods=n, freq="14D", tz="UTC")
    return pd.DataFrame({"pid": "P1", "event_timestamp": np.repeat(times, 2), "label": 0})


def test_split_purges_a_horizon_between_parts():
    settings = TrainingSettings(horizon_days=90, validation_snapshots=3, test_snapshots=3)
    split = split_by_time(_snapshots(24), settings)
    horizon = pd.Timedelta(days=90)
    train, val, test = (part["event_timestamp"] for part in (split.train, split.validation, split.test))
    assert test.nunique() == 3 and val.nunique() == 3 and train.nunique() > 0
    assert train.max() + horizon <= val.min()
    assert val.max() + horizon <= test.min()


def test_split_with_too_few_snapshots_says_so():
    with pytest.raises(ValueError, match="too few"):
        split_by_time(_snapshots(8), TrainingSettings(horizon_days=90))


def test_best_candidate_respects_the_metric_direction():
    results = {"a": {"pr_auc": 0.2, "brier": 0.03}, "b": {"pr_auc": 0.1, "brier": 0.02}}
    assert best_candidate(results, "pr_auc") == "a"
    assert best_candidate(results, "brier") == "b"
    with pytest.raises(ValueError, match="primary_metric"):
        best_candidate(results, "accuracy")


def test_prepare_fills_missing_counts_with_zero_and_nothing_else():
    features = FeatureSet(numeric=["web_visit_7d", "company_employees"], categorical=["industry"],
                          zero_when_missing=["web_visit_7d"])
    frame = pd.DataFrame({"web_visit_7d": [None, 2], "company_employees": [None, 10],
                          "industry": [None, "software"]})
    X = prepare(frame, features)
    assert list(X["web_visit_7d"]) == [0.0, 2.0]
    assert np.isnan(X.loc[0, "company_employees"])
    assert X.loc[0, "industry"] is None and X.loc[1, "industry"] == "software"


def test_calibration_on_validation_fixes_probabilities_and_keeps_the_ranking():
    """A rule baseline's points/100 overstate a 5% base rate; sigmoid calibration on a
    validation window brings the mean probability to the observed rate, order unchanged."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"visits": rng.integers(0, 10, 4000).astype(float)})
    y = (rng.random(4000) < 0.01 + 0.01 * X["visits"]).astype(int).to_numpy()
    rules = [{"feature": "visits", "op": ">=", "value": v, "points": 10} for v in range(1, 10)]
    model = RuleBaseline(rules, [], 60).fit(X, y)
    raw = model.predict_proba(X)[:, 1]
    calibrated = calibrate(model, X.iloc[:2000], y[:2000]).predict_proba(X.iloc[2000:])[:, 1]
    assert expected_calibration_error(y[2000:], raw[2000:]) > 0.2
    assert expected_calibration_error(y[2000:], calibrated) < 0.02
    assert (np.argsort(calibrated, kind="stable") == np.argsort(raw[2000:], kind="stable")).all()


def _candidate(test_pr_auc: float, validation_pr_auc: float) -> SimpleNamespace:
    return SimpleNamespace(metrics={"pr_auc": test_pr_auc}, validation_metrics={"pr_auc": validation_pr_auc})


def test_the_registered_candidate_is_chosen_on_the_validation_window_not_the_test_window():
    trained = {"best_on_test": _candidate(0.5, 0.2), "best_on_validation": _candidate(0.3, 0.4)}
    comparison = Comparison(client=None, inputs=None, trained=trained, uris={}, table=None)
    assert comparison.chosen(TrainingSettings(preferred_model="none")) == "best_on_validation"


def test_the_preferred_model_is_kept_unless_another_beats_it_on_validation_by_more_than_the_margin():
    training = TrainingSettings(preferred_model="lightgbm", selection_margin=0.005)
    within = {"lightgbm": _candidate(0.18, 0.176), "logistic_regression": _candidate(0.17, 0.1775)}
    beyond = {"lightgbm": _candidate(0.18, 0.170), "logistic_regression": _candidate(0.17, 0.1775)}
    assert Comparison(None, None, within, {}, None).chosen(training) == "lightgbm"
    assert Comparison(None, None, beyond, {}, None).chosen(training) == "logistic_regression"
    lower_is_better = TrainingSettings(primary_metric="brier", selection_margin=0.001)
    brier = {"lightgbm": SimpleNamespace(validation_metrics={"brier": 0.0250}),
             "logistic_regression": SimpleNamespace(validation_metrics={"brier": 0.0245})}
    assert Comparison(None, None, brier, {}, None).chosen(lower_is_better) == "lightgbm"
