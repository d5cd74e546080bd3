"""`leadscore bench features`: build, materialisation and online-read figures.

- offline_build: the full build of the current world, and the daily incremental build
  (the last week) of a 1M-person world made by copying the current middle layer's people,
  companies and interactions under new IDs, so that its shape is the real one;
- materialize: a full load of the current world into a fresh online store, SQLite and a real
  redis-server started for the run, by Feast's `materialize` and then by `load_online` (the
  path `leadscore features materialize` takes for a full load), in the same run;
- online_read: one PID's whole `lead_scoring_v1` through the Feast SDK, 1,000 calls each
  on different people, from SQLite and from a real redis-server started for the run.
"""

from __future__ import annotations

import math
import shutil
import sys
import time
from collections.abc import Callable
from contextlib import redirect_stdout
from datetime import timedelta
from pathlib import Path

import duckdb
import numpy as np

from leadscore.config import Settings, load_yaml
from leadscore.duckdb_rows import one_row
from leadscore.features import store as feature_store
from leadscore.features.build import GRID_EPOCH, FitRules, build_features, read_manifest
from leadscore.features.catalog import scoring_specs, settings_catalog
from leadscore.local_servers import redis_server

TARGET_PERSONS = 1_000_000


def _build(settings: Settings, middle_db: Path, out_dir: Path, since=None) -> dict:
    config = load_yaml(settings.config_file("features.yaml"))
    started = time.perf_counter()
    manifest = build_features(
        middle_db, out_dir, settings_catalog(settings),
        FitRules(config["decision_maker_levels"], config["employee_bands"]),
        settings.features.step_days, load_yaml(settings.config_file("tags.yaml")),
        incremental=since is not None, since=since)
    seconds = time.perf_counter() - started
    with duckdb.connect(str(middle_db), read_only=True) as con:
        persons = one_row(con, "SELECT count(*) FROM person")[0]
    rows = sum(manifest["rows"].values())
    return {"persons": persons, "features": len(scoring_specs(settings)), "mode": manifest["mode"],
            "rows": rows, "seconds": seconds, "rows_per_s": rows / seconds}


def replicate_middle_layer(source: Path, target: Path, persons: int) -> int:
    """A middle layer of about `persons` people: whole copies of `source` with suffixed IDs
    (companies and groups copied too, so account sizes stay real). Returns the copies."""
    target.unlink(missing_ok=True)
    with duckdb.connect(str(target)) as con:
        con.execute(f"ATTACH '{source}' AS src (READ_ONLY)")
        copies = math.ceil(persons / one_row(con, "SELECT count(*) FROM src.person")[0])
        suffixed = {"person": ["pid", "cid"], "company": ["cid", "eid"], "interaction": ["pid", "cid"],
                    "person_demand_tag": ["pid"]}  # (the tags' demand: identity/demand.py)
        for table, keys in suffixed.items():
            replaced = ", ".join(f"{key} || '-' || copy AS {key}" for key in keys)
            con.execute(f"CREATE TABLE {table} AS SELECT * EXCLUDE (copy) REPLACE ({replaced}) "
                        f"FROM src.{table}, range({copies}) AS r(copy)")
    return copies


def offline_build(settings: Settings, work: Path) -> dict:
    """The current world in full, and a week's increment of a 1M-person copy of it."""
    default = _build(settings, settings.middle_db, work / "default" / "features")
    big_db = work / "1m" / "middle.duckdb"
    big_db.parent.mkdir(parents=True, exist_ok=True)
    copies = replicate_middle_layer(settings.middle_db, big_db, TARGET_PERSONS)
    as_of = read_manifest(work / "default" / "features")["as_of"]
    since = as_of - timedelta(days=settings.features.step_days)
    big = _build(settings, big_db, work / "1m" / "features", since=since)
    big["copies_of_default_world"] = copies
    big["increment_days"] = settings.features.step_days
    shutil.rmtree(work / "1m", ignore_errors=True)
    return {"default": default, "1m": big}


def _percentiles(call: Callable[[str], object], pids: list[str]) -> dict:
    timings = []
    for pid in pids:
        started = time.perf_counter()
        call(pid)
        timings.append((time.perf_counter() - started) * 1000)
    return {"calls": len(pids), "p50_ms": float(np.percentile(timings, 50)),
            "p99_ms": float(np.percentile(timings, 99))}


def online_read(store, pids: list[str]) -> dict:
    """The raw SDK read (`get_online_features(...).to_dict()`) and leadscore's reader (a
    DataFrame with `known`, what the scoring service uses)."""
    service = store.get_feature_service(feature_store.FEATURE_SERVICE)
    reader = feature_store.OnlineFeatures(store)
    figures = _percentiles(lambda pid: store.get_online_features(
        features=service, entity_rows=[{feature_store.ENTITY_KEY: pid}]).to_dict(), pids)
    frame = _percentiles(lambda pid: reader.read([pid]), pids)
    return {**figures, "dataframe_p50_ms": frame["p50_ms"], "dataframe_p99_ms": frame["p99_ms"]}


def _bench_store(settings: Settings, data_dir: Path, online: str, redis: str | None = None):
    """A Feast store over the benchmark's feature files with its own registry and online store."""
    features = settings.features.model_copy(update={"online_store": online,
                                                    **({"redis": redis} if redis else {})})
    bench = settings.with_data_dir(data_dir).model_copy(update={"features": features})
    feature_store.apply(bench, settings.source)
    return bench, feature_store.open_store(bench)


def _timed(load: Callable[[], object]) -> dict:
    """Seconds and this process's CPU seconds of a load (on a shared machine the CPU time says
    more of the path's own cost); Feast's progress goes to stderr, keeping stdout for the JSON."""
    started, cpu = time.perf_counter(), time.process_time()
    with redirect_stdout(sys.stderr):
        load()
    return {"seconds": time.perf_counter() - started, "cpu_s": time.process_time() - cpu}


def _fresh_store(settings: Settings, work: Path, name: str, online: str, redis: str | None = None):
    """A store of its own (registry, SQLite file) over the benchmark's feature files."""
    data_dir = work / name
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    (data_dir / "features").symlink_to(work / "default" / "features")
    return _bench_store(settings, data_dir, online, redis)[1]


def _full_loads(feast_store, bulk_store, as_of, entities: int) -> dict:
    """A full load of two fresh stores of one kind, in the same run: Feast's `materialize` (the
    old path), and leadscore's `load_online` (its reads and the online store's batch write)."""
    end = as_of + timedelta(seconds=1)
    feast = _timed(lambda: feast_store.materialize(start_date=GRID_EPOCH, end_date=end))
    bulk = _timed(lambda: feature_store.load_online(bulk_store, GRID_EPOCH, end))
    return {"entities": entities, **bulk, "entities_per_s": entities / bulk["seconds"],
            "feast_materialize": {**feast, "entities_per_s": entities / feast["seconds"]},
            "speedup": feast["seconds"] / bulk["seconds"], "cpu_speedup": feast["cpu_s"] / bulk["cpu_s"]}


def materialize_and_read(settings: Settings, work: Path, calls: int = 1000) -> dict:
    """Load the current world into fresh stores (both paths) and time online reads from each."""
    as_of = read_manifest(work / "default" / "features")["as_of"]
    with duckdb.connect(str(settings.middle_db), read_only=True) as con:
        pids = [row[0] for row in con.execute(
            f"SELECT pid FROM person ORDER BY hash(pid) LIMIT {calls}").fetchall()]
        entities = one_row(con, "SELECT count(*) FROM person")[0]
        entities += one_row(con, "SELECT count(*) FROM company")[0]
    sqlite = _fresh_store(settings, work, "sqlite", "sqlite")
    figures = {"materialize": {"sqlite": _full_loads(
                   _fresh_store(settings, work, "sqlite_feast", "sqlite"), sqlite, as_of, entities)},
               "online_read": {"sqlite": online_read(sqlite, pids)}}
    binary = shutil.which("redis-server")
    if binary is None:
        figures["materialize"]["redis"] = figures["online_read"]["redis"] = {
            "skipped": "redis-server not installed"}
        return figures
    with redis_server(binary) as feast_address, redis_server(binary) as address:
        redis = _fresh_store(settings, work, "redis", "redis", address)
        figures["materialize"]["redis"] = _full_loads(
            _fresh_store(settings, work, "redis_feast", "redis", feast_address), redis, as_of, entities)
        figures["online_read"]["redis"] = online_read(redis, pids)
    return figures


GOALS = {"offline_build_1m_seconds": 60, "materialize_speedup": 10, "online_read_sqlite_p99_ms": 2,
         "online_read_redis_p99_ms": 3}


def run(settings: Settings, work: Path) -> dict:
    if not settings.middle_db.is_file():
        raise FileNotFoundError(f"no middle layer at {settings.middle_db}: run `leadscore pipeline` first")
    figures = {"offline_build": offline_build(settings, work)}
    figures.update(materialize_and_read(settings, work))
    return {**figures, "goals": GOALS}
