"""Drift: is the population being scored now the one the champion learnt from?

The population stability index of a value compares its distribution now (`current`) with the
reference (`reference`) over the same bins: PSI = sum over bins of (c - r) * ln(c / r), where
r and c are each bin's share of the rows. Numbers are binned at the reference's quantiles
(`bins` of them; repeated edges of a lumpy value merged), categories by value; a missing value
is a bin of its own, so a feature that stops arriving drifts too. An empty bin counts as
`FLOOR` of the rows (else one empty bin makes the index infinite). Rules of thumb: below 0.1
stable, 0.1-0.25 moving, above 0.25 a different population.

Beside the index, each feature's missing rate (now and in the reference) and, for a category,
the share of the current values the champion never saw in training (its spec's levels).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

FLOOR = 1e-4
MISSING = "<missing>"
DRIFT_COLUMNS = ["feature", "kind", "psi", "missing_reference", "missing_current", "missing_increase",
                 "unknown_share"]


def psi_from_shares(reference: np.ndarray, current: np.ndarray) -> float:
    """PSI of two distributions over the same bins (shares summing to 1), empty bins floored."""
    r = np.maximum(np.asarray(reference, dtype=float), FLOOR)
    c = np.maximum(np.asarray(current, dtype=float), FLOOR)
    return float(np.sum((c - r) * np.log(c / r)))


def _shares(labels: pd.Series, bins: Sequence) -> np.ndarray:
    counts = labels.value_counts().reindex(list(bins), fill_value=0).to_numpy(float)
    return counts / max(len(labels), 1)


def numeric_bins(reference: pd.Series, current: pd.Series, bins: int) -> tuple[pd.Series, pd.Series, list]:
    """Both series as bin labels: the reference's quantile intervals, then `MISSING`."""
    values = pd.to_numeric(reference, errors="coerce").dropna()
    inner = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1])) if len(values) else np.array([])
    edges = [-np.inf, *inner.tolist(), np.inf]

    def label(series: pd.Series) -> pd.Series:
        numbers = pd.to_numeric(series, errors="coerce")
        cut = pd.cut(numbers, edges, labels=False, right=True)
        return cut.astype(object).where(numbers.notna(), MISSING)

    return label(reference), label(current), [*range(len(edges) - 1), MISSING]


def categorical_bins(reference: pd.Series, current: pd.Series) -> tuple[pd.Series, pd.Series, list]:
    """Both series as category labels, missing as `MISSING`; every value seen on either side is a bin."""
    ref, cur = (s.astype(object).where(s.notna(), MISSING).astype(str) for s in (reference, current))
    return ref, cur, sorted(set(ref) | set(cur))


def psi(reference: pd.Series, current: pd.Series, bins: int = 10, categorical: bool = False) -> float:
    """The population stability index of one value (see the module's docstring)."""
    ref, cur, names = (categorical_bins(reference, current) if categorical
                       else numeric_bins(reference, current, bins))
    return psi_from_shares(_shares(ref, names), _shares(cur, names))


def unknown_share(current: pd.Series, levels: Sequence[str]) -> float:
    """The share of the current non-missing values that are none of `levels`."""
    present = current.dropna().astype(str)
    return float((~present.isin(set(map(str, levels)))).mean()) if len(present) else 0.0


def feature_drift(reference: pd.DataFrame, current: pd.DataFrame, numeric: Sequence[str],
                  categorical: Sequence[str], levels: Mapping[str, Sequence[str]], bins: int = 10
                  ) -> pd.DataFrame:
    """One row per feature (`DRIFT_COLUMNS`), the most drifted first. A categorical feature
    without levels in the spec is judged against the reference's own values."""
    rows = []
    for name in [*numeric, *categorical]:
        kind = "categorical" if name in categorical else "numeric"
        ref, cur = reference[name], current[name]
        known = levels.get(name) or ref.dropna().astype(str).unique().tolist()
        missing_ref, missing_cur = float(ref.isna().mean()), float(cur.isna().mean())
        rows.append({"feature": name, "kind": kind, "psi": psi(ref, cur, bins, kind == "categorical"),
                     "missing_reference": missing_ref, "missing_current": missing_cur,
                     "missing_increase": missing_cur - missing_ref,
                     "unknown_share": unknown_share(cur, known) if kind == "categorical" else None})
    frame = pd.DataFrame(rows, columns=DRIFT_COLUMNS)
    return frame.sort_values("psi", ascending=False, kind="stable", ignore_index=True)
