"""Point-in-time training sets: people at snapshot times, labelled by what came next.

A snapshot at time t holds every person first seen before t who has no open
opportunity at t; the label is 1 if an opportunity is created in (t, t + horizon].
Snapshots sit on the feature grid (a whole number of steps before `as_of`), and
only those whose horizon has fully passed are used. Features come from Feast's
`get_historical_features`, so a row sees only what was known at t.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd

from leadscore.config import TrainingSettings


@dataclass(frozen=True)
class Split:
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame


def snapshot_times(start: datetime, as_of: datetime, settings: TrainingSettings) -> list[datetime]:
    """Grid times from `start + first_snapshot_after_days` to `as_of - horizon`, oldest first."""
    step = timedelta(days=settings.snapshot_every_days)
    # `start` is a grid point and the cadence a whole number of grid steps, so every
    # snapshot lands on a grid row rather than between rows.
    earliest = start + timedelta(days=settings.first_snapshot_after_days)
    t = as_of - timedelta(days=settings.horizon_days)
    t -= timedelta(days=(t - start).days % settings.snapshot_every_days)
    times = []
    while t >= earliest:
        times.append(t)
        t -= step
    needed = settings.validation_snapshots + settings.test_snapshots + 1
    if len(times) < needed:
        raise ValueError(f"only {len(times)} snapshots fit between {earliest:%Y-%m-%d} and "
                         f"{as_of:%Y-%m-%d} minus the horizon; need at least {needed} "
                         "(generate a longer world or shorten the horizon)")
    return sorted(times)


def labelled_entities(middle_db: Path, times: list[datetime], horizon_days: int) -> pd.DataFrame:
    """(pid, event_timestamp, label) for every eligible person at every snapshot time."""
    snapshots = pd.DataFrame({"t": pd.to_datetime(times, utc=True).astype("datetime64[us, UTC]")})
    with duckdb.connect(str(middle_db), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        con.register("snapshots", snapshots)
        return con.execute(f"""
            SELECT p.pid, s.t AS event_timestamp,
                   EXISTS (SELECT 1 FROM outcome o WHERE o.pid = p.pid
                           AND o.opportunity_created_at > s.t
                           AND o.opportunity_created_at <= s.t + INTERVAL {horizon_days} DAY
                   )::INT AS label
            FROM person p JOIN snapshots s ON p.first_seen < s.t
            WHERE NOT EXISTS (SELECT 1 FROM outcome o WHERE o.pid = p.pid
                              AND o.opportunity_created_at <= s.t
                              AND (o.closed_at IS NULL OR o.closed_at > s.t))
            ORDER BY s.t, p.pid""").df()


def split_by_time(frame: pd.DataFrame, settings: TrainingSettings) -> Split:
    """Train on the earliest snapshots, validate on the next, test on the latest."""
    times = sorted(frame["event_timestamp"].unique())
    n_test, n_val = settings.test_snapshots, settings.validation_snapshots
    test_times, val_times = times[-n_test:], times[-n_test - n_val:-n_test]
    in_test = frame["event_timestamp"].isin(test_times)
    in_val = frame["event_timestamp"].isin(val_times)
    return Split(frame[~in_test & ~in_val], frame[in_val], frame[in_test])
