"""Breaches of the thresholds, each posted once to a real local HTTP receiver."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from leadscore.benchmarks.live import Receiver
from leadscore.config import MonitoringThresholds
from leadscore.local_servers import free_port
from leadscore.monitoring.alerts import AlertState, Breach, drift_breaches, model_breaches, post_new_breaches

NOW = datetime(2027, 3, 1, tzinfo=UTC)
LIMITS = MonitoringThresholds(min_roc_auc=0.65, max_ece=0.05)


@pytest.fixture
def receiver():
    with Receiver().running() as running:
        yield running


def breach(key: str) -> Breach:
    return Breach(key, 0.1, 0.05, f"{key} beyond its threshold")


def test_a_breach_is_posted_once_however_often_monitoring_runs(receiver, tmp_path):
    state = AlertState(tmp_path)
    first = post_new_breaches([breach("ece:champion:3")], state, receiver.url, NOW)
    again = post_new_breaches([breach("ece:champion:3")], state, receiver.url, NOW)
    both = post_new_breaches([breach("ece:champion:3"), breach("score_psi")], state, receiver.url, NOW)
    assert (first, again, both) == (["ece:champion:3"], [], ["score_psi"])
    bodies = [hit["body"] for hit in receiver.received]
    assert [[b["key"] for b in body["breaches"]] for body in bodies] == [["ece:champion:3"], ["score_psi"]]
    assert bodies[0]["type"] == "leadscore_monitoring_alert" and bodies[0]["at"] == NOW.isoformat()


def test_a_breach_that_cleared_and_came_back_is_posted_again(receiver, tmp_path):
    state = AlertState(tmp_path)
    post_new_breaches([breach("score_psi")], state, receiver.url, NOW)
    post_new_breaches([], state, receiver.url, NOW)  # cleared
    assert post_new_breaches([breach("score_psi")], state, receiver.url, NOW) == ["score_psi"]
    assert len(receiver.received) == 2


def test_a_breach_back_within_the_keep_days_is_not_posted_again(receiver, tmp_path):
    state = AlertState(tmp_path)
    days = [NOW + timedelta(days=d) for d in range(30)]
    wavering = [d for d in range(30) if d % 3 == 0 or d == 29]  # breached every third day, then day 29
    posted = [day for day, at in enumerate(days)
              if post_new_breaches([breach("score_psi")] if day in wavering else [], state, receiver.url,
                                   at, keep_days=7)]
    assert posted == [0]  # never clear for 7 days: one trouble, one message
    for day in range(30, 38):  # clear from day 30 ...
        post_new_breaches([], state, receiver.url, NOW + timedelta(days=day), keep_days=7)
    day_38 = NOW + timedelta(days=38)
    back = post_new_breaches([breach("score_psi")], state, receiver.url, day_38, keep_days=7)
    assert back == ["score_psi"] and len(receiver.received) == 2  # ... 9 days clear: posted again


def test_saved_times_without_a_zone_or_ahead_of_the_clock_read_against_it(tmp_path):
    (tmp_path / "alerts.json").write_text(
        '{"score_psi": "2027-02-27T00:00:00", "ece:champion:3": "2027-06-01T00:00:00+00:00"}')
    seen = AlertState(tmp_path).last_seen(NOW)  # NOW is 2027-03-01, in UTC
    assert seen == {"score_psi": datetime(2027, 2, 27, tzinfo=UTC), "ece:champion:3": NOW}  # back: as of now
    post_new_breaches([], AlertState(tmp_path), None, NOW, keep_days=7)
    post_new_breaches([], AlertState(tmp_path), None, NOW + timedelta(days=5), keep_days=7)
    assert AlertState(tmp_path).posted() == {"ece:champion:3"}  # clear 5 days; score_psi 7 and more
    post_new_breaches([], AlertState(tmp_path), None, NOW + timedelta(days=8), keep_days=7)
    assert AlertState(tmp_path).posted() == set()  # not 3 months more


def test_the_state_written_before_the_keep_days_still_reads(receiver, tmp_path):
    (tmp_path / "alerts.json").write_text('["score_psi"]')  # the list of keys, the old format
    state = AlertState(tmp_path)
    assert state.posted() == {"score_psi"}
    assert post_new_breaches([breach("score_psi")], state, receiver.url, NOW, keep_days=7) == []
    assert state.last_seen(NOW + timedelta(days=1)) == {"score_psi": NOW}


def test_a_post_that_failed_is_tried_again_at_the_next_run(receiver, tmp_path):
    state = AlertState(tmp_path)
    nobody = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    assert post_new_breaches([breach("score_psi")], state, nobody, NOW, timeout_s=1) == []
    assert post_new_breaches([breach("score_psi")], state, receiver.url, NOW) == ["score_psi"]


def test_without_an_alert_webhook_nothing_is_posted_or_remembered(tmp_path):
    state = AlertState(tmp_path)
    assert post_new_breaches([breach("score_psi")], state, None, NOW) == []
    assert state.posted() == set()


def test_model_breaches_need_enough_matured_scores_and_name_the_version():
    metrics = {
        "3": {"role": "champion", "n": 500, "positives": 40, "roc_auc": 0.6, "pr_auc": 0.2, "ece": 0.01},
        "4": {"role": "shadow", "n": 20, "positives": 2, "roc_auc": 0.5, "pr_auc": 0.1, "ece": 0.3}}
    found = model_breaches(metrics, LIMITS, min_matured=100)
    assert [b.key for b in found] == ["roc_auc:champion:3"]  # v4 has too few; v3's ECE is fine
    assert "0.600" in found[0].message and "0.65" in found[0].message


def test_drift_breaches_skip_what_was_not_measured():
    rows = [{"feature": "visits", "psi": 0.4, "unknown_share": float("nan"), "missing_increase": 0.0},
            {"feature": "industry", "psi": 0.01, "unknown_share": 0.2, "missing_increase": None}]
    keys = [b.key for b in drift_breaches(rows, None, MonitoringThresholds())]
    assert keys == ["feature_psi:visits", "unknown_share:industry"]  # NaN and None are no breach
