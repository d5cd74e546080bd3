"""The arrivals' CUSUM against hand-computed values, and its breach on a moved rate only."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pandas as pd
import pytest
from pydantic import ValidationError

from leadscore.config import ArrivalSettings, MonitoringThresholds
from leadscore.monitoring.alerts import arrival_breaches
from leadscore.monitoring.arrivals import arrival_watch, days_before, poisson_cusum

NOW = datetime(2027, 3, 1, tzinfo=UTC)
CONFIG = ArrivalSettings(window_days=28, reference_days=90, min_reference_days=28, ratio_up=2.0,
                         ratio_down=0.5)


def opportunities(per_day_reference: int, per_day_window: int, reference_days: int = 90) -> pd.Series:
    """Opportunity times: `per_day_window` a day in the clock's last 28 days, `per_day_reference`
    a day in the `reference_days` before them (each at noon of its day)."""
    days = [(age, per_day_window if age < 28 else per_day_reference) for age in range(28 + reference_days)]
    return pd.Series([pd.Timestamp(NOW) - pd.Timedelta(days=age, hours=12)
                      for age, n in days for _ in range(n)])


def test_the_statistic_adds_evidence_and_resets_at_zero():
    # steps x ln 2 - 1: -1 -> 0, then 3 ln 2 - 1, then -1 more
    assert poisson_cusum([0, 3, 0], rate=1.0, ratio=2.0) == pytest.approx(3 * math.log(2) - 2)
    # for fewer: x ln 0.5 + 0.5; a day with none adds 0.5
    assert poisson_cusum([0, 0, 4], rate=1.0, ratio=0.5) == pytest.approx(max(0, 1 + 4 * math.log(0.5) + 0.5))


def test_days_count_back_from_the_clock_and_ignore_the_future():
    times = pd.Series([pd.Timestamp(NOW) - pd.Timedelta(hours=h) for h in (1, 25, 49)]
                      + [pd.Timestamp(NOW) + pd.Timedelta(hours=1)])
    assert days_before(times, NOW).tolist() == [0, 1, 2]


def test_a_doubled_rate_breaches_and_a_steady_one_does_not():
    limits = MonitoringThresholds(max_arrival_cusum=5.0)
    since = pd.Timestamp(NOW) - pd.Timedelta(days=200)
    moved = arrival_watch(opportunities(1, 2), NOW, since, CONFIG)
    steady = arrival_watch(opportunities(1, 1), NOW, since, CONFIG)
    assert (moved["reference_rate"], moved["observed"], moved["expected"]) == (1.0, 56, 28.0)
    assert moved["up"] == pytest.approx(28 * (2 * math.log(2) - 1))  # every day adds 2 ln 2 - 1
    assert [b.key for b in arrival_breaches(moved, limits)] == ["arrivals_up"]
    assert arrival_breaches(steady, limits) == []
    fewer = arrival_watch(opportunities(2, 0), NOW, since, CONFIG)
    assert [b.key for b in arrival_breaches(fewer, limits)] == ["arrivals_down"]


def test_no_test_before_the_live_history_holds_the_minimum_reference():
    since = pd.Timestamp(NOW) - pd.Timedelta(days=28 + 27)  # 27 days before the window
    watch = arrival_watch(opportunities(1, 3), NOW, since, CONFIG)
    assert (watch["up"], watch["down"], watch["observed"]) == (None, None, 84)
    assert arrival_breaches(watch, MonitoringThresholds(max_arrival_cusum=1.0)) == []
    # a shorter history than reference_days: the rate is of what there is
    since = pd.Timestamp(NOW) - pd.Timedelta(days=68)
    short = arrival_watch(opportunities(1, 1, reference_days=40), NOW, since, CONFIG)
    assert (short["reference_days"], short["reference_rate"]) == (40, 1.0)


def test_a_minimum_reference_longer_than_the_reference_is_refused():
    with pytest.raises(ValidationError, match="min_reference_days"):
        ArrivalSettings(reference_days=20, min_reference_days=28)
