"""The rolling-origin backtest on a tiny drifting table: rolling beats train-once when the world
moves, no period learns from its own rows or later ones, and the run is in MLflow."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

import mlflow
from leadscore.cli import app
from leadscore.config import BacktestSettings, Settings
from leadscore.training.backtest import Backtest, folds, run_backtest
from leadscore.training.flat import backtest_table, table_experiment
from leadscore.training.table import load_spec, table_frame

PROJECT_ROOT = Path(__file__).resolve().parents[3]

ROWS = 2400
DRIFT_AT = pd.Timestamp("2025-01-01", tz="UTC")


def drifting_table(path, rows: int = ROWS, seed: int = 0) -> pd.DataFrame:
    """Two years of leads, 100 a month. Until 2025 visits drive conversion (about 10%); then a
    new product line sells to a segment that did not exist ("clinics"), converting at about 45%,
    and visits stop mattering there: a model fitted on 2024 cannot know it."""
    rng = np.random.default_rng(seed)
    days = np.sort(rng.uniform(0, 730, rows))
    times = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(days, unit="D")
    after = np.asarray(times >= DRIFT_AT)
    segment = np.where(after & (rng.random(rows) < 0.5), "clinics", rng.choice(["software", "retail"], rows))
    visits = rng.poisson(3, rows)
    logit = np.where(segment == "clinics", -0.2, -3.2 + 0.5 * visits)
    frame = pd.DataFrame({"lead": [f"L{i}" for i in range(rows)], "visits": visits, "segment": segment,
                          "noise": rng.normal(size=rows), "created": times.strftime("%Y-%m-%dT%H:%M:%SZ"),
                          "converted": (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)})
    frame.to_csv(path, index=False)
    return frame


def spec_file(tmp_path, **changes) -> object:
    drifting_table(tmp_path / "leads.csv")
    spec = {"name": "drifting", "table": "leads.csv", "id": "lead", "target": {"column": "converted"},
            "time": "created", **changes}
    (tmp_path / "drifting.yaml").write_text(yaml.safe_dump(spec))
    return tmp_path / "drifting.yaml"


OPTIONS = BacktestSettings(model="logistic_regression", period_days=30, initial_share=0.4)


def pure_backtest(spec_path, settings: Settings, options: BacktestSettings = OPTIONS,
                  gap_days: int = 0) -> Backtest:
    """The backtest's steps without its MLflow run (the slow part of a tiny table)."""
    spec = load_spec(spec_path, settings)
    frame, features = table_frame(spec, settings)
    experiment = table_experiment(spec, settings, (frame, features))
    return run_backtest(frame, experiment, settings, options, pd.Timedelta(days=gap_days))


@pytest.fixture(scope="module")
def logged(tmp_path_factory, settings: Settings) -> tuple[Backtest, str, Settings]:
    """The backtest of the drifting table with its MLflow run: (result, run id, settings)."""
    tmp = tmp_path_factory.mktemp("drifting")
    local = settings.with_data_dir(tmp / "data", tmp / "mlflow")
    try:
        result, run_id = backtest_table(load_spec(spec_file(tmp), local), local, OPTIONS)
    finally:
        mlflow.set_tracking_uri(None)
    return result, run_id, local


def test_rolling_beats_train_once_on_a_drifting_table(logged):
    result, _, _ = logged
    assert result.pooled["roc_auc"] > result.train_once["roc_auc"] + 0.04
    assert result.pooled["ece"] < result.train_once["ece"]
    # the periods before the drift are alike: the gain comes from refitting after it
    before = [p for p in result.periods if pd.Timestamp(p.end) < DRIFT_AT and p.rolling]
    assert before and all(abs(p.rolling["roc_auc"] - p.train_once["roc_auc"]) < 0.05 for p in before)


def test_on_a_steady_table_rolling_and_train_once_agree(tmp_path, settings):
    frame = drifting_table(tmp_path / "leads.csv")
    steady = frame[pd.to_datetime(frame["created"], utc=True) < DRIFT_AT]
    steady.to_csv(tmp_path / "leads.csv", index=False)
    spec = {"name": "steady", "table": "leads.csv", "id": "lead", "target": {"column": "converted"},
            "time": "created"}
    (tmp_path / "steady.yaml").write_text(yaml.safe_dump(spec))
    result = pure_backtest(tmp_path / "steady.yaml", settings)
    assert abs(result.pooled["roc_auc"] - result.train_once["roc_auc"]) < 0.03


@pytest.mark.parametrize("options", [
    BacktestSettings(period_days=30),
    BacktestSettings(period_rows=97),
    BacktestSettings(period_days=30, window="sliding", window_days=120),
    BacktestSettings(period_rows=200, window="sliding", window_rows=500),
])
@pytest.mark.parametrize("gap_days", [0, 45])
def test_no_period_learns_from_its_own_rows_or_later_ones(options, gap_days):
    rng = np.random.default_rng(1)
    # whole days, so that many rows share a time and a cut by rows falls inside a day
    times = pd.Series(pd.Timestamp("2024-01-01", tz="UTC")
                      + pd.to_timedelta(np.sort(rng.integers(0, 500, 3000)), unit="D"))
    gap = pd.Timedelta(days=gap_days)
    cut = folds(times, options, gap)
    assert len(cut) > 3
    scored = np.concatenate([fold.test for fold in cut])
    assert len(scored) == len(set(scored))  # each row scored once
    for fold in cut:
        assert times.iloc[fold.test].min() == fold.start
        assert times.iloc[fold.train].max() < fold.start - gap
        assert not set(fold.train) & set(fold.test)
    if options.window == "sliding":
        assert len(cut[-1].train) < len(cut[-1].test) + cut[-1].test[0]  # older rows were let go


def test_the_periods_used_never_train_on_their_own_time(tmp_path, settings):
    result = pure_backtest(spec_file(tmp_path), settings, OPTIONS.model_copy(update={"period_rows": 150}),
                           gap_days=10)
    for period in result.periods:
        assert pd.Timestamp(period.train_until) < pd.Timestamp(period.start) - pd.Timedelta(days=10)
    assert sum(p.test_rows for p in result.periods) < ROWS


def test_each_refit_runs_the_leakage_guard_on_its_own_window(tmp_path, settings):
    """A status filled in after the outcome appears only in the later rows: the guard of the
    initial part cannot see it, the guard of each later window must keep it out (once the window
    holds the guard's minimum of such rows: leakage.MIN_ROWS_PER_CLASS)."""
    frame = drifting_table(tmp_path / "leads.csv")
    later = pd.to_datetime(frame["created"], utc=True) >= pd.Timestamp("2025-03-01", tz="UTC")
    frame["status"] = np.where(later & (frame["converted"] == 1), "closed by sales", None)
    frame.to_csv(tmp_path / "leads.csv", index=False)
    spec = {"name": "late_status", "table": "leads.csv", "id": "lead", "target": {"column": "converted"},
            "time": "created"}
    (tmp_path / "late.yaml").write_text(yaml.safe_dump(spec))
    result = pure_backtest(tmp_path / "late.yaml", settings)
    since = pd.Timestamp("2025-07-01", tz="UTC")
    late = [p.rolling["roc_auc"] for p in result.periods if pd.Timestamp(p.start) > since]
    assert len(late) >= 5 and max(late) < 0.9  # the status alone would rank these periods perfectly


def test_the_run_is_in_mlflow_with_a_step_per_period(logged):
    result, run_id, local = logged
    client = mlflow.MlflowClient(local.tracking_uri)
    run = client.get_run(run_id)
    assert run.data.metrics["pooled_roc_auc"] == pytest.approx(result.pooled["roc_auc"])
    assert run.data.metrics["train_once_pr_auc"] == pytest.approx(result.train_once["pr_auc"])
    history = client.get_metric_history(run_id, "period_roc_auc")
    assert len(history) == sum(p.rolling is not None for p in result.periods)
    assert [m.value for m in sorted(history, key=lambda m: m.step)] == pytest.approx(
        [p.rolling["roc_auc"] for p in result.periods if p.rolling])


def test_a_table_without_a_time_column_is_refused(tmp_path, settings):
    spec = load_spec(spec_file(tmp_path, time=None), settings)
    with pytest.raises(ValueError, match="needs the rows' times"):
        backtest_table(spec, settings, OPTIONS)


def test_the_command_prints_one_json_object(tmp_path):
    """`leadscore train table SPEC --backtest --json`: pooled, train_once, periods on stdout."""
    shutil.copytree(PROJECT_ROOT / "config", tmp_path / "config")
    config_file = tmp_path / "config" / "leadscore.yaml"
    config = yaml.safe_load(config_file.read_text())
    config["paths"].update(data_dir=str(tmp_path / "data"), mlflow_dir=str(tmp_path / "mlflow"))
    config_file.write_text(yaml.safe_dump(config))
    spec = spec_file(tmp_path)
    try:
        result = CliRunner().invoke(app, ["-c", str(config_file), "train", "table", str(spec), "--backtest",
                                          "--model", "logistic_regression", "--period-rows", "300", "--json"])
    finally:
        mlflow.set_tracking_uri(None)
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert set(figures["pooled"]) == set(figures["train_once"]) == {"roc_auc", "pr_auc", "ece"}
    assert len(figures["periods"]) == math.ceil((ROWS - int(ROWS * 0.4)) / 300)  # the last one shorter
    assert {"start", "end", "train_rows", "test_rows", "rolling", "train_once"} <= set(figures["periods"][0])
    assert figures["pooled"]["roc_auc"] > figures["train_once"]["roc_auc"]


@pytest.mark.parametrize(("options", "message"), [
    (["--window", "sliding"], "needs its length"), (["--model", "forest"], "model")])
def test_bad_options_are_usage_errors(tmp_path, options, message):
    spec = spec_file(tmp_path)
    result = CliRunner().invoke(app, ["train", "table", str(spec), "--backtest", *options])
    assert result.exit_code == 2 and message in result.output
