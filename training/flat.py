"""Train on any flat table: one row per lead, described by a YAML file.

The YAML names the table (CSV or Parquet, optionally left-joined with more
tables), the id column, the target, an optional time column for a time split
(otherwise a stratified random split), the columns to use or leave out, the
tokens that mean "not filled in", and an optional rule baseline. The table then
goes through the same experiment as the lead model (leakage guard, three models,
calibration, tiers, MLflow), registered as `<name>-propensity`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import Field, ValidationError

from leadscore.config import BacktestSettings, Settings, StrictModel, load_typed, validation_problems
from leadscore.scoring.spec import FeatureSet, RuleSet, TierTable
from leadscore.training.backtest import Backtest, backtest
from leadscore.training.dataset import Split, data_hash
from leadscore.training.experiment import Experiment, Outcome, run_experiment
from leadscore.training.register import git_commit


class Target(StrictModel):
    column: str
    positive: str | int | float | bool | Literal["present"] = 1  # "present": any non-missing value


class Join(StrictModel):
    table: str
    key: str  # the column both tables share


class SplitShares(StrictModel):
    validation: float = Field(0.2, gt=0, lt=0.5)
    test: float = Field(0.2, gt=0, lt=0.5)
    seed: int = 42


class TableSpec(StrictModel):
    name: str = Field(pattern=r"^[a-z0-9_]+$")
    table: str
    join: list[Join] = []
    id: str
    target: Target
    time: str | None = None
    use: list[str] | None = None
    exclude: list[str] = []
    missing_values: list[str] = []
    split: SplitShares = SplitShares()
    rules: str | None = None  # a rule baseline file beside the spec (scoring_rules.yaml format)
    source: Path | None = None  # the spec file, filled in by load_spec

    def path(self, value: str, settings: Settings) -> Path:
        """A table path: `${datasets}` is paths.datasets_dir, `${data}` the data dir (build output);
        relative paths are beside the spec."""
        for name, folder in (("${datasets}", settings.datasets_dir), ("${data}", settings.data_dir)):
            value = value.replace(name, str(folder))
        path = Path(value)
        return path if path.is_absolute() else (self.source.parent / path).resolve()


def load_spec(path: Path, settings: Settings) -> TableSpec:
    """Read and check a table YAML; errors name the file and the problem."""
    if not path.is_file():
        raise FileNotFoundError(f"table spec not found: {path}")
    try:
        spec = TableSpec(**(yaml.safe_load(path.read_text()) or {}), source=path.resolve())
    except ValidationError as error:
        raise ValueError(f"{path}: {validation_problems(error)}") from None
    for value in [spec.table, *(join.table for join in spec.join)]:
        if not spec.path(value, settings).is_file():
            raise FileNotFoundError(f"{path}: table not found: {spec.path(value, settings)}")
    return spec


def _read(path: Path, missing: list[str]) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path).replace(missing, np.nan)
    return pd.read_csv(path, na_values=missing, keep_default_na=True)


def read_table(spec: TableSpec, settings: Settings) -> pd.DataFrame:
    """The table with its joins (left joins on the given key)."""
    frame = _read(spec.path(spec.table, settings), spec.missing_values)
    for join in spec.join:
        other = _read(spec.path(join.table, settings), spec.missing_values)
        for side, table in (("table", frame), ("joined table", other)):
            if join.key not in table:
                raise ValueError(f"{spec.name}: join key {join.key!r} is not a column of the {side}")
        frame = frame.merge(other, on=join.key, how="left", suffixes=("", "_joined"))
    return frame


def _check_columns(spec: TableSpec, frame: pd.DataFrame) -> None:
    named = {"id": [spec.id], "target.column": [spec.target.column], "time": [spec.time] if spec.time else [],
             "use": spec.use or [], "exclude": spec.exclude}
    for key, columns in named.items():
        unknown = [column for column in columns if column not in frame.columns]
        if unknown:
            raise ValueError(f"{spec.name}: {key} names unknown columns {unknown}; "
                             f"columns are: {', '.join(map(str, frame.columns))}")


def labels(spec: TableSpec, frame: pd.DataFrame) -> pd.Series:
    """1/0 from the target column; a clear error when only one class is left."""
    values = frame[spec.target.column]
    if spec.target.positive == "present":
        label = values.notna()
    else:
        label = values.astype(str) == str(spec.target.positive)
    label = label.astype(int)
    if label.nunique() < 2:
        raise ValueError(f"{spec.name}: target {spec.target.column!r} with positive "
                         f"{spec.target.positive!r} gives only class {label.iloc[0]} in {len(label)} rows")
    return label


def feature_columns(spec: TableSpec, frame: pd.DataFrame) -> FeatureSet:
    """`use` (or every column) minus the id, target, time and `exclude`; numbers are numeric,
    anything else categorical. Columns joined in from other tables are candidates too: the
    leakage guard decides whether they are outcome data."""
    reserved = {spec.id, spec.target.column, *([spec.time] if spec.time else []), *spec.exclude,
                "label", "event_timestamp"}
    columns = [c for c in (spec.use or list(frame.columns)) if c not in reserved]
    numeric = [c for c in columns if pd.api.types.is_numeric_dtype(frame[c])]
    return FeatureSet(numeric=numeric, categorical=[c for c in columns if c not in numeric])


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


def table_frame(spec: TableSpec, settings: Settings) -> tuple[pd.DataFrame, FeatureSet]:
    """The table with `label` and `event_timestamp` (the time column, else the load time)."""
    frame = read_table(spec, settings)
    _check_columns(spec, frame)
    frame = frame.assign(label=labels(spec, frame))
    if spec.time:
        times = pd.to_datetime(frame[spec.time], utc=True, errors="coerce")
        if times.isna().any():
            raise ValueError(f"{spec.name}: time column {spec.time!r} has {int(times.isna().sum())} "
                             "values that are not dates")
        frame = frame.assign(event_timestamp=times)
    else:
        frame = frame.assign(event_timestamp=pd.Timestamp(datetime.now(timezone.utc).date(), tz="UTC"))
    return frame, feature_columns(spec, frame)


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
        entity=spec.id, about={"table": spec.name, "target": spec.target.column},
        tags={"git_commit": git_commit(settings.root), "table": spec.name,
              "training_data_hash": data_hash(frame.drop(columns="event_timestamp"))},
        config_files=config_files)


def train_table(spec: TableSpec, settings: Settings) -> Outcome:
    """Train, evaluate and log the three models on a flat table; register the best."""
    return run_experiment(table_experiment(spec, settings), settings)


def backtest_table(spec: TableSpec, settings: Settings, options: BacktestSettings, gap_days: int = 0,
                   on_period: Callable[[int, int], None] | None = None) -> tuple[Backtest, str]:
    """Rolling-origin backtest on a table with a time column (training/backtest.py), logged to
    MLflow in the table's experiment: (result, run id). `gap_days`: how long after a row's time
    its label is known (rows that recent are kept out of the next period's training)."""
    if not spec.time:
        raise ValueError(f"{spec.name}: a backtest needs the rows' times: name the time column "
                         "(`time:`) in the spec")
    frame, features = table_frame(spec, settings)
    experiment = table_experiment(spec, settings, (frame, features))
    return backtest(frame, experiment, settings, options, pd.Timedelta(days=gap_days), on_period)
