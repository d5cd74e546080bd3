"""How the matured cohorts turned out, per model version: ranking, calibration, conversion.

`cohort_metrics` is the figure promotion on live evidence reads (a challenger's shadow rows
against the champion's); the tables beside it feed the report and the /monitor page. The
metrics themselves are the ones training computes on its test window (leadscore.scoring.metrics),
so a live figure and an offline one mean the same.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from leadscore.scoring.metrics import conversion_by_tier, expected_calibration_error, quantile_bins


def _version_metrics(rows: pd.DataFrame, bins: int) -> dict:
    y, p = rows["converted"].to_numpy(int), rows["probability"].to_numpy(float)
    figures: dict = {"role": str(rows["role"].iloc[0]), "n": len(rows), "positives": int(y.sum()),
                     "roc_auc": None, "pr_auc": None, "ece": None}
    if 0 < y.sum() < len(y):  # ranking needs both outcomes; calibration is judged with them
        figures.update(roc_auc=float(roc_auc_score(y, p)), pr_auc=float(average_precision_score(y, p)),
                       ece=expected_calibration_error(y, p, bins))
    return figures


def cohort_metrics(matured: pd.DataFrame, bins: int = 10) -> dict[str, dict]:
    """Per model version of the matured cohorts (monitoring/cohorts.py `matured_cohorts`):
    `{version: {role, n, positives, roc_auc, pr_auc, ece}}`. `role` is `champion` or `shadow`;
    `n` the matured scores (a person once a day), `positives` those that converted. ROC-AUC,
    PR-AUC (average precision) and ECE (`bins` equal-count bins) are None while the rows hold
    only one outcome. The caller decides how many rows are evidence enough
    (`monitoring.min_matured`)."""
    return {str(version): _version_metrics(rows, bins)
            for version, rows in matured.groupby("model_version", sort=True)}


def reliability_bins(matured: pd.DataFrame, bins: int = 10) -> dict[str, pd.DataFrame]:
    """Per model version: the reliability diagram's equal-count bins (predicted, observed, rows)."""
    return {str(version): quantile_bins(rows["converted"].to_numpy(float),
                                        rows["probability"].to_numpy(float), bins)
            for version, rows in matured.groupby("model_version", sort=True)}


def conversion_by_decile(y: np.ndarray, p: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Leads, conversions, rate and mean predicted probability of each score decile, the best
    first (decile 1 = the highest tenth of the probabilities)."""
    order = np.argsort(-np.asarray(p, dtype=float), kind="stable")
    chunks = [chunk for chunk in np.array_split(order, bins) if len(chunk)]
    y, p = np.asarray(y, dtype=int), np.asarray(p, dtype=float)
    return pd.DataFrame({"decile": range(1, len(chunks) + 1), "leads": [len(c) for c in chunks],
                         "conversions": [int(y[c].sum()) for c in chunks],
                         "rate": [float(y[c].mean()) for c in chunks],
                         "predicted": [float(p[c].mean()) for c in chunks]})


def tier_conversion(rows: pd.DataFrame, order: Sequence[str]) -> pd.DataFrame:
    """Conversion by tier of one model version's matured rows, in `order` (tiers the order
    does not name, a shadow model's own, follow it)."""
    names = list(order) + sorted(set(rows["tier"]) - set(order))
    return conversion_by_tier(rows["converted"], rows["tier"], names)
