"""A report from hand-made inputs: matured cohorts, operations and breaches, and its page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from leadscore.config import Settings
from leadscore.monitoring.drift import feature_drift
from leadscore.monitoring.inputs import Inputs
from leadscore.monitoring.operations import OUTBOX_STATUSES
from leadscore.monitoring.report import build_report
from leadscore.serving.monitor_page import monitor_page

NOW = datetime(2027, 3, 1, tzinfo=UTC)
SCORED = NOW - timedelta(days=100)


@pytest.fixture
def inputs() -> Inputs:
    rng = np.random.default_rng(0)
    pids = [f"P{i:03d}" for i in range(200)]
    probability = rng.uniform(0.01, 0.5, len(pids))
    scores = pd.DataFrame({"at": pd.Timestamp(SCORED), "pid": pids, "model_version": "2",
                           "probability": probability, "score": probability * 100,
                           "tier": np.where(probability > 0.25, "high-value", "to-nurture"),
                           "trigger": "ingest"})
    converted = [pid for pid, p in zip(pids, probability, strict=True) if rng.uniform() < p]
    labels = pd.DataFrame({"opportunity_id": [f"O{pid}" for pid in converted], "pid": converted,
                           "opportunity_created_at": pd.Timestamp(SCORED + timedelta(days=20)),
                           "stage": "open", "won_at": pd.NaT, "closed_at": pd.NaT, "amount_usd": None})
    judged = pd.DataFrame({"pid": ["P001", "P002", "P003"], "crm_id": ["L1", "L2", "L3"],
                           "at": pd.Timestamp(NOW),
                           "disposition": ["accepted", "rejected", "rejected"],
                           "reason": [None, "no_budget", "no_need"]})
    outbox = {kind: dict.fromkeys(OUTBOX_STATUSES, 0) for kind in ("mql", "daily_digest")}
    outbox["mql"].update(delivered=5, failed=1)
    return Inputs(NOW, NOW - timedelta(days=30), scores, labels, judged, {"kept": 90, "quarantined": 10},
                  outbox, None, None, None, None)


def test_a_report_judges_the_matured_scores_and_counts_operations(inputs):
    report = build_report(inputs, Settings(root=Path(".")))
    figures = report.models["2"]
    assert figures["n"] == 200 and figures["positives"] == inputs.labels["pid"].nunique()
    assert figures["roc_auc"] > 0.6  # the outcomes were drawn from the probabilities
    assert sum(report.tiers["2"]["leads"]) == 200
    ops = report.operations
    assert ops["dispositions"]["rejection_reasons"] == {"no_budget": 1, "no_need": 1}
    assert ops["dispositions"]["rejection_rate"] == pytest.approx(2 / 3)
    assert ops["ingest"]["quarantine_rate"] == pytest.approx(0.1)
    keys = {b.key for b in report.breaches}
    assert {"quarantine_rate", "rejection_rate", "webhook_failures"} <= keys


def test_a_report_watches_arrivals_from_the_first_score_served(inputs):
    # served 100 days ago, every opportunity 80 days ago: the 72 days before the 28-day window
    # hold them all, the window none
    report = build_report(inputs, Settings(root=Path(".")))
    arrivals = report.arrivals
    assert (arrivals["reference_days"], arrivals["observed"]) == (72, 0)
    assert arrivals["reference_rate"] == pytest.approx(len(inputs.labels) / 72)
    assert arrivals["down"] > 5 and arrivals["up"] == 0
    assert "arrivals_down" in {b.key for b in report.breaches}
    assert report.to_json()["arrivals"] == arrivals


def test_the_page_shows_the_versions_the_breaches_and_server_drawn_charts(inputs):
    report = build_report(inputs, Settings(root=Path(".")))
    html = monitor_page(report, {"quarantine_rate"}, Settings(root=Path(".")).monitoring.thresholds, "E0001")
    assert 'data-version="2"' in html and "E0001" in html
    assert 'data-key="quarantine_rate"' in html and "· posted" in html
    assert html.count('src="data:image/png;base64,') == 4  # reliability, deciles, tiers, operations
    assert "Nothing scored in the last window yet" in html  # no drift without a champion's reference
    assert "No score younger than the horizon yet" in html  # every score is 100 days old


def test_the_page_draws_the_drift_of_the_features_and_the_score(inputs):
    report = build_report(inputs, Settings(root=Path(".")))
    before, now = pd.DataFrame({"visits": [1.0, 2, 3, 4]}), pd.DataFrame({"visits": [1.0, 1, 1, 4]})
    report.drift = feature_drift(before, now, ["visits"], [], {}, bins=2)
    report.score_psi = 0.3
    html = monitor_page(report, set(), Settings(root=Path(".")).monitoring.thresholds, "E0001")
    assert html.count('src="data:image/png;base64,') == 5 and 'id="chart-psi"' in html
    assert "<td>visits</td>" in html


def test_the_page_and_the_json_say_how_long_drift_still_waits_for_served_traffic(inputs):
    inputs.drift_wait_days = 4.5
    report = build_report(inputs, Settings(root=Path(".")))
    html = monitor_page(report, set(), Settings(root=Path(".")).monitoring.thresholds, "E0001")
    assert 'id="drift-waits"' in html and "4.5 more days" in html
    assert "Nothing scored in the last window yet" not in html
    assert report.to_json()["drift"]["wait_days"] == 4.5


def test_the_page_and_the_json_say_the_reference_of_this_hour_is_being_built(inputs):
    inputs.drift_building = "Wednesday 00:00"
    report = build_report(inputs, Settings(root=Path(".")))
    html = monitor_page(report, set(), Settings(root=Path(".")).monitoring.thresholds, "E0001")
    assert 'id="drift-building"' in html
    assert "for Wednesday 00:00 (an hour of the week) is being built" in html
    assert "Nothing scored in the last window yet" not in html
    assert report.to_json()["drift"]["building"] == "Wednesday 00:00"
