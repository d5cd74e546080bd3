"""Rule points on arrays: the same points for a training frame and a served row.

Fit and interest scores (0-100) are the share of the maximum fit and interest points a
lead earns; tiers read them.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping

import numpy as np
import pandas as pd

from leadscore.scoring.spec import Rule

OPERATORS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
             "==": operator.eq}


def _holds(rule: Rule, values: np.ndarray) -> np.ndarray:
    if rule.op == "in" or (rule.op == "==" and isinstance(rule.value, str)):  # text: as it is written
        allowed = set(rule.value) if isinstance(rule.value, list) else {rule.value}
        return np.fromiter((value in allowed for value in values), dtype=bool, count=len(values))
    numbers = (values if values.dtype.kind == "f"
               else pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float))
    with np.errstate(invalid="ignore"):
        return OPERATORS[rule.op](numbers, rule.value)


def _holds_for_one(rule: Rule, value: object) -> bool:
    """`_holds` for one value (a row's), without arrays: what a /score's one row needs."""
    if rule.op == "in" or (rule.op == "==" and isinstance(rule.value, str)):
        return value in (set(rule.value) if isinstance(rule.value, list) else {rule.value})
    return bool(OPERATORS[rule.op](_number(value), rule.value))  # NaN holds no comparison


def _number(value: object) -> float:
    """A value as float, NaN when it is none or no number (pd.to_numeric(errors="coerce"))."""
    try:
        return math.nan if value is None else float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def rule_hit_array(rules: list[Rule], columns: Mapping[str, np.ndarray | pd.Series]) -> np.ndarray:
    """(rows, rules): the points each rule awards each row (0 where it does not hold or data is
    missing). `columns` maps feature names to value arrays: a DataFrame, or the plain arrays the
    serving fast path keeps, so training and serving award the same points."""
    hits = []
    for i, rule in enumerate(rules):
        if rule.feature not in columns:
            raise KeyError(f"scoring rule {i} uses unknown feature {rule.feature!r}")
        hits.append(np.where(_holds(rule, np.asarray(columns[rule.feature])), rule.points, 0))
    if hits:
        return np.column_stack(hits)
    rows = len(columns[next(iter(columns))]) if len(columns) else 0  # a DataFrame iterates names
    return np.zeros((rows, 0))


def share_of_points(rules: list[Rule], columns: Mapping[str, np.ndarray | pd.Series]) -> np.ndarray:
    """0-100 per row: the points of `rules` earned, out of all they can award."""
    available = sum(rule.points for rule in rules) or 1
    return 100.0 * rule_hit_array(rules, columns).sum(axis=1) / available


def share_of_points_one(rules: list[Rule], row: Mapping[str, object]) -> float:
    """`share_of_points` of one row given as feature name -> value, in plain Python: numpy's
    fixed cost per array was most of a one-row score's rule points."""
    for i, rule in enumerate(rules):
        if rule.feature not in row:
            raise KeyError(f"scoring rule {i} uses unknown feature {rule.feature!r}")
    available = sum(rule.points for rule in rules) or 1
    return 100.0 * sum(rule.points for rule in rules if _holds_for_one(rule, row[rule.feature])) / available


def rule_hits(rules: list[Rule], X: pd.DataFrame) -> pd.DataFrame:
    """Points each rule awards each row, one column per rule (`index:feature`)."""
    return pd.DataFrame(rule_hit_array(rules, X), index=X.index,
                        columns=[f"{i}:{rule.feature}" for i, rule in enumerate(rules)])
