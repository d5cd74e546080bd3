"""Early outcomes: O/E of the scores younger than the horizon (one per person), F from matured
delays, and a doubled base rate seen within 14 days (and nothing without it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from leadscore.config import Settings
from leadscore.monitoring.alerts import early_breaches
from leadscore.monitoring.cohorts import matured_cohorts
from leadscore.monitoring.early import conversion_delays, delay_share, early_outcomes, observed_expected
from leadscore.monitoring.inputs import Inputs
from leadscore.monitoring.operations import outbox_counts
from leadscore.monitoring.report import Report, build_report
from leadscore.monitoring.tracking import report_metrics
from leadscore.serving.monitor_page import monitor_page

DAY0 = datetime(2026, 1, 1, tzinfo=UTC)
HORIZON = 90


def scores_frame(rows: list[tuple[str, float, float]]) -> pd.DataFrame:
    """(pid, day, probability) -> score log rows."""
    return pd.DataFrame({"at": pd.to_datetime([DAY0 + timedelta(days=d) for _, d, _ in rows], utc=True),
                         "pid": [pid for pid, _, _ in rows], "model_version": "1",
                         "probability": [p for _, _, p in rows], "score": 50.0, "tier": "to-nurture",
                         "trigger": "ingest"})


def labels_frame(rows: list[tuple[str, float]]) -> pd.DataFrame:
    """(pid, day of the opportunity) -> the CRM's opportunities."""
    return pd.DataFrame({"opportunity_id": [f"O{pid}" for pid, _ in rows], "pid": [pid for pid, _ in rows],
                         "opportunity_created_at": pd.to_datetime([DAY0 + timedelta(days=d) for _, d in rows],
                                                                  utc=True),
                         "stage": "open", "won_at": pd.NaT, "closed_at": pd.NaT, "amount_usd": None})


def test_f_is_the_share_of_matured_conversions_arrived_within_k_days():
    scores = scores_frame([("A", 0, 0.5), ("B", 0, 0.5), ("C", 0, 0.5)])
    labels = labels_frame([("A", 10), ("B", 30), ("C", 120)])  # C: after the horizon, not converted
    matured = matured_cohorts(scores, labels, DAY0 + timedelta(days=200), HORIZON)
    delays = conversion_delays(matured, labels)
    assert sorted(delays) == pytest.approx([10, 30])
    share, source = delay_share(delays, HORIZON, min_delays=2)
    assert source == "matured"
    assert share([5, 10, 20, 30, 89]).tolist() == [0, 0.5, 0.5, 1, 1]
    share, source = delay_share(delays, HORIZON, min_delays=3)  # too few: the horizon's share elapsed
    assert source == "uniform" and share([45, 90, 120]).tolist() == [0.5, 1, 1]


def test_observed_against_expected_counts_the_opportunities_so_far_in_the_window():
    now = DAY0 + timedelta(days=100)
    scores = scores_frame([("X", 90, 0.4), ("Y", 80, 0.2), ("Z", 60, 0.9)])  # Z: older than 30 days
    labels = labels_frame([("X", 95), ("Y", 105)])  # Y's comes after now: not seen yet
    rows = early_outcomes(scores, labels, lambda k: np.minimum(np.asarray(k) / 40, 1.0), now, HORIZON,
                          [30], 0.95)
    overall = rows[rows["group"] == "all"].iloc[0]
    assert overall["scores"] == 2 and overall["observed"] == 1
    assert overall["expected"] == pytest.approx(0.4 * 10 / 40 + 0.2 * 20 / 40)
    assert overall["oe"] == pytest.approx(1 / 0.2)
    assert rows["group"].tolist() == ["all", "to-nurture"]


def test_a_person_scored_on_many_days_is_one_chance_to_convert():
    now = DAY0 + timedelta(days=100)
    buyer = [("A", day, 0.1) for day in range(90, 100)]  # re-scored each day they engaged
    scores = scores_frame([*buyer, ("B", 95, 0.1)])
    rows = early_outcomes(scores, labels_frame([("A", 99.5)]), lambda k: np.asarray(k) / 10, now, HORIZON,
                          [14], 0.95)
    overall = rows[rows["group"] == "all"].iloc[0]
    assert (overall["scores"], overall["observed"]) == (2, 1)
    assert overall["expected"] == pytest.approx(0.1 * 10 / 10 + 0.1 * 5 / 10)  # A from its first score


def test_the_poisson_interval_and_p_value_match_hand_computed_ones():
    zero = observed_expected(0, 2.0, 0.95)
    assert zero["low"] == 0 and zero["high"] == pytest.approx(-np.log(0.025) / 2)
    assert zero["p_value"] == pytest.approx(2 * np.exp(-2))
    assert observed_expected(3, 0.0, 0.95)["oe"] is None


def moving_world(double_from: float | None, days: int, per_day: int = 300, seed: int = 0
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A score log of `per_day` new people a day; each converts at a delay uniform over the
    horizon with its probability, twice it when the opportunity falls after `double_from`."""
    rng = np.random.default_rng(seed)
    day = np.repeat(np.arange(days, dtype=float), per_day) + rng.uniform(0, 0.5, days * per_day)
    p = rng.uniform(0.05, 0.3, len(day))
    delay = rng.uniform(0, HORIZON, len(day))
    factor = np.where(double_from is not None and day + delay >= (double_from or 0), 2.0, 1.0)
    pids = [f"P{i}" for i in range(len(day))]
    converts = rng.uniform(size=len(day)) < p * factor
    scores = scores_frame(list(zip(pids, day, p, strict=True)))
    return scores, labels_frame([(pid, d + w) for pid, d, w, c in zip(pids, day, delay, converts, strict=True)
                                 if c])


def report_at(scores: pd.DataFrame, labels: pd.DataFrame, day: int) -> Report:
    """The monitoring report (default settings) on the clock's `day` of a simulated log."""
    now = DAY0 + timedelta(days=day)
    inputs = Inputs(now, now - timedelta(days=30), scores[scores["at"] <= pd.Timestamp(now)], labels,
                    pd.DataFrame(columns=["pid", "crm_id", "at", "disposition", "reason"]),
                    {"kept": 0, "quarantined": 0}, outbox_counts(Path("no-outbox")), None, None, None, None)
    return build_report(inputs, Settings(root=Path(".")))


def first_breach_day(scores: pd.DataFrame, labels: pd.DataFrame, days: range) -> int | None:
    """The first clock day of `days` whose report breaches an early O/E threshold."""
    for day in days:
        report = report_at(scores, labels, day)
        assert report.delay_source == "matured"  # the world's first scores matured on day 90
        if any(b.key.startswith("early_oe:") for b in report.breaches):
            return day
    return None


def test_a_doubled_base_rate_breaches_within_14_days_and_nothing_breaches_without_it():
    drift = 100
    days = range(drift - 8, drift + 15, 2)
    assert first_breach_day(*moving_world(None, drift + 15), days) is None
    detected = first_breach_day(*moving_world(drift, drift + 15), days)
    assert detected is not None and drift < detected <= drift + 14


def test_early_breaches_need_the_whole_interval_beyond_a_threshold():
    limits = Settings(root=Path(".")).monitoring.thresholds
    row = {"role": "champion", "window_days": 14, "group": "all", "observed": 4, "expected": 1.0}
    wide = {**row, **observed_expected(4, 1.0, 0.99)}  # O/E 4, but 4 conversions prove little
    assert early_breaches([wide], limits) == []
    narrow = {**row, "observed": 400, "expected": 100.0, **observed_expected(400, 100.0, 0.99)}
    assert [b.key for b in early_breaches([narrow], limits)] == ["early_oe:champion:14d:all"]
    few = {**row, "observed": 10, "expected": 100.0, **observed_expected(10, 100.0, 0.99)}
    assert early_breaches([few], limits)[0].message.endswith("below the minimum 0.7")


def test_early_outcomes_reach_the_json_mlflow_and_a_chart_on_the_page():
    report = report_at(*moving_world(None, 100, per_day=50), 99)
    overall = report.early[(report.early["group"] == "all") & (report.early["window_days"] == 14)].iloc[0]
    assert report.to_json()["early"]["rows"][0]["observed"] == overall["observed"]
    assert report_metrics(report)["early_oe.champion.14d.all"] == pytest.approx(overall["oe"])
    html = monitor_page(report, set(), Settings(root=Path(".")).monitoring.thresholds, "E0001")
    assert 'id="chart-early"' in html and 'data-early="champion:14:all"' in html


def test_the_early_chart_draws_without_thresholds():
    report = report_at(*moving_world(None, 100, per_day=50), 99)
    unset = Settings(root=Path(".")).monitoring.thresholds.model_copy(
        update={"min_early_oe_ratio": None, "max_early_oe_ratio": None})
    assert 'id="chart-early"' in monitor_page(report, set(), unset, "E0001")
