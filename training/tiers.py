"""Tier thresholds fitted on the validation window.

Tier conditions in config/tiers.yaml are numbers or `{top_share: s}`: the threshold that
puts at most a share s of the validation window's leads at or above it. `fit_tiers` turns
the latter into numbers; the fitted table goes into the version's scoring spec, so serving
applies exactly the thresholds that were evaluated. Applying tiers is the scoring
package's (`leadscore.scoring.tiers.tier_array`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from leadscore.scoring.spec import TierTable, TopShare
from leadscore.scoring.tiers import CONDITIONS, tier_array


def top_share_threshold(values: pd.Series, share: float) -> float:
    """The lowest threshold that puts at most `share` of `values` at or above it. Ties at the
    cut stay together below it, so a clipped score (many leads at 100) cannot overfill a tier."""
    ordered = np.sort(values.fillna(0).to_numpy(dtype=float))[::-1]
    k = int(np.floor(share * len(ordered)))
    if k == 0:
        return float(np.nextafter(ordered[0], np.inf)) if len(ordered) else 0.0
    threshold = ordered[k - 1]
    if k < len(ordered) and ordered[k] == threshold:  # the tie group would overflow the share
        threshold = np.nextafter(threshold, np.inf)
    return float(threshold)


def _fitted_threshold(tier: str, condition: str, value: float | TopShare, validation: pd.DataFrame
                      ) -> float:
    if not isinstance(value, TopShare):
        return value
    if not condition.endswith("_min"):
        raise ValueError(f"tier {tier}: top_share only fits a minimum (*_min), not {condition}")
    return top_share_threshold(validation[CONDITIONS[condition][0]], value.top_share)


def fit_tiers(table: TierTable, validation: pd.DataFrame) -> TierTable:
    """A copy of the tier table with every `{top_share: s}` condition replaced by the
    threshold that puts a share s of all validation leads (score, fit_score,
    interest_score) at or above it. Plain numbers stay."""
    tiers = [tier.model_copy(update={"when": {
        condition: _fitted_threshold(tier.name, condition, value, validation)
        for condition, value in tier.when.items()}}) for tier in table.tiers]
    return table.model_copy(update={"tiers": tiers})


def tier_thresholds(table: TierTable) -> dict[str, float]:
    """The numeric thresholds of a fitted tier table, flat (`high-value.score_min`)."""
    return {f"{tier.name}.{condition}": _fitted(tier.name, condition, value) for tier in table.tiers
            for condition, value in tier.when.items()}


def _fitted(tier: str, condition: str, value: float | TopShare) -> float:
    if isinstance(value, TopShare):
        raise ValueError(f"tier {tier}: {condition} is still a top_share: fit the tier table first")
    return value


def assign_tiers(frame: pd.DataFrame, table: TierTable) -> pd.Series:
    """First tier whose conditions all hold, per row of (score, fit_score, interest_score, completeness)."""
    return pd.Series(tier_array(frame, table), index=frame.index, dtype="string")
