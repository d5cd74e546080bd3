"""The served side of the model registry: which version is champion (or challenger), and its
model and spec.

Training registers versions and moves the `champion` and `challenger` aliases
(training/register.py, training/retrain.py); whatever scores reads them back here: the fitted
model and its scoring spec (`scoring_spec.json`, logged beside it). A version without a spec
was trained before the scoring contract existed and is refused with what to do about it.
"""

from __future__ import annotations

from pathlib import Path

from mlflow.exceptions import MlflowException
from pydantic import ValidationError
from sklearn.base import BaseEstimator

import mlflow
from leadscore.config import Settings
from leadscore.scoring.spec import ScoringSpec
from mlflow import MlflowClient

SPEC_ARTIFACT = "scoring_spec.json"
CHAMPION, CHALLENGER = "champion", "challenger"


class MissingSpec(LookupError):
    """A registered version that has no (readable) scoring spec."""


def use_store(settings: Settings) -> MlflowClient:
    """Point MLflow's tracking and registry at this project's store (`mlflow.tracking_uri`, or
    the embedded SQLite store)."""
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    return MlflowClient(settings.tracking_uri, settings.tracking_uri)


def use_experiment(settings: Settings, name: str) -> MlflowClient:
    """`use_store`, and make `name` the active experiment, created if missing: its artifacts
    under the embedded store's folder, or where a tracking server keeps them."""
    location = settings.artifact_location
    if location is not None:  # the folder of the embedded store's file and artifacts
        settings.mlflow_dir.mkdir(parents=True, exist_ok=True)
    client = use_store(settings)
    if mlflow.get_experiment_by_name(name) is None:
        mlflow.create_experiment(name, artifact_location=location and f"{location}/{name}")
    mlflow.set_experiment(name)
    return client


def champion_of(client: MlflowClient, model_name: str, alias: str = CHAMPION):
    """The model version the alias (`champion` unless told) points at, or None."""
    try:
        return client.get_model_version_by_alias(model_name, alias)
    except MlflowException:
        return None


def champion_version(settings: Settings, registered_model: str | None = None,
                     alias: str = CHAMPION) -> str | None:
    """The version the alias points at now (None if none): cheap, for polling."""
    client = MlflowClient(settings.tracking_uri, settings.tracking_uri)
    version = champion_of(client, registered_model or settings.training.registered_model, alias)
    return None if version is None else str(version.version)


def read_spec(run_id: str | None, name: str, version: str) -> ScoringSpec:
    """The scoring spec logged in a version's run; MissingSpec if there is none (or no run) or
    it is of a kind this code does not read."""
    if run_id is None:
        raise MissingSpec(f"version {version} of {name} was registered without a run: no {SPEC_ARTIFACT}")
    try:
        path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=SPEC_ARTIFACT)
    except (MlflowException, OSError):
        raise MissingSpec(f"version {version} of {name} has no {SPEC_ARTIFACT}: it was trained before "
                          "the scoring contract and cannot be served: retrain (`leadscore train`) and serve "
                          "the new version, or roll back to a version that has one") from None
    try:
        return ScoringSpec.model_validate_json(Path(path).read_text())
    except ValidationError as error:
        raise MissingSpec(f"version {version} of {name}: {SPEC_ARTIFACT} cannot be read by this "
                          f"version of leadscore ({error.error_count()} problems, first: "
                          f"{error.errors()[0]['msg']}); retrain (`leadscore train`)") from None


def load_champion(settings: Settings, registered_model: str | None = None, alias: str = CHAMPION
                  ) -> tuple[BaseEstimator, ScoringSpec, str]:
    """(model, scoring spec, version) of the current champion (or the version of another
    alias) of `registered_model` (default: the lead model); LookupError if there is none,
    MissingSpec if it has no spec."""
    client = use_store(settings)
    name = registered_model or settings.training.registered_model
    version = champion_of(client, name, alias)
    if version is None:
        raise LookupError(f"no {alias} for {name!r} in {settings.tracking_uri} (run `leadscore train`)")
    return _loaded(name, version)  # by its number, not @champion: the alias may move


def load_version(settings: Settings, version: str, registered_model: str | None = None
                 ) -> tuple[BaseEstimator, ScoringSpec, str]:
    """(model, scoring spec, version) of one version of `registered_model` (default: the lead
    model), whatever its alias."""
    name = registered_model or settings.training.registered_model
    return _loaded(name, use_store(settings).get_model_version(name, version))


def _loaded(name: str, version) -> tuple[BaseEstimator, ScoringSpec, str]:
    spec = read_spec(version.run_id, name, str(version.version))  # before the model: no spec, no load
    model = mlflow.sklearn.load_model(f"models:/{name}/{version.version}")
    return model, spec, str(version.version)
