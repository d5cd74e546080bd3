"""Batch scoring: everyone, at the feature clock and at earlier points, with the champion.

`leadscore score` (and `leadscore pipeline`, after training) writes
`data/scores/score_history.parquet`: one row per person and scoring time, from the
point-in-time features Feast gives for that time, so the history shows how a lead
warmed up as the model sees it today, on both axes (`fit`, `interest`: serving/scorer.py).
The latest time is the current score that segments select on; portraits draw the history.
The file is replaced whole (written aside, then renamed): a failed run leaves the last good
one, and re-running gives the same table. Leads whose latest score crosses the MQL threshold
are handed to the webhook outbox (pushed once), but for those already in an open opportunity
then (serving/opportunities.py: sales work them already).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from leadscore.clock import CLOCK_FILE, open_clock
from leadscore.config import Settings
from leadscore.features.build import read_manifest
from leadscore.features.store import ENTITY_KEY, entity_rows, historical_features, open_store
from leadscore.live.log import EVENT_LOG
from leadscore.serving.opportunities import people_in_opportunity
from leadscore.serving.scorer import Evaluation, Scorer

HISTORY_FILE = "score_history.parquet"
COLUMNS = ["pid", "scored_at", "probability", "score", "fit_score", "interest_score", "tier",
           "model_version", "fit", "interest"]


@dataclass
class BatchSummary:
    path: Path
    rows: int
    people: int
    times: list[datetime]
    by_tier: dict[str, int]  # at the latest time
    queued_for_crm: int


def history_path(settings: Settings) -> Path:
    return settings.scores_dir / HISTORY_FILE


def scoring_times(as_of: datetime, every_days: int, points: int) -> list[datetime]:
    """The feature clock and `points - 1` earlier times, oldest first."""
    return [as_of - timedelta(days=every_days * k) for k in reversed(range(points))]


def score_rows(scorer: Scorer, frame: pd.DataFrame) -> pd.DataFrame:
    """Scores of feature rows (pid, event_timestamp, features), without reasons."""
    columns = {name: frame[name].to_numpy() for name in scorer.feature_names if name in frame}
    result = scorer.evaluate(columns, len(frame))
    return pd.DataFrame({
        "pid": frame[ENTITY_KEY].to_numpy(), "scored_at": frame["event_timestamp"].to_numpy(),
        "probability": result.probability, "score": result.score.round(1),
        "fit_score": result.fit_score.round(1), "interest_score": result.interest_score.round(1),
        "tier": result.tier.astype(str), "model_version": scorer.version,
        "fit": _axis(result, "fit", len(frame)), "interest": _axis(result, "interest", len(frame))})


def _axis(result: Evaluation, name: str, n: int) -> np.ndarray:
    """The score's fit or interest axis (1 decimal), NaN where the model does not tell it."""
    return np.full(n, np.nan) if result.axes is None else getattr(result.axes, name).round(1)


def write_atomically(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.tmp")
    frame.to_parquet(staging, index=False)
    os.replace(staging, path)


def mql_candidates(settings: Settings, latest: pd.DataFrame) -> list[dict]:
    """The latest scores the MQL webhook may push: those of people not in an open opportunity
    (serving/opportunities.py: sales already work them) at the clock's now, when the clock has
    started (a push goes out now: an opportunity the CRM opened since the features' time counts),
    else at the scoring time."""
    at = latest["scored_at"].max()
    if settings.clock.mode == "wall" or (settings.live_dir / CLOCK_FILE).is_file():
        at = max(at, pd.Timestamp(open_clock(settings).now()))
    taken = people_in_opportunity(settings.middle_db, settings.live_dir / EVENT_LOG, at)
    return latest[~latest["pid"].isin(taken)].to_dict("records")


def score_everyone(settings: Settings, scorer: Scorer, pusher=None) -> BatchSummary:
    """Score every known person at the scoring times; write the history; queue new MQLs."""
    manifest = read_manifest(settings.feature_data_dir)
    times = scoring_times(manifest["as_of"], settings.serving.history_every_days,
                          settings.serving.history_points)
    people = pd.read_parquet(settings.feature_data_dir / "people.parquet")
    features = historical_features(open_store(settings), entity_rows(people, times))
    history = score_rows(scorer, features).sort_values(["scored_at", "pid"], ignore_index=True)
    write_atomically(history[COLUMNS], history_path(settings))
    latest = history[history["scored_at"] == history["scored_at"].max()]
    queued = (pusher.observe(mql_candidates(settings, latest), routing_table=scorer.routing)
              if pusher is not None else 0)
    return BatchSummary(history_path(settings), len(history), history["pid"].nunique(), times,
                        latest["tier"].value_counts().to_dict(), queued or 0)
