"""Rolling retraining: the candidates trained again up to the clock, the one chosen on the
validation window refit on every labelled snapshot, and registered as `challenger`.

Up to the clock: snapshots whose label horizon has passed by `until`, inside the training
window, labelled by the batch's outcomes and the CRM's (handed in by the caller: training may
not import the live path), recency-weighted (training/windows.py, `training.retrain`). The
candidates are trained, compared and logged as `leadscore train` does them
(training/experiment.py); the one with the best validation figure is chosen (the test window
stays the honest comparison in MLflow). It is then refit, with as many trees as early stopping
found, on every snapshot up to a horizon before the calibration window (the most recent matured
snapshots), where its calibration and tier thresholds are fitted, and registered with the
alias `challenger`: the champion serves until the challenger is promoted on live evidence.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

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
    best_candidate,
    calibrate,
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
from leadscore.training.windows import RefitSplit, recency_weights, refit_split

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Refit:
    """The chosen candidate refit on everything before the calibration window."""

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


def refit_chosen(candidate: Candidate, comparison: Comparison, frame: pd.DataFrame,
                 experiment: Experiment, settings: Settings) -> Refit:
    """Refit the chosen candidate (recency-weighted) on every snapshot a horizon before the
    calibration window; calibrate it and fit its tiers on that window."""
    inputs, retrain = comparison.inputs, settings.training.retrain
    split = refit_split(frame, retrain.calibration_snapshots, settings.training.horizon_days)
    X_fit, X_cal = prepare(split.fit, inputs.features), prepare(split.calibration, inputs.features)
    params = {**settings.training.lightgbm, **same_size(candidate.fitted)}
    model = candidates(inputs.rules, inputs.features, params)[candidate.name]
    fitted = fit_model(model, X_fit, split.fit["label"].to_numpy(),
                       sample_weight=recency_weights(split.fit["event_timestamp"], retrain.half_life_days))
    calibrated = calibrate(fitted, X_cal, split.calibration["label"].to_numpy())
    tiers = fit_tiers(experiment.tiers, parts_frame(calibrated.predict_proba(X_cal)[:, 1], X_cal,
                                                    inputs.rules, settings.score))
    spec = scoring_spec(candidate.name, calibrated, inputs.features, inputs.rules, tiers, settings.score,
                        horizon_days=experiment.horizon_days, feature_service=experiment.feature_service,
                        test_window=window_label(experiment.split.test),
                        excluded_by_leakage_guard=sorted(inputs.excluded),
                        extra={**experiment.about, "retrained": "true", "fit_window": window_label(split.fit),
                               "calibration_window": window_label(split.calibration)})
    return Refit(calibrated, spec, split)


def register_challenger(refit: Refit, candidate: Candidate, comparison: Comparison,
                        experiment: Experiment, settings: Settings) -> str:
    """Log the refit model with the chosen candidate's figures (its validation and test windows,
    before the refit) and register it as `challenger`."""
    metric = settings.training.primary_metric
    figures = {**candidate.metrics, **{f"validation_{k}": v for k, v in candidate.validation_metrics.items()}}
    tags = {**experiment.tags, "kind": "retrain", "chosen_on": f"validation {metric}",
            **{key: refit.spec.extra[key] for key in ("fit_window", "calibration_window")}}
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
    experiment = lead_experiment(settings, frame, config, retrain_settings.half_life_days)
    comparison = compare_candidates(experiment, settings)
    metric = settings.training.primary_metric
    chosen = best_candidate({n: c.validation_metrics for n, c in comparison.trained.items()}, metric)
    refit = refit_chosen(comparison.trained[chosen], comparison, frame, experiment, settings)
    version = register_challenger(refit, comparison.trained[chosen], comparison, experiment, settings)
    return Retrained(_figures_table(comparison, chosen, version, metric), comparison.inputs.guard, chosen,
                     version, refit.spec.extra["fit_window"], refit.spec.extra["calibration_window"])
