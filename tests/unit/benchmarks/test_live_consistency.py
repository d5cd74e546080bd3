"""bench live's PID check: a merge is followed, a split is counted apart, the rest are mismatches."""

from __future__ import annotations

import pandas as pd

from leadscore.benchmarks.live import _pid_figures


def test_merged_and_split_people_are_counted_apart_and_other_differences_are_mismatches():
    live = pd.Series({"form:1": "PA", "form:2": "PB", "web:3": "PS", "web:4": None, "form:5": "PC",
                      "web:6": "PS"})
    batch = pd.Series({"form:1": "PA", "form:2": "PM", "web:3": None, "web:4": None, "form:5": "PD",
                       "web:6": "PS"})
    figures = _pid_figures(live, batch, merged={"PB": "PM"}, split={"PS"})
    assert figures == {"pid_mismatches": 1, "records_compared": 6,  # form:5, on no audit row
                       "records_whose_person_the_batch_merged": 1, "records_whose_person_the_batch_split": 1,
                       "people_merged_by_the_batch": 1}
