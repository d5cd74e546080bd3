import numpy as np
import pandas as pd
import pytest

from leadscore.config import TrainingSettings
from leadscore.training.dataset import split_by_time
from leadscore.training.experiment import FeatureSet, best_candidate, prepare


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
