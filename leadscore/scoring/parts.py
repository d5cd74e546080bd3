"""The parts of a score that tiers read, computed the same way in training and serving.

**The two axes.** Where the score is linear in a model's contributions (a LightGBM model's
exact TreeSHAP through its sigmoid calibration), it splits exactly into the average lead's
score plus the points of the fit features (who the lead is) plus those of every other feature
(what they do): `fit` = average + fit points, `interest` = average + interest points, so that
fit + interest - average = score before the 0-100 clips (`score_axes`). A model without that
split shows, and is tiered on, the rule points' shares instead (`score_parts`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from leadscore.config import ScoreSettings
from leadscore.scoring.rules import share_of_points, share_of_points_one
from leadscore.scoring.spec import Calibration, RuleSet
from leadscore.scoring.tiers import probability_to_score, probability_to_score_one

Columns = Mapping[str, np.ndarray | pd.Series]


def completeness(columns: Columns) -> np.ndarray:
    """0-1 per row: the profile completeness feature where the model has it, else the share of
    model inputs that are known."""
    if "profile_completeness" in columns:
        return np.asarray(columns["profile_completeness"], dtype=float)
    return np.mean([pd.notna(np.asarray(columns[name])) for name in columns], axis=0)


def completeness_one(row: Mapping[str, object]) -> float:
    """`completeness` of one row given as feature name -> value."""
    if "profile_completeness" in row:
        value = row["profile_completeness"]
        return math.nan if value is None else float(value)  # type: ignore[arg-type]
    return sum(not _missing(value) for value in row.values()) / len(row)


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


@dataclass
class Axes:
    """The score's two axes, in points of the 0-100 score: unclipped, so that
    average + fit_points + interest_points is the score before its clip."""

    average: np.ndarray  # the average lead's score
    fit_points: np.ndarray  # what the fit features add to it (negative: take away)
    interest_points: np.ndarray  # what every other feature adds

    @property
    def fit(self) -> np.ndarray:
        """0-100: the average lead's score plus the fit points, clipped."""
        return _within_0_100(self.average + self.fit_points)

    @property
    def interest(self) -> np.ndarray:
        """0-100: the average lead's score plus the interest points, clipped."""
        return _within_0_100(self.average + self.interest_points)


def _within_0_100(values: np.ndarray) -> np.ndarray:
    """np.clip's result at a fraction of its cost on the one row of a /score."""
    return np.minimum(np.maximum(values, 0.0), 100.0)


def points_per_unit(calibration: Calibration, scale: ScoreSettings) -> float:
    """Score points per unit of the raw score, through p = 1 / (1 + exp(a * raw + b)) and
    points_to_double_odds per doubling of the odds."""
    return -calibration.a * scale.points_to_double_odds / math.log(2)


def score_axes(contrib: np.ndarray, expected: np.ndarray | float, is_fit: np.ndarray,
               calibration: Calibration, scale: ScoreSettings) -> Axes:
    """The score split into the average lead's, fit points and interest points, from the exact
    contributions (rows, features) around the raw score `expected` of the average lead;
    `is_fit` marks the fit features."""
    reference = math.log(scale.reference_probability / (1 - scale.reference_probability))
    average = scale.reference_score + scale.points_to_double_odds * (
        -(calibration.a * np.asarray(expected) + calibration.b) - reference) / math.log(2)
    weights = np.column_stack([is_fit, 1 - is_fit]).astype(float) * points_per_unit(calibration, scale)
    points = contrib @ weights
    return Axes(np.broadcast_to(average, len(contrib)).astype(float), points[:, 0], points[:, 1])


def score_parts(probability: np.ndarray, columns: Columns, rules: RuleSet | None,
                scale: ScoreSettings, axes: Axes | None = None) -> dict[str, np.ndarray]:
    """score, fit, interest, fit_score, interest_score and completeness: what tiers are assigned
    from. `fit` and `interest` are the axes where the model gives them, else the rule points'
    shares (what a page shows in their place). Without rules the shares are 0."""
    rules = rules or RuleSet()
    fit_share, interest_share = share_of_points(rules.fit, columns), share_of_points(rules.interest, columns)
    return {"score": probability_to_score(probability, scale),
            "fit": axes.fit if axes is not None else fit_share,
            "interest": axes.interest if axes is not None else interest_share,
            "fit_score": fit_share, "interest_score": interest_share,
            "completeness": completeness(columns)}


def score_parts_one(probability: float, row: Mapping[str, object], rules: RuleSet | None,
                    scale: ScoreSettings, axes: Axes | None = None) -> dict[str, float]:
    """`score_parts` of one row (feature name -> value; `axes` of that row alone), in plain
    Python: on the one row of a /score, numpy's fixed cost per array call was most of the time.
    The same numbers (tested)."""
    rules = rules or RuleSet()
    fit_share, interest_share = share_of_points_one(rules.fit, row), share_of_points_one(rules.interest, row)
    return {"score": probability_to_score_one(probability, scale),
            "fit": float(axes.fit[0]) if axes is not None else fit_share,
            "interest": float(axes.interest[0]) if axes is not None else interest_share,
            "fit_score": fit_share, "interest_score": interest_share,
            "completeness": completeness_one(row)}
