"""What monitoring reads, at the edges: the score log, the CRM's outcomes, the event log's
records, the webhook outbox, the champion's scoring spec, and the feature rows drift compares.

Drift's two populations:
- the reference: the people the champion learnt from, at snapshot times over the
  `monitoring.reference_days` up to the end of its test window (its spec's `test_window`), with
  their point-in-time features from Feast (as training reads them; at most `REFERENCE_ROWS`
  rows, sampled with a fixed seed), and the batch scores of `leadscore score` in that window.
  Built once per champion version and kept as `<data_dir>/monitoring/reference-v<N>.parquet`.
- now: the people the champion scored in the clock's last `monitoring.window_days` (the leads it
  actually judged), their features as the online store holds them, and their latest score.
  Served traffic leans to engaged people, so a feature of engagement drifts a little by design.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd

from leadscore.config import Settings
from leadscore.live.labels import dispositions, opportunity_labels
from leadscore.live.log import EVENT_LOG, EventLog
from leadscore.live.score_log import ScoreLog
from leadscore.monitoring.cohorts import SHADOW, matured_cohorts
from leadscore.monitoring.operations import OUTBOX_FILE, outbox_counts
from leadscore.scoring.prepare import prepare
from leadscore.scoring.registry import champion_of, read_spec, use_store
from leadscore.scoring.spec import ScoringSpec

log = logging.getLogger(__name__)
REFERENCE_ROWS = 20_000
SCORE_HISTORY = "score_history.parquet"  # serving/batch.py HISTORY_FILE, in settings.scores_dir
OnlineReader = Callable[[list[str]], pd.DataFrame]  # pids -> one row of online features each


@dataclass
class Champion:
    version: str
    spec: ScoringSpec


@dataclass
class Inputs:
    now: datetime
    since: datetime              # the start of the window of drift and operations
    scores: pd.DataFrame         # the score log, every row
    labels: pd.DataFrame         # one row per opportunity the CRM reported (live/labels.py)
    dispositions: pd.DataFrame   # what sales did with pushed MQLs, in the window
    records: dict[str, int]      # ingested records by status, in the window
    outbox: dict[str, dict[str, int]]
    champion: Champion | None
    reference: pd.DataFrame | None  # reference feature rows, prepared for the champion's spec
    current: pd.DataFrame | None    # current feature rows of the people scored in the window
    reference_scores: pd.Series | None


def read_champion(settings: Settings) -> Champion | None:
    """The champion's version and scoring spec (no model load), or None before any training."""
    client = use_store(settings)
    name = settings.training.registered_model
    version = champion_of(client, name)
    if version is None:
        return None
    return Champion(str(version.version), read_spec(version.run_id, name, str(version.version)))


def reference_window(spec: ScoringSpec, reference_days: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The `reference_days` up to the end of the spec's test window."""
    if not spec.test_window:
        raise ValueError("the champion's scoring spec names no test window: retrain (`leadscore train`)")
    end = pd.Timestamp(spec.test_window.split("..")[-1], tz="UTC") + pd.Timedelta(days=1)
    return end - pd.Timedelta(days=reference_days), end


def reference_features(settings: Settings, champion: Champion) -> pd.DataFrame:
    """The champion's reference feature rows (see the module's docstring), cached per version."""
    from leadscore.features.store import entity_rows, historical_features, open_store

    cache = settings.monitoring_dir / f"reference-v{champion.version}.parquet"
    if cache.is_file():
        return pd.read_parquet(cache)
    start, end = reference_window(champion.spec, settings.monitoring.reference_days)
    every = pd.Timedelta(days=settings.training.snapshot_every_days)
    times = list(pd.date_range(end=end - pd.Timedelta(seconds=1), periods=max(1, (end - start) // every),
                               freq=every))
    people = pd.read_parquet(settings.feature_data_dir / "people.parquet")
    rows = entity_rows(people, times)
    rows = rows.sample(min(len(rows), REFERENCE_ROWS), random_state=0) if len(rows) else rows
    log.info("drift reference of v%s: %d feature rows from Feast", champion.version, len(rows))
    frame = prepare(historical_features(open_store(settings), rows), champion.spec.features)
    cache.parent.mkdir(parents=True, exist_ok=True)
    staging = cache.with_name(f".{cache.name}.{uuid.uuid4().hex}.tmp")  # two workers may build it at once
    frame.to_parquet(staging)
    os.replace(staging, cache)
    return frame


def reference_scores(settings: Settings, spec: ScoringSpec) -> pd.Series | None:
    """The batch scores of `leadscore score` in the reference window (None without any)."""
    path = settings.scores_dir / SCORE_HISTORY
    if not path.is_file():
        return None
    history = pd.read_parquet(path, columns=["scored_at", "score"])
    start, end = reference_window(spec, settings.monitoring.reference_days)
    at = pd.to_datetime(history["scored_at"], utc=True)
    scores = history.loc[(at >= start) & (at < end), "score"]
    return scores.reset_index(drop=True) if len(scores) else None


def recent_champion_pids(scores: pd.DataFrame, since: datetime) -> list[str]:
    """The people the champion (not a shadow) scored from `since` on."""
    recent = scores[(scores["at"] >= pd.Timestamp(since)) & (scores["trigger"] != SHADOW)]
    return sorted(recent["pid"].unique())


def read_inputs(settings: Settings, now: datetime, online: OnlineReader | None) -> Inputs:
    """Everything a report needs at `now`; drift's feature rows only with an `online` reader."""
    since = now - timedelta(days=settings.monitoring.window_days)
    scores = ScoreLog(settings.live_dir / "scores", settings.live.busy_timeout_s).read()
    scores = scores[scores["at"] <= pd.Timestamp(now)]
    events = EventLog(settings.live_dir / EVENT_LOG, settings.live.busy_timeout_s)
    try:
        labels = opportunity_labels(events, now)
        judged = dispositions(events, now)
        records = events.counts(since)
    finally:
        events.close()
    champion = read_champion(settings)
    reference = current = score_reference = None
    if champion is not None and online is not None:
        reference = reference_features(settings, champion)
        pids = recent_champion_pids(scores, since)
        current = prepare(online(pids), champion.spec.features) if pids else None
        score_reference = reference_scores(settings, champion.spec)
    return Inputs(now, since, scores, labels, judged[judged["at"] >= pd.Timestamp(since)], records,
                  outbox_counts(settings.serving_dir / OUTBOX_FILE), champion, reference, current,
                  score_reference)


def matured_scores_at(settings: Settings, now: datetime) -> pd.DataFrame:
    """The score log's matured cohorts at `now` (monitoring/cohorts.py), labelled by the CRM's
    outcomes as known then: what promotion on live evidence and the loop benchmark judge."""
    scores = ScoreLog(settings.live_dir / "scores", settings.live.busy_timeout_s).read()
    events = EventLog(settings.live_dir / EVENT_LOG, settings.live.busy_timeout_s)
    try:
        labels = opportunity_labels(events, now)
    finally:
        events.close()
    return matured_cohorts(scores, labels, now, settings.training.horizon_days, settings.training.target)
