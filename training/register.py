"""MLflow tracking and the model registry: log candidates, register, move aliases.

Tracking lives under mlflow/ (SQLite backend, artifacts folder), or on the MLflow tracking
server that `mlflow.tracking_uri` names (PostgreSQL behind it, artifacts kept by it). The alias
`champion` moves to a new version only when it beats the current champion on
the primary metric with a calibration (ECE) no worse, both scored on the new
version's test window (training re-scores the champion there); otherwise the
new version becomes the `challenger`. A champion that cannot read today's
features cannot be scored, and loses. `rollback` puts an earlier version back.
`leadscore retrain` registers its version as `challenger` whatever its figures: the service
scores it in shadow until `promote` makes it champion on live evidence (`leadscore promote`,
monitoring/promotion.py decides); each promotion is a run of its own with its evidence.

Each version's run holds its scoring spec (`scoring_spec.json`), which is all serving
reads besides the model (leadscore.scoring.registry reads it back).
"""

from __future__ import annotations

import logging
import subprocess
import tempfile
from importlib.metadata import version
from pathlib import Path

import pandas as pd
from mlflow.models import infer_signature
from sklearn.base import BaseEstimator

import mlflow
from leadscore.config import Settings
from leadscore.scoring.registry import (
    CHALLENGER,
    CHAMPION,
    SPEC_ARTIFACT,
    MissingSpec,
    champion_of,
    read_spec,
    use_experiment,
    use_store,
)
from leadscore.scoring.spec import ScoringSpec
from mlflow import MlflowClient

log = logging.getLogger(__name__)

EXPERIMENT = "lead-propensity"
# What a logged model's pickle needs to load and score: pinned to the installed versions.
# Given, MLflow does not infer them (it loads the model in a subprocess: 12-15 s a model, and
# its guess left LightGBM out and put psutil and rich in).
MODEL_DISTRIBUTIONS = ("leadscore", "mlflow", "cloudpickle", "numpy", "pandas", "scipy", "scikit-learn",
                       "lightgbm")
PROMOTIONS = "lead-propensity-promotions"


def setup_tracking(settings: Settings, experiment: str = EXPERIMENT) -> MlflowClient:
    """Point MLflow at this project's store and make sure the experiment exists."""
    return use_experiment(settings, experiment)


def git_commit(root: Path) -> str:
    result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True)
    return result.stdout.strip() or "unknown"


def log_candidate(name: str, model: BaseEstimator, params: dict, metrics: dict[str, float],
                  example: pd.DataFrame, spec: ScoringSpec, config_files: list[Path],
                  tags: dict[str, str]) -> str:
    """Into the active run: params, metrics, config files, the scoring spec and the model
    with its signature, an input example and its pip requirements (`model_requirements`).
    Returns the model URI."""
    mlflow.set_tags({"model_kind": name, **tags})
    mlflow.log_params(params)
    mlflow.log_metrics(metrics)
    for path in config_files:
        mlflow.log_artifact(str(path), artifact_path="config")
    with tempfile.TemporaryDirectory() as tmp:
        spec_path = Path(tmp) / SPEC_ARTIFACT
        spec_path.write_text(spec.model_dump_json(indent=2))
        mlflow.log_artifact(str(spec_path))
    signature = infer_signature(example, model.predict_proba(example)[:, 1])
    info = mlflow.sklearn.log_model(
        model, name="model", signature=signature, input_example=example,
        pip_requirements=model_requirements(),
        serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE)
    log.info("logged %s in run %s", name, info.run_id)
    return info.model_uri


def model_requirements() -> list[str]:
    """`MODEL_DISTRIBUTIONS` pinned to the versions installed here."""
    return [f"{name}=={version(name)}" for name in MODEL_DISTRIBUTIONS]


def beats_champion(candidate: dict[str, float], champion: dict[str, float] | None, metric: str,
                   higher_is_better: bool, ece_tolerance: float) -> bool:
    """Better on `metric` and calibrated no worse (ECE within `ece_tolerance`), both on the
    same test window; anything beats no champion."""
    if champion is None:
        return True
    better = (candidate[metric] > champion[metric] if higher_is_better
              else candidate[metric] < champion[metric])
    return better and candidate["ece"] <= champion["ece"] + ece_tolerance


def register_and_promote(client: MlflowClient, model_uri: str, model_name: str, metric: str,
                         candidate: dict[str, float], champion: dict[str, float] | None,
                         higher_is_better: bool, ece_tolerance: float, test_window: str) -> tuple[str, str]:
    """Register a version; it becomes champion if it beats the current champion's figures
    on the same test window (`champion`, None when there is none), else challenger."""
    version = register_version(client, model_uri, model_name, metric, candidate, test_window)
    wins = beats_champion(candidate, champion, metric, higher_is_better, ece_tolerance)
    alias = "champion" if wins else "challenger"
    client.set_registered_model_alias(model_name, alias, version)
    log.info("%s version %s is now %s (%s %.4f, ece %.4f; champion on the same window: %s)",
             model_name, version, alias, metric, candidate[metric], candidate["ece"], champion)
    return version, alias


def register_version(client: MlflowClient, model_uri: str, model_name: str, metric: str,
                     figures: dict[str, float], test_window: str) -> str:
    """A new version of `model_name`, tagged with its figures on `test_window`."""
    version = mlflow.register_model(model_uri, model_name)
    for key in (metric, "ece"):
        client.set_model_version_tag(model_name, version.version, key, str(figures[key]))
    client.set_model_version_tag(model_name, version.version, "test_window", test_window)
    return str(version.version)


def rollback(settings: Settings, version: str) -> str | None:
    """Make an earlier version the champion again; returns the version it replaces."""
    client = setup_tracking(settings)
    name = settings.training.registered_model
    versions = {str(v.version) for v in client.search_model_versions(f"name = '{name}'")}
    if version not in versions:
        raise ValueError(f"{name} has no version {version}; versions: "
                         f"{', '.join(sorted(versions, key=int)) or 'none (run `leadscore train`)'}")
    try:  # a version serving could not load must not become champion
        read_spec(client.get_model_version(name, version).run_id, name, version)
    except MissingSpec as error:
        raise ValueError(str(error)) from None
    current = champion_of(client, name)
    previous = str(current.version) if current is not None else None
    client.set_registered_model_alias(name, "champion", version)
    client.set_model_version_tag(name, version, "rolled_back_from", previous or "none")
    log.info("%s: champion is now version %s (was %s)", name, version, previous)
    return previous


def version_tags(settings: Settings, versions: list[str]) -> dict[str, dict[str, str]]:
    """The registered figures of versions (tags: primary metric, ece, test_window)."""
    client = use_store(settings)
    name = settings.training.registered_model
    return {version: dict(client.get_model_version(name, version).tags) for version in versions}


def lineage_versions(settings: Settings, lineage: str) -> list[str]:
    """The versions tagged with `lineage` (the weekly retrains of one policy), oldest first."""
    client = use_store(settings)
    name = settings.training.registered_model
    return sorted((str(v.version) for v in client.search_model_versions(f"name = '{name}'")
                   if v.tags.get("lineage") == lineage), key=int)


def promote(settings: Settings, version: str, reason: str, evidence: dict | None) -> str | None:
    """Make the challenger `version` champion, with its evidence: a run in the promotions
    experiment (figures as metrics, the whole evidence as an artifact) and tags on the
    version. Returns the version it replaces."""
    client = setup_tracking(settings, PROMOTIONS)
    name = settings.training.registered_model
    current = champion_of(client, name)
    previous = str(current.version) if current is not None else None
    with mlflow.start_run(run_name=f"promote v{version}"):
        mlflow.set_tags({"kind": "promotion", "champion_before": previous or "none", "champion": version,
                         "basis": (evidence or {}).get("basis", "none"), "reason": reason[:5000],
                         "lineage": ",".join((evidence or {}).get("lineage") or [version])})
        for who, figures in ((evidence or {}).get("figures") or {}).items():
            role = "challenger" if who == version else "champion"
            mlflow.log_metrics({f"{role}_{key}": value for key, value in figures.items()
                                if value is not None})
        if evidence:
            if evidence.get("confidence") is not None:
                mlflow.log_metric("confidence", evidence["confidence"])
            mlflow.log_dict(evidence, "evidence.json")
    client.set_registered_model_alias(name, CHAMPION, version)
    client.delete_registered_model_alias(name, CHALLENGER)
    client.set_model_version_tag(name, version, "promoted_from", previous or "none")
    client.set_model_version_tag(name, version, "promoted_on", (evidence or {}).get("basis", "none"))
    log.info("%s: champion is version %s (was %s): %s", name, version, previous, reason)
    return previous
