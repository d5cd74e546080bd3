"""From a calibrated probability to a score, a tier and a routing action.

score = reference_score + points_to_double_odds * log2(odds / reference odds),
clipped to 0..100: with the defaults, 50 is a 5% chance of an opportunity
within the horizon, 60 about 11%, 70 about 23%, 80 about 42%, 100 about 80%. The mapping is
config, not learned, so a score means the same under every model version.

Tier conditions in tiers.yaml are numbers or `{top_share: s}`: the threshold that
puts at most a share s of the validation window's leads at or above it. `fit_tiers` turns the
latter into numbers on the validation window; the fitted table is stored with the
model version, so serving applies exactly the thresholds that were evaluated.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from leadscore.config import ScoreSettings

TIER_ORDER = ["high-value", "high-potential", "to-nurture", "to-verify", "low-conversion"]
_CONDITIONS = {
    "score_min": ("score", np.greater_equal),
    "fit_score_min": ("fit_score", np.greater_equal),
    "interest_score_min": ("interest_score", np.greater_equal),
    "completeness_max": ("completeness", np.less_equal),
}


def probability_to_score(probability: np.ndarray, settings: ScoreSettings) -> np.ndarray:
    p = np.clip(np.asarray(probability, dtype=float), 1e-6, 1 - 1e-6)
    ref = settings.reference_probability
    log2_odds_ratio = np.log2(p / (1 - p)) - np.log2(ref / (1 - ref))
    return np.clip(settings.reference_score + settings.points_to_double_odds * log2_odds_ratio, 0, 100)


def check_tiers(config: dict) -> list[dict]:
    """The tier list, validated: known names, known conditions, a catch-all last."""
    tiers = config.get("tiers", [])
    names = [tier["name"] for tier in tiers]
    if sorted(names) != sorted(TIER_ORDER):
        raise ValueError(f"tiers.yaml must define exactly {TIER_ORDER}, found {names}")
    for tier in tiers:
        unknown = set(tier.get("when", {})) - set(_CONDITIONS)
        if unknown:
            raise ValueError(f"tier {tier['name']}: unknown conditions {sorted(unknown)}; "
                             f"valid: {sorted(_CONDITIONS)}")
    if tiers[-1].get("when"):
        raise ValueError("the last tier in tiers.yaml must have no conditions (the catch-all)")
    return tiers


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


def fit_tiers(config: dict, validation: pd.DataFrame) -> dict:
    """A copy of the tier config with every `{top_share: s}` condition replaced by the
    threshold that puts a share s of all validation leads (score, fit_score,
    interest_score) at or above it. Plain numbers stay."""
    fitted = {**config, "tiers": []}
    for tier in check_tiers(config):
        when = {}
        for condition, value in tier.get("when", {}).items():
            if isinstance(value, dict):
                share = value.get("top_share")
                if not isinstance(share, (int, float)) or not 0 < share < 1:
                    raise ValueError(f"tier {tier['name']}: {condition} needs a number or "
                                     f"{{top_share: s}} with 0 < s < 1, found {value}")
                if not condition.endswith("_min"):
                    raise ValueError(f"tier {tier['name']}: top_share only fits a minimum (*_min), "
                                     f"not {condition}")
                value = top_share_threshold(validation[_CONDITIONS[condition][0]], share)
            when[condition] = value
        fitted["tiers"].append({**tier, "when": when})
    return fitted


def tier_thresholds(config: dict) -> dict[str, float]:
    """The numeric thresholds of a fitted tier config, flat (`high-value.score_min`)."""
    return {f"{tier['name']}.{condition}": value for tier in config["tiers"]
            for condition, value in tier.get("when", {}).items()}


def tier_array(values: Mapping[str, np.ndarray | pd.Series], config: dict) -> np.ndarray:
    """First tier whose conditions all hold, per row; `values` maps score, fit_score,
    interest_score and completeness to arrays (a DataFrame or plain arrays)."""
    tiers = check_tiers(config)
    n = len(values["score"])
    result = np.full(n, None, dtype=object)
    for tier in tiers:
        holds = np.ones(n, dtype=bool)
        for condition, threshold in tier.get("when", {}).items():
            if isinstance(threshold, dict):
                raise ValueError(f"tier {tier['name']}: {condition} is {threshold}; fit the tiers "
                                 "on a validation window first (training.tiers.fit_tiers)")
            column, compare = _CONDITIONS[condition]
            holds &= compare(np.nan_to_num(np.asarray(values[column], dtype=float), nan=0.0), threshold)
        result[(result == None) & holds] = tier["name"]  # noqa: E711 (elementwise)
    return result


def assign_tiers(frame: pd.DataFrame, config: dict) -> pd.Series:
    """First tier whose conditions all hold, per row of (score, fit_score, interest_score, completeness)."""
    return pd.Series(tier_array(frame, config), index=frame.index, dtype="string")


def routing_action(tier: str, config: dict) -> dict:
    """The routing table entry of a tier (action, channel, description)."""
    return dict(config["routing"][tier])
