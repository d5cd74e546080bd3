"""The service's reads of the embedded SQLite online store are exactly Feast's own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
from feast import Entity, FeatureStore, FeatureView, Field, FileSource, RepoConfig
from feast.infra.online_stores.sqlite import SqliteOnlineStoreConfig
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value
from feast.types import Float64, Int64, String

from leadscore.features.online_store import OneTimestampSqliteStore, online_reader

START = datetime(2026, 11, 2, 8, 30, tzinfo=UTC)


def _store(tmp_path) -> tuple[FeatureStore, FeatureView]:
    rows = pd.DataFrame({"pid": ["P1", "P2", "P3"], "visits": [3, 0, 7], "share": [0.25, None, 1.0],
                         "title": ["CTO", None, "Analyst"],
                         "event_timestamp": [START, START + timedelta(hours=5), START - timedelta(days=3)]})
    rows.to_parquet(tmp_path / "rows.parquet")
    person = Entity(name="person", join_keys=["pid"])
    source = FileSource(path=str(tmp_path / "rows.parquet"), timestamp_field="event_timestamp")
    view = FeatureView(name="person_view", entities=[person], ttl=timedelta(days=365), source=source,
                       schema=[Field(name="visits", dtype=Int64), Field(name="share", dtype=Float64),
                               Field(name="title", dtype=String)])
    config = RepoConfig(project="t", provider="local", registry=str(tmp_path / "registry.db"),
                        online_store=SqliteOnlineStoreConfig(path=str(tmp_path / "online.db")),
                        entity_key_serialization_version=3)
    store = FeatureStore(config=config)
    store.apply([person, view])
    store.write_to_online_store("person_view", rows)
    return store, view


def test_it_reads_what_feasts_sqlite_store_reads(tmp_path):
    store, view = _store(tmp_path)
    assert online_reader(store).__self__.__class__ is OneTimestampSqliteStore
    keys = [EntityKey(join_keys=["pid"], entity_values=[Value(string_val=pid)])
            for pid in ("P3", "P9", "P1", "P2")]
    ours = online_reader(store)(store.config, view, keys, ["visits", "share", "title"])
    feasts = store.provider.online_read(store.config, view, keys, ["visits", "share", "title"])
    assert ours == feasts
    stamps = [START - timedelta(days=3), None, START, START + timedelta(hours=5)]
    assert [stamp for stamp, _ in ours] == stamps
    assert ours[0][1]["visits"].int64_val == 7 and ours[2][1]["title"].string_val == "CTO"
