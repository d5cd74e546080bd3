"""From a calibrated probability to a score, and from a lead's scores to its tier.

score = reference_score + points_to_double_odds * log2(odds / reference odds),
clipped to 0..100: with the defaults, 50 is a 5% chance of an opportunity within the
horizon, 60 about 11%, 70 about 23%, 80 about 42%, 100 about 80%. The scale is config,
not learned, so a score means the same under every model version.

A tier holds when all its conditions hold; the first tier of the table that holds wins.
`fit_min` and `interest_min` read the score's two axes as a page shows them (`fit`,
`interest`: leadscore.scoring.parts); `fit_score_min`, `interest_score_min` and
`completeness_max` read the rule points' shares and the profile, for tier tables of earlier
model versions.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from leadscore.config import ScoreSettings
from leadscore.scoring.spec import TierTable, TopShare

# condition -> (the value it reads, how it compares). operator's comparisons take a number
# and an array alike: one row (`tier_of`, a /score) and many (`tier_array`) apply this one
# table. A missing value (NaN) is read as 0.
Compare = Callable[[Any, float], Any]
CONDITIONS: dict[str, tuple[str, Compare]] = {
    "score_min": ("score", operator.ge),
    "fit_min": ("fit", operator.ge),
    "interest_min": ("interest", operator.ge),
    "fit_score_min": ("fit_score", operator.ge),
    "interest_score_min": ("interest_score", operator.ge),
    "completeness_max": ("completeness", operator.le),
}
Check = tuple[str, Compare, float]  # a condition with its threshold: value read, comparison, threshold


def probability_to_score(probability: np.ndarray, scale: ScoreSettings) -> np.ndarray:
    p = np.clip(np.asarray(probability, dtype=float), 1e-6, 1 - 1e-6)
    ref = scale.reference_probability
    log2_odds_ratio = np.log2(p / (1 - p)) - np.log2(ref / (1 - ref))
    return np.clip(scale.reference_score + scale.points_to_double_odds * log2_odds_ratio, 0, 100)


def probability_to_score_one(probability: float, scale: ScoreSettings) -> float:
    """`probability_to_score` of one probability, in plain Python (a /score's one row)."""
    p = min(max(float(probability), 1e-6), 1 - 1e-6)
    ref = scale.reference_probability
    log2_odds_ratio = math.log2(p / (1 - p)) - math.log2(ref / (1 - ref))
    return min(max(scale.reference_score + scale.points_to_double_odds * log2_odds_ratio, 0.0), 100.0)


def _checks(table: TierTable) -> list[tuple[str, list[Check]]]:
    """Each tier's name and its conditions as (the value read, how it compares, threshold), in
    the table's order. A top_share not fitted yet is an error, wherever it is in the table."""
    checks = []
    for tier in table.tiers:
        conditions: list[Check] = []
        for condition, threshold in tier.when.items():
            if isinstance(threshold, TopShare):
                raise ValueError(f"tier {tier.name}: {condition} is {threshold.model_dump()}; fit the "
                                 "tiers on a validation window first (training.tiers.fit_tiers)")
            conditions.append((*CONDITIONS[condition], threshold))
        checks.append((tier.name, conditions))
    return checks


def tier_array(values: Mapping[str, np.ndarray | pd.Series], table: TierTable) -> np.ndarray:
    """First tier whose conditions all hold, per row; `values` maps score, fit, interest,
    fit_score, interest_score and completeness to arrays (a DataFrame or plain arrays)."""
    n = len(values["score"])
    result = np.full(n, None, dtype=object)
    open_rows = np.ones(n, dtype=bool)  # no tier yet
    read: dict[str, np.ndarray] = {}  # each value read once (NaN as 0), however many tiers use it
    for name, conditions in _checks(table):
        holds = open_rows.copy()
        for column, compare, threshold in conditions:
            if column not in read:
                read[column] = np.nan_to_num(np.asarray(values[column], dtype=float), nan=0.0)
            holds &= compare(read[column], threshold)
        result[holds] = name
        open_rows &= ~holds
    return result


def tier_of(values: Mapping[str, float], table: TierTable) -> str | None:
    """`tier_array` of one row (its values as floats), in plain Python: on one-element arrays
    numpy's fixed cost per call was most of a /score's tiering. The same checks (`_checks`)."""
    for name, conditions in _checks(table):
        if all(compare(_nan_as_zero(values[column]), threshold) for column, compare, threshold in conditions):
            return name
    return None


def _nan_as_zero(value: float) -> float:
    """A row's value as `tier_array` reads it: NaN as 0."""
    value = float(value)
    return 0.0 if math.isnan(value) else value
