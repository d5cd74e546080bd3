import numpy as np
import pandas as pd
import pytest

from leadscore.scoring.metrics import (
    TABLE_COLUMNS,
    comparison_table,
    conversion_by_tier,
    expected_calibration_error,
    lift_at,
    metrics,
    precision_at_capacity,
)

PARIS = "Europe/Paris"


def _times(*stamps: str) -> pd.Series:
    return pd.Series(pd.to_datetime(list(stamps)).tz_localize(PARIS))


def test_precision_at_capacity_takes_the_top_k_of_each_month():
    # January: 0.9 (converted), 0.8 (not), 0.1 (converted); February: 0.7 and 0.6, both converted.
    times = _times("2024-01-08", "2024-02-05", "2024-01-15", "2024-02-12", "2024-01-22")
    y = np.array([1, 1, 0, 1, 1])
    p = np.array([0.9, 0.7, 0.8, 0.6, 0.1])
    assert precision_at_capacity(times, y, p, per_month=2) == pytest.approx(3 / 4)
    assert precision_at_capacity(times, y, p, per_month=1) == pytest.approx(1.0)
    # a month with fewer leads than the capacity contributes all of them: 4 of 5 converted
    assert precision_at_capacity(times, y, p, per_month=10) == pytest.approx(4 / 5)


def test_precision_at_capacity_uses_the_calendar_month_of_the_local_time_and_matches_by_position():
    # 00:30 on 1 February in Paris is 31 January in UTC: it belongs to February here.
    times = pd.Series(pd.to_datetime(["2024-01-10 12:00", "2024-01-20 12:00", "2024-02-01 00:30"])
                      .tz_localize(PARIS), index=[10, 11, 12])
    y = np.array([1, 0, 0])
    p = np.array([0.9, 0.8, 0.95])
    # one month (UTC) would pick only 0.95 (not converted) -> 0; two months pick 0.9 and 0.95 -> 0.5
    assert precision_at_capacity(times, y, p, per_month=1) == pytest.approx(0.5)


def test_precision_at_capacity_counts_a_lead_once_per_month_with_entities():
    times = _times("2024-03-04", "2024-03-11", "2024-03-18")
    y = np.array([1, 1, 0])
    p = np.array([0.9, 0.85, 0.8])
    pids = pd.Series(["P1", "P1", "P2"])
    assert precision_at_capacity(times, y, p, per_month=2) == pytest.approx(1.0)
    assert precision_at_capacity(times, y, p, per_month=2, entities=pids) == pytest.approx(0.5)


def test_precision_at_capacity_splits_ties_at_the_cut_evenly():
    times = _times("2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04")
    y = np.array([1, 0, 0, 0])
    p = np.full(4, 0.5)
    assert precision_at_capacity(times, y, p, per_month=2) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="per_month"):
        precision_at_capacity(times, y, p, per_month=0)


def test_conversion_by_tier_keeps_the_order_and_empty_tiers():
    y = np.array([1, 0, 1, 0, 0, 1])
    tiers = pd.Series(["a", "a", "b", "c", "c", "c"], index=[5, 4, 3, 2, 1, 0])
    table = conversion_by_tier(y, tiers, ["a", "b", "empty", "c"])
    assert list(table.columns) == ["tier", "leads", "conversions", "rate"]
    assert table["tier"].tolist() == ["a", "b", "empty", "c"]
    assert table["leads"].tolist() == [2, 1, 0, 3]
    assert table["conversions"].tolist() == [1, 1, 0, 1]
    np.testing.assert_allclose(table["rate"], [0.5, 1.0, np.nan, 1 / 3])


def test_conversion_by_tier_rejects_a_tier_outside_the_order():
    with pytest.raises(ValueError, match="surprise"):
        conversion_by_tier(np.array([1, 0]), pd.Series(["a", "surprise"]), ["a", "b"])


@pytest.mark.parametrize("label", [0, 1])
def test_metrics_on_a_single_class_says_what_to_do(label):
    with pytest.raises(ValueError, match=rf"only one class \(all {label}\).*[Ww]iden the test window"):
        metrics(np.full(5, label), np.linspace(0.1, 0.5, 5))


def test_metrics_keys_and_known_values():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.4, 0.35, 0.8])
    out = metrics(y, p)
    assert set(out) == {"roc_auc", "pr_auc", "log_loss", "brier", "ece", "base_rate",
                        "lift_at_5pct", "lift_at_10pct", "lift_at_20pct",
                        "capture_at_5pct", "capture_at_10pct", "capture_at_20pct"}
    assert out["roc_auc"] == pytest.approx(0.75)
    assert out["brier"] == pytest.approx(np.mean((p - y) ** 2))
    assert out["base_rate"] == pytest.approx(0.5)
    assert out["lift_at_20pct"] == pytest.approx(2.0)  # the top lead (0.8) converted
    assert all(isinstance(v, float) for v in out.values())
    with_capacity = metrics(y, p, times=_times("2024-01-01", "2024-01-02", "2024-02-01", "2024-02-02"),
                            per_month=1)
    assert with_capacity["precision_at_capacity"] == pytest.approx(0.5)  # 0.4 (no) in Jan, 0.8 (yes) in Feb


def test_lift_and_capture_with_ties_are_the_random_order_expectation():
    y = np.array([1] + [0] * 9)
    lift, capture = lift_at(y, np.full(10, 0.3), 0.10)
    assert lift == pytest.approx(1.0)
    assert capture == pytest.approx(0.1)
    lift, capture = lift_at(y, np.r_[0.9, np.full(9, 0.3)], 0.10)
    assert (lift, capture) == (pytest.approx(10.0), pytest.approx(1.0))


def test_expected_calibration_error():
    y = np.array([0, 1] * 10)
    assert expected_calibration_error(y, np.full(20, 0.5)) == pytest.approx(0.0)
    assert expected_calibration_error(y, np.full(20, 0.2)) == pytest.approx(0.3)


def test_comparison_table_columns_and_rounding():
    row = {"roc_auc": 0.81234, "pr_auc": 0.1, "log_loss": 0.2, "brier": 0.02, "ece": 0.001,
           "base_rate": 0.03, "lift_at_10pct": 4.56789, "capture_at_10pct": 0.45}
    table = comparison_table({"lgbm": row, "rules": row})
    assert list(table.columns) == TABLE_COLUMNS
    assert TABLE_COLUMNS == ["roc_auc", "pr_auc", "log_loss", "brier", "ece", "lift_at_10pct",
                             "capture_at_10pct"]
    assert table.index.tolist() == ["lgbm", "rules"]
    assert table.loc["lgbm", "roc_auc"] == 0.812 and table.loc["rules", "lift_at_10pct"] == 4.568

    table = comparison_table({"lgbm": {**row, "precision_at_capacity": 0.31234}, "rules": row})
    assert list(table.columns) == [*TABLE_COLUMNS, "precision_at_capacity"]
    assert table.loc["lgbm", "precision_at_capacity"] == 0.312
    assert np.isnan(table.loc["rules", "precision_at_capacity"])
