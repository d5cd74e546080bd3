"""A user's flat table: its YAML spec, read and checked, labelled, its feature columns.

Kept apart from training on it (training/flat.py) and light to import, so that a mistake in
a spec or a table (an unknown column, the wrong separator, a target that gives one class) is
said within a second, before the models' libraries load.

The YAML names the table (CSV or Parquet, how to read it, optionally left-joined with more
tables and filtered by a condition), the id column (or the row number), the target, an
optional time column (or "the rows are in time order"), the columns to use or leave out,
when each column becomes known, the tokens that mean "not filled in", and an optional rule
baseline.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import duckdb
import numpy as np
import pandas as pd
import yaml
from pydantic import Field, ValidationError, model_validator

from leadscore.config import Settings, StrictModel, validation_problems
from leadscore.scoring.spec import FeatureSet

log = logging.getLogger(__name__)
ROW = "@row"  # `id: "@row"`: the row number is the id; `time: "@row"`: the rows are in time order
ROW_ID = "row_number"
KNOWN = ("at_entry", "after_outcome")  # or the name of the column that holds when it was recorded

class Target(StrictModel):
    column: str
    positive: str | int | float | bool | Literal["present"] = 1  # "present": any non-missing value


class Join(StrictModel):
    table: str
    key: str  # the column both tables share
    # rows of the table that find no row of this one are counted and reported; above this share
    # the run stops (a key spelled differently on each side); null: reported only
    max_unmatched: float | None = Field(None, ge=0, le=1)


class ReadOptions(StrictModel):
    """How to read a CSV table (Parquet needs none)."""

    sep: str = ","  # the column separator: "," ";" "\t" "|"
    encoding: str = "utf-8"  # e.g. latin-1, cp1252
    decimal: str = "."  # "," for 3,14


class SplitShares(StrictModel):
    validation: float = Field(0.2, gt=0, lt=0.5)
    test: float = Field(0.2, gt=0, lt=0.5)
    seed: int = 42


class TableSpec(StrictModel):
    name: str = Field(pattern=r"^[a-z0-9_]+$")
    table: str
    read: ReadOptions = ReadOptions()
    join: list[Join] = []
    where: str | None = None  # rows kept: an SQL condition on the columns (DuckDB), after the joins
    id: str  # the id column, or "@row" for the row number
    target: Target
    time: str | None = None  # the time column, or "@row" when the rows are in time order
    use: list[str] | None = None
    exclude: list[str] = []
    # when each column becomes known: at_entry (the default), after_outcome (left out), or the
    # name of the column that holds when it was recorded (the leakage guard checks it per row)
    known: dict[str, str] = {}
    missing_values: list[str] = []
    split: SplitShares = SplitShares()
    rules: str | None = None  # a rule baseline file beside the spec (scoring_rules.yaml format)
    source: Path  # the spec file, given by load_spec

    @model_validator(mode="after")
    def _recorded_times_need_a_time(self) -> TableSpec:
        timed = sorted(column for column, when in self.known.items() if when not in KNOWN)
        if timed and (self.time is None or self.time == ROW):
            raise ValueError(f"known: {timed} name a recording time, which is compared with each row's "
                             "time: name the time column (`time:`)")
        return self

    @property
    def id_column(self) -> str:
        return ROW_ID if self.id == ROW else self.id

    @property
    def recorded_at(self) -> dict[str, str]:
        """Column -> the column of its recording time (`known:` entries that name one)."""
        return {column: when for column, when in self.known.items() if when not in KNOWN}

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


def _read(path: Path, missing: list[str], options: ReadOptions) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path).replace(missing, np.nan)
    try:
        return pd.read_csv(path, na_values=missing, keep_default_na=True, sep=options.sep,
                           encoding=options.encoding, decimal=options.decimal)
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} is not {options.encoding} text ({error.reason} at byte {error.start}): "
                         "give its encoding, e.g. `read: {encoding: latin-1}`") from None


def unmatched_keys(frame: pd.DataFrame, other: pd.DataFrame, key: str) -> pd.Series:
    """The rows' keys (not missing) that no row of `other` holds."""
    keys = frame[key].dropna()
    return keys[~keys.isin(set(other[key].dropna()))]


def _check_join(spec: TableSpec, join: Join, frame: pd.DataFrame, other: pd.DataFrame) -> None:
    """Say how many rows find nothing to join; stop above the join's `max_unmatched`."""
    missed, total = unmatched_keys(frame, other, join.key), int(frame[join.key].notna().sum())
    if not len(missed):
        return
    share = len(missed) / total
    examples = ", ".join(repr(key) for key in missed.drop_duplicates().head(3))
    message = (f"{spec.name}: {len(missed):,} of {total:,} rows ({share:.1%}) find no row of {join.table} "
               f"by {join.key!r} (for example {examples}); a key written differently on each side "
               "(spaces, case, leading zeros) joins nothing")
    if join.max_unmatched is not None and share > join.max_unmatched:
        raise ValueError(f"{message}; more than this join's max_unmatched ({join.max_unmatched:.0%})")
    log.warning(message)


def _filter(spec: TableSpec, frame: pd.DataFrame) -> pd.DataFrame:
    """The rows `where` keeps (DuckDB SQL on the frame's columns)."""
    try:
        kept = duckdb.query_df(frame, "frame", f"SELECT * FROM frame WHERE {spec.where}").df()
    except duckdb.Error as error:
        raise ValueError(f"{spec.name}: where {spec.where!r} is not a condition on the table's "
                         f"columns: {error}") from None
    log.info("%s: where %s keeps %s of %s rows", spec.name, spec.where, f"{len(kept):,}", f"{len(frame):,}")
    return kept


def read_table(spec: TableSpec, settings: Settings) -> pd.DataFrame:
    """The table with its joins (left joins on the given key), filtered by `where`."""
    frame = _read(spec.path(spec.table, settings), spec.missing_values, spec.read)
    for join in spec.join:
        other = _read(spec.path(join.table, settings), spec.missing_values, spec.read)
        for side, table in (("table", frame), ("joined table", other)):
            if join.key not in table:
                raise ValueError(f"{spec.name}: join key {join.key!r} is not a column of the {side}"
                                 f"{_separator_hint(table)}")
        _check_join(spec, join, frame, other)
        frame = frame.merge(other, on=join.key, how="left", suffixes=("", "_joined"))
    return _filter(spec, frame) if spec.where else frame


def _separator_hint(frame: pd.DataFrame) -> str:
    """When the header was read as one column holding another separator, say which."""
    if len(frame.columns) != 1:
        return ""
    header = str(frame.columns[0])
    found = [sep for sep in (";", "\t", "|") if sep in header]
    if not found:
        return ""
    shown = "\\t" if found[0] == "\t" else found[0]
    return (f"; the header was read as one column, which holds '{shown}': is the file separated by it? "
            f'Set `read: {{sep: "{shown}"}}` in the spec')


def _check_columns(spec: TableSpec, frame: pd.DataFrame) -> None:
    named = {"id": [] if spec.id == ROW else [spec.id], "target.column": [spec.target.column],
             "time": [spec.time] if spec.time and spec.time != ROW else [],
             "use": spec.use or [], "exclude": spec.exclude, "known": list(spec.known),
             "known (recording times)": list(spec.recorded_at.values())}
    for key, columns in named.items():
        unknown = [column for column in columns if column not in frame.columns]
        if unknown:
            raise ValueError(f"{spec.name}: {key} names unknown columns {unknown}; "
                             f"columns are: {', '.join(map(str, frame.columns))}{_separator_hint(frame)}")


def labels(spec: TableSpec, frame: pd.DataFrame) -> pd.Series:
    """1/0 from the target column; a clear error when only one class is left."""
    values, positive = frame[spec.target.column], spec.target.positive
    if values.empty:
        raise ValueError(f"{spec.name}: no rows left to train on (after `where:`, if the spec has one)")
    if positive == "present":
        label = values.notna()
    elif isinstance(positive, int | float) and not isinstance(positive, bool) and \
            pd.api.types.is_numeric_dtype(values):  # 1 against 1.0: a column with blanks is read as floats
        label = values == positive
    else:
        label = values.astype(str) == str(positive)
    label = label.astype(int)
    if label.nunique() < 2:
        hint = ""
        if isinstance(spec.target.positive, bool):
            hint = ("; note: positive was read as the boolean "
                    f"{spec.target.positive} (YAML reads an unquoted yes, no, on, off, true or false so): "
                    f"if the column holds that word, quote it (positive: \"yes\")")
        seen = ", ".join(map(repr, values.dropna().astype(str).value_counts().index[:5]))
        raise ValueError(f"{spec.name}: target {spec.target.column!r} with positive "
                         f"{spec.target.positive!r} gives only class {label.iloc[0]} in {len(label)} rows "
                         f"(its most common values: {seen}){hint}")
    return label


def feature_columns(spec: TableSpec, frame: pd.DataFrame) -> FeatureSet:
    """`use` (or every column) minus the id, target, time and `exclude`; numbers are numeric,
    anything else categorical. Columns joined in from other tables are candidates too: the
    leakage guard decides whether they are outcome data."""
    after_outcome = [column for column, when in spec.known.items() if when == "after_outcome"]
    reserved = {spec.id_column, spec.target.column, *([spec.time] if spec.time else []), *spec.exclude,
                *after_outcome, *spec.recorded_at.values(), "label", "event_timestamp"}
    columns = [c for c in (spec.use or list(frame.columns)) if c not in reserved]
    empty = [c for c in columns if frame[c].isna().all()]
    if empty:
        log.warning("%s: left out, no row has a value: %s", spec.name, empty)
    columns = [c for c in columns if c not in empty]
    numeric = [c for c in columns if pd.api.types.is_numeric_dtype(frame[c])]
    for column in _decimal_comma_columns(frame, [c for c in columns if c not in numeric]):
        log.warning("%s: %r holds numbers written with a decimal comma, read as text: if so, set "
                    '`read: {decimal: ","}`', spec.name, column)
    return FeatureSet(numeric=numeric, categorical=[c for c in columns if c not in numeric])


def _decimal_comma_columns(frame: pd.DataFrame, columns: list[str]) -> list[str]:
    """Text columns whose values are nearly all numbers like 3,14 (a decimal comma misread)."""
    return [c for c in columns if frame[c].dropna().astype(str).str.fullmatch(r"-?\d+,\d+").mean() > 0.9]


def table_frame(spec: TableSpec, settings: Settings) -> tuple[pd.DataFrame, FeatureSet]:
    """The table with `label` and `event_timestamp` (the time column, else the load time)."""
    frame = read_table(spec, settings)
    _check_columns(spec, frame)
    frame = frame.assign(label=labels(spec, frame))
    if spec.id == ROW:
        frame = frame.assign(**{ROW_ID: np.arange(len(frame))})
    if spec.time == ROW:  # only the order is known: one second apart, in the file's order
        start = pd.Timestamp("2000-01-01", tz="UTC")
        frame = frame.assign(event_timestamp=start + pd.to_timedelta(np.arange(len(frame)), unit="s"))
    elif spec.time:
        times = pd.to_datetime(frame[spec.time], utc=True, errors="coerce")
        if times.isna().any():
            raise ValueError(f"{spec.name}: time column {spec.time!r} has {int(times.isna().sum())} "
                             "values that are not dates")
        frame = frame.assign(event_timestamp=times)
    else:
        frame = frame.assign(event_timestamp=pd.Timestamp(datetime.now(timezone.utc).date(), tz="UTC"))
    for column in set(spec.recorded_at.values()):  # recording times, compared with the row's time
        times = pd.to_datetime(frame[column], utc=True, errors="coerce")
        bad = int((times.isna() & frame[column].notna()).sum())
        if bad:
            raise ValueError(f"{spec.name}: known names {column!r} as a recording time, but {bad} of its "
                             "values are not dates")
        frame[column] = times
    return frame, feature_columns(spec, frame)
