"""Rule points, score and tier of one row in plain Python equal the array functions'."""

from __future__ import annotations

import math

import numpy as np
import pytest

from leadscore.config import ScoreSettings
from leadscore.scoring.parts import Axes, score_parts, score_parts_one
from leadscore.scoring.spec import RuleSet, TierTable
from leadscore.scoring.tiers import CONDITIONS, tier_array, tier_of

RULES = RuleSet.model_validate({
    "fit": [{"feature": "employees", "op": ">", "value": 500, "points": 15, "reason": "big"},
            {"feature": "seniority", "op": "in", "value": ["vp", "c_level"], "points": 30,
             "reason": "senior"},
            {"feature": "industry", "op": "==", "value": "software", "points": 5, "reason": "software"},
            {"feature": "country_code", "op": "==", "value": 86, "points": 7, "reason": "china"}],
    "interest": [{"feature": "visits_30d", "op": ">=", "value": 2, "points": 20, "reason": "visits"},
                 {"feature": "days_since_visit", "op": "<", "value": 7, "points": 10, "reason": "recent"},
                 {"feature": "days_since_visit", "op": "<=", "value": 30, "points": 5, "reason": "month"}],
    "mql_threshold": 60})


def _table(tiers: list[tuple[str, dict]]) -> TierTable:
    return TierTable.model_validate({
        "tiers": [{"name": name, "when": when} for name, when in tiers],
        "routing": {name: {"action": name, "channel": "crm", "description": name} for name, _ in tiers}})


# config/tiers.yaml's conditions: the score and its two axes, to-nurture checked before to-verify
AXES_TIERS = _table([("high-value", {"score_min": 70, "fit_min": 55}), ("high-potential", {"score_min": 60}),
                     ("to-nurture", {"fit_min": 55}), ("to-verify", {"interest_min": 50}),
                     ("low-conversion", {})])
# earlier model versions' conditions: the rule points' shares and the profile
SHARE_TIERS = _table([("high-value", {"score_min": 70, "fit_score_min": 40}),
                      ("to-verify", {"interest_score_min": 30, "completeness_max": 0.6}),
                      ("to-nurture", {"fit_score_min": 30}), ("low-conversion", {})])
SCALE = ScoreSettings(reference_probability=0.05, reference_score=50, points_to_double_odds=8)


def _rows(n: int) -> dict[str, np.ndarray]:
    """Columns with missing values, numbers as text and words where numbers are expected."""
    rng = np.random.default_rng(3)
    pick = lambda options: np.array([options[k] for k in rng.integers(0, len(options), n)], dtype=object)  # noqa: E731
    return {"employees": rng.choice([np.nan, 10.0, 500.0, 501.0, 5000.0], n),
            "seniority": pick([None, "vp", "c_level", "staff"]),
            "industry": pick([None, "software", "retail"]),
            "country_code": pick([None, "86", "eighty-six", 86.0, 1.0]),
            "visits_30d": rng.choice([np.nan, 0.0, 1.0, 2.0, 9.0], n),
            "days_since_visit": rng.choice([np.nan, 0.0, 6.9, 7.0, 30.0, 31.0], n),
            "profile_completeness": rng.choice([np.nan, 0.2, 0.6, 0.61, 1.0], n)}


def _axes(n: int) -> Axes:
    """Axes that land on the thresholds exactly (55 and 50), beyond 0-100 and on NaN."""
    rng = np.random.default_rng(5)
    return Axes(rng.choice([30.0, 40.0, 50.0], n), rng.choice([np.nan, -40.0, 5.0, 15.0, 25.0, 60.0], n),
                rng.choice([np.nan, -60.0, 0.0, 10.0, 20.0, 80.0], n))


def _one_row(axes: Axes | None, i: int) -> Axes | None:
    return None if axes is None else Axes(axes.average[i:i + 1], axes.fit_points[i:i + 1],
                                          axes.interest_points[i:i + 1])


@pytest.mark.parametrize(("tiers", "with_axes", "completeness_feature"), [
    (AXES_TIERS, True, True), (AXES_TIERS, False, False), (SHARE_TIERS, False, True),
    (SHARE_TIERS, True, False)])
def test_one_row_parts_and_tier_equal_the_arrays(tiers, with_axes, completeness_feature):
    """Every part and the tier of each of 2,000 rows, alone, equal the arrays': the axes' and
    the rule shares' conditions, thresholds met exactly, missing values, the tiers' order."""
    columns = _rows(2000)
    if not completeness_feature:
        del columns["profile_completeness"]
    probability = np.random.default_rng(4).choice([0.0, 1e-9, 0.01, 0.05, 0.2, 0.9, 1.0], 2000)
    axes = _axes(2000) if with_axes else None
    parts = score_parts(probability, columns, RULES, SCALE, axes)
    expected = tier_array(parts, tiers)
    for i in range(2000):
        one = score_parts_one(probability[i], {name: column[i] for name, column in columns.items()},
                              RULES, SCALE, _one_row(axes, i))
        assert one.keys() == parts.keys()
        for name, value in one.items():
            assert (math.isnan(value) and math.isnan(parts[name][i])) or abs(value - parts[name][i]) <= 1e-9
        assert tier_of(one, tiers) == expected[i], i
    assert set(expected) == {tier.name for tier in tiers.tiers} and len(set(parts["fit_score"])) > 5
    # the rows tell the values the table reads apart: a one-row path reading a wrong one fails
    read = {CONDITIONS[condition][0] for tier in tiers.tiers for condition in tier.when}
    swaps = [("fit", "interest"), ("fit_score", "interest_score")]
    swaps += [("fit", "fit_score"), ("interest", "interest_score")] if with_axes else []
    for a, b in (swap for swap in swaps if read & set(swap)):
        assert list(tier_array({**parts, a: parts[b], b: parts[a]}, tiers)) != list(expected), (a, b)


def test_a_rule_on_an_unknown_feature_is_named_on_one_row_too():
    with pytest.raises(KeyError, match="unknown feature 'employees'"):
        score_parts_one(0.1, {"visits_30d": 1.0}, RULES, SCALE)
