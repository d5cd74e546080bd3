"""`leadscore bench training`: model quality on three datasets and training speed.

- synthetic: the lead model on the current world's Feast training set (test window);
- ceiling: on the same test window, the hidden truth's own propensity (benchmarks/ceiling.py:
  what a model that knew every buying cycle begun by each snapshot could reach);
- x_education, olist: the flat-table trainer on the real files in ../shared/datasets,
  with the columns the leakage guard excluded;
- speed: fitting and calibrating all three models on 1M snapshot rows (the synthetic
  training set resampled to 1M rows);
- reasons: for 1,000 people of the test window's latest snapshot scored by the lead champion as
  the service scores them, how many answers tell one reason family twice (none should) and the
  largest gap between the families' summed contributions and the features' (the same logit);
- account: the account model (companies) trained and registered as `leadscore train` does, the
  candidate best on the validation window (`model_kind`), on its test window against "max of its
  people's scores" (the lead model of the same run), and beside them "any of its people"
  (1 - prod(1 - p) over the same scores); `candidates`: each candidate's test and validation
  figures, `stacked` among them (its trees plus its people's out-of-sample scores,
  training/account_people.py).
Runs log to a separate MLflow store under the benchmark folder, never the project's.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from leadscore.benchmarks.ceiling import ceiling
from leadscore.config import Settings
from leadscore.features.build import read_manifest
from leadscore.features.catalog import family_labels, fit_families, scoring_specs
from leadscore.features.store import open_store
from leadscore.scoring.metrics import metrics
from leadscore.scoring.prepare import prepare
from leadscore.scoring.registry import load_champion
from leadscore.serving.scorer import Scorer
from leadscore.training.account_people import people_any, people_max
from leadscore.training.accounts import account_settings, stacked_experiment
from leadscore.training.experiment import (
    Experiment,
    Outcome,
    calibrate,
    candidates,
    fit_model,
    run_experiment,
)
from leadscore.training.flat import train_table
from leadscore.training.table import load_spec
from leadscore.training.train import lead_experiment, training_frame

MODELS = {"rule_baseline": "rule", "logistic_regression": "logreg", "lightgbm": "lightgbm"}
KEYS = {"roc_auc": "roc_auc", "pr_auc": "pr_auc", "ece": "ece", "lift_at_10pct": "lift_at_10"}
ACCOUNT_KEYS = ("roc_auc", "pr_auc", "ece")
GOALS = {"synthetic_pr_auc_gain_over_rule": 0.10, "synthetic_lift_at_10_ratio_over_rule": 1.5,
         "ece_max": 0.02, "x_education_roc_auc_min": 0.90, "speed_seconds_max": 180,
         "account_pr_auc_above_people_max": True, "reasons_family_twice": 0, "reasons_grouping_gap_max": 1e-9}


def reason_checks(bench: Settings, test: pd.DataFrame, people: int = 1_000) -> dict:
    """The lead champion of `bench`'s store, as the service builds it, on `people` rows of the
    latest snapshot of `test`: answers with two reasons of one family, and the grouping's gap."""
    model, spec, version = load_champion(bench)
    scorer = Scorer(model, spec, version, scoring_specs(bench), bench.serving.max_reasons,
                    family_labels(bench), fit_families(bench))
    rows = test[test["event_timestamp"] == test["event_timestamp"].max()].head(people)
    columns = {name: rows[name].astype(object).where(rows[name].notna(), None).tolist()
               for name in scorer.feature_names}
    answers = scorer.score_records(rows["pid"].tolist(), columns)
    told = [answer["reasons_up"] + answer["reasons_down"] for answer in answers]
    result = scorer.evaluate(columns, len(rows))
    gap = np.abs(scorer.families.sums(result.contrib).sum(axis=1) - result.contrib.sum(axis=1)).max()
    return {"people": len(rows), "answers_with_a_family_twice": sum(
        len({reason["family"] for reason in reasons}) < len(reasons) for reasons in told),
            "max_grouping_gap": float(gap)}


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


def figures_of(y: np.ndarray, probability: np.ndarray) -> dict[str, float]:
    measured = metrics(y, probability)
    return {key: measured[key] for key in ACCOUNT_KEYS}


def account_comparison(test: pd.DataFrame, probability: np.ndarray, people: pd.DataFrame,
                       people_probability: np.ndarray) -> dict:
    """An account model's figures on its test window (`probability` per row of `test`) beside the
    baseline "max of its people's scores" (`people_probability` per row of `people`, a lead
    model's on the same snapshots)."""
    y = test["label"].to_numpy()
    return {"model": figures_of(y, probability),
            "baseline": figures_of(y, people_max(test, people, people_probability)),
            "people_any": figures_of(y, people_any(test, people, people_probability)),
            "test_rows": len(test), "positive_rate": float(y.mean())}


def account(bench: Settings, store, manifest: dict, frame: pd.DataFrame, lead: Experiment,
            lead_probability: np.ndarray) -> dict:
    """The account model trained and registered as `leadscore train` does (in the bench's store,
    its stacked candidate reading the bench's lead champion), on its test window, against "max of
    its people's scores": `lead_probability`, the lead model's of the same run on the test window
    of `lead` (the experiment on the lead training frame `frame`); and every candidate's figures
    on both windows, the one registered chosen on the validation window."""
    experiment = stacked_experiment(bench, store, manifest, frame)
    outcome = run_experiment(experiment, account_settings(bench))
    return {**account_comparison(experiment.split.test, outcome.probabilities[outcome.best], lead.split.test,
                                 lead_probability), "model_kind": outcome.best,
            "candidates": {name: {"test": {key: outcome.results[name][key] for key in ACCOUNT_KEYS},
                                  "validation": {key: outcome.validation_results[name][key]
                                                 for key in ACCOUNT_KEYS}}
                           for name in outcome.results}}


def run(settings: Settings, work: Path) -> dict:
    bench = settings.with_mlflow(None, work / "mlflow")  # the embedded store, even beside a server
    manifest = read_manifest(settings.feature_data_dir)
    store = open_store(settings)
    frame = training_frame(settings, store, manifest)
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
    figures["reasons"] = reason_checks(bench, experiment.split.test)
    figures["speed"] = speed(settings, frame)
    figures["account"] = account(bench, store, manifest, frame, experiment,
                                 synthetic.probabilities[synthetic.best])
    return {**figures, "goals": GOALS}
