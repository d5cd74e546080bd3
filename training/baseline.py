"""The rule baseline: hand-written fit and interest points, as a scikit-learn estimator.

Points come from config/scoring_rules.yaml. `predict_proba` is points / 100
(clipped), which calibration then turns into a probability; `predict` is the
MQL decision (points >= threshold). Fit and interest scores (0-100) are the
share of the maximum fit and interest points a lead earns, used for tiers.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

OPERATORS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
             "==": operator.eq}


def rule_hit_array(rules: list[dict], columns: Mapping[str, np.ndarray | pd.Series]) -> np.ndarray:
    """(rows, rules): the points each rule awards each row (0 where it does not hold or data is
    missing). `columns` maps feature names to value arrays: a DataFrame, or the plain arrays the
    serving fast path keeps, so training and serving award the same points."""
    hits = []
    for i, rule in enumerate(rules):
        if rule["feature"] not in columns:
            raise KeyError(f"scoring rule {i} uses unknown feature {rule['feature']!r}")
        values = np.asarray(columns[rule["feature"]])
        if rule["op"] == "in":
            allowed = set(rule["value"])
            holds = np.fromiter((value in allowed for value in values), dtype=bool, count=len(values))
        else:
            numbers = (values if values.dtype.kind == "f"
                       else pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float))
            with np.errstate(invalid="ignore"):
                holds = OPERATORS[rule["op"]](numbers, rule["value"])
        hits.append(np.where(holds, rule["points"], 0))
    if hits:
        return np.column_stack(hits)
    rows = len(columns[next(iter(columns))]) if len(columns) else 0  # a DataFrame iterates names
    return np.zeros((rows, 0))


def rule_hits(rules: list[dict], X: pd.DataFrame) -> pd.DataFrame:
    """Points each rule awards each row, one column per rule (`index:feature`)."""
    return pd.DataFrame(rule_hit_array(rules, X), index=X.index,
                        columns=[f"{i}:{rule['feature']}" for i, rule in enumerate(rules)])


def share_of_points(rules: list[dict], columns: Mapping[str, np.ndarray | pd.Series]) -> np.ndarray:
    """0-100 per row: the points of `rules` earned, out of all they can award."""
    available = sum(rule["points"] for rule in rules) or 1
    return 100.0 * rule_hit_array(rules, columns).sum(axis=1) / available


class RuleBaseline(ClassifierMixin, BaseEstimator):
    """Points model: fit rules + interest rules, MQL at `mql_threshold` points."""

    def __init__(self, fit_rules: list[dict] | None = None,
                 interest_rules: list[dict] | None = None, mql_threshold: float = 60):
        self.fit_rules = fit_rules
        self.interest_rules = interest_rules
        self.mql_threshold = mql_threshold

    def fit(self, X: pd.DataFrame, y: np.ndarray | None = None) -> RuleBaseline:
        rule_hits(self.rules_, X.head(1))  # fails early on an unknown feature
        self.classes_ = np.array([0, 1])
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    @property
    def rules_(self) -> list[dict]:
        return [*(self.fit_rules or []), *(self.interest_rules or [])]

    def points(self, X: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self, "classes_")
        return rule_hits(self.rules_, X)

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        return self.points(X).sum(axis=1).to_numpy(dtype=float)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = np.clip(self.decision_function(X) / 100.0, 0.0, 1.0)
        return np.column_stack([1 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.decision_function(X) >= self.mql_threshold).astype(int)

    def fit_interest_scores(self, X: pd.DataFrame) -> pd.DataFrame:
        """fit_score and interest_score, each 0-100: points earned / points available."""
        check_is_fitted(self, "classes_")
        return pd.DataFrame({"fit_score": share_of_points(self.fit_rules or [], X),
                             "interest_score": share_of_points(self.interest_rules or [], X)},
                            index=X.index)
