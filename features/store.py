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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from leadscore.config import DATA_DIR_ENV_VAR, REDIS_ENV_VAR, SETTINGS_ENV_VAR, Settings
from leadscore.features.build import GRID_EPOCH, GRID_VIEWS

# Feast's modules call warnings.simplefilter("once", DeprecationWarning) when imported: every
# library's deprecation warnings would then show in each process that reads features (the
# CLI, the service's workers: SQLAlchemy's under MLflow, tornado's under BentoML), whatever
# -W or PYTHONWARNINGS said. Imported inside catch_warnings, it leaves the filters as they were.
with warnings.catch_warnings():
    from feast import FeatureStore, FeatureView
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.type_map import feast_value_type_to_python_type, python_values_to_proto_values
    from feast.value_type import ValueType

log = logging.getLogger(__name__)
# Feast's DuckDB offline store calls an ibis API that DuckDB deprecated: noise for users,
# even where deprecation warnings are shown (-W default).
warnings.filterwarnings("ignore", message=".*fetch_arrow_table", category=DeprecationWarning)

FEATURE_SERVICE = "lead_scoring_v1"
ENTITY_KEY = "pid"


def store_yaml(settings: Settings) -> Path:
    """The repo's feature_store yaml for the configured online store."""
    name = {"sqlite": "feature_store.yaml", "redis": "feature_store.redis.yaml"}
    return settings.feature_repo / name[settings.features.online_store]


def feast_env(settings: Settings, settings_file: Path | None = None) -> dict[str, str]:
    """Environment under which the repo's yaml and definitions find this world's files."""
    env = {DATA_DIR_ENV_VAR: str(settings.data_dir), REDIS_ENV_VAR: settings.features.redis}
    if settings_file is not None:
        env[SETTINGS_ENV_VAR] = str(settings_file)
    return env


def apply(settings: Settings, settings_file: Path | None = None) -> None:
    """`feast apply` on the feature repo (registers entities, views, the feature service)."""
    (settings.data_dir / "feast").mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **feast_env(settings, settings_file)}
    feast_cli = Path(sys.executable).parent / "feast"
    result = subprocess.run([str(feast_cli), "-f", str(store_yaml(settings)), "apply"],
                            cwd=settings.feature_repo, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"feast apply failed:\n{result.stdout}\n{result.stderr}")
    log.info("feast apply: %s", result.stdout.strip().replace("\n", "; "))


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
        return FeatureStore(repo_path=str(settings.feature_repo), fs_yaml_file=store_yaml(settings))


def materialize(store: FeatureStore, as_of: datetime, full: bool = False) -> str:
    """Bring the online store up to `as_of` (the feature clock) and say how.

    Incremental (Feast's `materialize-incremental`) for the grid views: each loads the rows
    after its last materialised end. The views a build rewrites whole (fit, company
    profiles: rows keep their old timestamps) always reload in full. Full for everything:
    the first time (Feast would otherwise start a year before the wall clock) and after a
    full build, which may have rewritten history (identity merges)."""
    views = store.list_feature_views()
    end = as_of + timedelta(seconds=1)
    if full or any(view.most_recent_end_time is None for view in views):
        store.materialize(start_date=GRID_EPOCH, end_date=end)
        return "full"
    store.materialize(start_date=GRID_EPOCH, end_date=end,
                      feature_views=[view.name for view in views if view.name not in GRID_VIEWS])
    store.materialize_incremental(
        end_date=end, feature_views=[view.name for view in views if view.name in GRID_VIEWS])
    return "incremental"


def feature_refs(store: FeatureStore) -> list[str]:
    """'view:feature' of every feature in the feature service, in a stable order."""
    service = store.get_feature_service(FEATURE_SERVICE)
    return [f"{projection.name}:{feature.name}"
            for projection in service.feature_view_projections for feature in projection.features]


def historical_features(store: FeatureStore, entity_df: pd.DataFrame) -> pd.DataFrame:
    """Point-in-time join: entity_df (pid, event_timestamp, ...) plus every service feature."""
    service = store.get_feature_service(FEATURE_SERVICE)
    return store.get_historical_features(entity_df=entity_df, features=service).to_df()


def entity_rows(people: pd.DataFrame, times: list[datetime]) -> pd.DataFrame:
    """(pid, event_timestamp) for each person at each time they were already known."""
    rows = people[[ENTITY_KEY, "identified_at"]].merge(pd.DataFrame({"event_timestamp": times}),
                                                       how="cross")
    return rows[rows["identified_at"] <= rows["event_timestamp"]][[ENTITY_KEY, "event_timestamp"]]


@dataclass
class OnlineRows:
    """An online read: feature name -> one value per PID, whether each PID is known, and
    when its freshest feature row was computed (None when unknown)."""

    pids: list[str]
    columns: dict[str, list]
    known: list[bool]
    updated_at: list[datetime | None]

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({ENTITY_KEY: self.pids, **self.columns}).assign(known=self.known)


class OnlineFeatures:
    """Online reads of the scoring service for PIDs, through Feast's online store interface.

    `FeatureStore.get_online_features` resolves the feature service in the registry, copies
    every value into a response protobuf and converts that back to Python on each call: two
    thirds of a one-PID read. Here the service's views and features are resolved once, and a
    read is the provider's `online_read` of each view (what `get_online_features` calls
    underneath, one query per view, values as Feast's protobufs), each value converted by
    Feast's own `feast_value_type_to_python_type`. The values and timestamps are those
    `get_online_features(...).to_dict(include_event_timestamps=True)` gives (timestamps to
    the second, as its response carries them)."""

    def __init__(self, store: FeatureStore):
        self.store = store
        self.service = store.get_feature_service(FEATURE_SERVICE)
        self.views: list[tuple[FeatureView, list[str]]] = [
            (store.get_feature_view(projection.name).with_projection(projection),
             [feature.name for feature in projection.features])
            for projection in self.service.feature_view_projections]

    def read_rows(self, pids: list[str]) -> OnlineRows:
        keys = _entity_keys(ENTITY_KEY, pids)
        columns: dict[str, list] = {}
        stamps: list[list[datetime | None]] = []
        for view, names in self.views:
            rows = self.store.provider.online_read(self.store.config, view, keys, names)
            for name in names:
                columns[name] = [_python_value(values, name) for _, values in rows]
            stamps.append([stamp for stamp, _ in rows])
        known = [any(column[i] is not None for column in columns.values()) for i in range(len(pids))]
        updated = [_to_the_second(max(row[i] for row in stamps if row[i] is not None)) if known[i]
                   else None for i in range(len(pids))]
        return OnlineRows(list(pids), columns, known, updated)

    def read(self, pids: list[str]) -> pd.DataFrame:
        """One row per PID, plus `known` (False when the store has no row for it)."""
        return self.read_rows(pids).frame()


def read_view(store: FeatureStore, view: str, key: str, ids: list[str],
              names: list[str]) -> list[dict[str, object] | None]:
    """One view's online values for these entities (join key `key`), as OnlineFeatures reads
    them; None for an entity the store has no row of."""
    rows = store.provider.online_read(store.config, store.get_feature_view(view), _entity_keys(key, ids),
                                      names)
    return [None if values is None else {name: _python_value(values, name) for name in names}
            for _, values in rows]


def _entity_keys(key: str, ids: list[str]) -> list[EntityKey]:
    return [EntityKey(join_keys=[key], entity_values=[value])
            for value in python_values_to_proto_values(ids, ValueType.STRING)]


def _python_value(values: dict | None, name: str) -> object:
    """A feature's value from an `online_read` row (None when the row or the value is missing)."""
    value = values.get(name) if values else None
    return None if value is None else feast_value_type_to_python_type(value)


def _to_the_second(stamp: datetime) -> datetime:
    """A feature row's timestamp in UTC to the second, as Feast's online response carries it."""
    return stamp.astimezone(UTC).replace(microsecond=0)


def online_features(store: FeatureStore, pids: list[str]) -> pd.DataFrame:
    """Online values for PIDs, one row each, plus `known` (for one-off reads)."""
    return OnlineFeatures(store).read(pids)
