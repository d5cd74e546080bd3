"""What monitoring reads, at the edges: the score log, the CRM's outcomes, the event log's
records, the webhook outbox, the champion's scoring spec, and the feature rows drift compares.

Drift's two populations are drawn alike, so that a population that did not move reads as
stable (README, "Drift"):
- now: the people the champion scored in the clock's last `monitoring.window_days` because a
  record of theirs arrived (trigger `ingest`: the people who acted), their features as of now
  (the online store's rows, each days-since feature counted on to now from its row's update: a
  later event would have updated it), and their latest score;
- the reference: the same question asked of the champion's data. Once a week over the
  `monitoring.reference_days` up to the end of its test window, at the same weekday and hour
  as now (traffic has a weekly rhythm: emails go out mid-week, few act at weekends), the
  people who had an interaction in the `window_days` before, with their features at that
  instant by the live path's SQL (features/live.py: what a record served then would have
  read), the champion's score of each, and how many days before the instant they last acted
  (`ACTED_DAYS`); at most `REFERENCE_ROWS` rows, sampled with a fixed seed. A report keeps the
  rows who acted within the span of served traffic it looks at (a replay begun 3 days ago
  serves only people who acted in those 3 days). Built once per champion version, settings
  and hour of the week (10-50 s on the default world), kept as
  `<data_dir>/monitoring/served-reference-v<N>-<reference_days>d-<window_days>d-<Day-HH>h.parquet`.
Drift waits for `monitoring.min_drift_days` of served traffic: a few days are no population.
The /monitor page never waits for a reference: it asks `ReferenceBuilds` to build a missing
one in the background and says so meanwhile (`leadscore monitor` builds it in line).
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pandas as pd

from leadscore.config import Settings
from leadscore.live.labels import dispositions, opportunity_labels
from leadscore.live.log import EVENT_LOG, EventLog
from leadscore.live.score_log import INGEST, ScoreLog
from leadscore.monitoring.cohorts import matured_cohorts
from leadscore.monitoring.operations import OUTBOX_FILE, outbox_counts
from leadscore.scoring.prepare import prepare, prepare_for
from leadscore.scoring.registry import champion_of, load_version, read_spec, use_store
from leadscore.scoring.spec import ScoringSpec
from leadscore.scoring.tiers import probability_to_score

if TYPE_CHECKING:  # Feast's import is heavy: features/store.py is imported where it is used
    from leadscore.features.store import OnlineRows

log = logging.getLogger(__name__)
REFERENCE_ROWS = 20_000
WEEK = pd.Timedelta(days=7)
ACTED_DAYS = "acted_days"    # a reference row's days from the person's last interaction to its time
REFERENCE_SCORE = "score"    # the champion's score of a reference row
OnlineReader = Callable[[list[str]], "OnlineRows"]  # pids -> their online rows (features/store.py)


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
    drift_wait_days: float | None = None  # people were scored, but drift waits this many more days
    drift_building: str | None = None     # the hour of the week whose reference is being built


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


def reference_times(start: pd.Timestamp, end: pd.Timestamp, now: datetime) -> list[pd.Timestamp]:
    """The instants in [start, end) at `now`'s hour of the week: a week apart, at the same
    weekday and hour as `now` (floored to the hour). Traffic has a weekly rhythm (emails go out
    mid-week, few act at weekends), so a reference read at another point of it drifts from
    any `now` in its days-since features."""
    from leadscore.features.build import GRID_EPOCH

    epoch = pd.Timestamp(GRID_EPOCH)  # a Monday at midnight
    offset = (pd.Timestamp(now).floor("h") - epoch) % WEEK
    first = epoch + offset + -(-(start - epoch - offset) // WEEK) * WEEK
    return list(pd.date_range(first, end - pd.Timedelta(seconds=1), freq=WEEK))


def served_like_rows(con: duckdb.DuckDBPyConnection, times: list[pd.Timestamp], window_days: int
                     ) -> pd.DataFrame:
    """(pid, event_timestamp, `ACTED_DAYS`): at each of `times`, every person known then who
    had an interaction in the `window_days` before it, and the days since their last one."""
    con.execute("SET TimeZone = 'UTC'")
    con.register("reference_times", pd.DataFrame({"t": times}))
    try:
        return con.execute(f"""
            SELECT i.pid, r.t AS event_timestamp,
                   date_diff('second', max(i.event_time), r.t) / 86400.0 AS {ACTED_DAYS}
            FROM interaction i JOIN person p USING (pid)
            JOIN reference_times r ON i.event_time < r.t AND i.event_time >= r.t - to_days(?::INTEGER)
                                  AND p.identified_at <= r.t
            GROUP BY i.pid, r.t ORDER BY r.t, i.pid""", [window_days]).df()
    finally:
        con.unregister("reference_times")


def champion_scores(settings: Settings, champion: Champion, features: pd.DataFrame) -> pd.Series:
    """The champion's scores (0-100) of point-in-time feature rows."""
    model, spec, _ = load_version(settings, champion.version)
    probability = model.predict_proba(prepare_for(features, spec))[:, 1]
    return pd.Series(probability_to_score(probability, spec.score), index=features.index)


def features_at_times(settings: Settings, rows: pd.DataFrame) -> pd.DataFrame:
    """The lead model's features of each (pid, event_timestamp) row at its instant, by the
    live path's own SQL (features/live.py `features_at`: what a record served then would
    have read; Feast's point-in-time rows are on the weekly grid only), in `rows`' order,
    with `rows`' other columns."""
    from leadscore.features.live import PERSON_VIEWS, FeatureDefinitions, features_at, open_middle_layer

    definitions, parts = FeatureDefinitions.from_settings(settings), []
    con = open_middle_layer(settings.middle_db)
    try:
        for at, group in rows.groupby("event_timestamp", sort=True):
            views = features_at(con, definitions, group["pid"].tolist(), pd.Timestamp(at).to_pydatetime())
            part = group
            for view in PERSON_VIEWS:
                part = part.merge(views[view].drop(columns=["event_timestamp"]), on="pid", how="left",
                                  suffixes=("", f"__{view}"))
            parts.append(part.set_axis(group.index))  # one row per pid in each view: the left's order
    finally:
        con.close()
    return pd.concat(parts).loc[rows.index]


def reference_plan(settings: Settings, champion: Champion, now: datetime) -> tuple[list[pd.Timestamp], Path]:
    """The reference's instants at `now`'s hour of the week and the file that caches its rows."""
    config = settings.monitoring
    start, end = reference_window(champion.spec, config.reference_days)
    times = reference_times(start, end, now)
    if not times:
        raise ValueError(f"the drift reference's window {start:%Y-%m-%d}..{end:%Y-%m-%d} holds no "
                         f"{pd.Timestamp(now):%A %H}:00: monitoring.reference_days must be a week or more")
    cache = settings.monitoring_dir / (f"served-reference-v{champion.version}-{config.reference_days}d"
                                       f"-{config.window_days}d-{times[0]:%a-%H}h.parquet")
    return times, cache


def reference_features(settings: Settings, champion: Champion, now: datetime) -> pd.DataFrame:
    """The champion's reference rows at `now`'s hour of the week (see the module's docstring):
    its prepared features, `REFERENCE_SCORE` and `ACTED_DAYS`; cached per version, settings
    and hour of the week."""
    times, cache = reference_plan(settings, champion, now)
    if cache.is_file():
        return pd.read_parquet(cache)
    with duckdb.connect(str(settings.middle_db), read_only=True) as con:
        rows = served_like_rows(con, times, settings.monitoring.window_days)
    if rows.empty:
        start, end = reference_window(champion.spec, settings.monitoring.reference_days)
        raise ValueError(f"no interaction in the drift reference's window {start:%Y-%m-%d}..{end:%Y-%m-%d} "
                         "(monitoring.reference_days before the end of the champion's test window)")
    rows = rows.sample(min(len(rows), REFERENCE_ROWS), random_state=0)
    log.info("drift reference of v%s at %s: %d people's features at %d instants", champion.version,
             f"{times[0]:%A %H:00}", len(rows), len(times))
    features = features_at_times(settings, rows)
    frame = prepare(features, champion.spec.features).assign(
        **{REFERENCE_SCORE: champion_scores(settings, champion, features), ACTED_DAYS: features[ACTED_DAYS]})
    cache.parent.mkdir(parents=True, exist_ok=True)
    staging = cache.with_name(f".{cache.name}.{uuid.uuid4().hex}.tmp")  # two processes may build it at once
    try:
        frame.to_parquet(staging)
        os.replace(staging, cache)
    finally:
        staging.unlink(missing_ok=True)
    return frame


class ReferenceBuilds:
    """Drift references built behind the /monitor page, one at a time in the process: a page
    asking while one is built starts nothing more (a world clock run fast would otherwise start
    one per hour of the week it passes), and a worker finding another worker building the same
    file leaves it to that one. A build that failed is not tried again for `retry_after_s`;
    meanwhile asking for it raises its error (the page's 503 says why)."""

    def __init__(self, retry_after_s: float = 300) -> None:
        self.retry_after_s = retry_after_s
        self._lock = threading.Lock()
        self._running: str | None = None  # the hour of the week being built ("Wednesday 00:00")
        self._failed: dict[Path, tuple[float, str]] = {}  # cache -> (time.monotonic(), error)

    def start(self, settings: Settings, champion: Champion, now: datetime) -> str:
        """Build `now`'s reference in the background unless one is being built; the hour of
        the week of the one being built. ValueError: its last build failed a moment ago."""
        _, cache = reference_plan(settings, champion, now)
        with self._lock:
            failed = self._failed.get(cache)
            if failed is not None and time.monotonic() - failed[0] < self.retry_after_s:
                raise ValueError(f"the drift reference could not be built: {failed[1]}")
            if self._running is None:
                self._running = f"{pd.Timestamp(now):%A %H}:00"
                threading.Thread(target=self._build, args=(settings, champion, now, cache), daemon=True,
                                 name=f"drift-reference-{cache.stem}").start()
            return self._running

    def _build(self, settings: Settings, champion: Champion, now: datetime, cache: Path) -> None:
        error: Exception | None = None
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            with open(cache.with_name(f".{cache.name}.lock"), "w") as lock:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:  # another worker builds it
                    return
                reference_features(settings, champion, now)
        except Exception as failed:
            log.exception("building the drift reference %s failed", cache.name)
            error = failed
        finally:
            with self._lock:
                self._running = None
                if error is None:
                    self._failed.pop(cache, None)
                else:
                    self._failed[cache] = (time.monotonic(), str(error))


def served_span_days(scores: pd.DataFrame, since: datetime, now: datetime) -> float:
    """Days of served traffic in the window: from its start, or from the first score an
    ingest served in it if that came later (a live history younger than the window, or one
    that resumed after a pause; a pause inside the window is not seen)."""
    at = scores.loc[scores["trigger"] == INGEST, "at"]
    at = at[at >= pd.Timestamp(since)]
    first = max(pd.Timestamp(since), at.min()) if len(at) else pd.Timestamp(since)
    return max((pd.Timestamp(now) - first) / pd.Timedelta(days=1), 0.0)


def acted_within(reference: pd.DataFrame, days: float) -> pd.DataFrame:
    """The reference rows of people who acted within `days` before their time."""
    return reference[reference[ACTED_DAYS] < days]


def features_now(rows: OnlineRows, now: datetime, recency: list[str]) -> pd.DataFrame:
    """Online rows as of `now`: each `recency` feature (days since a person's last X, as of
    the update of the row it came from) counted on to `now`. Exact while no event came since
    that update (one would have updated the row); counts over windows stay as of the update."""
    frame = rows.frame()
    for name in (name for name in recency if name in frame):
        stamps = pd.Series(rows.stamps.get(name, rows.updated_at), index=frame.index, dtype=object)
        elapsed = ((pd.Timestamp(now) - pd.to_datetime(stamps, utc=True)) / pd.Timedelta(days=1))
        frame[name] = pd.to_numeric(frame[name], errors="coerce") + elapsed.clip(lower=0).fillna(0.0)
    return frame


def recent_acting_pids(scores: pd.DataFrame, since: datetime) -> list[str]:
    """The people the champion scored from `since` on because a record of theirs arrived
    (trigger `ingest`: not a CRM's /score nor a rep's portrait, which anyone may get)."""
    recent = scores[(scores["at"] >= pd.Timestamp(since)) & (scores["trigger"] == INGEST)]
    return sorted(recent["pid"].unique())


def read_inputs(settings: Settings, now: datetime, online: OnlineReader | None,
                builds: ReferenceBuilds | None = None) -> Inputs:
    """Everything a report needs at `now`; drift's feature rows only with an `online` reader.
    With `builds`, a missing drift reference is left to them (`drift_building` says which is
    being built) instead of built here (10-50 s on the default world)."""
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
    pids = recent_acting_pids(scores, since)
    span = served_span_days(scores, since, now)
    wait = building = None
    if champion is not None and online is not None and pids:
        from leadscore.features.catalog import settings_catalog

        if span < settings.monitoring.min_drift_days:
            wait = settings.monitoring.min_drift_days - span
        elif builds is not None and not reference_plan(settings, champion, now)[1].is_file():
            building = builds.start(settings, champion, now)
        else:
            kept = acted_within(reference_features(settings, champion, now), span)
            reference = kept if len(kept) else None
            score_reference = kept[REFERENCE_SCORE].reset_index(drop=True) if len(kept) else None
            current = prepare(features_now(online(pids), now, settings_catalog(settings).recency_names()),
                              champion.spec.features)
    return Inputs(now, since, scores, labels, judged[judged["at"] >= pd.Timestamp(since)], records,
                  outbox_counts(settings.serving_dir / OUTBOX_FILE), champion, reference, current,
                  score_reference, wait, building)


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
