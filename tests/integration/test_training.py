"""Training as a data scientist meets it: MLflow runs with plots and fitted tiers, rollback
from the command line, the flat-table trainer on real data, and the notebook executed."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient

import mlflow
from leadscore.config import load_settings
from leadscore.training.flat import train_table
from leadscore.training.table import load_spec
from mlflow import MlflowClient

pytestmark = pytest.mark.integration
PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def client(world) -> MlflowClient:
    uri = f"sqlite:///{world['root'] / 'mlflow' / 'mlflow.db'}"
    return MlflowClient(uri, uri)


def test_runs_hold_comparison_plots_model_plots_and_fitted_tiers(world, client):
    experiment = client.get_experiment_by_name("lead-propensity")
    runs = client.search_runs([experiment.experiment_id])
    parent = next(run for run in runs if run.data.tags.get("kind") == "comparison")
    plots = {f.path for f in client.list_artifacts(parent.info.run_id, "plots")}
    assert {"plots/roc.png", "plots/precision_recall.png", "plots/calibration.png",
            "plots/cumulative_gains.png"} <= plots
    assert "leakage_guard.csv" in {f.path for f in client.list_artifacts(parent.info.run_id)}
    child = next(run for run in runs if run.data.tags.get("model_kind") == "lightgbm")
    assert {"plots/shap_summary.png", "plots/conversion_by_tier.png"} <= {
        f.path for f in client.list_artifacts(child.info.run_id, "plots")}
    assert float(child.data.params["tier.high-value.score_min"]) > 0  # fitted, a number
    scoring = json.loads(Path(client.download_artifacts(child.info.run_id, "scoring_spec.json")).read_text())
    assert all(not isinstance(v, dict) for tier in scoring["tiers"]["tiers"] for v in tier["when"].values())
    max_depth = world["config"]["training"]["lightgbm"]["max_depth"]
    assert int(child.data.params["trees"]) > 0 and int(child.data.params["max_depth_seen"]) <= max_depth
    assert child.data.tags["identity_graph_version"] and child.data.tags["feature_service"]


def test_rollback_from_the_command_line(world, client):
    """Register the champion's model again as a newer version, make it champion, then roll
    back to the first: the alias must move back and record where it came from."""
    cli = [world["cli"], "-c", str(world["config_file"]), "train", "rollback"]
    first = client.get_model_version_by_alias("lead-propensity", "champion")
    uri = f"sqlite:///{world['root'] / 'mlflow' / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    newer = mlflow.register_model(f"runs:/{first.run_id}/model", "lead-propensity").version
    client.set_registered_model_alias("lead-propensity", "champion", newer)
    result = subprocess.run([*cli, "99"], capture_output=True, text=True)
    assert result.returncode == 2 and "has no version 99" in result.stdout + result.stderr
    subprocess.run([*cli, str(first.version)], check=True, capture_output=True)
    champion = client.get_model_version_by_alias("lead-propensity", "champion")
    assert champion.version == first.version and champion.tags["rolled_back_from"] == str(newer)


def test_x_education_status_column_is_found_by_the_guard(world):
    settings = load_settings(world["config_file"])
    if not (settings.datasets_dir / "x_education").is_dir():
        pytest.skip(f"{settings.datasets_dir / 'x_education'} not found")
    outcome = train_table(load_spec(settings.config_file("tables/x_education.yaml"), settings), settings)
    assert "Tags" in [flag.column for flag in outcome.leakage.excluded]
    assert outcome.results["lightgbm"]["roc_auc"] > outcome.results["rule_baseline"]["roc_auc"]


def test_the_notebook_runs_top_to_bottom(world):
    notebook = nbformat.read(PROJECT_ROOT / "notebooks" / "01-retrain-and-compare.ipynb", as_version=4)
    os.environ["LEADSCORE_CONFIG"] = str(world["config_file"])
    try:
        NotebookClient(notebook, timeout=900, kernel_name="python3",
                       resources={"metadata": {"path": str(PROJECT_ROOT / "notebooks")}}).execute()
    finally:
        del os.environ["LEADSCORE_CONFIG"]
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    text = json.dumps(outputs)
    assert "lightgbm" in text and "this run: version" in text


def test_the_lead_model_backtest_and_its_training_set_as_a_flat_table(world, client):
    """`leadscore backtest --json --export`: one JSON object, a backtest run in MLflow, and the
    training set that config/tables/synthetic_world.yaml backtests as any table."""
    cli = [world["cli"], "-c", str(world["config_file"])]
    export = world["root"] / "data" / "backtest" / "training_set.parquet"
    quick = ["--model", "logistic_regression", "--json"]
    result = subprocess.run([*cli, "backtest", *quick, "--export", str(export)],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert set(figures["pooled"]) == set(figures["train_once"]) == {"roc_auc", "pr_auc", "ece"}
    horizon = pd.Timedelta(days=world["config"]["training"]["horizon_days"])
    for period in figures["periods"]:  # a label horizon between what trains and what is scored
        assert pd.Timestamp(period["train_until"]) < pd.Timestamp(period["start"]) - horizon
    run = client.get_run(figures["mlflow_run_id"])
    assert run.data.tags["kind"] == "backtest"
    assert run.data.metrics["pooled_roc_auc"] == pytest.approx(figures["pooled"]["roc_auc"])
    frame = pd.read_parquet(export)
    assert {"pid", "event_timestamp", "label"} <= set(frame.columns)
    spec = world["root"] / "config" / "tables" / "synthetic_world.yaml"
    table = subprocess.run([*cli, "train", "table", str(spec), "--backtest", *quick, "--gap-days", "90"],
                           capture_output=True, text=True, timeout=900)
    assert table.returncode == 0, table.stderr
    as_table = json.loads(table.stdout)
    assert as_table["pooled"]["roc_auc"] > 0.6 and len(as_table["periods"]) == len(figures["periods"])
