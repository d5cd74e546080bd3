"""The training benchmark's ceiling: the truth's own propensity of a person at a snapshot, from
the buying cycles begun by then (benchmarks/ceiling.py), on hand-made cycles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score

from leadscore.benchmarks.ceiling import (
    against_truth,
    carriers,
    cycle_propensity,
    rules_ceiling,
    soft_ranking,
)

T = pd.Timestamp("2026-07-01", tz="UTC")


def _cycles(rows: list[tuple]) -> pd.DataFrame:
    """(cycle, person, rank, events, days before T it began, p) per committee member."""
    frame = pd.DataFrame(rows, columns=["cycle_id", "person_key", "member_rank", "events", "before",
                                        "p_opportunity"])
    frame["start"] = T - pd.to_timedelta(frame.pop("before"), unit="D")
    return frame


def test_the_most_engaged_member_carries_a_cycle_then_the_leader():
    cycles = _cycles([("C1", "A", 0, 3, 5, 0.5), ("C1", "B", 1, 7, 5, 0.5),
                      ("C2", "C", 0, 2, 5, 0.5), ("C2", "D", 1, 2, 5, 0.5)])
    assert carriers(cycles).set_index("cycle_id")["person_key"].to_dict() == {"C1": "B", "C2": "C"}


@pytest.mark.parametrize(("before", "expected"), [
    (10, 0.5),            # its opportunity (14-56 days after the start) is all still to come
    (35, 0.25 / 0.75),    # half of it has passed without one: p q / (1 - p (1 - q)), q = 1/2
    (60, 0.0),            # it would have come by now
    (-5, 0.0),            # it begins after the snapshot: not known at T
])
def test_a_cycles_chance_of_an_opportunity_in_the_horizon_given_none_yet(before, expected):
    carried = carriers(_cycles([("C1", "A", 0, 1, before, 0.5)]))
    rows = pd.DataFrame({"person_key": ["A", "Z"], "t": [T, T]})
    assert cycle_propensity(rows, carried) == pytest.approx([expected, 0.0])


def test_two_cycles_of_one_person_combine_as_independent_chances():
    carried = carriers(_cycles([("C1", "A", 0, 1, 10, 0.5), ("C2", "A", 0, 1, 10, 0.2)]))
    rows = pd.DataFrame({"person_key": ["A"], "t": [T]})
    assert cycle_propensity(rows, carried) == pytest.approx(np.array([1 - 0.5 * 0.8]))


def test_a_truth_written_before_it_kept_the_rules_before_a_drift_is_skipped(tmp_path):
    _cycles([("C1", "A", 0, 1, 10, 0.5)]).to_parquet(tmp_path / "cycles.parquet")
    scored = pd.DataFrame({"pid": ["P1", "P2"], "at": [T, T], "converted": [True, False]})
    assert "p_without_drift" in rules_ceiling(scored, tmp_path / "middle.duckdb", tmp_path, 90)["skipped"]
    assert "skipped" in rules_ceiling(scored, tmp_path / "middle.duckdb", tmp_path / "none", 90)


def test_soft_labels_of_zero_and_one_are_the_outcomes_themselves():
    propensity, p = np.array([1.0, 0.0, 1.0, 0.0]), np.array([0.9, 0.8, 0.3, 0.1])
    figures = soft_ranking(propensity, p)
    assert figures["pr_auc"] == pytest.approx(average_precision_score(propensity, p))
    assert figures["roc_auc"] == pytest.approx(0.75)


def test_against_soft_labels_no_model_can_rank_rows_of_equal_propensity():
    # by hand: a positive of 0.9 against a negative of 0.1 is ordered (weight 1/4), the two ties
    # count half (1/4 each), a positive of 0.1 against a negative of 0.9 is misordered: 0.5
    assert soft_ranking(np.array([0.5, 0.5]), np.array([0.9, 0.1]))["roc_auc"] == pytest.approx(0.5)
    propensity = np.array([0.8, 0.4, 0.1, 0.05])
    along, against = soft_ranking(propensity, propensity), soft_ranking(propensity, propensity[::-1])
    assert along["pr_auc"] > against["pr_auc"] and along["roc_auc"] > 0.5 > against["roc_auc"]


def test_arms_against_a_missing_truth_or_an_arm_without_rows_are_skipped(tmp_path):
    scored = pd.DataFrame({"pid": ["P1"], "at": [T], "probability": [0.1], "model_version": ["train_once"]})
    assert "no hidden truth" in against_truth(scored, ("train_once", "rolling"), tmp_path / "m.duckdb",
                                              tmp_path, 90)["skipped"]
    _cycles([("C1", "A", 0, 1, 10, 0.5)]).to_parquet(tmp_path / "cycles.parquet")
    assert "an arm scored none" in against_truth(scored, ("train_once", "rolling"), tmp_path / "m.duckdb",
                                                 tmp_path, 90)["skipped"]


def test_both_arms_are_judged_against_one_truth_per_person_day(tmp_path, monkeypatch):
    """The truth's propensity of a person-day is read once, at its first row, for both arms."""
    _cycles([("C1", "A", 0, 1, 10, 0.5)]).to_parquet(tmp_path / "cycles.parquet")
    truth = {"P1": 0.9, "P2": 0.1, "P3": 0.5}
    monkeypatch.setattr("leadscore.benchmarks.ceiling._truth_rows",
                        lambda pids, times, middle_db, truth_dir: pd.DataFrame({"pid": pids.to_numpy()}))
    monkeypatch.setattr("leadscore.benchmarks.ceiling.truth_propensity",
                        lambda rows, truth_dir, horizon_days: rows["pid"].map(truth).to_numpy())
    later = T + pd.Timedelta(hours=3)
    scored = pd.DataFrame({"pid": ["P1", "P2", "P3", "P1", "P2", "P3"], "at": [T, T, T, later, later, later],
                           "probability": [0.8, 0.3, 0.1, 0.1, 0.3, 0.8],
                           "model_version": ["train_once"] * 3 + ["rolling"] * 3})
    figures = against_truth(scored, ("train_once", "rolling"), tmp_path / "m.duckdb", tmp_path, 90)
    propensity = np.array([0.9, 0.1, 0.5])
    assert figures["train_once"] == pytest.approx(soft_ranking(propensity, np.array([0.8, 0.3, 0.1])))
    assert figures["rolling"] == pytest.approx(soft_ranking(propensity, np.array([0.1, 0.3, 0.8])))
    assert figures["ratio"] == pytest.approx(figures["rolling"]["pr_auc"] / figures["train_once"]["pr_auc"])
    assert figures["ratio"] < 1  # rolling put the likeliest buyer last
