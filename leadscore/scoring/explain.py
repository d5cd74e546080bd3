"""Per-feature contributions behind a score, without per-request set-up.

LightGBM: its native TreeSHAP contributions (`pred_contrib`). Logistic
regression: coefficient x transformed value, summed back onto the original
feature. Rule baseline: the points each rule awarded. All in the model's own
units (log-odds, or points), one column per original feature.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier
from sklearn.base import BaseEstimator
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from leadscore.scoring.estimators import RuleBaseline


def base_model(model: BaseEstimator) -> BaseEstimator:
    """The fitted model inside a calibration wrapper (CalibratedClassifierCV of a FrozenEstimator)."""
    if isinstance(model, CalibratedClassifierCV):
        inner = model.calibrated_classifiers_[0].estimator
        return getattr(inner, "estimator", inner)
    return model


def _lightgbm(pipeline: Pipeline, X: pd.DataFrame) -> pd.DataFrame:
    contrib = pipeline[-1].predict(pipeline[:-1].transform(X), pred_contrib=True)
    return pd.DataFrame(contrib[:, :-1], columns=list(X.columns), index=X.index)


def tree_contributions(model: BaseEstimator, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray] | None:
    """A LightGBM model's exact TreeSHAP contributions (rows, features) and each row's expected
    raw score (the average lead's): they sum to the raw score. None for any other model."""
    inner = base_model(model)
    if not (isinstance(inner, Pipeline) and isinstance(inner[-1], LGBMClassifier)):
        return None
    contrib = inner[-1].predict(inner[:-1].transform(X), pred_contrib=True)
    return contrib[:, :-1], contrib[:, -1]


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
    if isinstance(inner, Pipeline) and isinstance(inner[-1], LGBMClassifier):
        return _lightgbm(inner, X)
    if isinstance(inner, Pipeline) and isinstance(inner[-1], LogisticRegression):
        return _logistic(inner, X)
    raise TypeError(f"no explanation for model type {type(inner).__name__}")
