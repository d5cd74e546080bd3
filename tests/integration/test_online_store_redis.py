"""The batch writes of Feast's Redis online store by features/online_store.py are Feast's own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pyarrow as pa
import pytest
import redis
from feast.infra.online_stores.helpers import _redis_key
from feast.infra.online_stores.redis import RedisOnlineStoreConfig
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value

from leadscore.features.online_store import LeanRedisStore, online_writer
from leadscore.features.store import write_rows

pytestmark = pytest.mark.integration
START = datetime(2026, 11, 2, 8, 30, tzinfo=UTC)


def _redis(address: str) -> RedisOnlineStoreConfig:
    return RedisOnlineStoreConfig(connection_string=address, skip_dedup=True)


def _hashes(client: redis.Redis, project: str) -> dict[bytes, dict[bytes, bytes]]:
    """Every hash of the project, by its key without the project's name."""
    return {key[:-len(project)]: client.hgetall(key) for key in client.scan_iter(f"*{project}".encode())}


def test_it_writes_what_feasts_redis_store_writes(redis_server, tmp_path, small_feature_store):
    rows = pd.DataFrame({"pid": [f"P{i}" for i in range(5000)], "visits": [i % 7 for i in range(5000)],
                         "share": [None if i % 3 else i / 5000 for i in range(5000)],
                         "title": [["CTO", None, "", "Analyst"][i % 4] for i in range(5000)],
                         "event_timestamp": [START + timedelta(seconds=i % 11) for i in range(5000)]})
    rows["event_timestamp"] = rows["event_timestamp"].astype("datetime64[us, UTC]")  # as DuckDB's frames
    table = pa.Table.from_pandas(rows, preserve_index=False)
    feasts, view = small_feature_store(tmp_path / "feast", rows, _redis(redis_server), "feasts")
    ours, _ = small_feature_store(tmp_path / "ours", rows, _redis(redis_server), "ours")
    write_rows(feasts, view, table, feasts.provider.online_write_batch)
    assert online_writer(ours).__self__.__class__ is LeanRedisStore
    write_rows(ours, view, table, online_writer(ours))  # in three sends of up to 2,000 commands
    host, port = redis_server.split(":")
    client = redis.Redis(host=host, port=int(port))
    written = _hashes(client, "ours")
    assert len(written) == 5000 and written == _hashes(client, "feasts")
    online = ours.get_online_features(features=["person_view:visits", "person_view:title"],
                                      entity_rows=[{"pid": "P10"}]).to_dict()
    assert online["visits"] == [3] and online["title"] == [""]


def test_an_error_reply_is_raised_and_the_next_write_goes_through(redis_server, tmp_path,
                                                                    small_feature_store):
    rows = pd.DataFrame({"pid": ["P1", "P2"], "visits": [1, 2], "share": [0.5, None], "title": ["CTO", None],
                         "event_timestamp": [START, START]})
    store, view = small_feature_store(tmp_path, rows, _redis(redis_server), "errors")
    host, port = redis_server.split(":")
    client = redis.Redis(host=host, port=int(port))
    wrong = _redis_key("errors", EntityKey(join_keys=["pid"], entity_values=[Value(string_val="P2")]), 3)
    client.set(wrong, "not a hash")  # HSET on it: a WRONGTYPE error reply
    write = online_writer(store)
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        write_rows(store, view, pa.Table.from_pandas(rows, preserve_index=False), write)
    client.delete(wrong)
    client.client_kill_filter(_type="normal", skipme=True)  # the writer's pooled connection dropped
    write_rows(store, view, pa.Table.from_pandas(rows, preserve_index=False), write)
    online = store.get_online_features(features=["person_view:visits"], entity_rows=[{"pid": "P2"}])
    assert online.to_dict()["visits"] == [2]
