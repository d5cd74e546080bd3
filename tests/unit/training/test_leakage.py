from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from leadscore.training.leakage import Flag, LeakageReport, leakage_guard

PROJECT_ROOT = Path(__file__).resolve().parents[3]
X_EDUCATION = PROJECT_ROOT.parent / "shared" / "datasets" / "x_education" / "leads.csv"

N = 1_000


@pytest.fixture
def y() -> np.ndarray:
    return (np.random.default_rng(7).random(N) < 0.4).astype(int)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(11)


def _flag(report: LeakageReport, column: str) -> Flag:
    flags = {flag.column: flag for flag in report.excluded}
    assert column in flags, f"{column} was not excluded; AUCs: {report.aucs}"
    return flags[column]


def test_a_numeric_column_that_is_the_label_plus_noise_is_excluded(y, rng):
    X = pd.DataFrame({"leaked": y + rng.normal(0, 0.2, N), "noise": rng.normal(size=N),
                      "days_to_close": np.where(y == 1, 5.0, 60.0) + rng.normal(0, 5, N)})  # reversed
    report = leakage_guard(X, y)
    flag = _flag(report, "leaked")
    assert flag.auc is not None and flag.auc > 0.95
    assert "single-feature AUC" in flag.reason and "exceeds 0.95" in flag.reason
    assert _flag(report, "days_to_close").auc > 0.95
    assert report.kept == ["noise"]


def test_a_status_text_that_records_the_outcome_is_excluded(y, rng):
    status = np.where(y == 1, "Closed won", "Lost to competitor")
    flipped = rng.random(N) < 0.02
    status[flipped] = np.where(y[flipped] == 1, "Lost to competitor", "Closed won")
    report = leakage_guard(pd.DataFrame({"status": status}), y)
    assert _flag(report, "status").auc > 0.95
    assert report.kept == []


def test_useful_but_imperfect_columns_are_kept_with_a_telling_auc(y, rng):
    occupation = np.where(rng.random(N) < np.where(y == 1, 0.6, 0.25), "Working", "Student")
    X = pd.DataFrame({"time_on_site": y + rng.normal(0, 1, N), "occupation": occupation})
    report = leakage_guard(X, y)
    assert report.excluded == []
    assert report.kept == ["time_on_site", "occupation"]
    assert 0.65 < report.aucs["time_on_site"] < 0.9
    assert 0.6 < report.aucs["occupation"] < 0.8
    # the same columns are excluded when the threshold is set below their AUC
    assert {flag.column for flag in leakage_guard(X, y, max_auc=0.6).excluded} == {"time_on_site",
                                                                                     "occupation"}


def test_id_like_columns_do_not_look_perfect(y, rng):
    X = pd.DataFrame({
        "lead_id": [f"L{i:06d}" for i in rng.permutation(N)],  # one value per row
        "pair_id": [f"P{i // 2}" for i in range(N)],  # every value twice
        "sales_rep": [f"R{i // 10}" for i in rng.permutation(N)],  # 100 reps, 10 random leads each
        "lead_number": rng.permutation(N).astype(float),
    })
    report = leakage_guard(X, y)
    assert report.excluded == []
    assert all(auc < 0.6 for auc in report.aucs.values()), report.aucs


def test_a_value_that_exists_only_for_won_deals_is_excluded(y, rng):
    X = pd.DataFrame({
        "seller_revenue": np.where(y == 1, rng.lognormal(10, 1, N), np.nan),
        "seller_segment": np.where(y == 1, rng.choice(["retail", "b2b", "food"], N), None),
    })
    report = leakage_guard(X, y)
    assert _flag(report, "seller_revenue").auc > 0.95
    assert _flag(report, "seller_segment").auc > 0.95
    assert report.kept == []


def test_a_value_present_for_few_won_deals_and_no_lost_one_is_excluded_without_a_high_auc(y, rng):
    # like Olist's has_company: present for a tenth of the won deals only, so its AUC is low
    sparse = np.where((y == 1) & (rng.random(N) < 0.15), rng.choice(["yes", "no"], N), None)
    report = leakage_guard(pd.DataFrame({"has_company": sparse, "noise": rng.normal(size=N)}), y)
    assert report.aucs["has_company"] < 0.6
    flag = _flag(report, "has_company")
    assert flag.auc is None
    assert "has a value" in flag.reason and "only for that outcome" in flag.reason
    assert report.kept == ["noise"]


def test_a_status_filled_in_only_for_worked_leads_is_excluded_by_its_auc_where_filled_in(y, rng):
    worked = rng.random(N) < 0.55
    status = np.where(y == 1, "Will revert after reading the email", "Ringing").astype(object)
    status[rng.random(N) < 0.01] = "Busy"
    status[~worked] = None
    # unworked leads convert less, so the empty rows dilute the overall AUC below the threshold
    y = np.where(~worked & (rng.random(N) < 0.5), 0, y)
    report = leakage_guard(pd.DataFrame({"tags": status}), y)
    assert report.aucs["tags"] < 0.95
    flag = _flag(report, "tags")
    assert flag.auc is not None and flag.auc > 0.95
    assert flag.auc == report.aucs_where_filled["tags"]
    assert "where filled in" in flag.reason


def test_an_imperfect_column_that_is_often_empty_is_kept(y, rng):
    present = rng.random(N) < 0.5
    X = pd.DataFrame({"revenue": np.where(present, y + rng.normal(0, 1, N), np.nan)})
    report = leakage_guard(X, y)
    assert report.kept == ["revenue"]
    assert 0.6 < report.aucs_where_filled["revenue"] < 0.9


def test_a_non_monotone_status_code_is_excluded(y, rng):
    # 2 = won, 1 and 3 = two ways of losing: the rank AUC alone is about 0.5
    code = np.where(y == 1, 2, rng.choice([1, 3], N))
    report = leakage_guard(pd.DataFrame({"stage_code": code}), y)
    assert _flag(report, "stage_code").auc > 0.95


def test_a_value_recorded_after_the_label_time_is_excluded_with_the_count(y, rng):
    label_time = pd.Series(pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 300, N), "D"))
    X = pd.DataFrame({"lead_quality": rng.choice(["high", "low"], N).astype(object),
                      "company_size": rng.integers(1, 5_000, N)})
    recorded = label_time - pd.Timedelta(days=3)
    late_rows, late_but_empty = np.arange(7), np.arange(7, 10)
    recorded.iloc[np.r_[late_rows, late_but_empty]] += pd.Timedelta(days=10)
    X.loc[late_but_empty, "lead_quality"] = None  # no value, so nothing was recorded late
    report = leakage_guard(X, y, recorded_at={"lead_quality": recorded,
                                               "company_size": label_time - pd.Timedelta(days=1)},
                           label_time=label_time)
    flag = _flag(report, "lead_quality")
    assert flag.auc is None
    assert f"recorded after the label time in 7 of {N - 3:,} rows" in flag.reason
    assert report.kept == ["company_size"]


def test_recording_times_must_line_up_with_the_rows(y, rng):
    X = pd.DataFrame({"a": rng.normal(size=N)})
    times = pd.Series(pd.Timestamp("2025-01-01"), index=range(N))
    with pytest.raises(ValueError, match="label_time"):
        leakage_guard(X, y, recorded_at={"a": times})
    with pytest.raises(ValueError, match="same index"):
        leakage_guard(X, y, recorded_at={"a": times.set_axis(range(1, N + 1))}, label_time=times)
    with pytest.raises(ValueError, match="does not have"):
        leakage_guard(X, y, recorded_at={"b": times}, label_time=times)


def test_constant_and_empty_columns_are_kept_with_auc_one_half(y):
    X = pd.DataFrame({"one": 1.0, "text": "Select", "empty": np.nan, "none": None}, index=range(N))
    report = leakage_guard(X, y)
    assert report.excluded == []
    assert report.aucs == {"one": 0.5, "text": 0.5, "empty": 0.5, "none": 0.5}


def test_the_report_table_lists_every_column_with_its_reason(y, rng):
    X = pd.DataFrame({"leaked": y + rng.normal(0, 0.1, N), "useful": y + rng.normal(0, 1, N)})
    table = leakage_guard(X, y).table()
    assert list(table.columns) == ["column", "auc", "excluded", "reason"]
    assert table["column"].tolist() == ["leaked", "useful"]
    assert table["excluded"].tolist() == [True, False]
    assert table["reason"].iloc[0].startswith("single-feature AUC") and table["reason"].iloc[1] == ""


def test_the_guard_is_deterministic(y, rng):
    X = pd.DataFrame({"city": rng.choice([f"c{i}" for i in range(40)], N),
                      "visits": rng.poisson(3, N) + y})
    assert leakage_guard(X, y).aucs == leakage_guard(X, y).aucs


def test_labels_must_be_binary_and_match_the_rows(y):
    X = pd.DataFrame({"a": np.arange(N)})
    with pytest.raises(ValueError, match="not binary"):
        leakage_guard(X, np.arange(N) % 3)
    with pytest.raises(ValueError, match="single class"):
        leakage_guard(X, np.ones(N))
    with pytest.raises(ValueError, match="rows"):
        leakage_guard(X, y[:-1])
    with pytest.raises(ValueError, match="missing"):
        leakage_guard(X, np.where(np.arange(N) == 0, np.nan, y))
    with pytest.raises(ValueError, match="max_auc"):
        leakage_guard(X, y, max_auc=0.4)


@pytest.mark.skipif(not X_EDUCATION.is_file(), reason=f"X Education data not found at {X_EDUCATION}")
def test_x_education_status_tags_are_found_and_fit_interest_columns_kept():
    leads = pd.read_csv(X_EDUCATION, na_values=["Select"])
    y = leads.pop("Converted").to_numpy()
    report = leakage_guard(leads.drop(columns=["Prospect ID", "Lead Number"]), y, max_auc=0.95)
    assert [flag.column for flag in report.excluded] == ["Tags"]
    assert {"Total Time Spent on Website", "Lead Origin", "Lead Source",
            "What is your current occupation"} <= set(report.kept)
