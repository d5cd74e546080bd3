"""`leadscore bench training`: model quality on three datasets and training speed.

- synthetic: the lead model on the current world's Feast training set (test window);
- ceiling: on the same test window, the hidden truth's own propensity (benchmarks/ceiling.py:
  what a model that knew every buying cycle begun by each snapshot could reach);
- x_education, olist: the flat-table trainer on the real files in ../shared/datasets,
  with the columns the leakage guard excluded;
- speed: fitting and calibrating all three models on 1M snapshot rows (the synthetic
  training set resampled to 1M rows).
Runs log to a separate MLflow store under the benchmark folder, never the project's.
"""

from __future__ import annotations

import time
from pathlib import Path

from leadscore.benchmarks.ceiling import ceiling
from leadscore.config import Settings
from leadscore.features.build import read_manifest
from leadscore.features.store import open_store
from leadscore.scoring.prepare import prepare
from leadscore.training.experiment import Outcome, calibrate, candidates, fit_model, run_experiment
from leadscore.training.flat import train_table
from leadscore.training.table import load_spec
from leadscore.training.train import lead_experiment, training_frame

MODELS = {"rule_baseline": "rule", "logistic_regression": "logreg", "lightgbm": "lightgbm"}
KEYS = {"roc_auc": "roc_auc", "pr_auc": "pr_auc", "ece": "ece", "lift_at_10pct": "lift_at_10"}
GOALS = {"synthetic_pr_auc_gain_over_rule": 0.10, "synthetic_lift_at_10_ratio_over_rule": 1.5,
         "ece_max": 0.02, "x_education_roc_auc_min": 0.90, "speed_seconds_max": 180}


def per_model(outcome: Outcome) -> dict:
    figures = {MODELS[name]: {key: outcome.results[name][metric] for metric, key in KEYS.items()}
               for name in MODELS if name in outcome.results}
    return {**figures, "excluded_by_leakage_guard": [flag.column for flag in outcome.leakage.excluded]}


def speed(settings: Settings, frame, rows: int = 1_000_000) -> dict:
    """Seconds to fit and calibrate the three models on `rows` rows resampled from `frame`."""
    experiment = lead_experiment(settings, frame)
    split = experiment.split
    train = split.train.sample(rows, replace=True, random_state=0)
    X_train, X_val = prepare(train, experiment.features), prepare(split.validation, experiment.features)
    y_train, y_val = train["label"].to_numpy(), split.validation["label"].to_numpy()
    started = time.perf_counter()
    for model in candidates(experiment.rules, experiment.features, settings.training.lightgbm).values():
        calibrate(fit_model(model, X_train, y_train, X_val, y_val), X_val, y_val)
    return {"rows": rows, "features": len(experiment.features.all),
            "seconds": time.perf_counter() - started}


def run(settings: Settings, work: Path) -> dict:
    bench = settings.with_mlflow(None, work / "mlflow")  # the embedded store, even beside a server
    manifest = read_manifest(settings.feature_data_dir)
    frame = training_frame(settings, open_store(settings), manifest)
    experiment = lead_experiment(bench, frame)
    synthetic = run_experiment(experiment, bench)
    figures = {"synthetic": per_model(synthetic),
               "ceiling": ceiling(experiment.split.test, settings.middle_db, settings.truth_dir,
                                  settings.training.horizon_days)}
    rule, lgbm = figures["synthetic"]["rule"], figures["synthetic"]["lightgbm"]
    figures["synthetic"]["lightgbm_vs_rule"] = {"pr_auc_gain": lgbm["pr_auc"] - rule["pr_auc"],
                                                "lift_at_10_ratio": lgbm["lift_at_10"] / rule["lift_at_10"]}
    for name in ("x_education", "olist"):
        spec_file = settings.config_file(f"tables/{name}.yaml")
        try:
            spec = load_spec(spec_file, settings)
        except FileNotFoundError as missing:
            figures[name] = {"skipped": str(missing)}
            continue
        figures[name] = per_model(train_table(spec, bench))
    figures["speed"] = speed(settings, frame)
    return {**figures, "goals": GOALS}
