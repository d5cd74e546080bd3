"""Train the three models on the same time split, compare, register the best.

rule baseline, logistic regression, LightGBM: each fitted on the training
snapshots, calibrated on the validation snapshots (sigmoid, so ranking and
explanations are unchanged), evaluated on the test snapshots, logged to MLflow.
The best by the primary metric is registered as `lead-propensity`.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier, early_stopping
from sklearn.base import BaseEstimator
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline

from leadscore.config import Settings, load_yaml
from leadscore.features.catalog import scoring_specs
from leadscore.features.store import FEATURE_SERVICE, historical_features
from leadscore.training import register
from leadscore.training.baseline import RuleBaseline
from leadscore.training.dataset import Split, labelled_entities, snapshot_times, split_by_time
from leadscore.training.evaluate import comparison_table, metrics
from leadscore.training.models import make_lightgbm, make_logistic

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeatureSet:
    numeric: list[str]
    categorical: list[str]
    zero_when_missing: list[str]  # counts: a person with no events has no interest row

    @property
    def all(self) -> list[str]:
        return [*self.numeric, *self.categorical]


def feature_set(settings: Settings) -> FeatureSet:
    specs = scoring_specs(settings)
    return FeatureSet(numeric=[s.name for s in specs if s.dtype != "string"],
                      categorical=[s.name for s in specs if s.dtype == "string"],
                      zero_when_missing=[s.name for s in specs if s.zero_when_missing])


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


def candidates(rules: dict, features: FeatureSet) -> dict[str, BaseEstimator]:
    return {
        "rule_baseline": RuleBaseline(rules["fit"], rules["interest"], rules["mql_threshold"]),
        "logistic_regression": make_logistic(features.numeric, features.categorical),
        "lightgbm": make_lightgbm(features.categorical),
    }


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
    return CalibratedClassifierCV(FrozenEstimator(model), method="sigmoid").fit(X_val, y_val)


def data_hash(frame: pd.DataFrame) -> str:
    row_hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return hashlib.sha256(row_hashes.tobytes()).hexdigest()[:16]


def training_frame(settings: Settings, store, manifest: dict) -> pd.DataFrame:
    if settings.training.snapshot_every_days % manifest["step_days"]:
        raise ValueError(f"training.snapshot_every_days ({settings.training.snapshot_every_days}) must "
                         f"be a multiple of the feature step ({manifest['step_days']} days)")
    times = snapshot_times(manifest["start"], manifest["as_of"], settings.training)
    entities = labelled_entities(settings.middle_db, times, settings.training.horizon_days)
    log.info("%d snapshots, %d rows, positive rate %.3f", len(times), len(entities),
             entities["label"].mean())
    return historical_features(store, entities)


def scoring_metadata(settings: Settings, name: str, features: FeatureSet, split: Split,
                     rules: dict) -> dict:
    """What serving needs besides the model: features, rules, tiers, the score scale."""
    return {
        "model_kind": name,
        "feature_service": FEATURE_SERVICE,
        "numeric": features.numeric,
        "categorical": features.categorical,
        "zero_when_missing": features.zero_when_missing,
        "rules": rules,
        "tiers": load_yaml(settings.config_file(settings.training.tiers_file)),
        "score": settings.score.model_dump(),
        "horizon_days": settings.training.horizon_days,
        "test_window": _window(split.test),
    }


def _window(frame: pd.DataFrame) -> str:
    times = frame["event_timestamp"]
    return f"{times.min():%Y-%m-%d}..{times.max():%Y-%m-%d}"


HIGHER_IS_BETTER = {"roc_auc": True, "pr_auc": True, "brier": False, "log_loss": False, "ece": False}


def best_candidate(results: dict[str, dict[str, float]], metric: str) -> str:
    if metric not in HIGHER_IS_BETTER:
        raise ValueError(f"primary_metric {metric!r} is not one of {sorted(HIGHER_IS_BETTER)}")
    sign = 1 if HIGHER_IS_BETTER[metric] else -1
    return max(results, key=lambda name: sign * results[name][metric])


def champion_score(settings: Settings, test: pd.DataFrame, metric: str) -> float | None:
    """The current champion's metric on this test window; None if there is no champion,
    -inf/+inf (always beaten) if it cannot read today's features."""
    try:
        model, metadata, version = register.load_champion(settings)
    except LookupError:
        return None
    features = FeatureSet(metadata["numeric"], metadata["categorical"],
                          metadata.get("zero_when_missing", []))
    if not set(features.all) <= set(test.columns):
        log.warning("champion v%s reads features that no longer exist; it will be replaced", version)
        return -np.inf if HIGHER_IS_BETTER[metric] else np.inf
    probability = model.predict_proba(prepare(test, features))[:, 1]
    return metrics(test["label"].to_numpy(), probability)[metric]


def train(settings: Settings, store, manifest: dict) -> pd.DataFrame:
    """Train, evaluate and log every candidate; register the best. Returns the comparison."""
    features = feature_set(settings)
    rules = load_yaml(settings.config_file(settings.training.rules_file))
    frame = training_frame(settings, store, manifest)
    split = split_by_time(frame, settings.training)
    X = {part: prepare(getattr(split, part), features) for part in ("train", "validation", "test")}
    y = {part: getattr(split, part)["label"].to_numpy() for part in ("train", "validation", "test")}
    client = register.setup_tracking(settings)
    config_files = [settings.config_file(f) for f in ("leadscore.yaml", "scoring_rules.yaml",
                                                        "tiers.yaml", "features.yaml")]
    tags = {"git_commit": register.git_commit(settings.root), "feature_service": FEATURE_SERVICE,
            "training_data_hash": data_hash(frame), "test_window": _window(split.test)}
    results, uris = {}, {}
    for name, model in candidates(rules, features).items():
        fitted = fit_model(model, X["train"], y["train"], X["validation"], y["validation"])
        calibrated = calibrate(fitted, X["validation"], y["validation"])
        results[name] = metrics(y["test"], calibrated.predict_proba(X["test"])[:, 1])
        uris[name] = register.log_candidate(
            name, calibrated, {"model": name, "train_rows": len(X["train"]),
                               "features": len(features.all)},
            results[name], X["test"].head(5), scoring_metadata(settings, name, features, split, rules),
            config_files, tags)
        log.info("%s: %s", name, {k: round(v, 4) for k, v in results[name].items()})
    metric = settings.training.primary_metric
    best = best_candidate(results, metric)
    version, alias = register.register_and_promote(
        client, uris[best], settings.training.registered_model, metric, results[best][metric],
        champion_score(settings, split.test, metric), HIGHER_IS_BETTER[metric], _window(split.test))
    table = comparison_table(results)
    return table.assign(registered=[f"v{version} ({alias})" if n == best else "" for n in table.index])
