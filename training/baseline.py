"""The rule baseline: hand-written fit and interest points, as a scikit-learn estimator.

Points come from config/scoring_rules.yaml. `predict_proba` is points / 100
(clipped), which calibration then turns into a probability; `predict` is the
MQL decision (points >= threshold). Fit and interest scores (0-100) are the
share of the maximum fit and interest points a lead earns, used for tiers.
"""

from __future__ import annotations

import operator

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

OPERATORS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
             "==": operator.eq}


def rule_hits(rules: list[dict], X: pd.DataFrame) -> pd.DataFrame:
    """Points each rule awards each row (0 where the rule does not hold or data is missing)."""
    hits = {}
    for i, rule in enumerate(rules):
        if rule["feature"] not in X.columns:
            raise KeyError(f"scoring rule {i} uses unknown feature {rule['feature']!r}")
        values = X[rule["feature"]]
        if rule["op"] == "in":
            holds = values.isin(rule["value"])
        else:
            holds = OPERATORS[rule["op"]](pd.to_numeric(values, errors="coerce"), rule["value"])
        hits[f"{i}:{rule['feature']}"] = np.where(holds.fillna(False).astype(bool), rule["points"], 0)
    return pd.DataFrame(hits, index=X.index)


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
        scores = {}
        for name, rules in (("fit_score", self.fit_rules), ("interest_score", self.interest_rules)):
            available = sum(rule["points"] for rule in rules or []) or 1
            scores[name] = 100.0 * rule_hits(rules or [], X).sum(axis=1) / available
        return pd.DataFrame(scores, index=X.index)
