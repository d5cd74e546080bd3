"""Monitoring on the tiny world, with matured scores made honestly: the real service scores the
world's people (a replayed day of ingests, then the CRM asking for everyone), the CRM posts
its dispositions of the pushed MQLs through POST /outcomes, the clock moves past the label
horizon, and the CRM posts the world's next opportunities (none may be dated ahead of the
clock). Then `leadscore monitor --json` (twice: an alert is posted once) and the /monitor page
in headless Chromium."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import timedelta

import duckdb
import httpx
import pandas as pd
import pytest
import yaml

from leadscore.benchmarks.live import Receiver, bench_settings, world_copy
from leadscore.benchmarks.servers import bentoml_server
from leadscore.clock import CLOCK_FILE, WorldClock, world_end
from leadscore.config import DATA_DIR_ENV_VAR, SETTINGS_ENV_VAR, Settings, load_settings
from leadscore.features.store import OnlineFeatures, open_store
from leadscore.live.log import EVENT_LOG, EventLog
from leadscore.live.replay import http_sender, replay
from leadscore.live.score_log import ScoreLog
from leadscore.monitoring.inputs import ACTED_DAYS, read_inputs
from leadscore.synth.future import read_future

pytestmark = pytest.mark.integration
SERVICE = "leadscore.serving.service:LeadScoring"
CRM = {"X-API-Key": "demo-crm-key"}
# breached on any matured cohort, so that the alert path runs on the tiny world
ALWAYS = {"min_roc_auc": 0.999, "max_ece": 0.0}


def monitored_settings(settings: Settings, work, receiver_url: str) -> Settings:
    """A copy of the world whose MQL webhook and alert webhook both post to the receiver."""
    bench = bench_settings(settings, work, world_copy(settings.data_dir, work / "world"), receiver_url)
    raw = yaml.safe_load(bench.source.read_text())
    # drift judged after the replayed day and a half of served traffic (7 days by default)
    raw["monitoring"] = {"alert_webhook": receiver_url, "min_matured": 10, "min_drift_days": 1,
                         "thresholds": ALWAYS}
    raw["serving"]["workers"] = 1
    bench.source.write_text(yaml.safe_dump(raw))
    return load_settings(bench.source).with_data_dir(bench.data_dir, bench.mlflow_dir)


def everyone(settings: Settings) -> list[str]:
    return sorted(pd.read_parquet(settings.feature_data_dir / "people.parquet", columns=["pid"])["pid"])


def opportunities_after(settings: Settings, future: dict, after: pd.Timestamp) -> list[dict]:
    """The world's next opportunities created after `after`, as the CRM reports them (its
    contacts resolved to PIDs by the middle layer's id_map)."""
    opportunities = future["opportunities"]
    opportunities = opportunities[opportunities["created_at"] > after]
    with duckdb.connect(str(settings.middle_db), read_only=True) as con:
        pids = dict(con.execute("SELECT source_record_id, pid FROM id_map WHERE source = 'crm_contacts'")
                    .fetchall())
    return [{"kind": "opportunity_created", "crm_id": o.opportunity_id, "pid": pids[o.contact_id],
             "at": o.created_at.isoformat(), "amount_usd": o.amount_usd}
            for o in opportunities.itertuples() if o.contact_id in pids]


def dispositions_of(mqls: list[dict], at: pd.Timestamp) -> list[dict]:
    """Sales judge the pushed MQLs in turn: accepted, rejected for no budget, recycled."""
    kinds = [("accepted", None), ("rejected", "no_budget"), ("recycled", None)]
    return [{"kind": "disposition", "crm_id": f"LEAD-{mql['pid']}", "pid": mql["pid"], "at": at.isoformat(),
             "disposition": kinds[i % 3][0], "reason": kinds[i % 3][1]} for i, mql in enumerate(mqls)]


def delivered_mqls(receiver: Receiver, quiet_s: float = 3, wait_s: float = 60) -> list[dict]:
    """The MQLs pushed to the receiver, once no new one came for `quiet_s` (delivery is async)."""
    deadline, seen, since = time.time() + wait_s, -1, time.time()
    while time.time() < deadline:
        mqls = [hit["body"] for hit in receiver.received if hit["body"].get("event") == "lead.mql"]
        if len(mqls) != seen:
            seen, since = len(mqls), time.time()
        elif time.time() - since >= quiet_s:
            return mqls
        time.sleep(0.5)
    pytest.fail("MQL deliveries did not settle")


def monitor_json(settings: Settings) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in (DATA_DIR_ENV_VAR, SETTINGS_ENV_VAR)}
    result = subprocess.run([os.path.join(os.path.dirname(sys.executable), "leadscore"), "-c",
                             str(settings.source), "monitor", "--json"],
                            capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def loop(world, tmp_path_factory):
    """The served, outcome-fed world with its clock moved past the horizon; yields its facts."""
    work = tmp_path_factory.mktemp("monitoring")
    receiver = Receiver()
    with receiver.running():
        settings = monitored_settings(load_settings(world["config_file"]), work, receiver.url)
        future = read_future(load_settings(world["config_file"]).future_dir)
        end = world_end(settings)
        clock = WorldClock(settings.live_dir / CLOCK_FILE, end)
        clock.place(end, speed=0)
        with bentoml_server("monitoring", SERVICE, settings, settings.data_dir, work, workers=1) as server:
            send, client = http_sender(server.url, "demo-ingest-key")
            with client:
                replay(future, clock, days=1, speed=86_400 * 4, send=send, max_records=200, tick_s=0.05)
            asked = end + timedelta(days=1, hours=12)
            clock.place(asked, speed=0)
            with httpx.Client(base_url=server.url, headers=CRM, timeout=120) as crm:
                people = everyone(settings)
                for i in range(0, len(people), 1000):
                    crm.post("/score_batch", json={"items": [{"pid": p} for p in people[i:i + 1000]]}
                             ).raise_for_status()
                mqls = delivered_mqls(receiver)
                crm.post("/outcomes", json=dispositions_of(mqls, pd.Timestamp(asked))).raise_for_status()
                early = monitor_json(settings)  # just after: operations counted, no score matured
                kept = EventLog(settings.live_dir / EVENT_LOG).counts().get("kept", 0)
                clock.place(asked + timedelta(days=settings.training.horizon_days, minutes=1), speed=0)
                # the opportunities once they happened (the world's next 30 days, within the
                # horizon): one dated ahead of the clock is refused (live.max_ahead_hours)
                opportunities = opportunities_after(settings, future, pd.Timestamp(asked))
                crm.post("/outcomes", json=opportunities).raise_for_status()
            first, second = monitor_json(settings), monitor_json(settings)
            yield {"settings": settings, "server": server, "receiver": receiver, "mqls": mqls,
                   "opportunities": opportunities, "early": early, "kept": kept, "first": first,
                   "second": second, "asked": asked}


def test_no_cohort_is_evaluated_before_its_horizon(loop):
    assert loop["early"]["models"] == {}
    assert loop["first"]["models"]


def test_monitor_json_judges_the_champion_on_every_matured_score(loop):
    settings, report = loop["settings"], loop["first"]
    logged = ScoreLog(settings.live_dir / "scores").read()
    daily = logged.assign(day=logged["at"].dt.floor("D")).drop_duplicates(["pid", "day"])
    converted = {o["pid"] for o in loop["opportunities"]}
    champion = report["models"][report["champion"]]
    assert champion["role"] == "champion" and len(report["models"]) == 1  # no shadow model here
    assert champion["n"] == len(daily) > 1000
    assert champion["positives"] == daily["pid"].isin(converted).sum() > 0
    assert 0.5 < champion["roc_auc"] <= 1 and 0 < champion["pr_auc"] <= 1 and 0 <= champion["ece"] < 1
    deciles = report["deciles"][report["champion"]]
    assert sum(d["leads"] for d in deciles) == champion["n"]
    assert sum(d["conversions"] for d in deciles) == champion["positives"]


def test_drift_compares_people_who_acted_as_long_ago_and_waits_for_enough_traffic(loop):
    """The reference keeps the people who acted within the day and a half served when the early
    report ran, scored by the champion; with the default week of traffic, no drift yet."""
    settings, asked = loop["settings"], loop["asked"]
    online = OnlineFeatures(open_store(settings))
    inputs = read_inputs(settings, asked, online.read_rows)
    assert inputs.reference is not None and len(inputs.reference) > 0
    assert inputs.reference[ACTED_DAYS].max() < 1.5 + 1e-9
    assert inputs.reference_scores is not None and inputs.reference_scores.between(0, 100).all()
    # read at the weekday and hour of the report's now (the traffic's weekly rhythm)
    assert list(settings.monitoring_dir.glob(f"served-reference-v*-{asked:%a-%H}h.parquet"))
    week = settings.monitoring.model_copy(update={"min_drift_days": 7})
    waiting = read_inputs(settings.model_copy(update={"monitoring": week}), asked, online.read_rows)
    assert waiting.reference is None and waiting.current is None and waiting.reference_scores is None
    # the served span: from the first score (the replayed day's first record) to the day and a half
    assert 7 - 1.5 <= waiting.drift_wait_days < 7 and inputs.drift_wait_days is None


def test_monitor_json_counts_operations_and_drift(loop):
    ops, mqls = loop["first"]["operations"], loop["mqls"]
    assert ops["webhook"]["mql"]["delivered"] == len(mqls) > 0
    judged = loop["early"]["operations"]["dispositions"]  # sales judged them then
    assert (judged["accepted"], judged["rejected"], judged["recycled"]) == (
        len(mqls[0::3]), len(mqls[1::3]), len(mqls[2::3]))
    assert judged["rejection_reasons"] == ({"no_budget": len(mqls[1::3])} if mqls[1::3] else {})
    assert judged["rejection_rate"] == pytest.approx(len(mqls[1::3]) / (len(mqls[0::3]) + len(mqls[1::3])))
    assert loop["early"]["operations"]["ingest"]["kept"] == loop["kept"] > 0  # the replayed day
    # a horizon later, the window (the clock's last 30 days) holds neither
    assert ops["dispositions"]["accepted"] == ops["ingest"]["kept"] == 0
    drift = loop["early"]["drift"]  # everyone was scored in the window then
    assert drift["score_psi"] is not None and drift["score_psi"] >= 0
    features = {row["feature"] for row in drift["features"]}
    assert "events_30d" in features and all(row["psi"] >= 0 for row in drift["features"])
    # nobody scored since
    assert loop["first"]["drift"] == {"score_psi": None, "features": [], "wait_days": None, "building": None}


def test_early_outcomes_judge_only_the_scores_younger_than_the_horizon(loop):
    rows = [row for row in loop["early"]["early"]["rows"]
            if row["role"] == "champion" and row["group"] == "all"]
    assert [row["window_days"] for row in rows] == loop["settings"].monitoring.early_windows_days
    assert all(row["scores"] > 1000 and row["observed"] == 0 for row in rows)  # none arrived yet
    assert loop["first"]["early"]["rows"] == []  # a horizon later, every score has matured


def test_each_breach_is_posted_once_and_every_run_is_in_mlflow(loop):
    import mlflow

    first, second = loop["first"], loop["second"]
    keys = {b["key"] for b in first["breaches"]}
    assert f"roc_auc:champion:{first['champion']}" in keys  # the test's threshold: always breached
    assert set(first["posted"]) == keys and second["posted"] == []
    assert {b["key"] for b in second["breaches"]} == keys  # still shown
    alerts = [hit["body"] for hit in loop["receiver"].received
              if hit["body"].get("type") == "leadscore_monitoring_alert"]
    of_first = [alert for alert in alerts if alert["at"] == first["at"]]
    assert len(of_first) == 1 and {b["key"] for b in of_first[0]["breaches"]} == keys
    posted = [b["key"] for alert in alerts for b in alert["breaches"]]
    assert len(posted) == len(set(posted))  # no breach twice (the early run's drift had its own)
    settings = loop["settings"]
    mlflow.set_tracking_uri(settings.tracking_uri)
    runs = mlflow.search_runs(experiment_names=[settings.monitoring.experiment])
    assert len(runs) >= 3
    client = mlflow.MlflowClient(settings.tracking_uri)
    name = f"champion.v{first['champion']}.roc_auc"
    history = client.get_metric_history(runs.iloc[0]["run_id"], name)
    clock = pd.Timestamp(first["at"])
    assert [h.step for h in history] == [int(clock.timestamp())]
    assert history[0].value == pytest.approx(second["models"][first["champion"]]["roc_auc"])


def test_the_admin_sees_matured_performance_drift_and_breaches_in_a_browser(loop, browser):
    server, report = loop["server"], loop["first"]
    version = report["champion"]
    # the CRM asks again: scores of the last 14 days, but no record arrived (drift's people act)
    with httpx.Client(base_url=server.url, headers=CRM, timeout=120) as crm:
        crm.post("/score_batch", json={"items": [{"pid": p} for p in everyone(loop["settings"])[:500]]}
                 ).raise_for_status()
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    page.goto(f"{server.url}/login?next=/monitor")
    page.fill("#key", "demo-admin-key")
    page.click("button[type=submit]")
    row = page.wait_for_selector(f'#models tr[data-version="{version}"]')
    assert f"{report['models'][version]['n']}" in row.inner_text()
    assert f"{report['models'][version]['roc_auc']:.3f}" in row.inner_text()
    for chart in ("reliability", "deciles", "tiers", "operations"):
        drawn = page.eval_on_selector(f"#chart-{chart}", "img => img.complete && img.naturalWidth")
        assert drawn > 300, chart
    assert "Nothing scored in the last window yet" in page.inner_text("#drift")
    assert page.query_selector('#early tr[data-early="champion:14:all"]') is not None  # the 500 just scored
    breach = page.inner_text(f'#breaches li[data-key="roc_auc:champion:{version}"]')
    assert "ROC-AUC" in breach and "posted" in breach
    page.goto(f"{server.url}/logout")
    page.goto(f"{server.url}/login?next=/monitor")
    page.fill("#key", "demo-sales-R001")
    page.click("button[type=submit]")
    assert "may not" in page.inner_text("#message")  # a sales rep's role has no `monitor`


def test_the_page_builds_a_missing_reference_behind_it_and_shows_drift_once_built(loop):
    """At an hour of the week whose drift reference is not built yet, /monitor answers at once
    that it is being built, builds it in the background, and shows drift once it is there."""
    settings, server, asked = loop["settings"], loop["server"], loop["asked"]
    clock = WorldClock(settings.live_dir / CLOCK_FILE, world_end(settings))
    later = clock.now()
    hour = asked + timedelta(hours=3)  # the replayed day's people still in the window
    cache = list(settings.monitoring_dir.glob(f"served-reference-v*-{hour:%a-%H}h.parquet"))
    assert cache == []  # only `asked`'s hour was built
    clock.place(hour, speed=0)
    try:
        with httpx.Client(base_url=server.url, headers={"X-API-Key": "demo-admin-key"}, timeout=60) as admin:
            first = admin.get("/monitor")
            assert first.status_code == 200 and 'id="drift-building"' in first.text
            assert f"for {hour:%A %H}:00 (an hour of the week) is being built" in first.text
            deadline, page = time.time() + 300, first.text
            while 'id="drift-building"' in page and time.time() < deadline:
                time.sleep(2)
                page = admin.get("/monitor").text
        assert "<td>events_30d</td>" in page  # drift shown, from the reference built behind the page
        assert list(settings.monitoring_dir.glob(f"served-reference-v*-{hour:%a-%H}h.parquet"))
    finally:
        clock.place(later, speed=0)
