"""Rolling retraining: the candidates trained again up to the clock, the one chosen on the
validation window refit on every labelled snapshot, and registered as `challenger`.

Up to the clock: snapshots whose label horizon has passed by `until` (and, for the refit, those
observed `partial_labels_min_days` of it, labelled by what is known so far), inside the training
window, labelled by the batch's outcomes and the CRM's (handed in by the caller: training may
not import the live path), recency-weighted (training/windows.py, `training.retrain`). The
candidates are trained, compared and logged as `leadscore train` does them
(training/experiment.py); the one chosen on the validation window as there is kept (the test
window stays the honest comparison in MLflow). It is then refit, with as many trees as early stopping
found, on every labelled snapshot up to the cutoff, and calibrated out of sample on the most
recent matured snapshots (training/windows.py), where its tier thresholds are fitted too; it is
registered with the alias `challenger` and tagged with its lineage (the retraining policy it
comes from: every weekly retrain of one policy continues one lineage, whose shadow scores
promotion pools, monitoring/promotion.py): the champion serves until the challenger is
promoted on live evidence.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from datetime import datetime

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

import mlflow
from leadscore.config import Settings
from leadscore.scoring.prepare import prepare
from leadscore.scoring.registry import CHALLENGER
from leadscore.scoring.spec import ScoringSpec
from leadscore.training import register
from leadscore.training.experiment import (
    Candidate,
    Comparison,
    Experiment,
    calibrate_out_of_sample,
    candidates,
    compare_candidates,
    fit_model,
    parts_frame,
    window_label,
)
from leadscore.training.leakage import LeakageReport
from leadscore.training.spec import model_shape, scoring_spec
from leadscore.training.tiers import fit_tiers
from leadscore.training.train import ScoringConfig, lead_experiment, scoring_config, training_frame
from leadscore.training.windows import (
    RefitSplit,
    calibration_until,
    matured,
    observed_weights,
    recency_weights,
    refit_split,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Refit:
    """The chosen candidate refit on every labelled snapshot, calibrated out of sample."""

    model: BaseEstimator  # calibrated
    spec: ScoringSpec
    split: RefitSplit


@dataclass(frozen=True)
class Retrained:
    table: pd.DataFrame  # the candidates' validation and test figures, the chosen one marked
    leakage: LeakageReport
    chosen: str
    version: str
    fit_window: str
    calibration_window: str


def same_size(fitted: BaseEstimator) -> dict:
    """LightGBM's tree count as early stopping left it, for a refit without a validation window."""
    model = fitted[-1] if hasattr(fitted, "steps") else fitted
    trees = getattr(model, "best_iteration_", None)
    return {"n_estimators": trees} if trees else {}


def row_weights(rows: pd.DataFrame, known_at: datetime, settings: Settings) -> np.ndarray:
    """Recency (training.retrain.half_life_days) times the share of a negative's horizon
    observed by `known_at` (1 for every matured snapshot): training/windows.py."""
    times = rows["event_timestamp"]
    return (recency_weights(times, settings.training.retrain.half_life_days)
            * observed_weights(times, rows["label"], known_at, settings.training.horizon_days))


def fit_chosen(candidate: Candidate, comparison: Comparison, rows: pd.DataFrame,
               known_at: datetime, settings: Settings) -> BaseEstimator:
    """The chosen candidate's learner (as many trees as early stopping found) fit on `rows`,
    weighted by `row_weights`."""
    inputs = comparison.inputs
    params = {**settings.training.lightgbm, **same_size(candidate.fitted)}
    model = candidates(inputs.rules, inputs.features, params)[candidate.name]
    return fit_model(model, prepare(rows, inputs.features), rows["label"].to_numpy(),
                     sample_weight=row_weights(rows, known_at, settings))


def refit_chosen(candidate: Candidate, comparison: Comparison, frame: pd.DataFrame,
                 experiment: Experiment, known_at: datetime, settings: Settings) -> Refit:
    """Refit the chosen candidate on every labelled snapshot (labels as known at `known_at`);
    calibrate it on the calibration window out of sample (a fit on the snapshots before it)
    and fit its tiers there."""
    inputs, retrain = comparison.inputs, settings.training.retrain
    split = refit_split(frame, retrain.calibration_snapshots, retrain.calibration_purge_days,
                        calibration_until(known_at, retrain, settings.training.horizon_days))
    X_cal = prepare(split.calibration, inputs.features)
    refit = fit_chosen(candidate, comparison, split.fit, known_at, settings)
    held_out = fit_chosen(candidate, comparison, split.before_calibration, known_at, settings)
    calibrated = calibrate_out_of_sample(refit, held_out, X_cal, split.calibration["label"].to_numpy(),
                                         row_weights(split.calibration, known_at, settings))
    tiers = fit_tiers(experiment.tiers, parts_frame(calibrated, X_cal, inputs.rules, settings.score,
                                                    experiment.fit_features))
    spec = scoring_spec(candidate.name, calibrated, inputs.features, inputs.rules, tiers, settings.score,
                        horizon_days=experiment.horizon_days, feature_service=experiment.feature_service,
                        test_window=window_label(experiment.split.test),
                        excluded_by_leakage_guard=sorted(inputs.excluded),
                        extra={**experiment.about, "retrained": "true", "fit_window": window_label(split.fit),
                               "calibration_window": window_label(split.calibration),
                               "calibration_fit_window": window_label(split.before_calibration)})
    return Refit(calibrated, spec, split)


def lineage_of(settings: Settings, experiment: Experiment) -> str:
    """The retraining policy a version comes from, as a short fingerprint: what it learns from
    (features, target, horizon), how (LightGBM's parameters, the windows and weights). Two
    retrains with one lineage differ only in the data the clock let in."""
    policy = {"retrain": settings.training.retrain.model_dump(), "lightgbm": settings.training.lightgbm,
              "target": settings.training.target, "horizon_days": experiment.horizon_days,
              "feature_service": experiment.feature_service, "features": asdict(experiment.features)}
    digest = hashlib.sha256(json.dumps(policy, sort_keys=True, default=str).encode()).hexdigest()
    return f"retrain-{digest[:12]}"


def register_challenger(refit: Refit, candidate: Candidate, comparison: Comparison,
                        experiment: Experiment, settings: Settings) -> str:
    """Log the refit model with the chosen candidate's figures (its validation and test windows,
    before the refit) and register it as `challenger`, tagged with its lineage."""
    metric, lineage = settings.training.primary_metric, lineage_of(settings, experiment)
    figures = {**candidate.metrics, **{f"validation_{k}": v for k, v in candidate.validation_metrics.items()}}
    tags = {**experiment.tags, "kind": "retrain", "chosen_on": f"validation {metric}", "lineage": lineage,
            **{key: refit.spec.extra[key] for key in ("fit_window", "calibration_window",
                                                      "calibration_fit_window")}}
    params = {"model": candidate.name, "fit_rows": len(refit.split.fit),
              "calibration_rows": len(refit.split.calibration), "features": len(refit.spec.features.all),
              **settings.training.retrain.model_dump(),
              **model_shape(refit.model).model_dump(exclude_none=True)}
    with mlflow.start_run(run_name=f"retrain {candidate.name} {refit.spec.extra['fit_window']}"):
        uri = register.log_candidate(candidate.name, refit.model, params, figures,
                                     comparison.inputs.X["test"].head(5), refit.spec,
                                     experiment.config_files, tags)
    version = register.register_version(comparison.client, uri, experiment.registered_model, metric,
                                        candidate.metrics, window_label(experiment.split.test))
    # its figures are the candidate's before the refit, whose rows include the test window: not
    # offline evidence of this version (`leadscore promote` waits for live evidence)
    comparison.client.set_model_version_tag(experiment.registered_model, version, "refit", "true")
    comparison.client.set_model_version_tag(experiment.registered_model, version, "lineage", lineage)
    comparison.client.set_registered_model_alias(experiment.registered_model, CHALLENGER, version)
    log.info("%s version %s (%s, refit) is now %s", experiment.registered_model, version,
             candidate.name, CHALLENGER)
    return version


def _figures_table(comparison: Comparison, chosen: str, version: str, metric: str) -> pd.DataFrame:
    validation = pd.Series({name: round(c.validation_metrics[metric], 4)
                            for name, c in comparison.trained.items()}, name=f"validation {metric}")
    table = comparison.table.join(validation)
    return table.assign(registered=[f"v{version} (refit, {CHALLENGER})" if name == chosen else ""
                                    for name in table.index])


def retrain(settings: Settings, store, manifest: dict, until: datetime,
            live_outcomes: pd.DataFrame | None = None, config: ScoringConfig | None = None) -> Retrained:
    """Train the candidates on the snapshots matured by `until`, choose one on validation,
    refit it and register it as `challenger`."""
    config = config or scoring_config(settings)
    retrain_settings = settings.training.retrain
    frame = training_frame(settings, store, manifest, until, live_outcomes, retrain_settings)
    experiment = lead_experiment(settings, matured(frame, until, settings.training.horizon_days), config,
                                 retrain_settings.half_life_days)
    comparison = compare_candidates(experiment, settings)
    metric = settings.training.primary_metric
    chosen = comparison.chosen(settings.training)
    refit = refit_chosen(comparison.trained[chosen], comparison, frame, experiment, until, settings)
    version = register_challenger(refit, comparison.trained[chosen], comparison, experiment, settings)
    return Retrained(_figures_table(comparison, chosen, version, metric), comparison.inputs.guard, chosen,
                     version, refit.spec.extra["fit_window"], refit.spec.extra["calibration_window"])
