"""`leadscore bench scale`'s `mlflow_postgres`: the registry's round trip on an MLflow tracking
server with PostgreSQL, beside the embedded SQLite store, in the same run.

A round is what training and the service do with the registry, on the current champion's real
model and scoring spec: log a run as training logs a candidate (its params, metrics, settings
file, spec, and the model with its signature and input example: `log_candidate`), register it
as a version and move the `champion` alias to it; then load the champion by alias as the
service does (`load_champion`: the alias, the spec, the model). Each store gets a warm-up
round, then `rounds` timed ones; the figures are their medians. The model's pip requirements
are given rather than inferred: MLflow infers them by loading the model in a subprocess (about
15 s here whatever the store), which would drown the difference between the stores.

The server is a throwaway one (leadscore/local_servers.py): PostgreSQL from the distribution's
packages in a temporary folder, `mlflow server` with one worker on it, its artifacts in the
benchmark's folder, as `mlflow.tracking_uri` would name one in production.
"""

from __future__ import annotations

import shutil
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from mlflow.models import Model
from sklearn.base import BaseEstimator

import mlflow
from leadscore.config import Settings
from leadscore.local_servers import mlflow_server, postgres_bin_dir, postgres_server
from leadscore.scoring.prepare import prepare
from leadscore.scoring.registry import CHAMPION, load_champion, use_store
from leadscore.scoring.spec import ScoringSpec
from leadscore.training import register

EXPERIMENT, MODEL = "bench-mlflow-stores", "bench-propensity"


@dataclass(frozen=True)
class Champion:
    """What a round logs: the champion's model and spec, an input example, its run's figures."""

    model: BaseEstimator
    spec: ScoringSpec
    example: pd.DataFrame
    params: dict[str, str]
    metrics: dict[str, float]
    figures: dict[str, float]  # as registered with the version: the primary metric and ECE ...
    test_window: str           # ... on this window


def current_champion(settings: Settings) -> Champion:
    """The lead model's champion in the project's store, with the input example it was logged
    with (real feature rows, typed as the model takes them)."""
    model, spec, version = load_champion(settings)
    name = settings.training.registered_model
    registered = use_store(settings).get_model_version(name, version)
    local = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{version}")
    example = prepare(Model.load(local).load_input_example(local), spec.features)
    if registered.run_id is None:
        raise ValueError(f"version {version} of {name} was registered without a run: no figures to compare")
    run = use_store(settings).get_run(registered.run_id)
    figures = {key: float(registered.tags[key]) for key in (settings.training.primary_metric, "ece")}
    return Champion(model, spec, example, run.data.params, run.data.metrics, figures,
                    registered.tags["test_window"])


def timed_round(settings: Settings, champion: Champion) -> tuple[float, float]:
    """Seconds to log and register the champion again (alias moved to it), and to load the
    champion by alias."""
    started = time.perf_counter()
    with mlflow.start_run(run_name="bench round"):
        uri = register.log_candidate(champion.spec.model_kind, champion.model, champion.params,
                                     champion.metrics, champion.example, champion.spec,
                                     [settings.source] if settings.source else [], {"kind": "bench"})
    client = use_store(settings)
    version = register.register_version(client, uri, MODEL, settings.training.primary_metric,
                                        champion.figures, champion.test_window)
    client.set_registered_model_alias(MODEL, CHAMPION, version)
    registered = time.perf_counter()
    load_champion(settings, MODEL)
    return registered - started, time.perf_counter() - registered


def store_figures(settings: Settings, champion: Champion, rounds: int) -> dict:
    """A warm-up round, then the medians of `rounds` timed ones, on the store `settings` name."""
    register.setup_tracking(settings, EXPERIMENT)
    timed_round(settings, champion)
    logged, loaded = zip(*(timed_round(settings, champion) for _ in range(rounds)), strict=True)
    return {"tracking_uri": settings.tracking_uri, "log_register_s": statistics.median(logged),
            "load_by_alias_s": statistics.median(loaded)}


def mlflow_postgres(settings: Settings, work: Path, rounds: int = 5) -> dict:
    """The round's seconds on SQLite and on a tracking server with PostgreSQL (its start
    apart), and PostgreSQL's over SQLite's."""
    champion = current_champion(settings)
    shutil.rmtree(work, ignore_errors=True)  # a new SQLite store each run, as the server's is new
    model = f"{champion.spec.model_kind}, {len(champion.spec.features.all)} features"
    figures: dict = {"rounds": rounds, "model": model,
                     "sqlite": store_figures(settings.with_mlflow(None, work / "sqlite"), champion, rounds)}
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        figures["postgres"] = {"skipped": "PostgreSQL is not installed (apt-get install postgresql)"}
        return figures
    started = time.perf_counter()
    with postgres_server(bin_dir) as database, mlflow_server(database, work / "server-artifacts") as url:
        start_s = time.perf_counter() - started
        figures["postgres"] = {**store_figures(settings.with_mlflow(url), champion, rounds),
                               "backend_store": "postgresql", "server_start_s": start_s}
    # the server is gone: back to unset (mlflow's annotation leaves out None, its initial value)
    mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
    figures["postgres_over_sqlite"] = {
        key: figures["postgres"][f"{key}_s"] / figures["sqlite"][f"{key}_s"]
        for key in ("log_register", "load_by_alias")}
    return figures
