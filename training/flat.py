"""Train on any flat table: one row per lead, described by a YAML file (training/table.py
reads and checks it). The table then goes through the same experiment as the lead model
(leakage guard, three models, calibration, tiers, MLflow), registered as `<name>-propensity`;
or a rolling-origin backtest (training/backtest.py).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from leadscore.config import BacktestSettings, Settings, load_typed
from leadscore.scoring.spec import FeatureSet, RuleSet, TierTable
from leadscore.training.backtest import Backtest, backtest
from leadscore.training.dataset import Split, data_hash
from leadscore.training.experiment import Experiment, Outcome, run_experiment
from leadscore.training.register import git_commit
from leadscore.training.table import ROW, TableSpec, table_frame


def split_table(spec: TableSpec, frame: pd.DataFrame) -> Split:
    """By time when there is a time column (train, then validation, then test), else a
    stratified random split."""
    shares = spec.split
    if spec.time:
        ordered = frame.sort_values("event_timestamp", kind="stable")
        n = len(ordered)
        val_start, test_start = int(n * (1 - shares.validation - shares.test)), int(n * (1 - shares.test))
        return Split(ordered.iloc[:val_start], ordered.iloc[val_start:test_start], ordered.iloc[test_start:])
    rng = np.random.default_rng(shares.seed)
    part = pd.Series("train", index=frame.index)
    for _, group in frame.groupby("label"):
        order = rng.permutation(group.index.to_numpy())
        n_test, n_val = int(len(order) * shares.test), int(len(order) * shares.validation)
        part[order[:n_test]] = "test"
        part[order[n_test:n_test + n_val]] = "validation"
    return Split(frame[part == "train"], frame[part == "validation"], frame[part == "test"])


def table_experiment(spec: TableSpec, settings: Settings,
                     table: tuple[pd.DataFrame, FeatureSet] | None = None) -> Experiment:
    """The experiment on the table (on `table`, its frame and features, when already read)."""
    frame, features = table or table_frame(spec, settings)
    rules = load_typed(spec.path(spec.rules, settings), RuleSet) if spec.rules else None
    config_files = [spec.source, *([spec.path(spec.rules, settings)] if spec.rules else [])]
    tiers = load_typed(settings.config_file(settings.training.tiers_file), TierTable)
    return Experiment(
        name=spec.name, registered_model=f"{spec.name}-propensity", split=split_table(spec, frame),
        features=features, rules=rules, tiers=tiers,
        entity=spec.id_column, about={"table": spec.name, "target": spec.target.column},
        recorded_at=spec.recorded_at,
        tags={"git_commit": git_commit(settings.root), "table": spec.name,
              "training_data_hash": data_hash(frame.drop(columns="event_timestamp"))},
        config_files=config_files)


def train_table(spec: TableSpec, settings: Settings,
                table: tuple[pd.DataFrame, FeatureSet] | None = None) -> Outcome:
    """Train, evaluate and log the three models on a flat table (`table`: its frame and features,
    when already read); register the best."""
    return run_experiment(table_experiment(spec, settings, table), settings)


def backtest_table(spec: TableSpec, settings: Settings, options: BacktestSettings, gap_days: int = 0,
                   on_period: Callable[[int, int], None] | None = None,
                   table: tuple[pd.DataFrame, FeatureSet] | None = None) -> tuple[Backtest, str]:
    """Rolling-origin backtest on a table with a time column (training/backtest.py), logged to
    MLflow in the table's experiment: (result, run id). `gap_days`: how long after a row's time
    its label is known (rows that recent are kept out of the next period's training)."""
    if not spec.time:
        raise ValueError(f"{spec.name}: a backtest needs the rows' times: name the time column "
                         "(`time:`) in the spec, or `time: \"@row\"` when the rows are in time order")
    if spec.time == ROW and options.period_rows is None:
        raise ValueError(f"{spec.name}: rows in time order have no dates: cut the periods by rows "
                         "(--period-rows)")
    frame, features = table or table_frame(spec, settings)
    experiment = table_experiment(spec, settings, (frame, features))
    return backtest(frame, experiment, settings, options, pd.Timedelta(days=gap_days), on_period)
