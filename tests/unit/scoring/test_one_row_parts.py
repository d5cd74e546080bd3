"""Rule points, score and tier of one row in plain Python equal the array functions'."""

from __future__ import annotations

import math

import numpy as np
import pytest

from leadscore.config import ScoreSettings
from leadscore.scoring.parts import score_parts, score_parts_one
from leadscore.scoring.spec import RuleSet, TierTable
from leadscore.scoring.tiers import tier_array, tier_of

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
TIERS = TierTable.model_validate({
    "tiers": [{"name": "high-value", "when": {"score_min": 70, "fit_score_min": 40}},
              {"name": "to-verify", "when": {"interest_score_min": 30, "completeness_max": 0.6}},
              {"name": "to-nurture", "when": {"fit_score_min": 30}},
              {"name": "low-conversion", "when": {}}],
    "routing": {name: {"action": name, "channel": "crm", "description": name}
                for name in ["high-value", "to-verify", "to-nurture", "low-conversion"]}})
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


@pytest.mark.parametrize("completeness_feature", [True, False])
def test_one_row_parts_and_tier_equal_the_arrays(completeness_feature):
    columns = _rows(2000)
    if not completeness_feature:
        del columns["profile_completeness"]
    probability = np.random.default_rng(4).choice([0.0, 1e-9, 0.01, 0.05, 0.2, 0.9, 1.0], 2000)
    parts = score_parts(probability, columns, RULES, SCALE)
    tiers = tier_array(parts, TIERS)
    for i in range(2000):
        one = score_parts_one(probability[i], {name: column[i] for name, column in columns.items()},
                              RULES, SCALE)
        for name, value in one.items():
            assert (math.isnan(value) and math.isnan(parts[name][i])) or abs(value - parts[name][i]) <= 1e-9
        assert tier_of(one, TIERS) == tiers[i]
    assert len(set(tiers)) == 4 and len(set(parts["fit_score"])) > 5


def test_a_rule_on_an_unknown_feature_is_named_on_one_row_too():
    with pytest.raises(KeyError, match="unknown feature 'employees'"):
        score_parts_one(0.1, {"visits_30d": 1.0}, RULES, SCALE)
