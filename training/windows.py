"""Which labelled snapshots a retraining learns from, how much each counts, and which ones
calibrate it (`training.retrain` in config/leadscore.yaml).

- the **training window**: expanding (every matured snapshot) or sliding (those within
  `window_days` of the cutoff, the latest snapshot whose label horizon has passed), so that
  a world whose buyers moved is learned from its recent part only;
- **recency weights**: a snapshot's sample weight halves every `half_life_days` before the
  latest snapshot of the rows being fitted, so that recent behaviour counts more without
  dropping the past;
- the **refit**: the chosen model is refit on every labelled snapshot of the window, up to
  the latest whose label horizon has passed (the cutoff; with labels known so far, below, up
  to the latest observed `partial_labels_min_days`), so that what the world did most
  recently is learned as soon as its labels are known;
- **labels known so far** (`partial_labels_min_days`): the refit also learns from the
  snapshots whose horizon has not passed yet, once `partial_labels_min_days` of it have: a
  positive there is certain (the opportunity is already open), a negative is not (one may
  still come), so a negative counts for the part of its horizon observed (half its weight
  after 45 of 90 days). With a conversion rate p in the horizon and opportunities spread over
  it, a snapshot observed for a fraction f is positive with probability p*f; weighing its
  negatives by f gives p / (1 + p(1 - f)), close to p while p is small, so the model and its
  calibration aim at the full horizon's probability, and a world that moved is learned
  weeks after it moved instead of a horizon after (the delayed-feedback weighting of
  conversion models, e.g. Ktena et al., 2019). Without it a retrain after a drift learns
  only from snapshots taken before the drift;
- the **calibration window**: the most recent `calibration_snapshots` matured snapshots. The
  base rate moves first: a calibration fitted there follows it. It is fitted out of sample: on
  the predictions over the window of the same learner fit on the snapshots before it (a
  `calibration_purge_days` gap, one snapshot step by default, so the latest months are not
  thrown away), then applied to the refit on every snapshot
  (training/experiment.py `calibrate_out_of_sample`, as scikit-learn's
  `CalibratedClassifierCV(ensemble=False)` does with one time-ordered split). A purge of a whole
  horizon would keep an opportunity from being a positive on both sides, at the price of
  calibrating a model 90 days older than the one that serves: before, a retrain learned from
  snapshots more than 200 days old and never saw a drift within half a year.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from leadscore.config import RetrainSettings


def window_times(times: list[datetime], settings: RetrainSettings) -> list[datetime]:
    """The snapshot times (oldest first) inside the training window."""
    if settings.window == "expanding" or not times:
        return times
    start = times[-1] - timedelta(days=settings.window_days or 0)
    return [t for t in times if t >= start]


def recency_weights(times: pd.Series, half_life_days: float | None) -> np.ndarray:
    """One sample weight per row: 1 at the latest snapshot, halving every `half_life_days`
    before it; all 1 without a half-life."""
    if half_life_days is None or times.empty:
        return np.ones(len(times))
    age_days = (times.max() - times) / pd.Timedelta(days=1)
    return np.power(0.5, age_days.to_numpy(dtype=float) / half_life_days)


def matured(frame: pd.DataFrame, known_at: datetime, horizon_days: int) -> pd.DataFrame:
    """The rows of `frame` whose label horizon has passed by `known_at`: the candidates are
    compared on these alone, so that validation and test figures judge whole labels."""
    end = frame["event_timestamp"] + pd.Timedelta(days=horizon_days)
    return frame[(end <= pd.Timestamp(known_at)).to_numpy()]


def observed_weights(times: pd.Series, labels: pd.Series, known_at: datetime,
                     horizon_days: int) -> np.ndarray:
    """One sample weight per row: 1 for a positive and for a snapshot whose horizon has
    passed by `known_at`; a negative whose horizon has not weighs the share of it observed."""
    observed = (pd.Timestamp(known_at) - times) / pd.Timedelta(days=horizon_days)
    share = np.clip(observed.to_numpy(dtype=float), 0.0, 1.0)
    return np.where(labels.to_numpy() == 1, 1.0, share)


def calibration_until(known_at: datetime, settings: RetrainSettings, horizon_days: int) -> pd.Timestamp:
    """The latest snapshot the calibration window may hold: one whose horizon has passed by
    `known_at`, or with `calibration_labels: known_so_far` one observed
    `partial_labels_min_days` (its negatives then weigh the share observed, `observed_weights`)."""
    days = (settings.partial_labels_min_days if settings.calibration_labels == "known_so_far"
            else horizon_days)
    return pd.Timestamp(known_at) - pd.Timedelta(days=days or horizon_days)


@dataclass(frozen=True)
class RefitSplit:
    """The rows the chosen model is refit on (all of them), the calibration window (the latest
    snapshots) and the rows before it (purged) whose fit calibrates out of sample."""

    fit: pd.DataFrame
    calibration: pd.DataFrame
    before_calibration: pd.DataFrame


def refit_split(frame: pd.DataFrame, calibration_snapshots: int, purge_days: int,
                matured_until: datetime | None = None) -> RefitSplit:
    """Every snapshot is refit on; the last `calibration_snapshots` (of those at or before
    `matured_until`: whole labels) calibrate, out of sample of a fit on the snapshots at least
    `purge_days` before the first of them."""
    times = pd.Series(sorted(frame["event_timestamp"].unique()))
    whole = times[times <= pd.Timestamp(matured_until)] if matured_until is not None else times
    whole = whole if len(whole) else times
    calibration_start, calibration_end = whole.iloc[-min(calibration_snapshots, len(whole))], whole.iloc[-1]
    before = times[times + pd.Timedelta(days=purge_days) <= calibration_start]
    if before.empty:
        raise ValueError(f"{len(times)} snapshots leave none before a calibration window of "
                         f"{calibration_snapshots} with a {purge_days}-day purge: lengthen the training "
                         "window or shorten training.retrain.calibration_snapshots")
    at = frame["event_timestamp"]
    calibration = frame[(at >= calibration_start) & (at <= calibration_end)]
    return RefitSplit(frame, calibration, frame[at.isin(before)])
