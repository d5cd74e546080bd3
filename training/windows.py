"""Which labelled snapshots a retraining learns from, how much each counts, and which ones
calibrate it (`training.retrain` in config/leadscore.yaml).

- the **training window**: expanding (every matured snapshot) or sliding (those within
  `window_days` of the cutoff, the latest snapshot whose label horizon has passed), so that
  a world whose buyers moved is learned from its recent part only;
- **recency weights**: a snapshot's sample weight halves every `half_life_days` before the
  latest snapshot of the rows being fitted, so that recent behaviour counts more without
  dropping the past;
- the **calibration window**: the most recent `calibration_snapshots` matured snapshots. The
  base rate moves first: a calibration fitted there follows it. The model it calibrates is fit
  on every snapshot a label horizon before the window (purged as between the splits of
  training/dataset.py), so no opportunity is a positive on both sides.
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


@dataclass(frozen=True)
class RefitSplit:
    """The rows the chosen model is refit on, and the calibration window after them."""

    fit: pd.DataFrame
    calibration: pd.DataFrame


def refit_split(frame: pd.DataFrame, calibration_snapshots: int, horizon_days: int) -> RefitSplit:
    """The last `calibration_snapshots` snapshots calibrate; every snapshot whose label window
    ends before the first of them is fitted on."""
    times = pd.Series(sorted(frame["event_timestamp"].unique()))
    calibration_start = times.iloc[-min(calibration_snapshots, len(times))]
    fit_times = times[times + pd.Timedelta(days=horizon_days) <= calibration_start]
    if fit_times.empty:
        raise ValueError(f"{len(times)} snapshots leave none to refit on before a calibration window "
                         f"of {calibration_snapshots} with a {horizon_days}-day purge: lengthen the "
                         "training window or shorten training.retrain.calibration_snapshots")
    at = frame["event_timestamp"]
    return RefitSplit(frame[at.isin(fit_times)], frame[at >= calibration_start])
