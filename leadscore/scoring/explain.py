"""Per-feature contributions behind a score, without per-request set-up.

LightGBM: its native TreeSHAP contributions (`pred_contrib`). Logistic
regression: coefficient x transformed value, summed back onto the original
feature. Rule baseline: the points each rule awarded. A stacked model (LightGBM's raw score plus
each row's own log-odds, `TreesPlusOffset`): its trees' TreeSHAP contributions, and its offset
column's contribution, the row's start less the average row's. All in the model's own units
(log-odds, or points), one column per original feature.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier
from sklearn.base import BaseEstimator
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from leadscore.scoring.estimators import RuleBaseline, TreesPlusOffset


def base_model(model: BaseEstimator) -> BaseEstimator:
    """The fitted model inside a calibration wrapper (CalibratedClassifierCV of a FrozenEstimator)."""
    if isinstance(model, CalibratedClassifierCV):
        inner = model.calibrated_classifiers_[0].estimator
        return getattr(inner, "estimator", inner)
    return model


def lightgbm_pipeline(model: BaseEstimator) -> Pipeline | None:
    """The fitted LightGBM pipeline inside a model (calibrated or not, stacked or not); None for
    any other model."""
    inner = base_model(model)
    if isinstance(inner, TreesPlusOffset):
        inner = inner.pipeline_
    if isinstance(inner, Pipeline) and isinstance(inner[-1], LGBMClassifier):
        return inner
    return None


def tree_contributions(model: BaseEstimator, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray] | None:
    """A LightGBM model's exact TreeSHAP contributions (rows, X's columns) and each row's
    expected raw score (the average lead's): they sum to the raw score. A stacked model's offset
    column contributes the row's start less the average row's, which its expected raw score
    holds. None for any other model."""
    inner, pipeline = base_model(model), lightgbm_pipeline(model)
    if pipeline is None:
        return None
    if not isinstance(inner, TreesPlusOffset):
        contrib = pipeline[-1].predict(pipeline[:-1].transform(X), pred_contrib=True)
        return contrib[:, :-1], contrib[:, -1]
    contrib = pipeline[-1].predict(pipeline[:-1].transform(inner.features(X)), pred_contrib=True)
    trees = pd.DataFrame(contrib[:, :-1], columns=list(inner.features(X).columns), index=X.index)
    trees[inner.offset] = inner.start(X) - inner.offset_reference_
    return trees[list(X.columns)].to_numpy(), contrib[:, -1] + inner.offset_reference_


def _logistic(pipeline: Pipeline, X: pd.DataFrame) -> pd.DataFrame:
    columns = pipeline.named_steps["columns"]
    transformed = columns.transform(X)
    transformed = transformed.toarray() if hasattr(transformed, "toarray") else transformed
    terms = transformed * pipeline[-1].coef_[0]
    owners = []
    for name, transformer, features in columns.transformers_:
        if name == "num":
            imputer = transformer[0]
            indicator = getattr(imputer, "indicator_", None)
            flagged = [features[i] for i in indicator.features_] if indicator is not None else []
            owners += [*features, *flagged]
        elif name == "cat":
            encoder = transformer[-1]
            owners += [f for f, cats in zip(features, encoder.categories_, strict=True) for _ in cats]
    frame = pd.DataFrame(terms, columns=owners, index=X.index)
    return frame.T.groupby(level=0).sum().T.reindex(columns=list(X.columns), fill_value=0.0)


def _rules(model: RuleBaseline, X: pd.DataFrame) -> pd.DataFrame:
    points = model.points(X)
    points.columns = [column.split(":", 1)[1] for column in points.columns]
    return points.T.groupby(level=0).sum().T.reindex(columns=list(X.columns), fill_value=0.0)


def contributions(model: BaseEstimator, X: pd.DataFrame) -> pd.DataFrame:
    """One row per input row, one column per feature: how much it pushed the score."""
    inner = base_model(model)
    if isinstance(inner, RuleBaseline):
        return _rules(inner, X).astype(float)
    trees = tree_contributions(model, X)
    if trees is not None:
        return pd.DataFrame(trees[0], columns=list(X.columns), index=X.index)
    if isinstance(inner, Pipeline) and isinstance(inner[-1], LogisticRegression):
        return _logistic(inner, X)
    raise TypeError(f"no explanation for model type {type(inner).__name__}")
