"""One training experiment, the same for the Feast training set and for any flat table.

leakage guard on the training window -> fit each candidate (rule baseline, logistic
regression, LightGBM) -> calibrate on the validation window -> fit the tier
thresholds on the validation window -> evaluate on the test window (metrics, tiers,
plots) -> one MLflow parent run with a child run per candidate -> register the best
-> promote it if it beats the champion re-scored on the same test window.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier, early_stopping
from sklearn.base import BaseEstimator
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline

import mlflow
from leadscore.config import ScoreSettings, Settings
from leadscore.training import plots, register
from leadscore.training.baseline import RuleBaseline
from leadscore.training.dataset import Split
from leadscore.training.evaluate import comparison_table, conversion_by_tier, metrics
from leadscore.training.explain import contributions
from leadscore.training.leakage import LeakageReport, leakage_guard
from leadscore.training.models import make_lightgbm, make_logistic
from leadscore.training.tiers import (
    TIER_ORDER,
    assign_tiers,
    fit_tiers,
    probability_to_score,
    tier_thresholds,
)

log = logging.getLogger(__name__)

HIGHER_IS_BETTER = {"roc_auc": True, "pr_auc": True, "brier": False, "log_loss": False, "ece": False}
SHAP_ROWS = 2000  # test rows behind each SHAP summary plot


@dataclass(frozen=True)
class FeatureSet:
    numeric: list[str]
    categorical: list[str]
    zero_when_missing: list[str] = field(default_factory=list)  # counts: no row means none happened

    @property
    def all(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    def without(self, columns: set[str]) -> FeatureSet:
        return FeatureSet([c for c in self.numeric if c not in columns],
                          [c for c in self.categorical if c not in columns],
                          [c for c in self.zero_when_missing if c not in columns])


@dataclass(frozen=True)
class Experiment:
    """What to train on and how to log it. The split's frames hold the features, `label`,
    `event_timestamp` and the `entity` id column."""

    name: str  # MLflow experiment
    registered_model: str
    split: Split
    features: FeatureSet
    rules: dict | None  # rule baseline points (fit, interest, mql_threshold); None: no baseline
    tiers: dict  # tiers.yaml
    entity: str
    metadata: dict = field(default_factory=dict)  # more scoring metadata (feature service, horizon)
    tags: dict[str, str] = field(default_factory=dict)
    config_files: list[Path] = field(default_factory=list)


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


def prepare(frame: pd.DataFrame, features: FeatureSet) -> pd.DataFrame:
    """The model input: numerics as floats (missing = NaN, counts missing = 0),
    categoricals as objects (missing = None)."""
    out = pd.DataFrame(index=frame.index)
    for column in features.numeric:
        out[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
        if column in features.zero_when_missing:
            out[column] = out[column].fillna(0.0)
    for column in features.categorical:
        out[column] = frame[column].astype("object").where(frame[column].notna(), None)
    return out


def usable_rules(rules: dict, excluded: set[str]) -> dict:
    """The rule baseline without rules on columns the leakage guard excluded."""
    dropped = [r["feature"] for part in ("fit", "interest") for r in rules.get(part, [])
               if r["feature"] in excluded]
    if dropped:
        log.warning("rule baseline: rules on excluded columns dropped: %s", sorted(set(dropped)))
    return {**rules, **{part: [r for r in rules.get(part, []) if r["feature"] not in excluded]
                        for part in ("fit", "interest")}}


def candidates(rules: dict | None, features: FeatureSet, lightgbm_params: dict | None = None
               ) -> dict[str, BaseEstimator]:
    models: dict[str, BaseEstimator] = {}
    if rules is not None:
        models["rule_baseline"] = RuleBaseline(rules["fit"], rules["interest"], rules["mql_threshold"])
    models["logistic_regression"] = make_logistic(features.numeric, features.categorical)
    models["lightgbm"] = make_lightgbm(features.categorical, lightgbm_params)
    return models


def fit_model(model: BaseEstimator, X_train: pd.DataFrame, y_train: np.ndarray,
              X_val: pd.DataFrame, y_val: np.ndarray) -> BaseEstimator:
    """Fit; LightGBM stops early on the validation window."""
    if isinstance(model, Pipeline) and isinstance(model[-1], LGBMClassifier):
        prep = model[:-1].fit(X_train, y_train)
        model[-1].fit(prep.transform(X_train), y_train, eval_X=prep.transform(X_val), eval_y=y_val,
                      callbacks=[early_stopping(100, verbose=False)])
        return model
    return model.fit(X_train, y_train)


def calibrate(model: BaseEstimator, X_val: pd.DataFrame, y_val: np.ndarray) -> CalibratedClassifierCV:
    """Sigmoid calibration on the validation window: monotone, so ranking and reasons stay."""
    return CalibratedClassifierCV(FrozenEstimator(model), method="sigmoid").fit(X_val, y_val)


def rule_points(rules: dict | None, X: pd.DataFrame) -> RuleBaseline | None:
    """The rule baseline that gives fit and interest scores, checked against X's columns
    once (None without rules)."""
    if rules is None:
        return None
    return RuleBaseline(rules["fit"], rules["interest"], rules["mql_threshold"]).fit(X.head(1))


def score_parts(probability: np.ndarray, X: pd.DataFrame, points: RuleBaseline | None,
                score: ScoreSettings) -> pd.DataFrame:
    """score, fit_score, interest_score and completeness: what tiers are assigned from, in
    training and in serving alike."""
    if points is not None:
        parts = points.fit_interest_scores(X)
    else:
        parts = pd.DataFrame({"fit_score": 0.0, "interest_score": 0.0}, index=X.index)
    completeness = (X["profile_completeness"] if "profile_completeness" in X
                    else X.notna().mean(axis=1))
    return parts.assign(score=probability_to_score(probability, score), completeness=completeness)


def _window(frame: pd.DataFrame) -> str:
    times = frame["event_timestamp"]
    return f"{times.min():%Y-%m-%d}..{times.max():%Y-%m-%d}"


def _test_metrics(y: np.ndarray, p: np.ndarray, test: pd.DataFrame, entity: str,
                  settings: Settings) -> dict[str, float]:
    return metrics(y, p, times=test["event_timestamp"],
                   per_month=settings.training.sales_capacity_per_month, entities=test[entity])


def best_candidate(results: dict[str, dict[str, float]], metric: str) -> str:
    if metric not in HIGHER_IS_BETTER:
        raise ValueError(f"primary_metric {metric!r} is not one of {sorted(HIGHER_IS_BETTER)}")
    sign = 1 if HIGHER_IS_BETTER[metric] else -1
    return max(results, key=lambda name: sign * results[name][metric])


def champion_figures(settings: Settings, registered_model: str, test: pd.DataFrame, entity: str
                     ) -> dict[str, float] | None:
    """The current champion's metrics on this test window; None without a champion. A
    champion that cannot read today's columns gets figures that anything beats."""
    try:
        model, metadata, version = register.load_champion(settings, registered_model)
    except LookupError:
        return None
    features = FeatureSet(metadata["numeric"], metadata["categorical"], metadata.get("zero_when_missing", []))
    if not set(features.all) <= set(test.columns):
        log.warning("champion v%s reads columns that no longer exist; it will be replaced", version)
        return {"roc_auc": -np.inf, "pr_auc": -np.inf, "brier": np.inf, "log_loss": np.inf, "ece": np.inf}
    probability = model.predict_proba(prepare(test, features))[:, 1]
    return _test_metrics(test["label"].to_numpy(), probability, test, entity, settings)


def _log_plots(figures: dict, tmp: Path) -> None:
    plots.save_figures(figures, tmp)
    mlflow.log_artifacts(str(tmp), artifact_path="plots")


def _log_table(frame: pd.DataFrame, name: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        frame.to_csv(path, index=False)
        mlflow.log_artifact(str(path))


def run_experiment(experiment: Experiment, settings: Settings) -> Outcome:
    """Train, evaluate and log every candidate; register the best; promote or not."""
    split = experiment.split
    y = {part: getattr(split, part)["label"].to_numpy() for part in ("train", "validation", "test")}
    guard = leakage_guard(prepare(split.train, experiment.features), y["train"],
                          max_auc=settings.training.leakage_max_auc)
    for flag in guard.excluded:
        log.warning("leakage guard excluded %s: %s", flag.column, flag.reason)
    excluded = {flag.column for flag in guard.excluded}
    features = experiment.features.without(excluded)
    rules = usable_rules(experiment.rules, excluded) if experiment.rules is not None else None
    X = {part: prepare(getattr(split, part), features) for part in ("train", "validation", "test")}
    points = rule_points(rules, X["train"])

    client = register.setup_tracking(settings, experiment.name)
    results, uris, probabilities = {}, {}, {}
    tags = {**experiment.tags, "test_window": _window(split.test)}
    with mlflow.start_run(run_name=f"train {_window(split.test)}") as parent:
        mlflow.set_tags({**tags, "kind": "comparison"})
        mlflow.log_params({"train_rows": len(X["train"]), "validation_rows": len(X["validation"]),
                           "test_rows": len(X["test"]), "features": len(features.all),
                           "excluded_by_leakage_guard": ",".join(sorted(excluded)) or "none"})
        _log_table(guard.table(), "leakage_guard.csv")
        for name, model in candidates(rules, features, settings.training.lightgbm).items():
            fitted = fit_model(model, X["train"], y["train"], X["validation"], y["validation"])
            calibrated = calibrate(fitted, X["validation"], y["validation"])
            probabilities[name] = calibrated.predict_proba(X["test"])[:, 1]
            results[name] = _test_metrics(y["test"], probabilities[name], split.test, experiment.entity,
                                          settings)
            val_parts = score_parts(calibrated.predict_proba(X["validation"])[:, 1], X["validation"],
                                    points, settings.score)
            tiers = fit_tiers(experiment.tiers, val_parts)
            test_parts = score_parts(probabilities[name], X["test"], points, settings.score)
            test_tiers = assign_tiers(test_parts, tiers)
            by_tier = conversion_by_tier(y["test"], test_tiers, TIER_ORDER)
            scoring = {"model_kind": name, "numeric": features.numeric,
                       "categorical": features.categorical, "zero_when_missing": features.zero_when_missing,
                       "rules": rules, "tiers": tiers, "score": settings.score.model_dump(),
                       "excluded_by_leakage_guard": sorted(excluded), "test_window": _window(split.test),
                       **experiment.metadata}
            with mlflow.start_run(run_name=name, nested=True):
                mlflow.log_params({f"tier.{key}": value for key, value in tier_thresholds(tiers).items()})
                _log_table(by_tier, "conversion_by_tier.csv")
                sample = X["test"].sample(min(SHAP_ROWS, len(X["test"])), random_state=0)
                with tempfile.TemporaryDirectory() as tmp:
                    _log_plots({"shap_summary": plots.shap_summary(contributions(calibrated, sample), sample),
                                "conversion_by_tier": plots.conversion_by_tier_chart(by_tier)}, Path(tmp))
                uris[name] = register.log_candidate(
                    name, calibrated, {"model": name, "train_rows": len(X["train"]),
                                       "features": len(features.all), **_model_params(fitted)},
                    results[name], X["test"].head(5), scoring, experiment.config_files, tags)
            log.info("%s: %s", name, {k: round(v, 4) for k, v in results[name].items()})
        with tempfile.TemporaryDirectory() as tmp:
            _log_plots({"roc": plots.roc_curves(y["test"], probabilities),
                        "precision_recall": plots.pr_curves(y["test"], probabilities),
                        "calibration": plots.calibration_curves(y["test"], probabilities),
                        "cumulative_gains": plots.cumulative_gains(y["test"], probabilities)}, Path(tmp))
        table = comparison_table(results)
        _log_table(table.reset_index(names="model"), "comparison.csv")
        log.info("MLflow parent run %s", parent.info.run_id)

    metric = settings.training.primary_metric
    best = best_candidate(results, metric)
    version, alias = register.register_and_promote(
        client, uris[best], experiment.registered_model, metric, results[best],
        champion_figures(settings, experiment.registered_model, split.test, experiment.entity),
        HIGHER_IS_BETTER[metric], settings.training.ece_tolerance, _window(split.test))
    table = table.assign(registered=[f"v{version} ({alias})" if n == best else "" for n in table.index])
    return Outcome(table, results, guard, best, version, alias, y["test"], probabilities)


def _model_params(model: BaseEstimator) -> dict:
    """What serving cost depends on: LightGBM's trees, leaves and depth."""
    if isinstance(model, Pipeline) and isinstance(model[-1], LGBMClassifier):
        booster = model[-1].booster_
        dump = booster.dump_model()["tree_info"]
        return {"trees": booster.num_trees(), "num_leaves": model[-1].num_leaves,
                "max_depth_seen": max((_depth(tree["tree_structure"]) for tree in dump), default=0)}
    return {}


def _depth(node: dict) -> int:
    if "left_child" not in node:
        return 0
    return 1 + max(_depth(node["left_child"]), _depth(node["right_child"]))

