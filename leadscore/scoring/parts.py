"""The parts of a score that tiers read, computed the same way in training and serving."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from leadscore.config import ScoreSettings
from leadscore.scoring.rules import share_of_points
from leadscore.scoring.spec import RuleSet
from leadscore.scoring.tiers import probability_to_score

Columns = Mapping[str, np.ndarray | pd.Series]


def completeness(columns: Columns) -> np.ndarray:
    """0-1 per row: the profile completeness feature where the model has it, else the share of
    model inputs that are known."""
    if "profile_completeness" in columns:
        return np.asarray(columns["profile_completeness"], dtype=float)
    return np.mean([pd.notna(np.asarray(columns[name])) for name in columns], axis=0)


def score_parts(probability: np.ndarray, columns: Columns, rules: RuleSet | None,
                scale: ScoreSettings) -> dict[str, np.ndarray]:
    """score, fit_score, interest_score and completeness: what tiers are assigned from.
    Without rules, fit and interest are 0."""
    rules = rules or RuleSet()
    return {"score": probability_to_score(probability, scale),
            "fit_score": share_of_points(rules.fit, columns),
            "interest_score": share_of_points(rules.interest, columns),
            "completeness": completeness(columns)}
