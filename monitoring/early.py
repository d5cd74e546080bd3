"""Early outcomes: the opportunities already arrived against the probabilities served, before
the label horizon has passed.

A matured cohort judges a score a horizon (90 days) after it was served, so a change in who
converts (the base rate doubles, another industry starts buying) is seen there weeks to months
late, and drift's PSI does not see it at all (who comes is unchanged). This signal does not
wait: for a score served `k` days ago (k < horizon) with probability p, the conversions
expected so far are p * F(k), where F(k) is the share of a horizon's conversions that arrive
within k days of a score. Observed are the opportunities the CRM reported within those k days
(labelled as cohorts.py labels, by the outcomes known at `now`). O/E near 1: the model's world;
well above: more people convert than it thinks; well below: fewer.

F, the delay from score to opportunity, comes from the matured cohorts of the same score log
(the converted ones: the first opportunity after the score), because served scores are not
spread evenly over a person's life: ingest re-scores a person as they engage, and engagement
gathers before a purchase, so live delays are shorter than those of training's snapshots taken
every few days. Until `min_delays` conversions have matured (a new deployment: the first
horizon), F is the share of the horizon elapsed, F(k) = k / horizon: the delay of a snapshot
taken at an even pace before each opportunity; the report names which F it used.

Small counts must not alarm: O is compared with a Poisson of mean E, with the exact (Garwood)
interval of O/E at `confidence`; a breach needs the whole interval beyond a threshold.

The unit is a person, not a person-day: each person's first score in the window (the one whose
horizon has run longest, `age`) with whether an opportunity followed it. Ingest re-scores a
person on every day they engage, and engagement gathers before a purchase, so one opportunity
was once counted on each of the days its person was scored (six to seven on the loop
benchmark's world): O and E both multiplied, the interval as narrow as if those days were
independent people, and a tier's O/E breached on one or two buyers, with or without a drift.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

import numpy as np
import pandas as pd
from scipy.stats import chi2, poisson

from leadscore.monitoring.cohorts import daily_first_scores, label_scores

EARLY_COLUMNS = ["role", "window_days", "group", "scores", "expected", "observed", "oe", "low", "high",
                 "p_value"]
ALL = "all"
DelayShare = Callable[[np.ndarray], np.ndarray]  # F: days since a score -> share of conversions by then


def conversion_delays(matured: pd.DataFrame, labels: pd.DataFrame, target: str = "opportunity") -> np.ndarray:
    """Days from each converted matured score (cohorts.py `matured_cohorts`) to the first
    opportunity after it."""
    event = {"opportunity": "opportunity_created_at", "won": "won_at"}[target]
    converted = matured.loc[matured["converted"].eq(1), ["pid", "at"]].reset_index(drop=True)
    pairs = converted.rename_axis("row").reset_index().merge(
        labels[["pid"]].assign(event=pd.to_datetime(labels[event], utc=True)), on="pid")
    pairs = pairs[pairs["event"] > pairs["at"]]
    first = pairs.groupby("row")["event"].min() - pairs.groupby("row")["at"].first()
    return (first / pd.Timedelta(days=1)).to_numpy(float)


def delay_share(delays: np.ndarray, horizon_days: int, min_delays: int) -> tuple[DelayShare, str]:
    """F: days since a score -> the share of a horizon's conversions arrived by then, and where
    it came from (`matured` with at least `min_delays` delays, else `uniform`)."""
    if len(delays) >= min_delays:
        ordered = np.sort(delays)
        return (lambda k: np.searchsorted(ordered, np.asarray(k, dtype=float), side="right") / len(ordered),
                "matured")
    return lambda k: np.clip(np.asarray(k, dtype=float) / horizon_days, 0.0, 1.0), "uniform"


def early_scores(scores: pd.DataFrame, labels: pd.DataFrame, now: datetime, horizon_days: int,
                 window_days: int, target: str = "opportunity") -> pd.DataFrame:
    """Each person's first score (per role) of the last `window_days` whose horizon has not
    passed, with `converted` (an opportunity so far, reported by `now`) and `age` (days since
    served): one row per person, see the module's docstring."""
    at_now = pd.Timestamp(now)
    daily = daily_first_scores(scores)
    since = at_now - pd.Timedelta(days=min(window_days, horizon_days))
    recent = daily[(daily["at"] > since) & (daily["at"] <= at_now)]
    known = labels[pd.to_datetime(labels["opportunity_created_at"], utc=True) <= at_now]
    labelled = label_scores(recent, known, horizon_days, target)
    first = labelled.sort_values("at", kind="stable").drop_duplicates(["role", "pid"])
    return first.assign(age=(at_now - first["at"]) / pd.Timedelta(days=1)).reset_index(drop=True)


def observed_expected(observed: int, expected: float, confidence: float) -> dict:
    """O/E with its exact Poisson interval at `confidence` and the two-sided p-value of O
    under a Poisson of mean E (None without any expected conversion)."""
    if expected <= 0:
        return {"oe": None, "low": None, "high": None, "p_value": None}
    alpha = 1 - confidence
    low = chi2.ppf(alpha / 2, 2 * observed) / 2 if observed > 0 else 0.0
    high = chi2.ppf(1 - alpha / 2, 2 * observed + 2) / 2
    tail = min(poisson.cdf(observed, expected), poisson.sf(observed - 1, expected))
    return {"oe": observed / expected, "low": low / expected, "high": high / expected,
            "p_value": float(min(1.0, 2 * tail))}


def _group_row(rows: pd.DataFrame, share: DelayShare, role: str, window: int, group: str,
               confidence: float) -> dict:
    expected = float((rows["probability"].to_numpy(float) * share(rows["age"].to_numpy(float))).sum())
    observed = int(rows["converted"].sum())
    return {"role": role, "window_days": window, "group": group, "scores": len(rows),
            "expected": expected, "observed": observed,
            **observed_expected(observed, expected, confidence)}


def early_outcomes(scores: pd.DataFrame, labels: pd.DataFrame, share: DelayShare, now: datetime,
                   horizon_days: int, windows: Sequence[int], confidence: float,
                   target: str = "opportunity") -> pd.DataFrame:
    """One row per role (champion, shadow), window and group (`all`, then each tier by name):
    `EARLY_COLUMNS`. `share` is F (`delay_share`)."""
    rows = []
    for window in windows:
        early = early_scores(scores, labels, now, horizon_days, window, target)
        for role, of_role in early.groupby("role", sort=True):
            rows.append(_group_row(of_role, share, str(role), window, ALL, confidence))
            rows += [_group_row(of_tier, share, str(role), window, str(tier), confidence)
                     for tier, of_tier in of_role.groupby("tier", sort=True)]
    return pd.DataFrame(rows, columns=EARLY_COLUMNS)
