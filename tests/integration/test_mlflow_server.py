"""The registry on an MLflow tracking server with PostgreSQL (`mlflow.tracking_uri`): a real
PostgreSQL cluster and a real `mlflow server` on it; `leadscore train` registers its champion
there, `leadscore promote` and `leadscore train rollback` move the alias there, and the service
loads and follows the champion from there."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from contextlib import closing
from pathlib import Path

import psycopg
import pytest
import yaml
from fastapi.testclient import TestClient
from in_process import service_in_process

import mlflow
from leadscore.config import load_settings
from leadscore.scoring.registry import CHALLENGER, champion_version, use_store
from leadscore.training import register

pytestmark = pytest.mark.integration
CRM = {"X-API-Key": "demo-crm-key"}
MODEL = "lead-propensity"


@pytest.fixture(scope="module")
def on_server(world, mlflow_server):
    """The tiny world's settings with `mlflow.tracking_uri` naming the server (a second settings
    file beside the world's, so that it reads the same config folder) and a service that looks
    for a new champion every second, after `leadscore train`."""
    config = yaml.safe_load(world["config_file"].read_text())
    config["mlflow"] = {"tracking_uri": mlflow_server["url"]}
    config["serving"]["model_check_s"] = 1
    config["training"]["account"] = {"enabled": False}  # the lead model is what moves here
    config_file = world["config_file"].with_name("leadscore-on-mlflow-server.yaml")
    config_file.write_text(yaml.safe_dump(config))
    embedded = _versions_in(load_settings(world["config_file"]).mlflow_dir / "mlflow.db")
    result = subprocess.run([world["cli"], "-c", str(config_file), "train"], capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    yield {"settings": load_settings(config_file), "config_file": config_file, "cli": world["cli"],
           "embedded_versions": embedded, "world_config": world["config_file"], **mlflow_server}
    mlflow.set_tracking_uri(None)  # the server stops with the module: no later test may reach for it
    mlflow.set_registry_uri(None)


def _versions_in(sqlite_store: Path) -> int:
    """How many model versions the embedded store holds (read as the SQLite file it is)."""
    with closing(sqlite3.connect(sqlite_store)) as connection:
        return connection.execute("SELECT count(*) FROM model_versions").fetchone()[0]


def _aliases(postgres_uri: str) -> dict[str, str]:
    """The registered model's aliases as PostgreSQL holds them (MLflow's own table)."""
    with psycopg.connect(postgres_uri) as connection:
        rows = connection.execute("SELECT alias, version FROM registered_model_aliases WHERE name = %s",
                                  (MODEL,)).fetchall()
    return {alias: str(version) for alias, version in rows}


def test_training_registers_its_champion_on_the_server(on_server):
    settings = on_server["settings"]
    assert settings.tracking_uri == on_server["url"]
    assert _aliases(on_server["postgres"]) == {"champion": "1"}  # the first version of this registry
    champion = use_store(settings).get_model_version_by_alias(MODEL, "champion")
    run = use_store(settings).get_run(champion.run_id)
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/")  # kept by the server ...
    kept = {path.name for path in on_server["artifacts"].rglob("*")}
    assert {"scoring_spec.json", "MLmodel", "comparison.csv", "roc.png"} <= kept  # ... in its folder
    embedded = load_settings(on_server["world_config"]).mlflow_dir / "mlflow.db"
    assert _versions_in(embedded) == on_server["embedded_versions"]  # nothing went to the embedded store


def _challenger_better_by(settings, points: float) -> str:
    """The champion's model registered again, with its figures on the same test window but
    `points` more PR-AUC, as the challenger: one that wins on offline evidence."""
    client = use_store(settings)
    champion = client.get_model_version_by_alias(MODEL, "champion")
    figures = {"pr_auc": float(champion.tags["pr_auc"]) + points, "ece": float(champion.tags["ece"])}
    version = register.register_version(client, f"runs:/{champion.run_id}/model", MODEL, "pr_auc", figures,
                                        champion.tags["test_window"])
    client.set_registered_model_alias(MODEL, CHALLENGER, version)
    return version


def _serves(client: TestClient, key: str, version: str | None, wait_s: float = 60) -> bool:
    """Whether GET /model names `version` under `key` within `wait_s`: the service's own watcher
    threads follow the aliases (hot reload)."""
    deadline = time.time() + wait_s
    while time.time() < deadline:
        if client.get("/model", headers=CRM).json()[key] == version:
            return True
        time.sleep(0.5)
    return False


def _cli(on_server, *arguments: str) -> str:
    result = subprocess.run([on_server["cli"], "-c", str(on_server["config_file"]), *arguments],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_promotion_rollback_and_the_services_hot_reload_on_the_server(on_server):
    settings = on_server["settings"]
    with service_in_process(on_server["config_file"]):
        from leadscore.serving.service import app

        client = TestClient(app)
        served = client.get("/model", headers=CRM).json()
        assert (served["version"], served["challenger_version"]) == ("1", None)
        challenger = _challenger_better_by(settings, 0.01)
        assert _serves(client, "challenger_version", challenger)  # scored in shadow, from the server

        decision = json.loads(_cli(on_server, "promote", "--json"))  # stdout: the JSON alone
        assert decision["promoted"] and decision["evidence"]["basis"] == "offline", decision
        assert _aliases(on_server["postgres"]) == {"champion": challenger}
        use_store(settings)
        promotions = mlflow.search_runs(experiment_names=[register.PROMOTIONS], output_format="list")
        assert [run.data.tags["champion"] for run in promotions] == [challenger]
        assert _serves(client, "version", challenger) and _serves(client, "challenger_version", None)
        answer = client.post("/score", json={"features": {"events_30d": 3}}, headers=CRM)
        assert answer.json()["model_version"] == challenger

        _cli(on_server, "train", "rollback", "1")
        assert champion_version(settings) == "1" == _aliases(on_server["postgres"])["champion"]
        assert use_store(settings).get_model_version(MODEL, "1").tags["rolled_back_from"] == challenger
        assert _serves(client, "version", "1")


def test_the_benchmarks_round_on_the_server_and_on_sqlite(on_server, tmp_path):
    """`leadscore bench scale`'s round (benchmarks/mlflow_stores.py) on this server, beside a new
    embedded store: the champion logged, registered and loaded back by alias on each."""
    from leadscore.benchmarks.mlflow_stores import MODEL as BENCH_MODEL
    from leadscore.benchmarks.mlflow_stores import current_champion, store_figures

    settings = on_server["settings"]
    champion = current_champion(settings)
    assert list(champion.example.columns) == champion.spec.features.all
    for store in (settings, settings.with_mlflow(None, tmp_path)):
        figures = store_figures(store, champion, rounds=1)
        assert figures["tracking_uri"] == store.tracking_uri
        assert figures["log_register_s"] > 0 and figures["load_by_alias_s"] > 0
        assert champion_version(store, BENCH_MODEL) == "2"  # the warm-up's version, then the round's
