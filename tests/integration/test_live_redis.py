"""The live path on a real redis-server: four days of the tiny world's future ingested through the
service (built in this process), then a batch rebuild at the same clock: every feature written
live equals the batch's, every record is stored with the PID the batch gives it."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from in_process import service_in_process

from leadscore.benchmarks.live import Receiver, bench_settings, consistency, load_redis, world_copy
from leadscore.clock import CLOCK_FILE, WorldClock, world_end
from leadscore.config import load_settings
from leadscore.live.log import EVENT_LOG, EventLog
from leadscore.live.replay import due_calls
from leadscore.live.sources import ID_COLUMN
from leadscore.synth.future import future_records, read_future

pytestmark = pytest.mark.integration
INGEST = {"X-API-Key": "demo-ingest-key"}
DAYS = 4  # of the tiny world's future: a few hundred records


def test_features_written_live_to_redis_equal_a_batch_rebuild(world, redis_server, tmp_path):
    settings = load_settings(world["config_file"])
    copy = world_copy(settings.data_dir, tmp_path / "world")
    receiver = Receiver()  # the MQL webhook's receiver (pushes are not what this test checks)
    with receiver.running():
        live = bench_settings(settings, tmp_path, copy, receiver.url,
                              overrides={"features": {"online_store": "redis", "redis": redis_server}})
        assert load_redis(live) > 0  # feast apply and a full load into the empty Redis store
        end = world_end(settings)
        # the clock stands still: every write of the day is at one instant, so a person written
        # twice is written twice at the same time (Feast's Redis store would keep the first)
        WorldClock(live.live_dir / CLOCK_FILE, end).place(end + timedelta(days=DAYS), speed=0)
        records = [(None, source, record) for source, record in future_records(
            read_future(settings.future_dir), pd.Timestamp(end), pd.Timestamp(end + timedelta(days=DAYS)))]
        calls = due_calls(records, 20)
        from leadscore.serving.service import app

        with service_in_process(live.source):
            client = TestClient(app)
            for source, batch in calls:
                answer = client.post(f"/ingest/{source}", json=batch, headers=INGEST)
                assert answer.status_code == 200, answer.text
        sent = {(source, str(record[ID_COLUMN[source]])) for _, source, record in records}
        checks = consistency(live, sent)

    assert checks["lost_records"] == 0 and checks["records_stored"] == len(sent) > 50
    assert checks["pid_mismatches"] == 0
    assert checks["touched_pids"] > 10 and checks["features_compared"] > 500
    assert checks["feature_mismatches"] == 0, checks["mismatch_examples"]
    kept = EventLog(live.live_dir / EVENT_LOG).records("kept")
    kept = kept[kept["pid"].notna()]
    assert kept.groupby("pid")["source"].nunique().max() > 1  # someone written by two calls
