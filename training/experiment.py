"""One training experiment, the same for the Feast training set and for any flat table.

leakage guard on the training window -> fit each candidate (rule baseline, logistic
regression, LightGBM, and with an `offset` the stacked model: LightGBM's raw score plus each row's
own log-odds; with `half_life_days`, recency-weighted) -> calibrate on the
validation window -> fit the tier thresholds on the validation window -> evaluate on the
validation and test windows (metrics, tiers) -> the candidate's scoring spec. Those are pure
steps (`guarded_inputs`, `train_candidate`); `compare_candidates` logs them (one MLflow
parent run with a child run per candidate, plots), and `run_experiment` then registers the
best, promoting it if it beats the champion re-scored on the same test window
(training/retrain.py goes on from the comparison instead).
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier, early_stopping
from sklearn.base import BaseEstimator
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline

import mlflow
from leadscore.config import ScoreSettings, Settings, TrainingSettings
from leadscore.scoring.estimators import RuleBaseline, TreesPlusOffset
from leadscore.scoring.explain import base_model, contributions, tree_contributions
from leadscore.scoring.metrics import comparison_table, conversion_by_tier, metrics
from leadscore.scoring.parts import Axes, score_axes, score_parts
from leadscore.scoring.prepare import prepare, prepare_for
from leadscore.scoring.registry import MissingSpec, load_champion
from leadscore.scoring.spec import FeatureSet, Offset, RuleSet, ScoringSpec, TierTable
from leadscore.training import plots, register
from leadscore.training.dataset import Split
from leadscore.training.leakage import LeakageReport, leakage_guard
from leadscore.training.models import make_lightgbm, make_logistic, make_stacked
from leadscore.training.spec import calibration_of, scoring_spec
from leadscore.training.tiers import assign_tiers, fit_tiers, tier_thresholds
from leadscore.training.windows import recency_weights
from mlflow import MlflowClient

log = logging.getLogger(__name__)

HIGHER_IS_BETTER = {"roc_auc": True, "pr_auc": True, "brier": False, "log_loss": False, "ece": False}
SHAP_ROWS = 2000  # test rows behind each SHAP summary plot
PARTS = ("train", "validation", "test")
STACKED = "stacked"  # the candidate whose raw score adds each row's own log-odds (Experiment.offset)


@dataclass(frozen=True)
class Experiment:
    """What to train on and how to log it. The split's frames hold the features, `label`,
    `event_timestamp` and the `entity` id column."""

    name: str  # MLflow experiment
    registered_model: str
    split: Split
    features: FeatureSet
    rules: RuleSet | None  # rule baseline points; None: no baseline
    tiers: TierTable  # config/tiers.yaml
    entity: str
    horizon_days: int | None = None  # the label's horizon, for the spec
    feature_service: str | None = None
    about: dict[str, str] = field(default_factory=dict)  # more on the data (target, table), for the spec
    half_life_days: float | None = None  # recency weights of the training rows (training/windows.py)
    tags: dict[str, str] = field(default_factory=dict)
    config_files: list[Path] = field(default_factory=list)
    # feature column -> the column of the time it was recorded at: the leakage guard excludes a
    # column recorded after the row's time (`event_timestamp`), when the prediction is made
    recorded_at: dict[str, str] = field(default_factory=dict)
    # the features whose points make the score's fit axis (the rest make interest), for tiers
    # on the axes (leadscore.scoring.parts); empty: no axes, tiers read the rule shares
    fit_features: frozenset[str] = frozenset()
    # the split's column of each row's start (a chance: its people's, for an account) and what
    # the stacked candidate's spec tells of it (its `reference` is set from the fitted model);
    # None: no stacked candidate
    offset: Offset | None = None


@dataclass(frozen=True)
class Inputs:
    """The model inputs after the leakage guard: what every candidate trains on."""

    guard: LeakageReport
    excluded: set[str]
    features: FeatureSet
    rules: RuleSet | None
    X: dict[str, pd.DataFrame]  # train, validation, test
    y: dict[str, np.ndarray]
    weights: np.ndarray  # the training rows' sample weights
    offset: Offset | None = None  # the stacked candidate's start: its column in `starts`
    starts: dict[str, np.ndarray] = field(default_factory=dict)  # per part, the offset column's values


@dataclass(frozen=True)
class Candidate:
    """One fitted, calibrated and evaluated candidate."""

    name: str
    fitted: BaseEstimator
    calibrated: CalibratedClassifierCV
    probability: np.ndarray  # on the test window
    metrics: dict[str, float]  # on the test window
    validation_metrics: dict[str, float]
    spec: ScoringSpec
    by_tier: pd.DataFrame  # conversion by tier on the test window


@dataclass(frozen=True)
class Outcome:
    table: pd.DataFrame  # the comparison, one row per candidate
    results: dict[str, dict[str, float]]
    leakage: LeakageReport
    best: str
    version: str
    alias: str
    y_test: np.ndarray  # the test window's labels and each candidate's probabilities, for plots
    probabilities: dict[str, np.ndarray]
    validation_results: dict[str, dict[str, float]] = field(default_factory=dict)  # what `best` was chosen on


# ---- pure steps ------------------------------------------------------------------------------


def usable_rules(rules: RuleSet, excluded: set[str]) -> RuleSet:
    """The rule baseline without rules on columns the leakage guard excluded."""
    dropped = sorted({rule.feature for rule in rules.all if rule.feature in excluded})
    if dropped:
        log.warning("rule baseline: rules on excluded columns dropped: %s", dropped)
    return rules.without_features(excluded)


def guarded_inputs(experiment: Experiment, settings: Settings) -> Inputs:
    """Leakage guard on the training window, then the model inputs of every part without the
    columns it excluded (and without rules on them)."""
    split = experiment.split
    y = {part: getattr(split, part)["label"].to_numpy() for part in PARTS}
    recorded = {column: split.train[when] for column, when in experiment.recorded_at.items()
                if column in experiment.features.all}
    guard = leakage_guard(prepare(split.train, experiment.features), y["train"],
                          max_auc=settings.training.leakage_max_auc, recorded_at=recorded or None,
                          label_time=split.train["event_timestamp"] if recorded else None)
    for flag in guard.excluded:
        log.warning("leakage guard excluded %s: %s", flag.column, flag.reason)
    near = near_misses(guard)
    if near:
        log.info("leakage guard kept, closest to the limit of %s (single-feature AUC, where filled in "
                 "if higher): %s", settings.training.leakage_max_auc,
                 ", ".join(f"{column} {auc:.3f}" for column, auc in near))
    excluded = {flag.column for flag in guard.excluded}
    features = experiment.features.without(excluded)
    rules = usable_rules(experiment.rules, excluded) if experiment.rules is not None else None
    X = {part: prepare(getattr(split, part), features) for part in PARTS}
    if rules is not None:
        RuleBaseline.from_rules(rules).fit(X["train"].head(1))  # fails early on an unknown feature
    weights = recency_weights(split.train["event_timestamp"], experiment.half_life_days)
    offset = experiment.offset
    starts = {} if offset is None else {part: getattr(split, part)[offset.column].to_numpy(dtype=float)
                                        for part in PARTS}
    return Inputs(guard, excluded, features, rules, X, y, weights, offset, starts)


def candidate_inputs(name: str, inputs: Inputs) -> dict[str, pd.DataFrame]:
    """A candidate's model inputs per part: the stacked one's carry the offset column too."""
    if name != STACKED or inputs.offset is None:
        return inputs.X
    return {part: X.assign(**{inputs.offset.column: inputs.starts[part]}) for part, X in inputs.X.items()}


def near_misses(guard: LeakageReport, top: int = 5) -> list[tuple[str, float]]:
    """The kept columns that come closest to being the label (their highest single-feature
    AUC, over all rows or where filled in): what a user checks for a column that leaks but
    stayed under the limit."""
    highest = {}
    for column in guard.kept:
        measured = [auc for auc in (guard.aucs.get(column), guard.aucs_where_filled.get(column))
                    if auc is not None and auc == auc]  # not NaN (a constant column)
        if measured:
            highest[column] = max(measured)
    return sorted(highest.items(), key=lambda item: -item[1])[:top]


def candidates(rules: RuleSet | None, features: FeatureSet, lightgbm_params: dict | None = None,
               offset: Offset | None = None) -> dict[str, BaseEstimator]:
    models: dict[str, BaseEstimator] = {}
    if rules is not None:
        models["rule_baseline"] = RuleBaseline.from_rules(rules)
    models["logistic_regression"] = make_logistic(features.numeric, features.categorical)
    models["lightgbm"] = make_lightgbm(features.categorical, lightgbm_params)
    if offset is not None:
        models[STACKED] = make_stacked(features.categorical, offset.column, offset.edge, lightgbm_params)
    return models


def fit_model(model: BaseEstimator, X_train: pd.DataFrame, y_train: np.ndarray,
              X_val: pd.DataFrame | None = None, y_val: np.ndarray | None = None,
              sample_weight: np.ndarray | None = None) -> BaseEstimator:
    """Fit, with the rows' sample weights when given (the rule baseline has none to learn);
    LightGBM stops early on the validation window when there is one."""
    if isinstance(model, TreesPlusOffset):
        stopping: dict[str, Any] = {} if X_val is None else {
            "eval_set": (X_val, y_val), "callbacks": [early_stopping(100, verbose=False)]}
        return model.fit(X_train, y_train, sample_weight=sample_weight, **stopping)
    if isinstance(model, Pipeline) and isinstance(model[-1], LGBMClassifier):
        prep = model[:-1].fit(X_train, y_train)
        stopping = {} if X_val is None else {"eval_X": prep.transform(X_val), "eval_y": y_val,
                                             "callbacks": [early_stopping(100, verbose=False)]}
        model[-1].fit(prep.transform(X_train), y_train, sample_weight=sample_weight, **stopping)
        return model
    if isinstance(model, Pipeline) and sample_weight is not None:
        return model.fit(X_train, y_train, **{f"{model.steps[-1][0]}__sample_weight": sample_weight})
    return model.fit(X_train, y_train)


def calibrate(model: BaseEstimator, X_val: pd.DataFrame, y_val: np.ndarray,
              sample_weight: np.ndarray | None = None) -> CalibratedClassifierCV:
    """Sigmoid calibration on the validation window: monotone, so ranking and reasons stay."""
    return CalibratedClassifierCV(FrozenEstimator(model), method="sigmoid").fit(
        X_val, y_val, sample_weight=sample_weight)


def calibrate_out_of_sample(model: BaseEstimator, held_out: BaseEstimator, X_cal: pd.DataFrame,
                            y_cal: np.ndarray, sample_weight: np.ndarray | None = None
                            ) -> CalibratedClassifierCV:
    """`model` with the sigmoid calibration fitted on `held_out`'s predictions over `X_cal`:
    `held_out` is the same learner fit without those rows, `model` fit with them (whose own
    predictions there are in sample, too confident to calibrate on). What
    `CalibratedClassifierCV(ensemble=False)` does with cross-validated predictions, for one
    time-ordered split it cannot express."""
    calibrated = calibrate(held_out, X_cal, y_cal, sample_weight)
    calibrated.estimator = FrozenEstimator(model)
    calibrated.calibrated_classifiers_[0].estimator = calibrated.estimator
    return calibrated


def axes_of(model: BaseEstimator, X: pd.DataFrame, fit_features: frozenset[str], score: ScoreSettings
            ) -> Axes | None:
    """The score's fit and interest axes per row of X, as serving computes them: for a calibrated
    LightGBM model with fit features named, else None."""
    calibration = calibration_of(model)
    contrib = tree_contributions(model, X) if fit_features and calibration is not None else None
    if contrib is None or calibration is None:
        return None
    is_fit = np.array([column in fit_features for column in X.columns], dtype=float)
    return score_axes(contrib[0], contrib[1], is_fit, calibration, score)


def parts_frame(model: BaseEstimator, X: pd.DataFrame, rules: RuleSet | None, score: ScoreSettings,
                fit_features: frozenset[str] = frozenset()) -> pd.DataFrame:
    """score, fit, interest, fit_score, interest_score and completeness per row of X from the
    calibrated `model` (as serving computes them)."""
    probability = model.predict_proba(X)[:, 1]
    axes = axes_of(model, X, fit_features, score)
    return pd.DataFrame(score_parts(probability, X, rules, score, axes), index=X.index)


def window_label(frame: pd.DataFrame) -> str:
    times = frame["event_timestamp"]
    return f"{times.min():%Y-%m-%d}..{times.max():%Y-%m-%d}"


def _window_metrics(y: np.ndarray, p: np.ndarray, rows: pd.DataFrame, entity: str,
                    settings: Settings) -> dict[str, float]:
    return metrics(y, p, times=rows["event_timestamp"],
                   per_month=settings.training.sales_capacity_per_month, entities=rows[entity])


def train_candidate(name: str, model: BaseEstimator, inputs: Inputs, experiment: Experiment,
                    settings: Settings) -> Candidate:
    """Fit, calibrate, fit the tiers on the validation window, evaluate on the validation and
    test windows."""
    X, y, split = candidate_inputs(name, inputs), inputs.y, experiment.split
    fitted = fit_model(model, X["train"], y["train"], X["validation"], y["validation"], inputs.weights)
    calibrated = calibrate(fitted, X["validation"], y["validation"])
    probability = calibrated.predict_proba(X["test"])[:, 1]
    validation_probability = calibrated.predict_proba(X["validation"])[:, 1]
    tiers = fit_tiers(experiment.tiers, parts_frame(calibrated, X["validation"], inputs.rules, settings.score,
                                                    experiment.fit_features))
    test_tiers = assign_tiers(parts_frame(calibrated, X["test"], inputs.rules, settings.score,
                                          experiment.fit_features), tiers)
    spec = scoring_spec(name, calibrated, inputs.features, inputs.rules, tiers, settings.score,
                        horizon_days=experiment.horizon_days, feature_service=experiment.feature_service,
                        test_window=window_label(experiment.split.test),
                        excluded_by_leakage_guard=sorted(inputs.excluded), extra=experiment.about,
                        offset=offset_of(calibrated, inputs.offset))
    figures = _window_metrics(y["test"], probability, split.test, experiment.entity, settings)
    validation_figures = _window_metrics(y["validation"], validation_probability, split.validation,
                                         experiment.entity, settings)
    return Candidate(name, fitted, calibrated, probability, figures, validation_figures, spec,
                     conversion_by_tier(y["test"], test_tiers, tiers.best_first))


def offset_of(model: BaseEstimator, offset: Offset | None) -> Offset | None:
    """What a stacked model's spec tells of its start (with the fitted average row's); None for
    any other model."""
    inner = base_model(model)
    if offset is None or not isinstance(inner, TreesPlusOffset):
        return None
    return offset.model_copy(update={"reference": inner.offset_reference_})


def best_candidate(results: dict[str, dict[str, float]], metric: str) -> str:
    if metric not in HIGHER_IS_BETTER:
        raise ValueError(f"primary_metric {metric!r} is not one of {sorted(HIGHER_IS_BETTER)}")
    sign = 1 if HIGHER_IS_BETTER[metric] else -1
    return max(results, key=lambda name: sign * results[name][metric])


def chosen_candidate(results: dict[str, dict[str, float]], metric: str, preferred: str | None = None,
                     margin: float = 0.0) -> str:
    """The best candidate by `metric`, or `preferred` when the best beats it by `margin` or less."""
    best = best_candidate(results, metric)
    if preferred not in results:
        return best
    sign = 1 if HIGHER_IS_BETTER[metric] else -1
    return preferred if sign * (results[best][metric] - results[preferred][metric]) <= margin else best


def champion_figures(settings: Settings, registered_model: str, test: pd.DataFrame, entity: str
                     ) -> dict[str, float] | None:
    """The current champion's metrics on this test window; None without a champion. A
    champion that cannot be read, or cannot read today's columns, gets figures that anything
    beats."""
    beaten = {"roc_auc": -np.inf, "pr_auc": -np.inf, "brier": np.inf, "log_loss": np.inf, "ece": np.inf}
    try:
        model, spec, version = load_champion(settings, registered_model)
    except MissingSpec as error:
        log.warning("%s; it will be replaced", error)
        return beaten
    except LookupError:
        return None
    needed = {*spec.features.all, *([spec.offset.column] if spec.offset else [])}
    if not needed <= set(test.columns):
        log.warning("champion v%s reads columns that no longer exist; it will be replaced", version)
        return beaten
    probability = model.predict_proba(prepare_for(test, spec))[:, 1]
    return _window_metrics(test["label"].to_numpy(), probability, test, entity, settings)


# ---- the driver: MLflow logging and registration ----------------------------------------------


def _log_plots(figures: dict) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        plots.save_figures(figures, Path(tmp))
        mlflow.log_artifacts(tmp, artifact_path="plots")


def _log_table(frame: pd.DataFrame, name: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        frame.to_csv(path, index=False)
        mlflow.log_artifact(str(path))


def _log_candidate(candidate: Candidate, inputs: Inputs, experiment: Experiment, tags: dict) -> str:
    """The candidate's child run: tier thresholds, conversion by tier, SHAP summary, the model
    and its spec. Returns the model URI."""
    test = candidate_inputs(candidate.name, inputs)["test"]
    with mlflow.start_run(run_name=candidate.name, nested=True):
        thresholds = tier_thresholds(candidate.spec.tiers)
        mlflow.log_params({f"tier.{key}": value for key, value in thresholds.items()})
        _log_table(candidate.by_tier, "conversion_by_tier.csv")
        sample = test.sample(min(SHAP_ROWS, len(test)), random_state=0)
        _log_plots({"shap_summary": plots.shap_summary(contributions(candidate.calibrated, sample), sample),
                    "conversion_by_tier": plots.conversion_by_tier_chart(candidate.by_tier)})
        params = {"model": candidate.name, "train_rows": len(inputs.X["train"]),
                  "features": len(inputs.features.all),
                  **candidate.spec.shape.model_dump(exclude_none=True)}
        return register.log_candidate(candidate.name, candidate.calibrated, params, candidate.metrics,
                                      test.head(5), candidate.spec, experiment.config_files, tags)


@dataclass(frozen=True)
class Comparison:
    """Every candidate trained, evaluated and logged (each with its model, in its child run)."""

    client: MlflowClient
    inputs: Inputs
    trained: dict[str, Candidate]
    uris: dict[str, str]  # each candidate's logged model
    table: pd.DataFrame  # test-window figures, one row per candidate

    @property
    def results(self) -> dict[str, dict[str, float]]:
        return {name: candidate.metrics for name, candidate in self.trained.items()}

    @property
    def probabilities(self) -> dict[str, np.ndarray]:
        return {name: candidate.probability for name, candidate in self.trained.items()}

    def chosen(self, training: TrainingSettings) -> str:
        """The candidate chosen on the validation window (the test window stays the untouched
        measure of the one chosen: choosing on it would flatter the figures it reports): the
        best there by the primary metric, unless it beats the preferred model by no more than
        the selection margin."""
        validation = {name: c.validation_metrics for name, c in self.trained.items()}
        return chosen_candidate(validation, training.primary_metric, training.preferred_model,
                                training.selection_margin)


def run_experiment(experiment: Experiment, settings: Settings) -> Outcome:
    """Train, evaluate and log every candidate; register the best; promote or not."""
    return _register_best(experiment, settings, compare_candidates(experiment, settings))


def compare_candidates(experiment: Experiment, settings: Settings) -> Comparison:
    """Train, evaluate and log every candidate in one parent run."""
    inputs = guarded_inputs(experiment, settings)
    client = register.setup_tracking(settings, experiment.name)
    test_window = window_label(experiment.split.test)
    tags = {**experiment.tags, "test_window": test_window}
    trained: dict[str, Candidate] = {}
    uris: dict[str, str] = {}
    with mlflow.start_run(run_name=f"train {test_window}") as parent:
        mlflow.set_tags({**tags, "kind": "comparison"})
        mlflow.log_params({**{f"{part}_rows": len(inputs.X[part]) for part in PARTS},
                           "features": len(inputs.features.all),
                           "excluded_by_leakage_guard": ",".join(sorted(inputs.excluded)) or "none"})
        _log_table(inputs.guard.table(), "leakage_guard.csv")
        for name, model in candidates(inputs.rules, inputs.features, settings.training.lightgbm,
                                      inputs.offset).items():
            trained[name] = candidate = train_candidate(name, model, inputs, experiment, settings)
            uris[name] = _log_candidate(candidate, inputs, experiment, tags)
            log.info("%s: %s", name, {k: round(v, 4) for k, v in candidate.metrics.items()})
        probabilities = {name: candidate.probability for name, candidate in trained.items()}
        y_test = inputs.y["test"]
        mlflow.log_metrics({f"{name}.validation_{key}": value for name, candidate in trained.items()
                            for key, value in candidate.validation_metrics.items()})
        _log_plots({"roc": plots.roc_curves(y_test, probabilities),
                    "precision_recall": plots.pr_curves(y_test, probabilities),
                    "calibration": plots.calibration_curves(y_test, probabilities),
                    "cumulative_gains": plots.cumulative_gains(y_test, probabilities)})
        results = {name: candidate.metrics for name, candidate in trained.items()}
        table = comparison_table(results)
        _log_table(table.reset_index(names="model"), "comparison.csv")
        log.info("MLflow parent run %s", parent.info.run_id)
    return Comparison(client, inputs, trained, uris, table)


def _register_best(experiment: Experiment, settings: Settings, comparison: Comparison) -> Outcome:
    metric, results = settings.training.primary_metric, comparison.results
    best = comparison.chosen(settings.training)
    version, alias = register.register_and_promote(
        comparison.client, comparison.uris[best], experiment.registered_model, metric, results[best],
        champion_figures(settings, experiment.registered_model, experiment.split.test, experiment.entity),
        HIGHER_IS_BETTER[metric], settings.training.ece_tolerance, window_label(experiment.split.test))
    table = comparison.table.assign(registered=[f"v{version} ({alias})" if n == best else ""
                                                for n in comparison.table.index])
    inputs = comparison.inputs
    return Outcome(table, results, inputs.guard, best, version, alias, inputs.y["test"],
                   comparison.probabilities,
                   {name: candidate.validation_metrics for name, candidate in comparison.trained.items()})
