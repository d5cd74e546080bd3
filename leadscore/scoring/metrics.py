"""Metrics of a model's probabilities against labels, the same for every model: training's test
window and monitoring's matured cohorts (shared here, as serving may show them and imports
no training).

Every function takes the labels `y` (1 = converted within the horizon) and the
calibrated probabilities `p` of one model on the same rows, in the same order.
Rankings with tied probabilities (the rule baseline gives many leads the same
points) are scored as the expected value under a random order among the tied
leads, so a metric never depends on the order the rows happen to come in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import overload

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

SHARES = (0.05, 0.10, 0.20)
TABLE_COLUMNS = ["roc_auc", "pr_auc", "log_loss", "brier", "ece", "lift_at_10pct", "capture_at_10pct"]


class OneClass(ValueError):
    """Labels of one class only: nothing to rank or calibrate against (too little data)."""


@overload
def check_labels(y, p: None = None, what: str = ...) -> tuple[np.ndarray, None]: ...
@overload
def check_labels(y, p: ArrayLike, what: str = ...) -> tuple[np.ndarray, np.ndarray]: ...
def check_labels(y, p=None, what: str = "the test window") -> tuple[np.ndarray, np.ndarray | None]:
    """(y as 0/1 ints, p as floats), or a ValueError that says what is wrong and what to do."""
    y = np.asarray(y)
    if y.ndim != 1 or len(y) == 0:
        raise ValueError(f"{what} has no rows to evaluate (labels of shape {y.shape})")
    if pd.isna(y).any():
        raise ValueError(f"{what} has {int(pd.isna(y).sum())} missing labels; drop or label those rows first")
    values = set(np.unique(y).tolist())
    if not values <= {0, 1}:
        raise ValueError(f"labels must be 0 or 1, found {sorted(values)[:5]}")
    y = y.astype(int)
    if len(values) < 2:
        only = values.pop()
        raise OneClass(
            f"{what} has only one class (all {only}): ROC-AUC, PR-AUC, lift and capture need both "
            f"converted and unconverted leads. Widen the test window (more test snapshots), check that "
            f"the outcome horizon ends before the data does, or generate a larger world.")
    if p is None:
        return y, None
    p = np.asarray(p, dtype=float)
    if p.shape != y.shape:
        raise ValueError(f"{len(p)} probabilities for {len(y)} labels: they must be the same rows")
    if not np.isfinite(p).all() or p.min() < 0 or p.max() > 1:
        raise ValueError("probabilities must be finite and within [0, 1]")
    return y, p


def _expected_hits(y: np.ndarray, p: np.ndarray, k: int) -> float:
    """Expected conversions among the `k` highest `p`, ties at the cut broken at random."""
    k = min(k, len(p))
    if k <= 0:
        return 0.0
    threshold = np.partition(p, len(p) - k)[len(p) - k]  # the k-th largest probability
    above = p > threshold
    tied = p == threshold
    still = k - int(above.sum())
    return float(y[above].sum() + still * y[tied].mean())


def quantile_bins(y: np.ndarray, p: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Equal-count bins by probability: mean predicted, observed rate and rows of each (no empty bins)."""
    chunks = [chunk for chunk in np.array_split(np.argsort(p, kind="stable"), bins) if len(chunk)]
    rows = [(p[chunk].mean(), y[chunk].mean(), len(chunk)) for chunk in chunks]
    return pd.DataFrame(rows, columns=["predicted", "observed", "rows"])


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Weighted gap between predicted and observed rates over equal-count bins."""
    table = quantile_bins(np.asarray(y, dtype=float), np.asarray(p, dtype=float), bins)
    return float((abs(table["observed"] - table["predicted"]) * table["rows"]).sum() / table["rows"].sum())


def lift_at(y: np.ndarray, p: np.ndarray, share: float) -> tuple[float, float]:
    """(lift, capture) of the top `share` of leads by probability.

    Lift: the conversion rate of those leads over the overall rate. Capture: the
    share of all conversions they hold.
    """
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    k = max(1, int(round(share * len(p))))
    hits = _expected_hits(y, p, k)
    rate = y.mean()
    lift = float(hits / k / rate) if rate > 0 else float("nan")
    capture = float(hits / y.sum()) if y.sum() > 0 else float("nan")
    return lift, capture


def precision_at_capacity(times: pd.Series, y, p, per_month: int, entities: pd.Series | None = None) -> float:
    """The share of converted leads among those sales would call with a fixed capacity.

    Each calendar month of `times` (the snapshot timestamps of the rows, in their
    own time zone), sales take the `per_month` leads with the highest `p` (all of
    them in a month with fewer rows); the result is the precision over all the
    months' picks together: conversions among the picks / picks. Ties at the
    cut count as a random choice among the tied leads.

    With `entities` (e.g. the PIDs of the rows), a lead seen in several snapshots
    of one month counts once in that month, by its highest-probability row, so
    the capacity is people and not rows. `times`, `y`, `p` and `entities` are
    matched by position.
    """
    if per_month < 1:
        raise ValueError(f"per_month must be at least 1, got {per_month}")
    y, p = check_labels(y, p)
    stamps = pd.to_datetime(pd.Series(times).reset_index(drop=True))
    if len(stamps) != len(y):
        raise ValueError(f"{len(stamps)} timestamps for {len(y)} labels: they must be the same rows")
    if stamps.isna().any():
        raise ValueError(f"{int(stamps.isna().sum())} rows have no snapshot timestamp")
    frame = pd.DataFrame({"month": stamps.dt.year * 100 + stamps.dt.month, "y": y, "p": p})
    if entities is not None:
        entity = pd.Series(entities).reset_index(drop=True)
        if len(entity) != len(y):
            raise ValueError(f"{len(entity)} entities for {len(y)} labels: they must be the same rows")
        frame["entity"] = entity.to_numpy()
        frame = frame.sort_values("p", ascending=False, kind="stable").drop_duplicates(["month", "entity"])
    hits = picks = 0.0
    for _, month in frame.groupby("month", sort=True):
        k = min(per_month, len(month))
        hits += _expected_hits(month["y"].to_numpy(float), month["p"].to_numpy(float), k)
        picks += k
    return float(hits / picks)


def conversion_by_tier(y, tiers: pd.Series, order: Sequence[str]) -> pd.DataFrame:
    """Leads, conversions and conversion rate of each tier, in `order` (a tier with no leads: rate NaN)."""
    y = np.asarray(y, dtype=int)
    names = pd.Series(tiers).reset_index(drop=True)
    if len(names) != len(y):
        raise ValueError(f"{len(names)} tiers for {len(y)} labels: they must be the same rows")
    unknown = sorted(set(names.dropna().astype(str)) - set(order))
    if names.isna().any() or unknown:
        found = unknown + (["<missing>"] if names.isna().any() else [])
        raise ValueError(f"tiers not in the order {list(order)}: {found}")
    grouped = pd.DataFrame({"tier": names.astype(str), "y": y}).groupby("tier")["y"]
    leads = grouped.size().reindex(list(order), fill_value=0)
    conversions = grouped.sum().reindex(list(order), fill_value=0)
    table = pd.DataFrame({"tier": list(order), "leads": leads.to_numpy(dtype=int),
                          "conversions": conversions.to_numpy(dtype=int)})
    table["rate"] = table["conversions"] / table["leads"].where(table["leads"] > 0)
    return table


def metrics(y, p, *, times: pd.Series | None = None, per_month: int | None = None,
            entities: pd.Series | None = None) -> dict[str, float]:
    """Every test-window metric of one model, as floats (ready for `mlflow.log_metrics`).

    roc_auc, pr_auc (average precision), log_loss, brier, ece (10 equal-count
    bins), base_rate, and lift_at_/capture_at_ 5pct, 10pct, 20pct. Given `times`
    and `per_month` too: precision_at_capacity (see `precision_at_capacity`).
    """
    y, p = check_labels(y, p)
    out = {
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "log_loss": float(log_loss(y, np.clip(p, 1e-6, 1 - 1e-6), labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "ece": expected_calibration_error(y, p),
        "base_rate": float(y.mean()),
    }
    for share in SHARES:
        lift, capture = lift_at(y, p, share)
        out[f"lift_at_{int(round(share * 100))}pct"] = lift
        out[f"capture_at_{int(round(share * 100))}pct"] = capture
    if (times is None) != (per_month is None):
        raise ValueError("precision at capacity needs both `times` and `per_month`")
    if times is not None and per_month is not None:
        out["precision_at_capacity"] = precision_at_capacity(times, y, p, per_month, entities)
    return out


def comparison_table(results: dict[str, dict[str, float]]) -> pd.DataFrame:
    """One row per model (in the order given), the headline metrics rounded to 3 decimals.

    precision_at_capacity is a column when any model's results hold it.
    """
    if not results:
        raise ValueError("no results to compare")
    frame = pd.DataFrame(results).T
    columns = TABLE_COLUMNS + (["precision_at_capacity"] if "precision_at_capacity" in frame.columns else [])
    return frame.reindex(columns=columns).astype(float).round(3)
