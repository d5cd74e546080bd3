"""The Feast store from leadscore's side: apply, materialise, read.

`apply` runs Feast's own CLI (`feast apply`) on the repo, as Feast teaches;
reads and materialisation use the Python SDK. LEADSCORE_DATA_DIR tells the
repo where this world's files live.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from leadscore.config import (
    DATA_DIR_ENV_VAR,
    OFFLINE_STORE_ENV_VAR,
    REDIS_ENV_VAR,
    SETTINGS_ENV_VAR,
    Settings,
)
from leadscore.features.build import GRID_EPOCH, GRID_VIEWS

# Feast's modules call warnings.simplefilter("once", DeprecationWarning) when imported: every
# library's deprecation warnings would then show in each process that reads features (the
# CLI, the service's workers: SQLAlchemy's under MLflow, tornado's under BentoML), whatever
# -W or PYTHONWARNINGS said. Imported inside catch_warnings, it leaves the filters as they were.
with warnings.catch_warnings():
    from feast import FeatureService, FeatureStore, FeatureView, FileSource
    from feast.data_source import DataSource
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value as ValueProto
    from feast.type_map import feast_value_type_to_python_type

    from leadscore.features.online_store import (
        ColumnRows,
        ColumnWrite,
        OnlineRead,
        OnlineWrite,
        Read,
        Row,
        column_writer,
        online_column_writer,
        online_reader,
        online_writer,
        proto_values,
        read_back,
    )

log = logging.getLogger(__name__)
# Feast's DuckDB offline store calls an ibis API that DuckDB deprecated: noise for users,
# even where deprecation warnings are shown (-W default).
warnings.filterwarnings("ignore", message=".*fetch_arrow_table", category=DeprecationWarning)

FEATURE_SERVICE = "lead_scoring_v1"
ACCOUNT_FEATURE_SERVICE = "account_scoring_v1"  # keyed by cid (features/definitions.py)
# The embedded store's files under <data_dir>/feast, as features/feature_store.yaml names them.
SQLITE_REGISTRY, SQLITE_ONLINE_STORE = "registry.db", "online_store.db"
ENTITY_KEY = "pid"
# rows just written, as the store reads them back: view -> pid -> (timestamp, values)
Written = Mapping[str, Mapping[str, tuple[datetime, dict[str, ValueProto]]]]
# Entity rows per `get_historical_features` query (see historical_features). On the default
# world the training set's 467k rows then peak at 1.3 GiB in all, where one query took 9.3,
# and take less time (50,000: 2.0 GiB).
HISTORICAL_CHUNK_ROWS = 20_000
Progress = Callable[[str, int], object]  # a view's name and its rows loaded so far
ROW_NUMBER = "__entity_row"  # the entity row's position, carried through Feast's join


def store_yaml(settings: Settings) -> Path:
    """The repo's feature_store yaml for the configured online store."""
    name = {"sqlite": "feature_store.yaml", "redis": "feature_store.redis.yaml"}
    return settings.feature_repo / name[settings.features.online_store]


def feast_env(settings: Settings, settings_file: Path | None = None) -> dict[str, str]:
    """Environment under which the repo's yaml and definitions find this world's files."""
    env = {DATA_DIR_ENV_VAR: str(settings.data_dir), REDIS_ENV_VAR: settings.features.redis,
           OFFLINE_STORE_ENV_VAR: settings.engine}
    if settings_file is not None:
        env[SETTINGS_ENV_VAR] = str(settings_file)
    return env


def apply(settings: Settings, settings_file: Path | None = None) -> None:
    """`feast apply` on the feature repo (registers entities, views, the feature service)."""
    (settings.data_dir / "feast").mkdir(parents=True, exist_ok=True)
    if settings.features.online_store == "sqlite":
        forget_tables_elsewhere(settings.data_dir / "feast")
    env = {**os.environ, **feast_env(settings, settings_file)}
    feast_cli = Path(sys.executable).parent / "feast"
    result = subprocess.run([str(feast_cli), "-f", str(store_yaml(settings)), "apply"],
                            cwd=settings.feature_repo, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"feast apply failed:\n{result.stdout}\n{result.stderr}")
    log.info("feast apply: %s", result.stdout.strip().replace("\n", "; "))


def forget_tables_elsewhere(feast_dir: Path) -> int:
    """Take out of the SQLite store's registry the online tables it lists in another folder.

    Feast's registry lists the online store's tables with the store file's absolute path. In
    a world copied with its registry (a side-by-side experiment, a benchmark's copy) those are
    the original's tables, and `feast apply` would drop them there as tables this store no
    longer has, emptying the original world's online store. Forgotten first, the apply makes
    this store's own; the views' materialised intervals go too (they were the original's), so
    that the next materialisation loads this store in full. Returns how many were forgotten."""
    from feast.protos.feast.core.Registry_pb2 import Registry

    path = feast_dir / SQLITE_REGISTRY
    if not path.is_file():
        return 0
    registry = Registry()
    registry.ParseFromString(path.read_bytes())
    own = (feast_dir / SQLITE_ONLINE_STORE).resolve()
    objects = registry.infra.infra_objects
    kept = [item for item in objects if item.WhichOneof("infra_object") != "sqlite_table"
            or Path(item.sqlite_table.path).resolve() == own]
    forgotten = len(objects) - len(kept)
    if forgotten:
        del objects[:]
        objects.extend(kept)
        for view in registry.feature_views:
            del view.meta.materialization_intervals[:]
        partial = path.with_suffix(".db.partial")
        partial.write_bytes(registry.SerializeToString())
        os.replace(partial, path)
        log.info("feast registry: %d online table(s) of another folder's store forgotten", forgotten)
    return forgotten


@contextmanager
def scoped_environment(env: dict[str, str]) -> Iterator[None]:
    """Set variables for the duration of a block, then restore them."""
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def open_store(settings: Settings) -> FeatureStore:
    """The SDK handle on this world's store. The yaml's ${...} variables are read while the
    store is built; the process environment is left as it was, so that subprocesses and
    later settings are not pointed at this world."""
    with scoped_environment(feast_env(settings)):
        store = FeatureStore(repo_path=str(settings.feature_repo), fs_yaml_file=store_yaml(settings))
    if settings.engine == "spark":  # Feast starts it on its first offline query (the service never does)
        from leadscore.spark import session_conf

        store.config.offline_store.spark_conf = session_conf(settings.spark)
    else:
        _hold_offline_store(settings)
    return store


def _hold_offline_store(settings: Settings) -> None:
    """Feast's DuckDB offline store runs every query (materialisation, training sets, batch
    scores) on ibis's default DuckDB connection, one per process, which would take up to 80%
    of the machine's memory before spilling: it gets the configured limit and spill folder."""
    import ibis

    connection = ibis.get_backend()
    for key, value in settings.duckdb_config.items():
        connection.raw_sql(f"SET {key} = '{value}'")


def materialize(store: FeatureStore, as_of: datetime, full: bool = False,
                progress: Progress | None = None) -> str:
    """Bring the online store up to `as_of` (the feature clock) and say how.

    A full load is `load_online` (Feast's `materialize` writes the same rows with about 2x
    the CPU on SQLite, 15x on Redis). Incremental (Feast's `materialize-incremental`) for the
    grid views: each loads the rows after its last materialised end. The views a build
    rewrites whole (fit, company profiles: rows keep their old timestamps) always reload in
    full. Full for everything: the first time (Feast would otherwise start a year before the
    wall clock) and after a full build, which may have rewritten history (identity merges)."""
    views = store.list_feature_views()
    end = as_of + timedelta(seconds=1)
    if full or any(view.most_recent_end_time is None for view in views):
        load_online(store, GRID_EPOCH, end, progress)
        return "full"
    store.materialize(start_date=GRID_EPOCH, end_date=end,
                      feature_views=[view.name for view in views if view.name not in GRID_VIEWS])
    store.materialize_incremental(
        end_date=end, feature_views=[view.name for view in views if view.name in GRID_VIEWS])
    return "incremental"


def load_online(store: FeatureStore, start: datetime, end: datetime,
                progress: Progress | None = None) -> dict[str, int]:
    """A full load of the online store: each view's latest row per entity with a timestamp in
    [start, end], as Feast's `materialize(start, end)` writes them, and each view's
    materialisation interval recorded in the registry as it records it (so that
    `materialize-incremental` follows on). Returns the entities written per view;
    `progress` is told each view's rows so far as they go.

    Why not `materialize`: it reads the rows through its offline store's ibis plan into
    pandas and converts every value with its type checks, 470-1,300 entities/s here. Here
    DuckDB reads the latest rows straight from the view's Parquet source, in Arrow batches,
    and each batch goes to the online store's write by column (`column_rows`; Feast's SQLite
    and Redis stores, features/online_store.py), or for another store to its own batch write
    (`write_rows`)."""
    written: dict[str, int] = {}
    # the widest first: Redis takes longest over them while the others are read and built
    views = sorted(store.list_feature_views(), key=lambda view: -len(view.features))
    with column_writer(store) as write_columns, duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        chunk = LOAD_CHUNK if write_columns is None else COLUMN_CHUNK
        write = view_writer(store, write_columns)
        for view in views:
            written[view.name] = 0
            for batch in _latest_rows(con, view, start, end, chunk):
                write(view, batch)
                written[view.name] += batch.num_rows
                if progress:
                    progress(view.name, written[view.name])
    for view in views:  # once every row is written
        store.registry.apply_materialization(view, store.project, start, end)
        log.info("online store: %d rows of %s", written[view.name], view.name)
    return written


LOAD_CHUNK = 20_000  # rows per online write of a full load through a store's batch write
# rows per batch of a full load by column: smaller, so that Redis, which runs the HSETs while
# the next batch is built, gets its first sooner (on the default world 0.56-0.60 s for the
# load against 0.77-0.87 with LOAD_CHUNK); SQLite's load takes as long either way
COLUMN_CHUNK = 4_000


def _latest_rows(con: duckdb.DuckDBPyConnection, view: FeatureView, start: datetime,
                 end: datetime, rows: int) -> Iterator[pa.RecordBatch]:
    """The view's latest source row per entity with a timestamp in [start, end] (the bounds
    and the tie-break of Feast's `pull_latest_from_table_or_query`), `rows` at a time, read
    on `con` (a connection in UTC)."""
    source = _batch_source(view)
    path = getattr(source, "path", None)  # a FileSource's or a SparkSource's (features/definitions.py)
    if not isinstance(path, str):
        raise ValueError(f"feature view {view.name}: its source {source.name} has no Parquet path to read")
    keys = ", ".join(view.join_keys)
    stamp = source.timestamp_field
    columns = ", ".join([*view.join_keys, *(f.name for f in view.features), stamp])
    bounded = f"{stamp}::TIMESTAMPTZ"  # a source written by pandas has nanoseconds, DuckDB's microseconds
    query = con.sql(f"SELECT {columns} FROM read_parquet('{path}') "
                    f"WHERE {bounded} >= '{start.isoformat()}'::TIMESTAMPTZ "
                    f"AND {bounded} <= '{end.isoformat()}'::TIMESTAMPTZ "
                    f"QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY {stamp} DESC) = 1")
    yield from query.to_arrow_reader(rows)


def _batch_source(view: FeatureView) -> DataSource:
    """The view's batch source, which every view of features/definitions.py has."""
    if view.batch_source is None:
        raise ValueError(f"feature view {view.name} has no batch source")
    return view.batch_source


ViewWrite = Callable[[FeatureView, pa.RecordBatch], None]  # a view's rows, in Arrow, written


def view_writer(store: FeatureStore, by_column: ColumnWrite | None = None) -> ViewWrite:
    """The store's write of a view's rows (its join key, its features, its source's timestamp
    column), made once for a caller that writes often: by column where the store has a write
    by column (`by_column`, else `online_column_writer`'s), else through its batch write
    (`write_rows`, the writer made once)."""
    by_column = by_column or online_column_writer(store)
    if by_column is not None:
        return lambda view, rows: by_column(store.config, view, column_rows(view, rows))
    by_rows = online_writer(store)

    def write(view: FeatureView, rows: pa.RecordBatch) -> None:
        write_rows(store, view, rows, by_rows)
    return write


def write_rows(store: FeatureStore, view: FeatureView, rows: pa.Table | pa.RecordBatch,
               write: OnlineWrite | None = None) -> list[Row]:
    """Write a view's rows (its join key, its features, its source's timestamp column) with
    the online store's batch write (`online_write_batch`; for Feast's SQLite and Redis
    stores leadscore's, features/online_store.py: one SQLite transaction, HSETs sent 2,000
    at a time; `write`: the store's `online_writer`, made once by a caller that writes
    often), the values as Feast's `write_to_online_store` converts them.

    Feast converts value by value with type checks: about 10 microseconds each here, most of
    a write. A feature column holds few distinct values (counts, bands, rates), so each
    distinct value's proto is built once and shared by the rows that hold it (the store only
    serialises them); a missing value (null, NaN) is an empty Value, as Feast writes it.
    Returns the rows as given to the store."""
    data = feast_rows(view, rows)
    (write or online_writer(store))(store.config, view, data, None)
    return data


def feast_rows(view: FeatureView, rows: pa.Table | pa.RecordBatch) -> list[Row]:
    """A view's rows as Feast's batch writes take them: each entity's key, its values'
    protos (each column's distinct values converted once, `proto_values`) and timestamp."""
    key = view.join_keys[0]
    keys = _entity_keys(key, [str(value) for value in rows.column(key).to_pylist()])
    columns = {field.name: proto_values(rows.column(field.name).to_pylist(), field.dtype.to_value_type())
               for field in view.features}
    stamps = rows.column(_batch_source(view).timestamp_field).to_pylist()
    return [(entity, dict(zip(columns, values, strict=True)), stamp, None)
            for entity, stamp, *values in zip(keys, stamps, *columns.values(), strict=True)]


def column_rows(view: FeatureView, rows: pa.RecordBatch) -> ColumnRows:
    """A batch of a view's rows (its join key, its features, its source's timestamp column)
    by column: ids as `write_rows` gives them (strings), each feature with the value type
    Feast writes it as."""
    key = view.join_keys[0]
    return ColumnRows(join_key=key, ids=rows.column(key).cast(pa.string()),
                      stamps=rows.column(_batch_source(view).timestamp_field),
                      features={field.name: (rows.column(field.name), field.dtype.to_value_type())
                                for field in view.features})


def feature_refs(store: FeatureStore) -> list[str]:
    """'view:feature' of every feature in the feature service, in a stable order."""
    service = store.get_feature_service(FEATURE_SERVICE)
    return [f"{projection.name}:{feature.name}"
            for projection in service.feature_view_projections for feature in projection.features]


def historical_features(store: FeatureStore, entity_df: pd.DataFrame,
                        chunk_rows: int = HISTORICAL_CHUNK_ROWS,
                        service_name: str = FEATURE_SERVICE) -> pd.DataFrame:
    """Point-in-time join: entity_df (pid, event_timestamp, ...) plus every service feature,
    one row per entity row, in entity_df's order.

    Feast's DuckDB offline store joins each entity row to every row of its person within a
    view's ttl, then keeps the latest by a window over that whole join: for the default
    world's training set (467k rows, a year of weekly rows each) some 9 GB held at once for
    a 390 MB answer. Asked `chunk_rows` entity rows at a time, the join holds one chunk's.
    Feast returns rows in the order its threads finish them; they are put back in entity_df's
    order, so that the same entities give the same frame (and the same model) on every run.
    `service_name`: another feature service (the account model's, keyed by cid). Feast's Spark
    offline store (`engine: spark`) is asked once: Spark spills what does not fit, and each
    query is a job of its own. Its timestamps come back naive (in the session's UTC): they are
    given entity_df's type."""
    service = store.get_feature_service(service_name)
    _check_sources_fit_engine(store, service)
    numbered = entity_df.reset_index(drop=True).assign(**{ROW_NUMBER: range(len(entity_df))})
    if store.config.offline_store.type == "spark":
        chunk_rows = max(len(numbered), 1)
    parts = []
    for start in range(0, max(len(numbered), 1), chunk_rows):
        chunk = numbered.iloc[start:start + chunk_rows].copy()  # Feast writes into the frame it gets
        part = store.get_historical_features(entity_df=chunk, features=service).to_df()
        parts.append(part.sort_values(ROW_NUMBER).drop(columns=ROW_NUMBER))
    frame = pd.concat(parts, ignore_index=True)
    stamps, wanted = frame["event_timestamp"], entity_df["event_timestamp"].dtype
    if stamps.dtype != wanted:  # Spark's: naive, in the session's UTC
        frame["event_timestamp"] = (stamps if stamps.dt.tz else stamps.dt.tz_localize("UTC")).astype(wanted)
    return frame


def _check_sources_fit_engine(store: FeatureStore, service: FeatureService) -> None:
    """The registry's sources are those `features apply` wrote for the engine of its day (a
    FileSource for DuckDB, a SparkSource for Spark): after `engine` changed, Feast's offline
    store would refuse them with its own words, not say what to run."""
    spark = store.config.offline_store.type == "spark"
    other = [projection.name for projection in service.feature_view_projections
             if isinstance(store.get_feature_view(projection.name).batch_source, FileSource) == spark]
    if other:
        engine = "spark" if spark else "duckdb"
        raise ValueError(f"the feature registry's sources of {', '.join(other)} were applied for another "
                         f"engine than `engine: {engine}`: run `leadscore features apply` after changing it")


def entity_rows(people: pd.DataFrame, times: list[datetime]) -> pd.DataFrame:
    """(pid, event_timestamp) for each person at each time they were already known."""
    rows = people[[ENTITY_KEY, "identified_at"]].merge(pd.DataFrame({"event_timestamp": times}),
                                                       how="cross")
    return rows[rows["identified_at"] <= rows["event_timestamp"]][[ENTITY_KEY, "event_timestamp"]]


@dataclass
class OnlineRows:
    """An online read: feature name -> one value per PID, whether each PID is known, and
    when its freshest feature row was computed (None when unknown); `stamps`: feature name ->
    when the row it came from was computed, per PID (a view's rows are written apart: a
    colleague's engagement rewrites a person's account row, not their interest row)."""

    pids: list[str]
    columns: dict[str, list]
    known: list[bool]
    updated_at: list[datetime | None]
    stamps: dict[str, list[datetime | None]] = field(default_factory=dict)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({ENTITY_KEY: self.pids, **self.columns}).assign(known=self.known)


class OnlineFeatures:
    """Online reads of the scoring service for PIDs, through Feast's online store interface.

    `FeatureStore.get_online_features` resolves the feature service in the registry, copies
    every value into a response protobuf and converts that back to Python on each call: two
    thirds of a one-PID read. Here the service's views and features are resolved once, and a
    read is the provider's `online_read` of each view (what `get_online_features` calls
    underneath, one query per view, values as Feast's protobufs), each value converted as
    Feast's own `feast_value_type_to_python_type` converts it (`_python_value`). The values
    and timestamps are those `get_online_features(...).to_dict(include_event_timestamps=True)`
    gives (timestamps to the second, as its response carries them). Each read passes a copy of
    the feature names: Feast's Redis store appends its timestamp key to the list it is given."""

    def __init__(self, store: FeatureStore):
        self.store = store
        self.service = store.get_feature_service(FEATURE_SERVICE)
        self.views: list[tuple[FeatureView, list[str]]] = [
            (store.get_feature_view(projection.name).with_projection(projection),
             [feature.name for feature in projection.features])
            for projection in self.service.feature_view_projections]
        self._online_read = online_reader(store)

    def read_rows(self, pids: list[str], written: Written | None = None) -> OnlineRows:
        """`written`: view -> pid -> (timestamp, values) of rows just written, as the store's
        read gives them (`written_rows`): served as they are, not read again."""
        keys = _entity_keys(ENTITY_KEY, pids)
        columns: dict[str, list] = {}
        stamps: list[list[datetime | None]] = []
        by_feature: dict[str, list[datetime | None]] = {}
        for view, names in self.views:
            rows = self._view_rows(view, names, pids, keys, (written or {}).get(view.name, {}))
            for name in names:
                columns[name] = [_python_value(values, name) for _, values in rows]
            stamps.append([stamp for stamp, _ in rows])
            by_feature.update(dict.fromkeys(names, stamps[-1]))
        known = [any(column[i] is not None for column in columns.values()) for i in range(len(pids))]
        updated = [_freshest([row[i] for row in stamps]) if known[i] else None for i in range(len(pids))]
        return OnlineRows(list(pids), columns, known, updated, by_feature)

    def _view_rows(self, view: FeatureView, names: list[str], pids: list[str], keys: list[EntityKey],
                   written: Mapping[str, tuple[datetime, dict[str, ValueProto]]]) -> Read:
        """One view's rows of these PIDs: those in `written`, the others read."""
        missing = [key for pid, key in zip(pids, keys, strict=True) if pid not in written]
        read = iter(self._online_read(self.store.config, view, missing, list(names)) if missing else ())
        return [written[pid] if pid in written else next(read) for pid in pids]

    def read(self, pids: list[str]) -> pd.DataFrame:
        """One row per PID, plus `known` (False when the store has no row for it)."""
        return self.read_rows(pids).frame()


def written_rows(store: FeatureStore, views: Mapping[str, FeatureView], data: Mapping[str, pa.RecordBatch],
                 pids: Collection[str]) -> Written | None:
    """What `OnlineFeatures.read_rows` would read of `pids` right after the pid-keyed views'
    rows `data` (view name -> the rows written, `views` by name) were written, or None for a
    store whose read is not known here (features/online_store.py `read_back`)."""
    as_read = read_back(store)
    if as_read is None:
        return None
    wanted = pa.array(list(pids), pa.string())
    return {name: {key.entity_values[0].string_val: (as_read(stamp), values)
                   for key, values, stamp, _ in feast_rows(views[name], rows.filter(
                       pc.is_in(rows.column(ENTITY_KEY).cast(pa.string()), wanted)))}
            for name, rows in data.items()}


def read_view(store: FeatureStore, view: str | FeatureView, key: str, ids: list[str],
              names: list[str], read: OnlineRead | None = None) -> list[dict[str, object] | None]:
    """One view's online values for these entities (join key `key`), as OnlineFeatures reads
    them; None for an entity the store has no row of. (`view`: its name, or the view itself:
    Feast builds a view from the registry's proto on each lookup, ~10 ms. `read`: the
    store's `online_reader`, for a caller that reads often; else the provider's.)"""
    feature_view = store.get_feature_view(view) if isinstance(view, str) else view
    read = read or store.provider.online_read
    rows = read(store.config, feature_view, _entity_keys(key, ids), list(names))
    return [None if values is None else {name: _python_value(values, name) for name in names}
            for _, values in rows]


def _entity_keys(key: str, ids: list[str]) -> list[EntityKey]:
    """Feast's entity keys of string ids (the proto `python_values_to_proto_values` builds for
    a string, without its per-value type checks: a full load has tens of thousands)."""
    return [EntityKey(join_keys=[key], entity_values=[ValueProto(string_val=value)]) for value in ids]


# Value kinds whose Python value is the proto's field itself: what Feast's
# `feast_value_type_to_python_type` returns for them, after a dozen checks for the other kinds
# (~1.3 against ~0.5 µs a value; a /score reads 66 of them, an ingest group thousands).
_PLAIN_KINDS = frozenset({"int32_val", "int64_val", "float_val", "double_val", "string_val", "bool_val",
                          "bytes_val"})


def _python_value(values: dict | None, name: str) -> object:
    """A feature's value from an `online_read` row (None when the row or the value is missing)."""
    value = values.get(name) if values else None
    if value is None:
        return None
    kind = value.WhichOneof("val")
    return getattr(value, kind) if kind in _PLAIN_KINDS else feast_value_type_to_python_type(value)


def _freshest(stamps: list[datetime | None]) -> datetime:
    """The latest of a PID's feature rows' timestamps (None: no row in that view), to the second."""
    return _to_the_second(max(stamp for stamp in stamps if stamp is not None))


def _to_the_second(stamp: datetime) -> datetime:
    """A feature row's timestamp in UTC to the second, as Feast's online response carries it."""
    return stamp.astimezone(UTC).replace(microsecond=0)


def online_features(store: FeatureStore, pids: list[str]) -> pd.DataFrame:
    """Online values for PIDs, one row each, plus `known` (for one-off reads)."""
    return OnlineFeatures(store).read(pids)
