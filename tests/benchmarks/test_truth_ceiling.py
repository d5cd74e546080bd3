"""The training benchmark's ceiling: the truth's own propensity of a person at a snapshot, from
the buying cycles begun by then (benchmarks/ceiling.py), on hand-made cycles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.benchmarks.ceiling import carriers, cycle_propensity, rules_ceiling

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
