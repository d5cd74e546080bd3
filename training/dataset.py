"""Point-in-time training sets: people at snapshot times, labelled by what came next.

A snapshot at time t holds every person identified before t (an anonymous
cookie is not yet a lead) who has no open opportunity at t and, with
`exclude_customers`, is not at a company that is already a customer; the label is 1 if an opportunity
is created in (t, t + horizon] (or, with `target: won`, won in that window). Snapshots sit on the feature
grid (whole cadences after the grid's `start`), and only those whose horizon
has fully passed are used. Between train, validation and test, snapshots whose
label window reaches into the next part are purged, so that no opportunity
is a positive on both sides of a split. Features come from Feast's
`get_historical_features`, so a row sees only what was known at t.

The labels read the middle layer's `outcome` table (the batch's opportunities) and, when
retraining, the outcomes the CRM sent back live (POST /outcomes): the caller (the CLI; the
import contracts keep training from reading the live path) folds them into the same shape
(live/labels.py) and hands them in as `live_outcomes`. They stand beside the batch's, one row
per opportunity id, the live one winning where both have it: the CRM's latest word.
"""

from __future__ import annotations

import hashlib
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


def snapshot_times(start: datetime, as_of: datetime, settings: TrainingSettings,
                   observed_days: int | None = None) -> list[datetime]:
    """Grid times from `start + first_snapshot_after_days` to `as_of - horizon` (or, given
    `observed_days`, to `as_of - observed_days`: snapshots whose label is only partly known yet),
    oldest first."""
    step = timedelta(days=settings.snapshot_every_days)
    # `start` is a grid point and the cadence a whole number of grid steps, so every
    # snapshot lands on a grid row rather than between rows.
    earliest = start + timedelta(days=settings.first_snapshot_after_days)
    t = as_of - timedelta(days=min(observed_days or settings.horizon_days, settings.horizon_days))
    t -= timedelta(days=(t - start).days % settings.snapshot_every_days)
    times = []
    while t >= earliest:
        times.append(t)
        t -= step
    purge = 2 * -(-settings.horizon_days // settings.snapshot_every_days)
    needed = settings.validation_snapshots + settings.test_snapshots + purge + 1
    if len(times) < needed:
        raise ValueError(f"only {len(times)} snapshots fit between {earliest:%Y-%m-%d} and "
                         f"{as_of:%Y-%m-%d} minus the horizon; need at least {needed} "
                         "(generate a longer world or shorten the horizon)")
    return sorted(times)


# the moment of an outcome each target counts
TARGET_TIMES = {"opportunity": "o.opportunity_created_at", "won": "o.won_at"}
TARGETS = {
    # an opportunity is created in (t, t + horizon]
    "opportunity": "o.opportunity_created_at > s.t AND o.opportunity_created_at <= s.t + INTERVAL {h} DAY",
    # an opportunity is won in (t, t + horizon]
    "won": "o.won_at > s.t AND o.won_at <= s.t + INTERVAL {h} DAY",
}


LIVE_OUTCOME_COLUMNS = ["opportunity_id", "pid", "opportunity_created_at", "won_at", "closed_at"]


def outcomes_sql(live: bool) -> str:
    """The opportunities the labels read: the middle layer's, and with `live` the CRM's
    (table `live_outcome`, its company from the person) in place of a batch row of the same id."""
    if not live:
        return "SELECT pid, cid, opportunity_created_at, won_at, closed_at FROM outcome"
    return """
        SELECT pid, cid, opportunity_created_at, won_at, closed_at FROM outcome
        WHERE opportunity_id NOT IN (SELECT opportunity_id FROM live_outcome)
        UNION ALL
        SELECT l.pid, p.cid, l.opportunity_created_at, l.won_at, l.closed_at
        FROM live_outcome l LEFT JOIN person p USING (pid)"""


def _utc_times(frame: pd.DataFrame) -> pd.DataFrame:
    times = {c: pd.to_datetime(frame[c], utc=True).astype("datetime64[us, UTC]")
             for c in LIVE_OUTCOME_COLUMNS if c.endswith("_at")}
    return frame[LIVE_OUTCOME_COLUMNS].assign(**times)


def label_sql(entity: str, company: str, target: str, horizon_days: int,
              exclude_customers: bool = False, known: bool = False) -> tuple[str, str]:
    """The label of a snapshot row and its eligibility, as SQL over the snapshot `s` (column t)
    and a table `outcomes` (pid, cid, opportunity_created_at, won_at, closed_at), for the rows'
    `entity` column (`p.pid` for people, `k.cid` for companies; matched with the outcome's column
    of the same name) and their `company` column: (the label expression, the WHERE conditions).
    The label is 1 if the target happens to the entity in (t, t + horizon]; a row is eligible
    with no opportunity of the entity open at t and, with `exclude_customers`, no deal won by its
    company by t (new business, not expansion). With `known`, the label counts only the
    outcomes up to the query's parameter `$known_at` (labels known so far)."""
    if target not in TARGETS:
        raise ValueError(f"training.target {target!r} is not one of {sorted(TARGETS)}")
    own = f"o.{entity.split('.')[-1]} = {entity}"
    label = (f"EXISTS (SELECT 1 FROM outcomes o WHERE {own} "
             f"AND {TARGETS[target].format(h=horizon_days)}"
             f"{f' AND {TARGET_TIMES[target]} <= $known_at' if known else ''})::INT AS label")
    eligible = (f"NOT EXISTS (SELECT 1 FROM outcomes o WHERE {own} AND o.opportunity_created_at <= s.t "
                "AND (o.closed_at IS NULL OR o.closed_at > s.t))")
    if exclude_customers:
        eligible += f" AND NOT EXISTS (SELECT 1 FROM outcomes o WHERE o.cid = {company} AND o.won_at <= s.t)"
    return label, eligible


def labelled_entities(middle_db: Path, times: list[datetime], horizon_days: int,
                      target: str = "opportunity", exclude_customers: bool = False,
                      live_outcomes: pd.DataFrame | None = None,
                      known_at: datetime | None = None) -> pd.DataFrame:
    """(pid, cid, event_timestamp, label) for every eligible person at every snapshot time:
    identified before t, no open opportunity at t and, with `exclude_customers`, not at a
    company that had already won a deal by t (new business, not expansion). `live_outcomes`
    (live/labels.py's `opportunity_labels`) stand beside the batch's outcomes. With
    `known_at`, a label counts only the outcomes up to that moment: a snapshot whose horizon
    has not passed by then is labelled by what is known so far (training/windows.py weighs it)."""
    label, eligible = label_sql("p.pid", "p.cid", target, horizon_days, exclude_customers,
                                known=known_at is not None)
    snapshots = pd.DataFrame({"t": pd.to_datetime(times, utc=True).astype("datetime64[us, UTC]")})
    with duckdb.connect(str(middle_db), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        con.register("snapshots", snapshots)
        if live_outcomes is not None:
            con.register("live_outcome", _utc_times(live_outcomes))
        return con.execute(f"""
            WITH outcomes AS ({outcomes_sql(live_outcomes is not None)})
            SELECT p.pid, p.cid, s.t AS event_timestamp, {label}
            FROM person p JOIN snapshots s ON p.identified_at < s.t
            WHERE {eligible}
            ORDER BY s.t, p.pid""", {"known_at": known_at} if known_at is not None else None).df()


def split_by_time(frame: pd.DataFrame, settings: TrainingSettings) -> Split:
    """Test on the latest snapshots, validate on the ones before, train on the earliest;
    each part ends a label horizon before the next one starts."""
    times = pd.Series(sorted(frame["event_timestamp"].unique()))
    horizon = pd.Timedelta(days=settings.horizon_days)
    test_start = times.iloc[-min(settings.test_snapshots, len(times))]
    val_times = times[times + horizon <= test_start].iloc[-settings.validation_snapshots:]
    train_times = times[times + horizon <= val_times.min()] if len(val_times) else val_times
    if train_times.empty or len(val_times) < settings.validation_snapshots:
        raise ValueError(f"{len(times)} snapshots are too few for {settings.test_snapshots} test and "
                         f"{settings.validation_snapshots} validation snapshots with a "
                         f"{settings.horizon_days}-day purge between parts")
    at = frame["event_timestamp"]
    return Split(frame[at.isin(train_times)], frame[at.isin(val_times)], frame[at >= test_start])


def data_hash(frame: pd.DataFrame) -> str:
    """A fingerprint of a training frame's rows, logged with the run."""
    row_hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return hashlib.sha256(row_hashes.tobytes()).hexdigest()[:16]
