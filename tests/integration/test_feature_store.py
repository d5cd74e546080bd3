"""The Feast store of the tiny world: point-in-time correct offline, the same values
online (SQLite and a real Redis), unknown PIDs reported as unknown."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml

from leadscore.config import load_settings
from leadscore.features.build import GRID_EPOCH, read_manifest
from leadscore.features.store import (
    feature_refs,
    historical_features,
    online_features,
    open_store,
    read_view,
)
from leadscore.features.tags import KINDS

pytestmark = pytest.mark.integration


def _run(world: dict, config_file, *args: str) -> str:
    result = subprocess.run([world["cli"], "-c", str(config_file), *args], capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def _feature_names(store) -> list[str]:
    return [ref.split(":")[1] for ref in feature_refs(store)]


def _assert_same_values(left: pd.DataFrame, right: pd.DataFrame, columns: list[str]) -> None:
    """Equal row by row: numbers to 1e-9 (missing equals missing), strings exactly."""
    for column in columns:
        a, b = left[column].reset_index(drop=True), right[column].reset_index(drop=True)
        if pd.api.types.is_numeric_dtype(a) or pd.api.types.is_numeric_dtype(b):
            np.testing.assert_allclose(a.astype(float), b.astype(float), rtol=0, atol=1e-9,
                                       err_msg=column)
        else:
            assert a.where(a.notna(), None).tolist() == b.where(b.notna(), None).tolist(), column


@pytest.fixture(scope="module")
def sqlite_store(world):
    return open_store(load_settings(world["config_file"]))


@pytest.fixture(scope="module")
def engaged_pids(world) -> list[str]:
    """The 30 people with the most engagement in the last 90 days, plus 10 who never engaged."""
    data = world["root"] / "data"
    with duckdb.connect(str(data / "middle.duckdb"), read_only=True) as con:
        quiet = [row[0] for row in con.execute(
            "SELECT pid FROM person WHERE pid NOT IN (SELECT pid FROM interaction WHERE pid IS NOT NULL)"
            " ORDER BY pid LIMIT 10").fetchall()]
    interest = pd.read_parquet(data / "features" / "person_interest.parquet")
    latest = interest[interest["event_timestamp"] == interest["event_timestamp"].max()]
    return latest.nlargest(30, "events_90d")["pid"].tolist() + quiet


def test_online_values_equal_offline_values_at_the_feature_clock(world, sqlite_store, engaged_pids):
    as_of = read_manifest(world["root"] / "data" / "features")["as_of"]
    entities = pd.DataFrame({"pid": engaged_pids, "event_timestamp": pd.Timestamp(as_of)})
    offline = historical_features(sqlite_store, entities).set_index("pid").loc[engaged_pids]
    online = online_features(sqlite_store, engaged_pids).set_index("pid").loc[engaged_pids]
    names = _feature_names(sqlite_store)
    assert len(names) >= 60 and online["known"].all()
    assert offline["events_90d"].iloc[0] > 0  # the comparison covers real activity
    _assert_same_values(offline, online, names)


def test_unknown_pid_online_is_unknown_not_a_lead_with_zero_features(sqlite_store, engaged_pids):
    online = online_features(sqlite_store, ["P-NOT-A-PERSON", engaged_pids[0]]).set_index("pid")
    assert not online.loc["P-NOT-A-PERSON", "known"]
    assert online.loc["P-NOT-A-PERSON"].drop("known").isna().all()
    assert online.loc[engaged_pids[0], "known"]


def test_an_event_after_the_snapshot_leaves_its_features_unchanged(world, sqlite_store, engaged_pids,
                                                                  config_writer, tmp_path):
    """Add a web visit one hour after t to a copy of the middle layer and rebuild: the
    snapshot at t reads the same features, the snapshot a week later sees the visit."""
    pid = engaged_pids[0]
    as_of = read_manifest(world["root"] / "data" / "features")["as_of"]
    t = pd.Timestamp(as_of - timedelta(days=40, hours=11))  # between two grid rows
    entities = pd.DataFrame({"pid": [pid, pid], "event_timestamp": [t, t + timedelta(days=8)]})
    before = historical_features(sqlite_store, entities).sort_values("event_timestamp")

    config_file = config_writer(tmp_path, world={"scale": 0.05})
    (tmp_path / "data").mkdir()
    shutil.copy(world["root"] / "data" / "middle.duckdb", tmp_path / "data" / "middle.duckdb")
    with duckdb.connect(str(tmp_path / "data" / "middle.duckdb")) as con:
        con.execute("""INSERT INTO interaction (lid, pid, event_type, event_time, channel, source, properties)
                       VALUES ('L-LATE', $pid, 'web_visit', $at, 'web', 'web_sessions',
                               '{"url": "https://www.ourproduct.com/pricing"}')""",
                    {"pid": pid, "at": (t + timedelta(hours=1)).to_pydatetime()})
    _run(world, config_file, "features", "build")
    _run(world, config_file, "features", "apply")
    after = historical_features(open_store(load_settings(config_file)), entities).sort_values(
        "event_timestamp")

    names = _feature_names(sqlite_store)
    _assert_same_values(before.iloc[:1], after.iloc[:1], names)
    assert after["web_visit_30d"].iloc[1] == before["web_visit_30d"].iloc[1] + 1
    assert after["days_since_last_web_visit"].iloc[1] <= 8


def test_redis_online_store_serves_the_same_values(world, sqlite_store, engaged_pids, redis_server,
                                                   config_writer, tmp_path):
    """The same world served from a real redis-server: `feast apply` through the Redis
    yaml, a full first load, then incremental loads; every value equals SQLite's."""
    config = yaml.safe_load(world["config_file"].read_text())
    config_file = config_writer(tmp_path, features={"online_store": "redis", "redis": redis_server})
    redis_config = yaml.safe_load(config_file.read_text())
    redis_config["paths"] = config["paths"]  # the tiny world's data, its own registry
    config_file.write_text(yaml.safe_dump(redis_config))

    _run(world, config_file, "features", "apply")
    assert "full load" in _run(world, config_file, "features", "materialize")
    assert "incremental load" in _run(world, config_file, "features", "materialize")

    redis_store = open_store(load_settings(config_file))
    assert redis_store.config.online_store.type == "redis"
    pids = [*engaged_pids, "P-NOT-A-PERSON"]
    from_redis = online_features(redis_store, pids).set_index("pid").loc[pids]
    from_sqlite = online_features(sqlite_store, pids).set_index("pid").loc[pids]
    _assert_same_values(from_redis, from_sqlite, _feature_names(sqlite_store))
    assert from_redis["known"].tolist() == [True] * len(engaged_pids) + [False]


def test_a_full_load_on_redis_writes_what_feasts_materialize_writes(world, redis_server, config_writer,
                                                                   tmp_path):
    """On a real redis-server, Feast's own `materialize`, then (the project's keys deleted)
    `leadscore features materialize --full` (a full load, written by column): every hash of
    the project the same, byte for byte."""
    import redis

    config = yaml.safe_load(world["config_file"].read_text())
    config_file = config_writer(tmp_path, features={"online_store": "redis", "redis": redis_server})
    redis_config = yaml.safe_load(config_file.read_text())
    redis_config["paths"] = config["paths"]  # the tiny world's data and its Redis registry
    config_file.write_text(yaml.safe_dump(redis_config))
    _run(world, config_file, "features", "apply")
    store = open_store(load_settings(config_file))
    host, port = redis_server.split(":")
    client = redis.Redis(host=host, port=int(port))

    def hashes() -> dict[bytes, dict[bytes, bytes]]:
        return {key: client.hgetall(key) for key in client.scan_iter(f"*{store.project}".encode())}

    for key in hashes():
        client.delete(key)
    as_of = read_manifest(world["root"] / "data" / "features")["as_of"]
    store.materialize(start_date=GRID_EPOCH, end_date=as_of + timedelta(seconds=1))
    feasts = hashes()
    for key in feasts:
        client.delete(key)
    assert "full load" in _run(world, config_file, "features", "materialize", "--full")
    ours = hashes()
    assert len(ours) > 1000 and ours == feasts


def _every_online_value(store, middle_db) -> dict[str, list]:
    """Every view's online values of every person and company of the world, and of an unknown
    id, exactly as read (a missing value is None, never NaN)."""
    with duckdb.connect(str(middle_db), read_only=True) as con:
        ids = {"pid": [row[0] for row in con.execute("SELECT pid FROM person ORDER BY pid").fetchall()],
               "cid": [row[0] for row in con.execute("SELECT cid FROM company ORDER BY cid").fetchall()]}
    values = {}
    for view in store.list_feature_views():
        key = view.join_keys[0]
        values[view.name] = read_view(store, view.name, key, [*ids[key], "X-UNKNOWN"],
                                      [feature.name for feature in view.features])
    return values


def _store_of_its_own(world: dict, config_writer, root):
    """A registry and SQLite online store of their own over the world's feature files."""
    config_file = config_writer(root)
    (root / "data").mkdir()
    (root / "data" / "features").symlink_to(world["root"] / "data" / "features")
    _run(world, config_file, "features", "apply")
    return config_file


def test_a_full_load_writes_what_feasts_materialize_writes(world, config_writer, tmp_path):
    """`leadscore features materialize` (a full load: `load_online`) into one store, Feast's own
    `materialize` into another, over the same feature files: the same value of every feature
    of every entity, nulls as nulls, and the registry ready for incremental loads."""
    ours = _store_of_its_own(world, config_writer, tmp_path / "ours")
    assert "full load" in _run(world, ours, "features", "materialize")
    feast_store = open_store(load_settings(_store_of_its_own(world, config_writer, tmp_path / "feast")))
    as_of = read_manifest(world["root"] / "data" / "features")["as_of"]
    feast_store.materialize(start_date=GRID_EPOCH, end_date=as_of + timedelta(seconds=1))

    our_store = open_store(load_settings(ours))
    middle_db = world["root"] / "data" / "middle.duckdb"
    loaded = _every_online_value(our_store, middle_db)
    assert loaded == _every_online_value(feast_store, middle_db)
    interest = [row for row in loaded["person_interest"] if row is not None]
    assert len(interest) > 500 and any(value is None for row in interest for value in row.values())
    assert all(view.most_recent_end_time is not None for view in our_store.list_feature_views())


def test_tags_explain_themselves_and_cover_every_kind(world):
    tags = pd.read_parquet(world["root"] / "data" / "features" / "person_tags.parquet")
    manifest = json.loads((world["root"] / "data" / "features" / "manifest.json").read_text())
    assert manifest["rows"]["person_tags"] == len(tags)
    assert set(tags["kind"]) == set(KINDS)  # every kind of config/tags.yaml, UTM demand included
    assert tags["label"].str.len().min() > 0 and tags["evidence"].str.len().min() > 0


def _tables(online_store) -> set[str]:
    import sqlite3

    with sqlite3.connect(online_store) as con:
        return {name for name, in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_a_world_copied_with_its_registry_applies_without_emptying_the_original(world, config_writer,
                                                                                tmp_path):
    """Feast's registry lists the online tables by the store file's path: the copy's apply would
    drop the original world's tables as ones it no longer has. They stay, the copy gets its own,
    and the copy's first materialisation is a full one (the registry's dates were the original's)."""
    original = world["root"] / "data" / "feast" / "online_store.db"
    tables = _tables(original)
    assert len(tables) >= 4
    config_file = config_writer(tmp_path)
    shutil.copytree(world["root"] / "data" / "feast", tmp_path / "data" / "feast")
    (tmp_path / "data" / "feast" / "online_store.db").unlink()
    _run(world, config_file, "features", "apply")
    assert _tables(original) == tables
    assert _tables(tmp_path / "data" / "feast" / "online_store.db") == tables
    copy = open_store(load_settings(config_file))
    assert all(view.most_recent_end_time is None for view in copy.list_feature_views())
    assert all(view.most_recent_end_time is not None
               for view in open_store(load_settings(world["config_file"])).list_feature_views())
