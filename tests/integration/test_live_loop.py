"""The live loop end to end on the tiny world: the real service with two workers, the world's
next days replayed into it, a batch rebuild at the same clock, and a worker killed mid-ingest."""

from __future__ import annotations

import os
import signal
import threading
import time
from datetime import timedelta

import httpx
import pandas as pd
import pytest

from leadscore.benchmarks.live import Receiver, bench_settings, consistency, world_copy
from leadscore.benchmarks.servers import bentoml_server
from leadscore.clock import CLOCK_FILE, WorldClock, world_end
from leadscore.config import load_settings
from leadscore.live.log import EVENT_LOG, EventLog
from leadscore.live.replay import http_sender, replay
from leadscore.live.sources import ID_COLUMN
from leadscore.synth.future import future_records, read_future

pytestmark = pytest.mark.integration
SERVICE = "leadscore.serving.service:LeadScoring"


@pytest.fixture(scope="module")
def live_world(world, tmp_path_factory):
    """A copy of the tiny world (its own Feast store and live state) with the webhook pointed at
    a local receiver."""
    settings = load_settings(world["config_file"])
    work = tmp_path_factory.mktemp("live")
    copy = world_copy(settings.data_dir, work / "world")
    receiver = Receiver()
    with receiver.running():
        bench = bench_settings(settings, work, copy, receiver.url)
        bench = bench.model_copy(update={"serving": bench.serving.model_copy(update={"workers": 2})})
        yield {"settings": bench, "future": read_future(settings.future_dir), "receiver": receiver,
               "work": work, "end": world_end(settings)}


def test_a_replay_into_two_workers_matches_a_batch_rebuild(live_world):
    settings, receiver = live_world["settings"], live_world["receiver"]
    clock = WorldClock(settings.live_dir / CLOCK_FILE, live_world["end"])
    clock.place(live_world["end"], speed=0)
    with bentoml_server("live", SERVICE, settings, settings.data_dir, live_world["work"],
                        workers=2) as server:
        assert len(server.workers) == 2
        send, client = http_sender(server.url, "demo-ingest-key", crm_key="demo-crm-key")
        with client:
            stats = replay(live_world["future"], clock, days=3, speed=86_400 * 2, send=send, max_records=100,
                           tick_s=0.05)
        time.sleep(3)  # the last MQL deliveries
    sent = {(source, str(record[ID_COLUMN[source]])) for source, record in future_records(
        live_world["future"], pd.Timestamp(stats.world_from), pd.Timestamp(stats.world_to))}
    assert stats.sent == len(sent) > 100
    # the replayed opportunities came back as the CRM's outcomes, each on the PID ingest gave it
    log = EventLog(settings.live_dir / EVENT_LOG)
    stored = log.records()
    bound = stored[(stored["source"] == "opportunities") & stored["pid"].notna()]
    outcomes = log.outcomes()
    assert stats.outcomes == len(outcomes) == len(bound) > 0
    assert set(outcomes["kind"]) == {"opportunity_created"}
    assert dict(zip(outcomes["crm_id"], outcomes["pid"], strict=True)) == dict(
        zip(bound["source_record_id"], bound["pid"], strict=True))
    checks = consistency(settings, sent)
    assert checks["lost_records"] == 0
    assert checks["records_stored"] == len(sent)
    assert checks["pid_mismatches"] == 0
    assert checks["touched_pids"] > 20 and checks["features_compared"] > 1000
    assert checks["feature_mismatches"] == 0, checks["mismatch_examples"]
    keys = [hit["key"] for hit in receiver.received]
    assert len(keys) == len(set(keys))  # one push per crossing
    writes = EventLog(settings.live_dir / EVENT_LOG).feature_writes()
    touched = set(writes.loc[writes["view"] == "person_interest", "pid"])
    mqls = [hit["body"] for hit in receiver.received if hit["body"].get("type") != "daily_digest"]
    assert mqls and {mql["pid"] for mql in mqls} <= touched  # pushed from ingest
    digests = [hit["body"] for hit in receiver.received if hit["body"].get("type") == "daily_digest"]
    assert digests, "no daily digest in three days"
    assert {lead["pid"] for d in digests for lead in d["leads"]} <= touched


def test_a_worker_killed_mid_ingest_loses_nothing_acknowledged_and_doubles_nothing(live_world, tmp_path):
    original = (live_world["settings"].data_dir / "raw").resolve().parent  # what the first copy links to
    settings = live_world["settings"].with_data_dir(world_copy(original, tmp_path / "world"),
                                                    live_world["settings"].mlflow_dir)
    end = live_world["end"] + timedelta(days=5)
    WorldClock(settings.live_dir / CLOCK_FILE, end).place(end + timedelta(days=2), speed=0)
    records = list(future_records(live_world["future"], pd.Timestamp(end),
                                  pd.Timestamp(end + timedelta(days=2))))
    calls = [(source, [record]) for source, record in records]
    acknowledged: set[tuple[str, str]] = set()
    with bentoml_server("crash", SERVICE, settings, settings.data_dir, tmp_path, workers=2) as server:
        def drive() -> None:
            with httpx.Client(base_url=server.url, headers={"X-API-Key": "demo-ingest-key"}, timeout=30) as c:
                for source, batch in calls:
                    try:
                        answer = c.post(f"/ingest/{source}", json=batch)
                    except httpx.HTTPError:
                        continue
                    if answer.status_code == 200:
                        acknowledged.update((source, r["source_record_id"]) for r in answer.json()["records"])

        driver = threading.Thread(target=drive)
        driver.start()
        time.sleep(3)
        os.kill(server.workers[0], signal.SIGKILL)  # mid-ingest: calls in flight on it fail
        driver.join(timeout=600)
        with httpx.Client(base_url=server.url, headers={"X-API-Key": "demo-ingest-key"}, timeout=30) as c:
            for _ in range(60):  # the supervisor starts a new worker
                if c.get("/readyz").status_code == 200:
                    break
                time.sleep(1)
            again = [c.post(f"/ingest/{source}", json=batch).json() for source, batch in calls]
            log = EventLog(settings.live_dir / EVENT_LOG)
            for _ in range(120):  # the updates behind the answers, the killed worker's included
                if not log.due(1):
                    break
                time.sleep(0.5)
    assert log.due(1) == []  # every acknowledged record's person has fresh features and a score
    people = set(log.records("kept")["pid"].dropna())
    assert people <= set(log.feature_writes()["pid"])
    stored = log.records()
    keys = list(zip(stored["source"], stored["source_record_id"], strict=True))
    assert len(acknowledged) > 0
    assert acknowledged <= set(keys)  # nothing acknowledged is missing
    assert len(keys) == len(set(keys)) == len({(s, str(r[ID_COLUMN[s]])) for s, r in records})
    resent = sum(answer["accepted"] + answer["quarantined"] for answer in again)
    assert resent <= len(keys) - len(acknowledged)  # what was acknowledged is never new again

