"""The service's reads and batch writes of the embedded SQLite online store are exactly Feast's own."""

from __future__ import annotations

import math
import sqlite3
from datetime import UTC, datetime, timedelta

import pandas as pd
import pyarrow as pa
from feast import FeatureStore, FeatureView
from feast.infra.online_stores.sqlite import SqliteOnlineStoreConfig
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value

from leadscore.features.online_store import LeanSqliteStore, column_writer, online_reader, online_writer
from leadscore.features.store import column_rows, load_online, write_rows

START = datetime(2026, 11, 2, 8, 30, tzinfo=UTC)


def _store(tmp_path, build) -> tuple[FeatureStore, FeatureView]:
    rows = pd.DataFrame({"pid": ["P1", "P2", "P3"], "visits": [3, 0, 7], "share": [0.25, None, 1.0],
                         "title": ["CTO", None, "Analyst"],
                         "event_timestamp": [START, START + timedelta(hours=5), START - timedelta(days=3)]})
    store, view = build(tmp_path, rows, SqliteOnlineStoreConfig(path=str(tmp_path / "online.db")))
    store.write_to_online_store("person_view", rows)
    return store, view


def test_it_reads_what_feasts_sqlite_store_reads(tmp_path, small_feature_store):
    store, view = _store(tmp_path, small_feature_store)
    assert online_reader(store).__self__.__class__ is LeanSqliteStore
    keys = [EntityKey(join_keys=["pid"], entity_values=[Value(string_val=pid)])
            for pid in ("P3", "P9", "P1", "P2")]
    ours = online_reader(store)(store.config, view, keys, ["visits", "share", "title"])
    feasts = store.provider.online_read(store.config, view, keys, ["visits", "share", "title"])
    assert ours == feasts
    stamps = [START - timedelta(days=3), None, START, START + timedelta(hours=5)]
    assert [stamp for stamp, _ in ours] == stamps
    assert ours[0][1]["visits"].int64_val == 7 and ours[2][1]["title"].string_val == "CTO"


def _table(path, view: FeatureView) -> list[tuple]:
    with sqlite3.connect(path) as con:
        return con.execute(f"SELECT entity_key, feature_name, value, value_text, event_ts, created_ts "
                           f"FROM t_{view.name} ORDER BY entity_key, feature_name").fetchall()


def test_it_writes_what_feasts_sqlite_store_writes(tmp_path, small_feature_store):
    feasts_store, view = _store(tmp_path / "feast", small_feature_store)
    ours_store, _ = _store(tmp_path / "ours", small_feature_store)
    later = pd.DataFrame({"pid": ["P1", "P4", "P2"], "visits": [4, 1, None],
                          "share": [0.25, 0.5, float("nan")], "title": ["CTO", "", None],
                          "event_timestamp": [START + timedelta(days=1), START, START + timedelta(days=2)]})
    later["event_timestamp"] = later["event_timestamp"].astype("datetime64[us, UTC]")  # as DuckDB's frames
    rows = pa.Table.from_pandas(later, preserve_index=False)
    write_rows(feasts_store, view, rows, feasts_store.provider.online_write_batch)
    assert online_writer(ours_store).__self__.__class__ is LeanSqliteStore
    write_rows(ours_store, view, rows, online_writer(ours_store))
    written = _table(tmp_path / "ours" / "online.db", view)
    assert written == _table(tmp_path / "feast" / "online.db", view)
    assert len(written) == 4 * 3  # P1 and P2 rewritten, P3 as it was, P4 new
    keys = [EntityKey(join_keys=["pid"], entity_values=[Value(string_val=pid)]) for pid in ("P1", "P4")]
    (stamp, values), (_, new) = online_reader(ours_store)(ours_store.config, view, keys, ["visits"])
    assert stamp == START + timedelta(days=1) and values["visits"].int64_val == 4
    assert new["title"].string_val == "" and new["share"].double_val == 0.5


def test_a_write_by_column_writes_what_feasts_sqlite_store_writes(tmp_path, small_feature_store, tricky_rows):
    """`column_writer`'s write (a full load's, a live update's): the rows Feast's own write
    leaves, byte for byte, over rows already stored (P1 to P3) and new ones, in batches, an
    id given twice in one batch included."""
    feasts_store, view = _store(tmp_path / "feast", small_feature_store)
    ours_store, _ = _store(tmp_path / "ours", small_feature_store)
    tricky = tricky_rows(3_000)
    again = tricky.iloc[990:1_010].assign(share=2.5)  # ids written twice in one batch: the later wins
    rows = pa.Table.from_pandas(pd.concat([tricky, again], ignore_index=True), preserve_index=False)
    write_rows(feasts_store, view, rows, feasts_store.provider.online_write_batch)
    with column_writer(ours_store) as write_columns:
        assert write_columns.__self__.__class__ is LeanSqliteStore
        for batch in rows.to_batches(max_chunksize=1_000):
            write_columns(ours_store.config, view, column_rows(view, batch))
    written = _table(tmp_path / "ours" / "online.db", view)
    assert len(written) == 3 * 3_000 and written == _table(tmp_path / "feast" / "online.db", view)
    keys = [EntityKey(join_keys=["pid"], entity_values=[Value(string_val=pid)]) for pid in ("P2", "Pé5😀")]
    (_, signed), (_, accented) = online_reader(ours_store)(ours_store.config, view, keys, ["share"])
    assert math.copysign(1, signed["share"].double_val) == -1 and accented["share"].double_val == 5 / 7
    twice = EntityKey(join_keys=["pid"], entity_values=[Value(string_val="P1001")])
    (_, later), = online_reader(ours_store)(ours_store.config, view, [twice], ["share"])
    assert later["share"].double_val == 2.5


def test_a_full_load_tells_how_far_it_is_and_records_the_interval(tmp_path, small_feature_store, monkeypatch):
    """`load_online` in batches: each view's rows so far as they go, the last its count, and
    the registry's interval recorded once the rows are in (incremental loads follow on)."""
    monkeypatch.setattr("leadscore.features.store.COLUMN_CHUNK", 2)  # SQLite: by column
    store, view = _store(tmp_path, small_feature_store)
    told: list[tuple[str, int]] = []
    written = load_online(store, START - timedelta(days=30), START + timedelta(days=1),
                          lambda name, rows: told.append((name, rows)))
    assert written == {"person_view": 3} and told == [("person_view", 2), ("person_view", 3)]
    assert store.get_feature_view("person_view").most_recent_end_time == START + timedelta(days=1)
