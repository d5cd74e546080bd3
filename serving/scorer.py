"""Score feature rows: probability, score, fit and interest, tier, routing, reasons.

Kept apart from the BentoML service so that scoring is a plain function of a
model, its scoring metadata and feature values, with no server in the way.

Two paths give the same numbers:

- the **LightGBM path** (the usual champion) works on one float matrix: categoricals
  become the training codes, exact TreeSHAP contributions come from
  `serving.treeshap.FastTreeShap`, their sum is the raw score (SHAP's local accuracy),
  and the sigmoid calibrator is applied to it. No pandas per request: a single row
  costs well under a millisecond, and a batch runs the numba kernel on all rows;
- the **general path** (logistic regression, the rule baseline) goes through the
  scikit-learn pipeline on a pandas frame, as in training.

Fit and interest points and tiers come from the same functions as in training
(`rule_hit_array`, `tier_array`), on arrays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier
from scipy.special import expit
from sklearn.base import BaseEstimator
from sklearn.calibration import CalibratedClassifierCV, _SigmoidCalibration
from sklearn.pipeline import Pipeline

from leadscore.config import ScoreSettings
from leadscore.features.catalog import FeatureSpec, phrase
from leadscore.serving.schemas import Reason, Routing, ScoreResponse
from leadscore.serving.treeshap import FastTreeShap
from leadscore.training.baseline import share_of_points
from leadscore.training.experiment import FeatureSet, prepare
from leadscore.training.explain import base_model, contributions
from leadscore.training.tiers import probability_to_score, routing_action, tier_array

Columns = Mapping[str, Sequence]


@dataclass
class Evaluation:
    """Everything computed for a set of rows, before it becomes responses."""

    probability: np.ndarray
    score: np.ndarray
    fit_score: np.ndarray
    interest_score: np.ndarray
    tier: np.ndarray
    contrib: np.ndarray        # (rows, features), in the model's units
    base: np.ndarray           # per row: the model's output before any feature (same units)
    values: dict[str, np.ndarray]  # the model input per feature, for phrasing reasons


@dataclass
class PathResult:
    probability: np.ndarray
    contrib: np.ndarray
    base: np.ndarray
    values: dict[str, np.ndarray]


def _floats(values: Sequence) -> np.ndarray:
    """Numbers as float64; None and anything not a number become NaN (pd.to_numeric(coerce))."""
    try:
        return np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        return pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce").to_numpy(dtype=float)


class _LightGBMPath:
    """A calibrated LightGBM pipeline evaluated on a float matrix."""

    def __init__(self, model: CalibratedClassifierCV, features: FeatureSet):
        pipeline = base_model(model)
        booster = pipeline[-1].booster_
        self.names: list[str] = booster.feature_name()
        if self.names != features.all:
            raise ValueError("the model's features are not the service's, in order")
        categories = booster.pandas_categorical or []
        self.codes = {name: {value: float(code) for code, value in enumerate(levels)}
                      for name, levels in zip(features.categorical, categories, strict=True)}
        self.zero_when_missing = set(features.zero_when_missing)
        calibrator = model.calibrated_classifiers_[0].calibrators[0]
        self.a, self.b = float(calibrator.a_), float(calibrator.b_)
        self.shap = FastTreeShap(booster)

    @staticmethod
    def supports(model: BaseEstimator) -> bool:
        if not isinstance(model, CalibratedClassifierCV):
            return False
        inner = base_model(model)
        calibrators = model.calibrated_classifiers_[0].calibrators
        return (isinstance(inner, Pipeline) and isinstance(inner[-1], LGBMClassifier)
                and len(model.calibrated_classifiers_) == 1 and len(calibrators) == 1
                and isinstance(calibrators[0], _SigmoidCalibration))

    def encode(self, columns: Columns, n: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The model matrix, and the model input per feature (as `prepare` gives it)."""
        matrix = np.empty((n, len(self.names)))
        values: dict[str, np.ndarray] = {}
        for j, name in enumerate(self.names):
            raw = columns.get(name, [None] * n)
            if name in self.codes:
                codes = self.codes[name]
                matrix[:, j] = [codes.get(v, np.nan) if v is not None else np.nan for v in raw]
                values[name] = np.asarray([None if v is None or v != v else str(v) for v in raw],
                                          dtype=object)
            else:
                numbers = _floats(raw)
                if name in self.zero_when_missing:
                    numbers = np.nan_to_num(numbers, nan=0.0)
                matrix[:, j] = numbers
                values[name] = numbers
        return matrix, values

    def evaluate(self, columns: Columns, n: int) -> PathResult:
        matrix, values = self.encode(columns, n)
        phi = self.shap.contributions(matrix)
        raw = phi.sum(axis=1)  # local accuracy: expected value + contributions = raw score
        return PathResult(expit(-(self.a * raw + self.b)), phi[:, :-1], phi[:, -1], values)


class _GeneralPath:
    """Any model through its scikit-learn pipeline on a pandas frame."""

    def __init__(self, model: BaseEstimator, features: FeatureSet):
        self.model = model
        self.features = features

    def evaluate(self, columns: Columns, n: int) -> PathResult:
        frame = pd.DataFrame({name: list(columns.get(name, [None] * n)) for name in self.features.all})
        X = prepare(frame, self.features)
        probability = self.model.predict_proba(X)[:, 1]
        contrib = contributions(self.model, X).to_numpy(dtype=float)
        base = base_model(self.model).decision_function(X) - contrib.sum(axis=1)  # intercept; 0 points
        return PathResult(probability, contrib, base, {name: X[name].to_numpy() for name in X.columns})


class Scorer:
    """Everything needed to turn feature values into explained scores, built once per model."""

    def __init__(self, model: BaseEstimator, metadata: dict, version: str,
                 specs: list[FeatureSpec], max_reasons: int = 5):
        self.model = model
        self.metadata = metadata
        self.version = version
        self.features = FeatureSet(metadata["numeric"], metadata["categorical"],
                                   metadata["zero_when_missing"])
        self.path = (_LightGBMPath(model, self.features) if _LightGBMPath.supports(model)
                     else _GeneralPath(model, self.features))
        rules = metadata["rules"] or {}
        self.fit_rules, self.interest_rules = rules.get("fit", []), rules.get("interest", [])
        self.specs: dict[str, FeatureSpec] = {spec.name: spec for spec in specs}
        self.rule_reasons = {r["feature"]: r["reason"] for r in [*self.fit_rules, *self.interest_rules]}
        self.score_settings = ScoreSettings(**metadata["score"])
        self.max_reasons = max_reasons
        self.kind = metadata["model_kind"]
        self.horizon_days = int(metadata["horizon_days"])

    @property
    def feature_names(self) -> list[str]:
        return self.features.all

    def evaluate(self, columns: Columns, n: int) -> Evaluation:
        """Scores of `n` rows given as feature name -> values (missing features are unknown)."""
        path = self.path.evaluate(columns, n)
        probability, values = path.probability, path.values
        fit = share_of_points(self.fit_rules, values)
        interest = share_of_points(self.interest_rules, values)
        completeness = (np.asarray(values["profile_completeness"], dtype=float)
                        if "profile_completeness" in values
                        else np.mean([pd.notna(v) for v in values.values()], axis=0))
        score = probability_to_score(probability, self.score_settings)
        tier = tier_array({"score": score, "fit_score": fit, "interest_score": interest,
                           "completeness": completeness}, self.metadata["tiers"])
        return Evaluation(probability, score, fit, interest, tier, path.contrib, path.base, values)

    def score_columns(self, pids: Sequence[str | None], columns: Columns,
                      feature_times: Sequence[str | None] | None = None) -> list[ScoreResponse]:
        """One explained response per row."""
        n = len(pids)
        result = self.evaluate(columns, n)
        times = feature_times or [None] * n
        return [self._response(i, pids[i], result, times[i]) for i in range(n)]

    def score_frame(self, frame: pd.DataFrame) -> list[ScoreResponse]:
        """One response per row of `frame` (columns: pid plus the service's features)."""
        columns = {name: frame[name].to_numpy() for name in self.feature_names if name in frame}
        return self.score_columns(list(frame["pid"]), columns)

    def _reason(self, feature: str, value: object, impact: float) -> Reason:
        if self.kind == "rule_baseline":
            text = self.rule_reasons.get(feature, feature)
        else:
            text = phrase(self.specs[feature], value)
        return Reason(feature=feature, text=text, impact=round(float(impact), 4))

    def _reasons(self, i: int, result: Evaluation) -> tuple[list[Reason], list[Reason]]:
        row = result.contrib[i]
        order = np.argsort(row, kind="stable")
        names = self.feature_names
        up = [j for j in order[::-1][:self.max_reasons] if row[j] > 0]
        down = [j for j in order[:self.max_reasons] if row[j] < 0]
        return ([self._reason(names[j], result.values[names[j]][i], row[j]) for j in up],
                [self._reason(names[j], result.values[names[j]][i], row[j]) for j in down])

    def _response(self, i: int, pid: str | None, result: Evaluation,
                  feature_time: str | None) -> ScoreResponse:
        up, down = self._reasons(i, result)
        tier = str(result.tier[i])
        return ScoreResponse(
            pid=pid, probability=round(float(result.probability[i]), 6),
            score=round(float(result.score[i]), 1), fit_score=round(float(result.fit_score[i]), 1),
            interest_score=round(float(result.interest_score[i]), 1), tier=tier,
            routing=Routing(**routing_action(tier, self.metadata["tiers"])),
            reasons_up=up, reasons_down=down, base_value=round(float(result.base[i]), 4),
            model_version=self.version, model_kind=self.kind,
            horizon_days=self.horizon_days, feature_timestamp=feature_time)
