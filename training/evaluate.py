"""Metrics on the test window, the same for every model."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Weighted gap between predicted and observed rates over equal-count bins."""
    order = np.argsort(p)
    gaps = [abs(y[chunk].mean() - p[chunk].mean()) * len(chunk)
            for chunk in np.array_split(order, bins) if len(chunk)]
    return float(sum(gaps) / len(y))


def lift_at(y: np.ndarray, p: np.ndarray, share: float) -> tuple[float, float]:
    """(lift, capture) of the top `share` of leads by probability."""
    top = np.argsort(-p)[: max(1, int(round(share * len(p))))]
    rate = y.mean()
    lift = float(y[top].mean() / rate) if rate > 0 else float("nan")
    capture = float(y[top].sum() / y.sum()) if y.sum() > 0 else float("nan")
    return lift, capture


def metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    out = {
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "log_loss": float(log_loss(y, np.clip(p, 1e-6, 1 - 1e-6))),
        "brier": float(brier_score_loss(y, p)),
        "ece": expected_calibration_error(y, p),
        "base_rate": float(y.mean()),
    }
    for share in (0.05, 0.10, 0.20):
        lift, capture = lift_at(y, p, share)
        out[f"lift_at_{int(share * 100)}pct"] = lift
        out[f"capture_at_{int(share * 100)}pct"] = capture
    return out


def comparison_table(results: dict[str, dict[str, float]]) -> pd.DataFrame:
    columns = ["roc_auc", "pr_auc", "brier", "ece", "lift_at_10pct", "capture_at_10pct"]
    return pd.DataFrame(results).T[columns].round(3)
