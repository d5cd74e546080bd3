"""The scikit-learn parts a served model is made of, so that loading one needs no training code.

`CategoryColumns` sits inside the LightGBM pipeline; `RuleBaseline` is the hand-written
points model (config/scoring_rules.yaml), an estimator like the learned ones:
`predict_proba` is points / 100 (clipped), which calibration then turns into a
probability; `predict` is the MQL decision (points >= threshold). `TreesPlusOffset` is the
stacked account model: LightGBM's raw score plus each row's own log-odds (its people's scores).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, clone
from sklearn.pipeline import Pipeline
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

    def __init__(self, fit_rules: Sequence[Rule | dict] | None = None,
                 interest_rules: Sequence[Rule | dict] | None = None, mql_threshold: float = 60):
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


def log_odds(p: np.ndarray | float, edge: float) -> np.ndarray:
    """log(p / (1 - p)) of p clipped to [edge, 1 - edge]: a chance of 0 (no people scored) or 1
    stays a finite starting point."""
    clipped = np.clip(np.asarray(p, dtype=float), edge, 1 - edge)
    return np.log(clipped / (1 - clipped))


def offset_start(chance: np.ndarray | float, edge: float, reference: float) -> np.ndarray:
    """Each row's start from its chance, `log_odds(chance, edge)`; an unknown chance (NaN: none of
    an account's people online to score) starts at `reference`, the average row's, so that it
    moves the score neither way, where a chance of 0 would start it at log-odds(edge), next to
    certain failure."""
    chance = np.asarray(chance, dtype=float)
    known = ~np.isnan(chance)
    start = np.full(chance.shape, float(reference))
    start[known] = log_odds(chance[known], edge)
    return start


def chance_of_any(probabilities: np.ndarray) -> float:
    """The chance that at least one of them happens, were they independent: 1 - prod(1 - p)
    (0 for none)."""
    return float(-np.expm1(np.log1p(-np.minimum(np.asarray(probabilities, dtype=float), 1 - 1e-12)).sum()))


class TreesPlusOffset(ClassifierMixin, BaseEstimator):
    """A LightGBM pipeline (`pipeline`: CategoryColumns then LGBMClassifier) fit on every column
    but `offset`, whose raw score is then added to a log-odds of each row's own: the chance in
    column `offset` of X, as `log_odds(chance, edge)`. Two views of one row added in log-odds
    (for an account: what its own features say, what its people's scores say), each learnt from
    its own data; the sigmoid calibration that follows weighs the sum, which tempers what the two
    views share. The trees never read the offset, so the rows they learn from need none (NaN):
    only the rows they are stopped on, calibrated on and scored do.

    `offset_reference_` is the mean start of the rows it was stopped on (`eval_set`; else of the
    training rows) that carry a chance: the average row's, from which the offset's contribution to
    a row's score is counted (`scoring.explain`), and where a row whose chance is unknown (NaN)
    starts (`offset_start`). Fitting with no such row is an error: there would be no average."""

    def __init__(self, pipeline: Pipeline | None = None, offset: str = "offset", edge: float = 1e-4):
        self.pipeline = pipeline
        self.offset = offset
        self.edge = edge

    def start(self, X: pd.DataFrame) -> np.ndarray:
        """Each row's log-odds from the offset column (the average row's where it is unknown)."""
        check_is_fitted(self, "offset_reference_")
        return offset_start(X[self.offset].to_numpy(dtype=float), self.edge, self.offset_reference_)

    def reference_of(self, X: pd.DataFrame, where: str) -> float:
        """The mean log-odds of the rows of X that carry a chance; a ValueError naming `where`
        (the rows X is) when none does."""
        chance = X[self.offset].to_numpy(dtype=float)
        known = chance[~np.isnan(chance)]
        if not known.size:
            raise ValueError(f"no row of {where} carries the offset column {self.offset!r}: the stacked "
                             "model's reference (the average row's start) is their mean log-odds; give an "
                             "eval_set whose rows carry it")
        return float(log_odds(known, self.edge).mean())

    def features(self, X: pd.DataFrame) -> pd.DataFrame:
        """The trees' inputs: every column but the offset's."""
        return X.drop(columns=self.offset)

    def fit(self, X: pd.DataFrame, y: np.ndarray, sample_weight: np.ndarray | None = None,
            eval_set: tuple[pd.DataFrame, np.ndarray] | None = None, callbacks: list | None = None
            ) -> TreesPlusOffset:
        """Fit the trees on the columns but the offset; with `eval_set` (its X carrying the offset)
        LightGBM stops early on it (`callbacks`) and the reference is its mean start (else the
        training rows')."""
        reference = (self.reference_of(X, "the training rows") if eval_set is None
                     else self.reference_of(eval_set[0], "the eval_set"))  # before the trees: fails early
        self.pipeline_ = clone(self.pipeline)
        prep = self.pipeline_[:-1].fit(self.features(X), y)
        stopping = {} if eval_set is None else {
            "eval_X": prep.transform(self.features(eval_set[0])), "eval_y": eval_set[1],
            "callbacks": callbacks}
        self.pipeline_[-1].fit(prep.transform(self.features(X)), y, sample_weight=sample_weight, **stopping)
        self.offset_reference_ = reference
        self.classes_ = np.array([0, 1])
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    def trees_raw(self, X: pd.DataFrame) -> np.ndarray:
        """The trees' raw score alone (without the offset's log-odds)."""
        check_is_fitted(self, "pipeline_")
        return self.pipeline_[-1].predict(self.pipeline_[:-1].transform(self.features(X)), raw_score=True)

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        return self.trees_raw(X) + self.start(X)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = 1 / (1 + np.exp(-self.decision_function(X)))
        return np.column_stack([1 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.decision_function(X) > 0).astype(int)
