"""The scikit-learn parts a served model is made of, so that loading one needs no training code.

`CategoryColumns` sits inside the LightGBM pipeline; `RuleBaseline` is the hand-written
points model (config/scoring_rules.yaml), an estimator like the learned ones:
`predict_proba` is points / 100 (clipped), which calibration then turns into a
probability; `predict` is the MQL decision (points >= threshold).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from leadscore.scoring.rules import rule_hits, share_of_points
from leadscore.scoring.spec import Rule, RuleSet


class CategoryColumns(TransformerMixin, BaseEstimator):
    """String columns to pandas categoricals with the categories seen in `fit`.

    Fixing the categories at fit time gives a single served row the same
    category codes as training, which LightGBM's native categoricals need.
    """

    def __init__(self, columns: list[str] | None = None):
        self.columns = columns

    def fit(self, X: pd.DataFrame, y: np.ndarray | None = None) -> CategoryColumns:
        self.categories_ = {c: sorted(X[c].dropna().astype(str).unique()) for c in self.columns or []}
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self, "categories_")
        out = X.copy()
        for column, categories in self.categories_.items():
            out[column] = pd.Categorical(out[column].astype("object"), categories=categories)
        return out

    def get_feature_names_out(self, input_features: list[str] | None = None) -> np.ndarray:
        return self.feature_names_in_


class RuleBaseline(ClassifierMixin, BaseEstimator):
    """Points model: fit rules + interest rules (Rule objects or their dicts), MQL at
    `mql_threshold` points."""

    def __init__(self, fit_rules: list[Rule | dict] | None = None,
                 interest_rules: list[Rule | dict] | None = None, mql_threshold: float = 60):
        self.fit_rules = fit_rules
        self.interest_rules = interest_rules
        self.mql_threshold = mql_threshold

    @classmethod
    def from_rules(cls, rules: RuleSet) -> RuleBaseline:
        return cls(rules.fit, rules.interest, rules.mql_threshold)

    def fit(self, X: pd.DataFrame, y: np.ndarray | None = None) -> RuleBaseline:
        self.fit_rules_ = [Rule.model_validate(rule) for rule in self.fit_rules or []]
        self.interest_rules_ = [Rule.model_validate(rule) for rule in self.interest_rules or []]
        rule_hits(self.rules_, X.head(1))  # fails early on an unknown feature
        self.classes_ = np.array([0, 1])
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    @property
    def rules_(self) -> list[Rule]:
        return [*self.fit_rules_, *self.interest_rules_]

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
        return pd.DataFrame({"fit_score": share_of_points(self.fit_rules_, X),
                             "interest_score": share_of_points(self.interest_rules_, X)},
                            index=X.index)
