"""The service's live path in one worker (built in this process) on a copy of the tiny world:
a call alone is answered once its person's features and score are fresh."""

from __future__ import annotations

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


def test_a_call_alone_is_answered_with_its_persons_score_fresh(world, tmp_path):
    settings = load_settings(world["config_file"])
    live = bench_settings(settings, tmp_path, world_copy(settings.data_dir, tmp_path / "world"), None)
    end = world_end(settings)
    now = end + timedelta(days=2, hours=3)
    WorldClock(live.live_dir / CLOCK_FILE, end).place(now, speed=0)
    with duckdb.connect(str(live.middle_db), read_only=True) as con:
        pid, email = con.execute("SELECT pid, email FROM person WHERE email IS NOT NULL "
                                 "AND pid IN (SELECT pid FROM interaction) ORDER BY pid LIMIT 1").fetchone()
    form = {"form_fill_id": "QUIET-1", "submitted_at": (now - timedelta(minutes=5)).isoformat(),
            "form_type": "contact_sales", "email": email}
    from leadscore.serving.service import app

    with service_in_process(live.source):
        client = TestClient(app)
        before = client.post("/score", json={"pid": pid}, headers={"X-API-Key": "demo-crm-key"}).json()
        answer = client.post("/ingest/form_fills", json=[form], headers={"X-API-Key": "demo-ingest-key"})
        assert answer.status_code == 200 and answer.json()["people"] == [pid]
        after = client.post("/score", json={"pid": pid}, headers={"X-API-Key": "demo-crm-key"}).json()
    assert before["feature_timestamp"] < now.isoformat() <= after["feature_timestamp"]
    assert after["probability"] > before["probability"]  # a request to sales, minutes ago
    assert EventLog(live.live_dir / EVENT_LOG).due(1) == []
