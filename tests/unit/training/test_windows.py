"""The retraining's windows and weights on a few snapshots: which snapshots a sliding window
keeps, how recency weights halve, and what the calibration window leaves to refit on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from leadscore.config import RetrainSettings, TrainingSettings
from leadscore.training.dataset import snapshot_times
from leadscore.training.windows import (
    calibration_until,
    matured,
    observed_weights,
    recency_weights,
    refit_split,
    window_times,
)

START = datetime(2026, 1, 5, tzinfo=UTC)
TIMES = [START + timedelta(days=14 * i) for i in range(10)]  # 10 snapshots, 126 days


def test_an_expanding_window_keeps_every_snapshot_and_a_sliding_one_the_last_days():
    assert window_times(TIMES, RetrainSettings()) == TIMES
    sliding = window_times(TIMES, RetrainSettings(window="sliding", window_days=28))
    assert sliding == TIMES[-3:]  # 28 days before the last snapshot, both ends in


@pytest.mark.parametrize("window, days", [("sliding", None), ("expanding", 30)])
def test_a_window_length_goes_with_a_sliding_window_only(window, days):
    with pytest.raises(ValueError, match="window_days"):
        RetrainSettings(window=window, window_days=days)


def test_recency_weights_halve_every_half_life_before_the_latest_snapshot():
    times = pd.Series([TIMES[-1], TIMES[-2], TIMES[-3], TIMES[-1]])
    assert np.allclose(recency_weights(times, 14), [1, 0.5, 0.25, 1])
    assert np.allclose(recency_weights(times, 28), [1, 2 ** -0.5, 0.5, 1])
    assert np.array_equal(recency_weights(times, None), np.ones(4))


def test_a_negative_whose_horizon_has_not_passed_weighs_the_share_observed():
    known_at = TIMES[-1]
    times = pd.Series([TIMES[-1] - timedelta(days=d) for d in (45, 45, 90, 200, 0)])
    labels = pd.Series([0, 1, 0, 0, 0])
    # half a horizon seen: a negative counts half, a positive is certain; matured: whole
    assert np.allclose(observed_weights(times, labels, known_at, 90), [0.5, 1, 1, 1, 0])


def test_the_candidates_are_compared_on_matured_snapshots_only():
    frame = _frame(TIMES)
    kept = matured(frame, TIMES[-1], horizon_days=28)
    assert sorted(kept["event_timestamp"].unique()) == TIMES[:-2]  # 28 days before the last, both in


def _frame(times: list[datetime]) -> pd.DataFrame:
    return pd.DataFrame({"event_timestamp": [t for t in times for _ in range(2)],
                         "label": [0, 1] * len(times)})


def test_the_refit_takes_every_snapshot_and_the_calibration_is_held_out_a_purge_before_the_latest():
    split = refit_split(_frame(TIMES), calibration_snapshots=2, purge_days=14)
    assert sorted(split.fit["event_timestamp"].unique()) == TIMES  # up to the cutoff, the window in
    assert sorted(split.calibration["event_timestamp"].unique()) == TIMES[-2:]
    # one snapshot step purged before the window: TIMES[-3] + 14 days is TIMES[-2]
    assert sorted(split.before_calibration["event_timestamp"].unique()) == TIMES[:-2]
    longer = refit_split(_frame(TIMES), calibration_snapshots=2, purge_days=30)
    assert sorted(longer.before_calibration["event_timestamp"].unique()) == TIMES[:-4]


def test_a_calibration_window_that_leaves_nothing_before_it_says_what_to_change():
    with pytest.raises(ValueError, match="calibration_snapshots"):
        refit_split(_frame(TIMES[:3]), calibration_snapshots=2, purge_days=90)


def test_the_held_out_calibration_is_applied_to_the_refit_on_every_row():
    from scipy.special import expit
    from sklearn.linear_model import LogisticRegression

    from leadscore.training.experiment import calibrate, calibrate_out_of_sample

    rng = np.random.default_rng(1)
    x = rng.normal(size=(4000, 1))
    y = (rng.random(4000) < expit(2 * x[:, 0] - 1)).astype(int)
    X = pd.DataFrame({"x": x[:, 0]})
    held_out = LogisticRegression().fit(X[:3000], y[:3000])
    refit = LogisticRegression(C=0.01).fit(X, y)  # another fit: its raw scores differ
    calibrated = calibrate_out_of_sample(refit, held_out, X[3000:], y[3000:])
    platt = calibrate(held_out, X[3000:], y[3000:]).calibrated_classifiers_[0].calibrators[0]
    raw = refit.decision_function(X)  # what sklearn calibrates, when the model has one
    expected = expit(-(platt.a_ * raw + platt.b_))
    assert np.allclose(calibrated.predict_proba(X)[:, 1], expected)
    assert not np.allclose(expected, held_out.predict_proba(X)[:, 1])


@pytest.mark.parametrize("kind", ["logistic_regression", "lightgbm"])
def test_recency_weights_reach_the_fit_so_the_recent_regime_wins(kind):
    from leadscore.training.experiment import fit_model
    from leadscore.training.models import make_lightgbm, make_logistic

    rng = np.random.default_rng(0)
    old, new = 3000, 1000  # the relation flips at the latest snapshot: x used to convert, now it does not
    x = rng.random(old + new)
    times = pd.Series([TIMES[0]] * old + [TIMES[-1]] * new)
    flips = np.r_[np.zeros(old), np.ones(new)].astype(bool)
    y = (rng.random(old + new) < np.where(flips, 0.9 - 0.8 * x, 0.1 + 0.8 * x)).astype(int)
    X = pd.DataFrame({"x": x})

    def slope(weights: np.ndarray) -> float:
        model = (make_logistic(["x"], []) if kind == "logistic_regression"
                 else make_lightgbm([], {"n_estimators": 60, "min_child_samples": 20, "subsample": 1.0}))
        fitted = fit_model(model, X, y, sample_weight=weights)
        p = fitted.predict_proba(pd.DataFrame({"x": [0.1, 0.9]}))[:, 1]
        return p[1] - p[0]

    assert slope(recency_weights(times, None)) > 0  # the old, larger regime dominates
    assert slope(recency_weights(times, 14)) < 0  # 126 days: the old rows weigh 1/512


def test_snapshots_observed_for_part_of_their_horizon_are_added_only_when_asked():
    settings = TrainingSettings(snapshot_every_days=14, first_snapshot_after_days=0, horizon_days=28,
                                validation_snapshots=1, test_snapshots=1)
    as_of = TIMES[-1]
    assert snapshot_times(START, as_of, settings) == TIMES[:-2]  # the horizon passed
    assert snapshot_times(START, as_of, settings, observed_days=14) == TIMES[:-1]  # 14 days seen


def test_the_calibration_window_keeps_to_snapshots_whose_labels_are_whole():
    frame = _frame(TIMES)
    split = refit_split(frame, calibration_snapshots=2, purge_days=14, matured_until=TIMES[-3])
    assert sorted(split.calibration["event_timestamp"].unique()) == TIMES[-4:-2]
    assert len(split.fit) == len(frame)  # the partly observed snapshots are still fitted


def test_calibration_on_labels_known_so_far_reaches_the_latest_snapshot_observed_long_enough():
    known_at, horizon = TIMES[-1], 90
    matured_only = RetrainSettings(partial_labels_min_days=14)
    known_so_far = RetrainSettings(partial_labels_min_days=14, calibration_labels="known_so_far")
    assert calibration_until(known_at, matured_only, horizon) == pd.Timestamp(known_at - timedelta(days=90))
    assert calibration_until(known_at, known_so_far, horizon) == pd.Timestamp(TIMES[-2])
    split = refit_split(_frame(TIMES), 2, 14, calibration_until(known_at, known_so_far, horizon))
    assert sorted(split.calibration["event_timestamp"].unique()) == TIMES[-3:-1]


def test_calibration_on_labels_known_so_far_needs_partial_labels():
    with pytest.raises(ValueError, match="partial_labels_min_days"):
        RetrainSettings(calibration_labels="known_so_far")
