"""Score feature rows: probability, score, fit and interest, tier, routing, reasons.

Kept apart from the BentoML service so that scoring is a plain function of a
model, its scoring spec (leadscore.scoring.spec, written by training with the model)
and feature values, with no server in the way.

Two paths give the same numbers:

- the **LightGBM path** (the usual champion) works on one float matrix: categoricals
  become the training codes, exact TreeSHAP contributions come from
  `serving.treeshap.FastTreeShap`, their sum is the raw score (SHAP's local accuracy),
  and the spec's sigmoid calibration is applied to it. A stacked account model (spec `offset`)
  adds each row's start, the log-odds of its people's chance (the column the offset names), to
  the trees' raw score before the calibration; the start less the average row's is that
  column's contribution, so the contributions still sum to the raw score. No pandas per request: a single row
  costs well under a millisecond, and a batch runs the numba kernel on all rows;
- the **general path** (logistic regression, the rule baseline) goes through the
  scikit-learn pipeline on a pandas frame, as in training.

The rule points' fit and interest shares and tiers come from the same functions as in
training (`leadscore.scoring.parts.score_parts`, `leadscore.scoring.tiers.tier_array`), on arrays;
a single row (a /score) from their plain-Python twins (`score_parts_one`, `tier_of`: the same
numbers and the same tier conditions, without numpy's fixed cost per call).

**The two axes** (`fit`, `interest`; LightGBM champions): the score is linear in the model's
raw score, and the raw score is the average lead's plus the features' exact TreeSHAP
contributions, so the score splits exactly into the average lead's score plus the points of
the fit families (who the lead is: company, role, profile; config/features.yaml `fit_families`)
plus the points of every other family (what they do: engagement, recency, the buying
committee). `fit` = average + fit points and `interest` = average + interest points, each the
score this lead would have if only that side of it differed from the average lead, so
`fit + interest - average = score` (before the 0-100 clips): the iso-score lines and the tiers'
score thresholds are diagonals of a fit x interest chart, and the tiers read these axes
(`leadscore.scoring.parts`). One matrix-vector product per call.

A challenger scoring in shadow needs no reasons: `shadow_records` gives the probability, score
and tier alone (LightGBM's own prediction instead of the contributions, no phrasing), so that
it adds little to a request; only a tier table that reads the axes needs the contributions.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.base import BaseEstimator

from leadscore.features.catalog import FeatureSpec, phrase
from leadscore.scoring.estimators import offset_start
from leadscore.scoring.explain import contributions, lightgbm_pipeline
from leadscore.scoring.parts import Axes, points_per_unit, score_axes, score_parts, score_parts_one
from leadscore.scoring.prepare import prepare
from leadscore.scoring.spec import ScoringSpec
from leadscore.scoring.tiers import tier_array, tier_of
from leadscore.serving.reasons import Families
from leadscore.serving.treeshap import FastTreeShap

Columns = Mapping[str, Sequence]
PHRASE_CACHE_SIZE = 200_000


@dataclass
class Evaluation:
    """Everything computed for a set of rows, before it becomes responses."""

    probability: np.ndarray
    score: np.ndarray
    fit_score: np.ndarray
    interest_score: np.ndarray
    tier: np.ndarray
    contrib: np.ndarray        # (rows, features), in the model's units
    values: dict[str, np.ndarray]  # the model input per feature, for phrasing reasons
    axes: Axes | None = None  # the average lead's score, fit and interest, where the model tells it


@dataclass
class PathResult:
    probability: np.ndarray
    contrib: np.ndarray
    values: dict[str, np.ndarray]
    expected: np.ndarray | None = None  # raw score of the average lead (TreeSHAP's bias)


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Building many records (and the lists they come from) makes the cyclic garbage collector
    walk the whole heap again and again, half the time of a 20k-row batch; nothing built here
    holds a cycle, so it can wait."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _floats(values: Sequence) -> np.ndarray:
    """Numbers as float64; None and anything not a number become NaN (pd.to_numeric(coerce))."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiub":
        return values.astype(float, copy=False)
    try:
        return np.array([np.nan if v is None else v for v in values], dtype=float)
    except (TypeError, ValueError):
        return pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce").to_numpy(dtype=float)


def _float_block(columns: list[Sequence], n: int) -> np.ndarray:
    """(columns, n) float64, each column as `_floats` converts it. One conversion for all when
    they are plain numbers and None (a served row: one numpy call, not one per feature)."""
    try:
        return np.array(columns, dtype=float).reshape(len(columns), n)
    except (TypeError, ValueError):
        return np.array([_floats(column) for column in columns]).reshape(len(columns), n)


class _LightGBMPath:
    """A calibrated LightGBM pipeline evaluated on a float matrix, with the spec's categorical
    levels and sigmoid calibration."""

    def __init__(self, model: BaseEstimator, spec: ScoringSpec):
        pipeline, calibration = lightgbm_pipeline(model), spec.calibration
        if pipeline is None or calibration is None:
            raise ValueError("the fast path needs a LightGBM model and its sigmoid calibration in the spec")
        booster = pipeline[-1].booster_
        features = spec.features
        self.names: list[str] = booster.feature_name()
        if self.names != features.all:
            raise ValueError("the model's features are not the spec's, in order")
        if booster.pandas_categorical and [spec.levels[name] for name in features.categorical] != [
                [str(level) for level in levels] for levels in booster.pandas_categorical]:
            raise ValueError("the spec's categorical levels are not the model's")
        self.codes = {name: {value: float(code) for code, value in enumerate(spec.levels[name])}
                      for name in features.categorical}
        self.zero_columns = [j for j, name in enumerate(self.names) if name in features.zero_when_missing]
        self.numeric_columns = [j for j, name in enumerate(self.names) if name not in self.codes]
        self.categorical_columns = [j for j, name in enumerate(self.names) if name in self.codes]
        self.calibration = calibration
        self.a, self.b = calibration.a, calibration.b
        self.offset = spec.offset  # a stacked model's start (None: the trees alone)
        self.booster = booster
        self.shap = FastTreeShap(booster)

    @staticmethod
    def supports(spec: ScoringSpec) -> bool:
        return spec.model_kind in ("lightgbm", "stacked") and spec.calibration is not None

    def encode(self, columns: Columns, n: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The model matrix, and the model input per feature (as `prepare` gives it)."""
        matrix = np.empty((n, len(self.names)))
        values: dict[str, np.ndarray] = {}
        missing = [None] * n
        for j in self.categorical_columns:
            name, codes = self.names[j], self.codes[self.names[j]]
            raw = columns.get(name, missing)
            matrix[:, j] = [codes.get(v, np.nan) if v is not None else np.nan for v in raw]
            values[name] = np.array([None if v is None or v != v else str(v) for v in raw], dtype=object)
        matrix[:, self.numeric_columns] = _float_block(
            [columns.get(self.names[j], missing) for j in self.numeric_columns], n).T
        zero = matrix[:, self.zero_columns]
        zero[np.isnan(zero)] = 0.0
        matrix[:, self.zero_columns] = zero
        for j in self.numeric_columns:
            values[self.names[j]] = matrix[:, j]
        if self.offset is not None:
            values[self.offset.column] = _floats(columns.get(self.offset.column, missing))
        return matrix, values

    def _start(self, values: dict[str, np.ndarray]) -> np.ndarray | float:
        """Each row's start: a stacked model's log-odds of its people's chance (the average
        account's where it is unknown: `offset_start`), else 0."""
        if self.offset is None:
            return 0.0
        return offset_start(values[self.offset.column], self.offset.edge, self.offset.reference)

    def evaluate(self, columns: Columns, n: int) -> PathResult:
        matrix, values = self.encode(columns, n)
        phi = self.shap.contributions(matrix)
        contrib, expected = phi[:, :-1], phi[:, -1]
        start = self._start(values)
        if self.offset is not None:  # the start as one more column, counted from the average row's
            contrib = np.column_stack([contrib, start - self.offset.reference])
            expected = expected + self.offset.reference
        raw = phi.sum(axis=1) + start  # local accuracy: expected value + contributions = raw score
        return PathResult(expit(-(self.a * raw + self.b)), contrib, values, expected)

    def predict(self, columns: Columns, n: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The calibrated probability without contributions, and the model input per feature.
        One thread: LightGBM's OpenMP team, beside the service's other threads, made one row
        cost 16 ms instead of 0.02."""
        matrix, values = self.encode(columns, n)
        raw = self.booster.predict(matrix, raw_score=True, num_threads=1) + self._start(values)
        return expit(-(self.a * raw + self.b)), values


class _GeneralPath:
    """Any model through its scikit-learn pipeline on a pandas frame."""

    def __init__(self, model: BaseEstimator, spec: ScoringSpec):
        self.model = model
        self.features = spec.features

    def _inputs(self, columns: Columns, n: int) -> pd.DataFrame:
        frame = pd.DataFrame({name: list(columns.get(name, [None] * n)) for name in self.features.all})
        return prepare(frame, self.features)

    def evaluate(self, columns: Columns, n: int) -> PathResult:
        X = self._inputs(columns, n)
        probability = self.model.predict_proba(X)[:, 1]
        contrib = contributions(self.model, X).to_numpy(dtype=float)
        return PathResult(probability, contrib, {name: X[name].to_numpy() for name in X.columns})

    def predict(self, columns: Columns, n: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        X = self._inputs(columns, n)
        return self.model.predict_proba(X)[:, 1], {name: X[name].to_numpy() for name in X.columns}


class Scorer:
    """Everything needed to turn feature values into explained scores, built once per model."""

    def __init__(self, model: BaseEstimator, spec: ScoringSpec, version: str,
                 specs: list[FeatureSpec], max_reasons: int = 5,
                 family_labels: Mapping[str, str] | None = None,
                 fit_families: Sequence[str] = ()):
        if spec.horizon_days is None:
            raise ValueError(f"version {version} has no label horizon: it is not a lead model "
                             "(a flat table's model is trained and compared, not served)")
        self.model = model
        self.spec = spec
        self.version = version
        self.features = spec.features
        # what reasons tell: the model's features, and a stacked model's start (its people's scores)
        self.feature_names: list[str] = self.features.all + ([spec.offset.column] if spec.offset else [])
        self.path = (_LightGBMPath(model, spec) if _LightGBMPath.supports(spec)
                     else _GeneralPath(model, spec))
        self.specs: dict[str, FeatureSpec] = {feature.name: feature for feature in specs}
        self.rule_reasons = {rule.feature: rule.reason for rule in spec.rules.all} if spec.rules else {}
        self.max_reasons = max_reasons
        self.kind = spec.model_kind
        self.horizon_days = spec.horizon_days
        self.routing = {tier: routing.model_dump() for tier, routing in spec.tiers.routing.items()}
        self._phrases: dict[tuple[str, object], str] = {}  # (feature, value) -> reason text
        self._told: dict[tuple, dict] = {}  # (family, telling mask, values) -> a reason's words
        self._categorical = set(self.features.categorical)
        self._categorical_at = [name in self._categorical for name in self.feature_names]
        self.families = Families.of(self.feature_names, self.specs, family_labels or {})
        # Score points per unit of contribution, where the score is linear in it: the LightGBM
        # path's raw score goes through the sigmoid calibration p = 1/(1 + exp(a*raw + b)), and
        # the score adds points_to_double_odds per doubling of the odds (before its 0-100 clip).
        self._points_per_unit = (points_per_unit(self.path.calibration, spec.score)
                                 if isinstance(self.path, _LightGBMPath) else None)
        self._family_at = [self.families.names[k] for k in np.argmax(self.families.matrix, axis=1)]
        fit_side = set(fit_families)  # which features sum to the fit points, which to the interest
        self._is_fit = np.array([family in fit_side for family in self._family_at], dtype=float)
        # a challenger's shadow score needs the axes (the contributions) when its tiers read them
        self._tiers_read_axes = any(condition in ("fit_min", "interest_min")
                                    for tier in spec.tiers.tiers for condition in tier.when)

    @property
    def fast_path(self) -> bool:
        """True when rows go through the LightGBM matrix path (exact TreeSHAP)."""
        return isinstance(self.path, _LightGBMPath)

    def evaluate(self, columns: Columns, n: int) -> Evaluation:
        """Scores of `n` rows given as feature name -> values (missing features are unknown)."""
        path = self.path.evaluate(columns, n)
        axes = self._axes(path)
        parts, tiers = self._parts_and_tiers(path.probability, path.values, axes)
        return Evaluation(path.probability, parts["score"], parts["fit_score"], parts["interest_score"],
                          tiers, path.contrib, path.values, axes)

    def _parts_and_tiers(self, probability: np.ndarray, values: dict[str, np.ndarray],
                         axes: Axes | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Score parts and tier of each row. One row (a /score) in plain Python: the same numbers
        (tested), without numpy's fixed cost per call on one-element arrays."""
        spec = self.spec
        if len(probability) != 1:
            parts = score_parts(probability, values, spec.rules, spec.score, axes)
            return parts, tier_array(parts, spec.tiers)
        one = score_parts_one(float(probability[0]), {name: column[0] for name, column in values.items()},
                              spec.rules, spec.score, axes)
        return ({name: np.array([value]) for name, value in one.items()},
                np.array([tier_of(one, spec.tiers)], dtype=object))

    def _axes(self, path: PathResult) -> Axes | None:
        """The score split into the average lead's, fit points and interest points (LightGBM)."""
        if self._points_per_unit is None or path.expected is None or self.spec.calibration is None:
            return None
        return score_axes(path.contrib, path.expected, self._is_fit, self.spec.calibration, self.spec.score)

    def score_records(self, pids: Sequence[str | None], columns: Columns,
                      feature_times: Sequence[str | None] | None = None,
                      detail: str = "behaviour") -> list[dict]:
        """One explained score per row, as plain JSON-ready records shaped like ScoreResponse:
        what batch scoring returns (no per-row validation: the values are the scorer's own).
        The strongest reasons of all rows are picked with one sort; rows are then only lists.
        Reasons are families of features (serving/reasons.py), or with `detail="feature"`
        single features."""
        n = len(pids)
        with _cyclic_gc_paused():  # a million small objects, no cycles among them
            result = self.evaluate(columns, n)
            return self._records(pids, result, feature_times or [None] * n, detail)

    def shadow_records(self, pids: Sequence[str | None], columns: Columns,
                       feature_times: Sequence[str | None] | None = None) -> list[dict]:
        """Probability, score and tier of each row, without reasons: what the score log keeps of
        a challenger scoring in shadow (the same numbers as `score_records`)."""
        n = len(pids)
        if self._tiers_read_axes and self.fast_path:
            result = self.evaluate(columns, n)
            probability, score, tier_values = result.probability, result.score, result.tier
        else:
            probability, values = self.path.predict(columns, n)
            parts, tier_values = self._parts_and_tiers(probability, values)
            score = parts["score"]
        tiers = tier_values.tolist()
        probability, score = probability.round(6).tolist(), score.round(1).tolist()
        times = feature_times or [None] * n
        return [{"pid": pids[i], "probability": probability[i], "score": score[i], "tier": str(tiers[i]),
                 "reasons_up": [], "reasons_down": [], "model_version": self.version,
                 "feature_timestamp": times[i]} for i in range(n)]

    def _records(self, pids: Sequence[str | None], result: Evaluation,
                 times: Sequence[str | None], detail: str) -> list[dict]:
        n = len(pids)
        numbers = self._numbers(result, n)
        reasons = (self._family_reasons(result, numbers) if detail == "behaviour"
                   else self._feature_reasons(result, numbers))
        average, fit_axis, interest_axis = self._axis_lists(result, n)
        if self._points_per_unit is not None:
            for up, down in reasons:
                for reason in (*up, *down):
                    reason["points"] = round(reason["impact"] * self._points_per_unit, 2) + 0.0  # no -0.0
        probability = result.probability.round(6).tolist()
        score, fit = result.score.round(1).tolist(), result.fit_score.round(1).tolist()
        interest, tiers = result.interest_score.round(1).tolist(), result.tier.tolist()
        records = []
        for i in range(n):
            tier = str(tiers[i])
            records.append({
                "pid": pids[i], "probability": probability[i], "score": score[i], "fit_score": fit[i],
                "interest_score": interest[i], "tier": tier, "routing": self.routing[tier],
                "reasons_up": reasons[i][0], "reasons_down": reasons[i][1],
                "average_score": average[i], "fit": fit_axis[i], "interest": interest_axis[i],
                "model_version": self.version, "model_kind": self.kind, "horizon_days": self.horizon_days,
                "feature_timestamp": times[i]})
        return records

    @staticmethod
    def _axis_lists(result: Evaluation, n: int) -> tuple[list, list, list]:
        """The average lead's score (where a waterfall of the reasons in score points starts),
        fit and interest of each row, rounded for an answer; None where the model does not tell
        them."""
        if result.axes is None:
            return [None] * n, [None] * n, [None] * n
        axes = result.axes
        return (axes.average.round(1).tolist(), axes.fit.round(1).tolist(),
                axes.interest.round(1).tolist())

    def _numbers(self, result: Evaluation, n: int) -> np.ndarray:
        """(rows, features) of the numeric model inputs; NaN for the categoricals."""
        numbers = np.full((n, len(self.feature_names)), np.nan)
        for j, name in enumerate(self.feature_names):
            if name not in self._categorical:
                numbers[:, j] = result.values[name]
        return numbers

    def _strongest(self, contrib: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Columns of the k strongest contributions per row: (up, down)."""
        k = min(self.max_reasons, contrib.shape[1])
        order = np.argsort(contrib, axis=1, kind="stable")
        return order[:, ::-1][:, :k], order[:, :k]

    def _feature_reasons(self, result: Evaluation, numbers: np.ndarray) -> list[tuple[list, list]]:
        """(up, down) reasons of each row, one per feature."""
        up, down = self._strongest(result.contrib)
        impact_up = np.take_along_axis(result.contrib, up, axis=1).round(4).tolist()
        impact_down = np.take_along_axis(result.contrib, down, axis=1).round(4).tolist()
        value_up = np.take_along_axis(numbers, up, axis=1).tolist()
        value_down = np.take_along_axis(numbers, down, axis=1).tolist()
        up, down = up.tolist(), down.tolist()
        return [(self._reason_list(i, up[i], impact_up[i], value_up[i], result, True),
                 self._reason_list(i, down[i], impact_down[i], value_down[i], result, False))
                for i in range(len(up))]

    def _reason_list(self, i: int, features: list[int], impacts: list[float], numbers: list[float],
                     result: Evaluation, positive: bool) -> list[dict]:
        reasons = []
        names, categorical, phrases = self.feature_names, self._categorical_at, self._phrases
        for j, impact, number in zip(features, impacts, numbers, strict=True):
            if (impact <= 0) if positive else (impact >= 0):
                break  # sorted: the rest push the other way (or not at all)
            name = names[j]
            value = result.values[name][i] if categorical[j] else number
            text = phrases.get((name, value)) or self._text(name, value)
            reasons.append({"feature": name, "family": self._family_at[j], "label": text, "text": text,
                            "impact": impact})
        return reasons

    def _family_reasons(self, result: Evaluation, numbers: np.ndarray) -> list[tuple[list, list]]:
        """(up, down) reasons of each row, one per reason family (its features' sum). Which
        features each reason tells is picked for all rows at once; a reason's words are kept per
        family, telling features and their values, which repeat across leads."""
        sums = self.families.sums(result.contrib)
        up, down = self._strongest(sums)
        impact_up = np.take_along_axis(sums, up, axis=1).round(4).tolist()
        impact_down = np.take_along_axis(sums, down, axis=1).round(4).tolist()
        masks, strongest = (part.tolist() for part in self.families.telling(result.contrib))
        up, down, rows = up.tolist(), down.tolist(), self._told_values(result, numbers)
        return [(self._side_reasons(up[i], impact_up[i], True, masks[i], strongest[i], rows[i]),
                 self._side_reasons(down[i], impact_down[i], False, masks[i], strongest[i], rows[i]))
                for i in range(len(up))]

    def _side_reasons(self, families: list[int], impacts: list[float], positive: bool, mask: list[int],
                      strongest: list[int], row: list) -> list[dict]:
        """One row's reasons on one side (up: `positive`), strongest first."""
        return [self._family_reason(k, impact, mask[k], strongest[k], row)
                for k, impact in zip(families, impacts, strict=True)
                if (impact > 0 if positive else impact < 0)]

    def _told_values(self, result: Evaluation, numbers: np.ndarray) -> list[list]:
        """Each row's feature values as a phrase tells them (model order): numbers, categories,
        and None for unknown (NaN never equals itself, so it would miss every cache)."""
        values = numbers.astype(object)
        values[np.isnan(numbers)] = None
        for j, name in enumerate(self.feature_names):
            if self._categorical_at[j]:
                values[:, j] = [None if value != value else value for value in result.values[name]]
        return values.tolist()

    def _family_reason(self, family: int, impact: float, mask: int, strongest: int, row: list) -> dict:
        telling, values_of = self.families.told_features(family, mask)
        key = (family, mask, values_of(row))
        told = self._told.get(key)
        if told is None:
            told = self.families.told(family, telling, [self._text(self.feature_names[j], row[j])
                                                        for j in telling])
            if len(self._told) < PHRASE_CACHE_SIZE:
                self._told[key] = told
        return {"feature": self.feature_names[strongest], **told, "features": list(told["features"]),
                "impact": impact}

    def _text(self, feature: str, value: object) -> str:
        if self.kind == "rule_baseline":
            return self.rule_reasons.get(feature, feature)
        if value is not None and value != value:
            value = None  # NaN: one cache entry for "unknown", not one per NaN object
        key = (feature, value)
        text = self._phrases.get(key)
        if text is None:
            text = phrase(self.specs[feature], value)
            if len(self._phrases) < PHRASE_CACHE_SIZE:  # continuous values: keep memory bounded
                self._phrases[key] = text
        return text
