"""Drift's two populations drawn alike (monitoring/inputs.py), on tiny hand-built data: the
reference's people who acted before each feature time, the span of served traffic, and the
current rows' days-since features counted on to now."""

from __future__ import annotations

from datetime import datetime, timezone

import duckdb
import pandas as pd
import pytest

from leadscore.config import MonitoringSettings
from leadscore.features.store import OnlineRows
from leadscore.monitoring.inputs import (
    ACTED_DAYS,
    acted_within,
    features_now,
    reference_times,
    served_like_rows,
    served_span_days,
)

UTC = timezone.utc


def test_reference_times_are_a_week_apart_at_the_hour_of_the_week_of_now():
    now = datetime(2026, 11, 11, 14, 37, tzinfo=UTC)  # a Wednesday
    times = reference_times(pd.Timestamp("2026-03-01", tz="UTC"), pd.Timestamp("2026-03-26", tz="UTC"), now)
    assert times == [pd.Timestamp(f"2026-03-{day:02d} 14:00", tz="UTC") for day in (4, 11, 18, 25)]
    assert all(t.dayofweek == 2 for t in times)
    # the end is open: a window ending at 14:00 on the 25th stops a week earlier
    start, end = pd.Timestamp("2026-03-04 14:00", tz="UTC"), pd.Timestamp("2026-03-25 14:00", tz="UTC")
    ends = reference_times(start, end, now)
    assert ends == times[:3]


@pytest.fixture
def middle():
    con = duckdb.connect()
    con.execute("CREATE TABLE person (pid TEXT, identified_at TIMESTAMPTZ)")
    con.execute("INSERT INTO person VALUES ('P1', '2026-01-01'), ('P2', '2026-01-01'), ('P3', '2026-03-14')")
    con.execute("CREATE TABLE interaction (pid TEXT, event_time TIMESTAMPTZ)")
    con.execute("""INSERT INTO interaction VALUES
        ('P1', '2026-03-13 12:00'), ('P1', '2026-03-15 00:00'),  -- last: 1 day before the 16th
        ('P2', '2026-03-01 00:00'),                              -- 15 days before: outside 10 days
        ('P3', '2026-03-12 00:00'),                              -- known only on the 14th: counted
        (NULL, '2026-03-15 00:00'),                              -- an anonymous visit: nobody
        ('P1', '2026-03-16 00:00')                               -- at the time itself: not before it""")
    yield con
    con.close()


def test_served_like_rows_are_the_people_known_who_acted_in_the_window_before_each_time(middle):
    times = [pd.Timestamp("2026-03-16", tz="UTC")]
    rows = served_like_rows(middle, times, window_days=10)
    assert rows["pid"].tolist() == ["P1", "P3"]
    assert rows[ACTED_DAYS].tolist() == pytest.approx([1.0, 4.0])
    assert (rows["event_timestamp"] == times[0]).all()
    # before P3 was known, P3 acted but is nobody's row yet
    earlier = served_like_rows(middle, [pd.Timestamp("2026-03-13 18:00", tz="UTC")], 10)
    assert earlier["pid"].tolist() == ["P1"] and earlier[ACTED_DAYS].tolist() == pytest.approx([0.25])


def test_acted_within_keeps_the_rows_of_the_served_span():
    reference = pd.DataFrame({ACTED_DAYS: [0.5, 2.9, 3.0, 20.0]})
    assert acted_within(reference, 3.0)[ACTED_DAYS].tolist() == [0.5, 2.9]


def test_the_served_span_starts_at_the_first_ingest_score_in_the_window():
    now = datetime(2026, 3, 31, tzinfo=UTC)
    since = datetime(2026, 3, 1, tzinfo=UTC)
    at = pd.to_datetime(["2026-02-20", "2026-03-20", "2026-03-28", "2026-03-29"], utc=True)
    scores = pd.DataFrame({"at": at, "trigger": ["ingest", "shadow", "ingest", "score"]})
    # served before the window, paused, resumed 3 days ago: 3 days (a shadow or a CRM's score is no act)
    assert served_span_days(scores, since, now) == pytest.approx(3.0)
    assert served_span_days(scores.assign(trigger="ingest"), since, now) == pytest.approx(11.0)
    assert served_span_days(scores.iloc[:0], since, now) == pytest.approx(30.0)


def test_drift_cannot_wait_longer_than_its_window():
    with pytest.raises(ValueError, match="min_drift_days"):
        MonitoringSettings(window_days=5, min_drift_days=7)


def test_features_now_counts_days_since_on_to_now_and_leaves_counts_as_updated():
    now = datetime(2026, 3, 31, tzinfo=UTC)
    rows = OnlineRows(["P1", "P2", "P3"],
                      {"days_since_last_event": [0.5, None, 2.0], "events_7d": [3, 0, 1]},
                      [True, True, False],
                      [datetime(2026, 3, 29, tzinfo=UTC), datetime(2026, 3, 30, tzinfo=UTC), None])
    frame = features_now(rows, now, ["days_since_last_event", "days_since_last_web_visit"])
    assert frame["days_since_last_event"].tolist()[0] == pytest.approx(2.5)  # 0.5 then, 2 days ago
    assert pd.isna(frame["days_since_last_event"].iloc[1])  # never: still never
    assert frame["days_since_last_event"].iloc[2] == pytest.approx(2.0)  # no row online: as read
    assert frame["events_7d"].tolist() == [3, 0, 1]


def test_days_since_count_from_their_own_rows_update_not_a_colleagues():
    """A colleague's engagement rewrote P1's account row yesterday; P1's interest row is from
    20 days ago: P1 last acted 20 days ago, not yesterday."""
    now = datetime(2026, 3, 31, tzinfo=UTC)
    interest, account = [datetime(2026, 3, 11, tzinfo=UTC)], [datetime(2026, 3, 30, tzinfo=UTC)]
    rows = OnlineRows(["P1"], {"days_since_last_event": [0.0], "committee_people_30d": [2]}, [True], account,
                      {"days_since_last_event": interest, "committee_people_30d": account})
    frame = features_now(rows, now, ["days_since_last_event"])
    assert frame["days_since_last_event"].iloc[0] == pytest.approx(20.0)


@pytest.fixture
def builds_of(monkeypatch, tmp_path):
    """ReferenceBuilds whose plan names a file per hour of the week under tmp_path and whose
    build is `build(now)` (a test's stand-in for the 10-50 s of reading the middle layer)."""
    from leadscore.monitoring import inputs

    def plan(settings, champion, now):
        return [], tmp_path / f"served-reference-{now:%a-%H}h.parquet"

    def make(build, retry_after_s: float = 300) -> inputs.ReferenceBuilds:
        monkeypatch.setattr(inputs, "reference_plan", plan)
        monkeypatch.setattr(inputs, "reference_features", lambda settings, champion, now: build(now))
        return inputs.ReferenceBuilds(retry_after_s)

    return make


def _settled() -> None:
    """Once the background builds are done."""
    import threading
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(thread.name.startswith("drift-reference-")
                                               for thread in threading.enumerate()):
        time.sleep(0.01)


def test_one_reference_is_built_at_a_time_whichever_hour_a_page_asks_for(builds_of):
    import threading

    release, built = threading.Event(), []
    builds = builds_of(lambda now: (release.wait(10), built.append(now)))
    wednesday, thursday = datetime(2026, 11, 11, 9, tzinfo=UTC), datetime(2026, 11, 12, 17, tzinfo=UTC)
    assert builds.start(None, None, wednesday) == "Wednesday 09:00"
    assert builds.start(None, None, thursday) == "Wednesday 09:00"  # the one being built
    release.set()
    _settled()
    assert built == [wednesday]
    assert builds.start(None, None, thursday) == "Thursday 17:00"  # then the next one asked for
    _settled()
    assert built == [wednesday, thursday]


def test_a_build_that_failed_says_why_and_is_tried_again_only_later(builds_of):
    calls = []

    def failing(now):
        calls.append(now)
        raise ValueError("no interaction in the drift reference's window")

    now = datetime(2026, 11, 11, 9, tzinfo=UTC)
    builds = builds_of(failing)
    builds.start(None, None, now)
    _settled()
    with pytest.raises(ValueError, match="could not be built: no interaction"):
        builds.start(None, None, now)
    assert len(calls) == 1
    builds.retry_after_s = 0  # the back-off has passed
    builds.start(None, None, now)
    _settled()
    assert len(calls) == 2


def test_a_reference_another_worker_builds_is_left_to_it(builds_of, tmp_path):
    import fcntl

    built = []
    builds = builds_of(built.append)
    now = datetime(2026, 11, 11, 9, tzinfo=UTC)
    with open(tmp_path / f".served-reference-{now:%a-%H}h.parquet.lock", "w") as other_worker:
        fcntl.flock(other_worker, fcntl.LOCK_EX)
        builds.start(None, None, now)
        _settled()
    assert built == []
    builds.start(None, None, now)
    _settled()
    assert built == [now]
