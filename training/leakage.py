"""Leakage guard: find the columns that would let a model read the answer, before training.

`leakage_guard(X, y)` checks every column of any table and excludes, with a reason a data
scientist can act on, each column that

1. **almost is the label**: its single-feature AUC on the training window exceeds `max_auc`
   (default 0.95). The AUC is orientation-free (max(auc, 1 - auc)) and honest:

   - numeric (and datetime / timedelta) columns: the best of (a) the rank AUC of the value with
     missing values as their own lowest value, (b) the same with missing values highest and
     (c) the out-of-fold AUC of the column cut into up to 20 quantile bins (missing its own bin),
     so that "missing" itself and non-monotone codes (status 2 = won) carry their signal;
   - every other column (object, string, category, bool, ...): out-of-fold target encoding
     (stratified 5-fold, fixed seed): each row gets its category's positive rate measured on the
     other folds, smoothed towards the overall rate with the weight of 20 rows; missing is a
     category of its own, and categories with fewer than 10 rows are pooled into one "rare"
     category. An ID-like column (one value per row) therefore scores about 0.5 instead of
     looking perfect by memorising, while a value that exists only for one outcome (seller
     attributes recorded only for won deals) scores near 1.

2. **almost is the label where it is filled in**: a column that is empty for part of the rows
   (at least `MIN_ROWS_PER_CLASS` rows of each class filled in) is also scored on the filled-in
   rows alone, and excluded if that AUC exceeds `max_auc`. This is how outcome-status fields
   typed in by sales after contact look (X Education's `Tags`: empty for 36% of the leads, AUC
   0.92 overall but 0.97 where filled in): the rows never worked dilute the overall AUC below
   any sane threshold. The same threshold serves both checks, so there is one knob.

3. **has a value (or is empty) almost only for one outcome**: at least `MIN_ROWS_PER_CLASS` rows
   have a value, at least `max_auc` of them are of one class, and having a value is at least
   1 / (1 - max_auc) times (20 times at 0.95) more frequent in that class than in the other. This
   catches attributes that exist only for won deals even when most won deals lack them (Olist's
   `has_company`: filled in for 63 of 842 won deals and no lost one, AUC only 0.53); the same
   holds for being empty. Pure categories are deliberately not judged one by one: genuine sources
   have them too (X Education's `Lead Source` = "Welingak Website": 140 of 142 converted).

4. **is recorded after the label time**: `recorded_at` maps a column to the per-row time its
   value was recorded (a Series with the same index labels as X). The column is excluded if,
   in any row, its value is present, the recording time is known and later than that row's
   `label_time` (a Series with X's index, or one timestamp for every row). Rows whose value is
   missing, or whose recording time or label time is unknown, are not counted. Pass the
   prediction (snapshot) time as `label_time` for the strict point-in-time check ("was it known
   when we would have scored?"), or the outcome time to catch values written after the outcome.

A column whose values are all the same (or all missing) is not leakage: it is kept with AUC 0.5.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

FOLDS = 5
SEED = 0
SMOOTHING = 20.0  # weight (in rows) of the overall positive rate in a category's encoding
RARE_ROWS = 10  # categories with fewer rows are pooled into one "rare" category
NUMERIC_BINS = 20  # quantile bins for the out-of-fold check of numeric columns
MIN_ROWS_PER_CLASS = 30  # filled-in rows of each class needed to score a column where filled in


@dataclass(frozen=True)
class Flag:
    column: str
    reason: str
    auc: float | None  # the single-feature AUC when that was the reason


@dataclass(frozen=True)
class LeakageReport:
    kept: list[str]
    excluded: list[Flag]
    aucs: dict[str, float]  # single-feature AUC of every column checked (all rows)
    # single-feature AUC on the rows where the column is filled in, for the columns with
    # missing values and enough filled-in rows of each class
    aucs_where_filled: dict[str, float] = field(default_factory=dict)

    def table(self) -> pd.DataFrame:
        """One row per column checked: column, auc, excluded, reason (excluded first, then by AUC)."""
        reasons = {flag.column: flag.reason for flag in self.excluded}
        rows = [{"column": column, "auc": auc, "excluded": column in reasons,
                 "reason": reasons.get(column, "")} for column, auc in self.aucs.items()]
        table = pd.DataFrame(rows, columns=["column", "auc", "excluded", "reason"])
        return table.sort_values(["excluded", "auc"], ascending=False, kind="stable").reset_index(drop=True)


# --- AUC helpers ----------------------------------------------------------------------------------


def _auc_from_levels(pos: np.ndarray, neg: np.ndarray) -> float:
    """AUC of a score given positives and negatives per score level, levels in ascending order
    (ties count one half)."""
    n_pos, n_neg = pos.sum(), neg.sum()
    negatives_below = np.cumsum(neg) - neg
    return float((pos * negatives_below).sum() + 0.5 * (pos * neg).sum()) / float(n_pos * n_neg)


def _free(auc: float) -> float:
    return max(auc, 1.0 - auc)


def _folds(y: np.ndarray, seed: int = SEED) -> np.ndarray:
    """Stratified fold number (0..FOLDS-1) of every row, deterministic for a seed."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), dtype=np.int64)
    for cls in (0, 1):
        rows = np.flatnonzero(y == cls)
        fold[rows[rng.permutation(len(rows))]] = np.arange(len(rows)) % FOLDS
    return fold


def _oof_auc(codes: np.ndarray, y: np.ndarray, fold: np.ndarray) -> float:
    """Orientation-free AUC of out-of-fold, smoothed target encoding of integer codes (0..C-1)."""
    n_codes = int(codes.max()) + 1
    prior = y.mean()
    cell = codes * FOLDS + fold
    n_cell = np.bincount(cell, minlength=n_codes * FOLDS).reshape(n_codes, FOLDS)
    k_cell = np.bincount(cell, weights=y, minlength=n_codes * FOLDS).reshape(n_codes, FOLDS)
    n_train = n_cell.sum(axis=1, keepdims=True) - n_cell  # rows of the code outside each fold
    k_train = k_cell.sum(axis=1, keepdims=True) - k_cell
    encoding = (k_train + SMOOTHING * prior) / (n_train + SMOOTHING)
    # every row of a (code, fold) cell gets the same score: the AUC follows from the cells' counts
    _, level = np.unique(encoding.reshape(-1), return_inverse=True)
    pos = np.bincount(level.reshape(-1), weights=k_cell.reshape(-1))
    neg = np.bincount(level.reshape(-1), weights=(n_cell - k_cell).reshape(-1))
    return _free(_auc_from_levels(pos, neg))


def _pool_rare(codes: np.ndarray) -> np.ndarray:
    """Codes with categories of fewer than RARE_ROWS rows pooled into one, renumbered 0..C-1."""
    counts = np.bincount(codes)
    rare = counts < RARE_ROWS
    if rare.sum() < 2:
        return codes
    codes = np.where(rare[codes], len(counts), codes)
    return np.unique(codes, return_inverse=True)[1].reshape(-1)


# --- per-column scoring ---------------------------------------------------------------------------


def _as_numeric(s: pd.Series) -> np.ndarray | None:
    """Float values (NaN for missing) of a numeric, datetime or timedelta column, else None."""
    if pd.api.types.is_bool_dtype(s.dtype):
        return None
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return ((s - s.min()) / pd.Timedelta(seconds=1)).to_numpy(dtype=float, na_value=np.nan)
    if pd.api.types.is_timedelta64_dtype(s.dtype):
        return (s / pd.Timedelta(seconds=1)).to_numpy(dtype=float, na_value=np.nan)
    if pd.api.types.is_numeric_dtype(s.dtype):
        return s.to_numpy(dtype=float, na_value=np.nan)
    return None


def _numeric_auc(values: np.ndarray, y: np.ndarray, fold: np.ndarray) -> float:
    missing = np.isnan(values)
    present = values[~missing]
    if len(present) == 0 or (not missing.any() and (present == present[0]).all()):
        return 0.5  # one value (or nothing) in every row: constant, not leakage
    # rank AUC, missing as its own lowest and as its own highest level
    _, level = np.unique(present, return_inverse=True)
    level = level.reshape(-1)
    pos = np.bincount(level, weights=y[~missing])
    neg = np.bincount(level) - pos
    pos_missing, neg_missing = y[missing].sum(), (1 - y[missing]).sum()
    best = max(_free(_auc_from_levels(np.r_[pos_missing, pos], np.r_[neg_missing, neg])),
               _free(_auc_from_levels(np.r_[pos, pos_missing], np.r_[neg, neg_missing])))
    # out-of-fold AUC of quantile bins, missing its own bin: catches non-monotone codes
    if len(pos) <= NUMERIC_BINS:
        codes = level
    else:  # equal-frequency bins by the rank of each distinct value; equal values share a bin
        count = pos + neg
        bin_of_level = ((np.cumsum(count) - count) * NUMERIC_BINS // len(present)).astype(np.int64)
        codes = bin_of_level[level]
    binned = np.full(len(values), codes.max() + 1, dtype=np.int64)  # missing: a bin of its own
    binned[~missing] = codes
    return max(best, _oof_auc(binned, y, fold))


def _categorical_codes(s: pd.Series) -> np.ndarray:
    try:
        codes, _ = pd.factorize(s, use_na_sentinel=True)
    except TypeError:  # unhashable values (lists, dicts): compare their text
        codes, _ = pd.factorize(s.map(lambda v: v if v is None or v is pd.NA else repr(v)))
    codes = np.where(codes < 0, codes.max() + 1, codes)  # missing is a category of its own
    return _pool_rare(codes)


def _column_auc(s: pd.Series, y: np.ndarray, fold: np.ndarray) -> float:
    values = _as_numeric(s)
    if values is not None:
        return _numeric_auc(values, y, fold)
    codes = _categorical_codes(s)
    if codes.max() == 0:
        return 0.5
    return _oof_auc(codes, y, fold)


# --- validation -----------------------------------------------------------------------------------


def _binary_target(X: pd.DataFrame, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """y as 0/1 floats (1 = the larger of the two values) and the two original values."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be one-dimensional, got shape {y.shape}")
    if len(y) != len(X):
        raise ValueError(f"X has {len(X):,} rows but y has {len(y):,} labels")
    if pd.isna(y).any():
        raise ValueError(f"y has {int(pd.isna(y).sum()):,} missing labels; the guard needs a binary label")
    classes = np.unique(y)
    if len(classes) > 2:
        shown = ", ".join(map(repr, classes[:5].tolist())) + (", ..." if len(classes) > 5 else "")
        raise ValueError(f"y is not binary: it has {len(classes)} distinct values ({shown})")
    if len(classes) < 2:
        raise ValueError("y has a single class"
                         + (f" (every label is {classes[0]!r})" if len(classes) else " (no rows)")
                         + ": no AUC can be measured")
    return (y == classes[1]).astype(float), classes


def _aligned(series: pd.Series | object, X: pd.DataFrame, what: str) -> pd.Series:
    """A time Series on X's index (a scalar is broadcast), as datetimes."""
    if not isinstance(series, pd.Series):
        return pd.Series(pd.to_datetime(series), index=X.index)
    if not series.index.equals(X.index):
        if len(series.index) != len(X.index) or not series.index.sort_values().equals(X.index.sort_values()):
            raise ValueError(f"{what} must have the same index labels as X")
        series = series.reindex(X.index)
    return pd.to_datetime(series)


def _recorded_after(X: pd.DataFrame, recorded_at: dict[str, pd.Series],
                    label_time: pd.Series | None) -> dict[str, str]:
    """Reason per column whose present value was recorded after the label time in some row."""
    if label_time is None:
        raise ValueError("recorded_at needs label_time: the time each row's label refers to")
    unknown = [column for column in recorded_at if column not in X.columns]
    if unknown:
        raise ValueError(f"recorded_at names columns that X does not have: {unknown}")
    label = _aligned(label_time, X, "label_time")
    reasons = {}
    for column, times in recorded_at.items():
        recorded = _aligned(times, X, f"recorded_at[{column!r}]")
        try:
            after = (recorded > label).fillna(False).to_numpy(dtype=bool)
        except TypeError as error:
            raise ValueError(f"recorded_at[{column!r}] and label_time cannot be compared "
                             f"(time zones?): {error}") from error
        counted = (X[column].notna() & recorded.notna() & label.notna()).to_numpy(dtype=bool)
        n_after, n_counted = int((after & counted).sum()), int(counted.sum())
        if n_after:
            reasons[column] = (f"value recorded after the label time in {n_after:,} of {n_counted:,} "
                               f"rows with a value and both times known ({n_after / n_counted:.1%}): "
                               "it was not known when the prediction would have been made")
    return reasons


# --- the guard ------------------------------------------------------------------------------------


def leakage_guard(X: pd.DataFrame, y: np.ndarray, max_auc: float = 0.95,
                  recorded_at: dict[str, pd.Series] | None = None,
                  label_time: pd.Series | None = None) -> LeakageReport:
    """Check every column of X against the binary label y; see the module docstring.

    Returns the kept columns (in X's order), the excluded ones with their reasons, and the
    single-feature AUC of every column. Deterministic: folds use a fixed seed.
    """
    if not 0.5 < max_auc <= 1.0:
        raise ValueError(f"max_auc must be in (0.5, 1], got {max_auc}")
    if X.columns.has_duplicates:
        raise ValueError(f"X has duplicate column names: {sorted(set(X.columns[X.columns.duplicated()]))}")
    target, classes = _binary_target(X, y)
    late = _recorded_after(X, recorded_at, label_time) if recorded_at else {}
    fold = _folds(target)

    aucs: dict[str, float] = {}
    where_filled: dict[str, float] = {}
    excluded: list[Flag] = []
    for column in X.columns:
        s = X[column]
        auc = aucs[column] = _column_auc(s, target, fold)
        reasons: list[str] = []
        flag_auc = None
        if auc > max_auc:
            flag_auc = auc
            reasons.append(f"single-feature AUC {auc:.3f} on the training window exceeds {max_auc}: "
                           "this column almost is the label (is it filled in after the outcome?)")
        filled = s.notna().to_numpy(dtype=bool)
        n_filled, n_pos = int(filled.sum()), target[filled].sum()
        if not filled.all() and min(n_pos, n_filled - n_pos) >= MIN_ROWS_PER_CLASS:
            sub_target = target[filled]
            filled_auc = where_filled[column] = _column_auc(s[filled], sub_target, _folds(sub_target))
            if filled_auc > max_auc and flag_auc is None:
                flag_auc = filled_auc
                reasons.append(
                    f"filled in for only {n_filled:,} of {len(s):,} rows ({n_filled / len(s):.0%}), and "
                    f"where filled in its single-feature AUC is {filled_auc:.3f}, above {max_auc} (overall "
                    f"{auc:.3f}, diluted by the empty rows): it reads like an outcome status recorded "
                    "for the leads that were worked")
        presence = _presence_reason(s, target, classes, max_auc)
        if presence:
            reasons.append(presence)
        if column in late:
            reasons.append(late[column])
        if reasons:
            excluded.append(Flag(column=column, reason="; ".join(reasons), auc=flag_auc))
    flagged = {flag.column for flag in excluded}
    return LeakageReport(kept=[c for c in X.columns if c not in flagged], excluded=excluded,
                         aucs=aucs, aucs_where_filled=where_filled)


def _presence_reason(s: pd.Series, y: np.ndarray, classes: np.ndarray, max_auc: float) -> str | None:
    """Reason when having a value (or being empty) is almost only seen with the rarer outcome: at
    least MIN_ROWS_PER_CLASS such rows, a share of at least `max_auc` of them in that class, and
    that share at least 1 / (1 - max_auc) times (20 times at 0.95) more likely for that class than
    for the other. Only the rarer class: with a 3% base rate almost any group is 95% negatives,
    and a group that never converts is a signal, not a leak."""
    filled = s.notna().to_numpy(dtype=bool)
    if filled.all() or not filled.any():
        return None
    totals = {1: y.sum(), 0: len(y) - y.sum()}
    for side, rows in (("has a value", filled), ("is empty", ~filled)):
        n_rows = int(rows.sum())
        if n_rows < MIN_ROWS_PER_CLASS:
            continue
        in_class = {1: int(y[rows].sum()), 0: n_rows - int(y[rows].sum())}
        for cls in (1 if totals[1] <= totals[0] else 0,):
            purity = in_class[cls] / n_rows
            ratio = (in_class[cls] / totals[cls]) / ((in_class[1 - cls] + 0.5) / totals[1 - cls])
            if purity >= max_auc and ratio >= 1 / (1 - max_auc):
                label = classes[cls].tolist()
                how = ("only for that outcome" if in_class[1 - cls] == 0
                       else f"{ratio:.0f}x more often for that outcome than for the other")
                like = ("attributes that exist only for won deals" if side == "has a value"
                        else "a field cleared once the outcome is known")
                return (f"it {side} in {n_rows:,} rows and {purity:.1%} of them have label {label!r} "
                        f"(against {totals[cls] / len(y):.1%} of all rows): it {side} {how}, like {like}")
    return None
