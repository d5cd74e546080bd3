"""The service's live path in one worker (built in this process) on a copy of the tiny world:
a call alone is answered once its person's features and score are fresh; a record dated a
little ahead of the clock counts once the clock gets there."""

from __future__ import annotations

import time
from datetime import timedelta

import duckdb
import pytest
from fastapi.testclient import TestClient
from in_process import service_in_process

from leadscore.benchmarks.live import bench_settings, world_copy
from leadscore.clock import CLOCK_FILE, WorldClock, world_end
from leadscore.config import load_settings
from leadscore.live.log import EVENT_LOG, EventLog

pytestmark = pytest.mark.integration


def _live_world(world, tmp_path, now_after_end: timedelta):
    """The tiny world's copy with its clock placed (and held) `now_after_end` after its end, and
    a person of the batch with an email and interactions: (settings, clock, now, pid, email)."""
    settings = load_settings(world["config_file"])
    live = bench_settings(settings, tmp_path, world_copy(settings.data_dir, tmp_path / "world"), None)
    end = world_end(settings)
    now = end + now_after_end
    clock = WorldClock(live.live_dir / CLOCK_FILE, end)
    clock.place(now, speed=0)
    with duckdb.connect(str(live.middle_db), read_only=True) as con:
        pid, email = con.execute("SELECT pid, email FROM person WHERE email IS NOT NULL "
                                 "AND pid IN (SELECT pid FROM interaction) ORDER BY pid LIMIT 1").fetchone()
    return live, clock, now, pid, email


def _score(client: TestClient, pid: str) -> dict:
    return client.post("/score", json={"pid": pid}, headers={"X-API-Key": "demo-crm-key"}).json()


def test_a_call_alone_is_answered_with_its_persons_score_fresh(world, tmp_path):
    live, _, now, pid, email = _live_world(world, tmp_path, timedelta(days=2, hours=3))
    form = {"form_fill_id": "QUIET-1", "submitted_at": (now - timedelta(minutes=5)).isoformat(),
            "form_type": "contact_sales", "email": email}
    from leadscore.serving.service import app

    with service_in_process(live.source):
        client = TestClient(app)
        before = _score(client, pid)
        answer = client.post("/ingest/form_fills", json=[form], headers={"X-API-Key": "demo-ingest-key"})
        assert answer.status_code == 200 and answer.json()["people"] == [pid]
        after = _score(client, pid)
    assert before["feature_timestamp"] < now.isoformat() <= after["feature_timestamp"]
    assert after["probability"] > before["probability"]  # a request to sales, minutes ago
    assert EventLog(live.live_dir / EVENT_LOG).due(1) == []


def test_a_record_dated_ahead_of_the_clock_counts_once_the_clock_gets_there(world, tmp_path):
    """A source's clock an hour ahead: the form is kept, the update at the answer cannot count
    it yet; once the clock passes its time the person is updated with nothing else sent."""
    live, clock, now, pid, email = _live_world(world, tmp_path, timedelta(days=2, hours=3))
    ahead = now + timedelta(hours=1)
    form = {"form_fill_id": "AHEAD-1", "submitted_at": ahead.isoformat(), "form_type": "contact_sales",
            "email": email}
    from leadscore.serving.service import app

    with service_in_process(live.source):
        client = TestClient(app)
        answer = client.post("/ingest/form_fills", json=[form], headers={"X-API-Key": "demo-ingest-key"})
        assert answer.status_code == 200 and answer.json()["people"] == [pid]
        answered = _score(client, pid)
        assert answered["feature_timestamp"] < ahead.isoformat()
        clock.place(ahead + timedelta(seconds=1), speed=0)
        # until the update is done: its views' rows are written one after the other, and a read
        # between two of them already shows the first one's newer time
        deadline, later, log = time.monotonic() + 30, answered, EventLog(live.live_dir / EVENT_LOG)
        while (later["feature_timestamp"] < ahead.isoformat() or log.due(1)) and time.monotonic() < deadline:
            time.sleep(0.2)
            later = _score(client, pid)
        later = _score(client, pid)
    assert later["feature_timestamp"] >= ahead.isoformat()
    assert later["probability"] > answered["probability"]  # the request to sales counts now
