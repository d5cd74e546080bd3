"""PSI, missing rates and unknown categories against values worked out by hand on tiny data."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from leadscore.monitoring.drift import FLOOR, feature_drift, psi, psi_from_shares


def test_psi_of_a_number_uses_the_reference_quantiles():
    # reference 1..4 in two bins: (-inf, 2.5] and (2.5, inf), half each; now three of four are 1
    by_hand = (0.75 - 0.5) * math.log(0.75 / 0.5) + (0.25 - 0.5) * math.log(0.25 / 0.5)
    assert psi(pd.Series([1.0, 2, 3, 4]), pd.Series([1.0, 1, 1, 4]), bins=2) == pytest.approx(by_hand)


def test_psi_of_a_category_counts_missing_values_as_a_bin_and_floors_empty_bins():
    # a: 0.5 -> 0.25, b: 0.5 -> 0.5, missing: 0 (floored) -> 0.25
    by_hand = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.25 - FLOOR) * math.log(0.25 / FLOOR)
    got = psi(pd.Series(["a", "a", "b", "b"]), pd.Series(["a", "b", "b", None]), categorical=True)
    assert got == pytest.approx(by_hand)


def test_the_same_population_does_not_drift():
    values = pd.Series(range(100), dtype=float)
    assert psi(values, values.sample(frac=1, random_state=1)) == pytest.approx(0.0)
    assert psi_from_shares([0.2, 0.8], [0.2, 0.8]) == 0.0


def test_feature_drift_reports_missing_rates_and_unknown_categories():
    reference = pd.DataFrame({"visits": [1.0, 2, 3, 4], "industry": ["saas", "saas", "retail", "retail"]})
    current = pd.DataFrame({"visits": [1.0, None, None, 4], "industry": ["saas", "mining", "space", None]})
    table = feature_drift(reference, current, ["visits"], ["industry"], {"industry": ["saas", "retail"]},
                          bins=2).set_index("feature")
    assert table.loc["visits", "missing_current"] == 0.5 and table.loc["visits", "missing_reference"] == 0
    assert table.loc["visits", "missing_increase"] == 0.5
    assert table.loc["industry", "unknown_share"] == pytest.approx(2 / 3)  # mining, space of three known
    assert table.index[0] == "industry"  # the most drifted first
    assert table.loc["industry", "psi"] > table.loc["visits", "psi"] > 0
