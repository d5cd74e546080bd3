"""The batch writes of Feast's Redis online store by features/online_store.py are Feast's own."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pandas as pd
import pyarrow as pa
import pytest
import redis
from feast.infra.online_stores.helpers import _redis_key
from feast.infra.online_stores.redis import RedisOnlineStoreConfig
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value

from leadscore.features.online_store import LeanRedisStore, _InFlight, column_writer, online_writer
from leadscore.features.store import column_rows, write_rows

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


def _pid(pid: str) -> EntityKey:
    return EntityKey(join_keys=["pid"], entity_values=[Value(string_val=pid)])


def test_a_full_load_by_column_writes_what_feasts_redis_store_writes(redis_server, tmp_path,
                                                                     small_feature_store, tricky_rows):
    rows = tricky_rows(45_000)  # more than the chunks queued at once
    table = pa.Table.from_pandas(rows, preserve_index=False)
    feasts, view = small_feature_store(tmp_path / "feast", rows, _redis(redis_server), "feastcol")
    ours, _ = small_feature_store(tmp_path / "ours", rows, _redis(redis_server), "ourscol")
    write_rows(feasts, view, table, feasts.provider.online_write_batch)
    with column_writer(ours) as write_columns:
        for batch in table.to_batches(max_chunksize=20_000):
            write_columns(ours.config, view, column_rows(view, batch))
    host, port = redis_server.split(":")
    written = _hashes(redis.Redis(host=host, port=int(port)), "ourscol")
    assert len(written) == 45_000 and written == _hashes(redis.Redis(host=host, port=int(port)), "feastcol")
    pids = ["Pé5😀", "P4", "P1", "P2"]
    online = ours.get_online_features(features=["person_view:share", "person_view:title"],
                                      entity_rows=[{"pid": pid} for pid in pids]).to_dict()
    assert online["share"] == [5 / 7, -2.5, None, -0.0]
    assert online["title"] == ["CTO", "Directeur général", None, ""]


def test_a_store_leadscore_does_not_write_by_column_gets_no_column_writer(redis_server, tmp_path,
                                                                          small_feature_store, tricky_rows):
    rows = tricky_rows(3)
    deduplicated = RedisOnlineStoreConfig(connection_string=redis_server, skip_dedup=False)
    store, _ = small_feature_store(tmp_path, rows, deduplicated, "dedup")
    with column_writer(store) as write_columns:
        assert write_columns is None  # its load goes through Feast's own batch write


def test_an_error_reply_in_a_full_load_is_raised(redis_server, tmp_path, small_feature_store, tricky_rows):
    rows = tricky_rows(5000)
    store, view = small_feature_store(tmp_path, rows, _redis(redis_server), "colerrors")
    host, port = redis_server.split(":")
    client = redis.Redis(host=host, port=int(port))
    client.set(_redis_key("colerrors", _pid("P4999"), 3), "not a hash")
    batches = pa.Table.from_pandas(rows, preserve_index=False).to_batches(max_chunksize=1000)
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"), column_writer(store) as write_columns:
        for batch in batches:
            write_columns(store.config, view, column_rows(view, batch))
    assert client.hget(_redis_key("colerrors", _pid("P4998"), 3), b"_ts:person_view")  # the rows before it


def test_commands_whose_replies_were_not_read_are_sent_again_after_a_dropped_connection(redis_server):
    host, port = redis_server.split(":")
    client = redis.Redis(host=host, port=int(port))
    connection = redis.Redis(host=host, port=int(port)).connection_pool.get_connection()
    in_flight = _InFlight(connection)
    client.execute_command("CLIENT", "PAUSE", 10_000, "WRITE")  # writes wait, unrun
    in_flight.unread.append((b"*4\r\n$4\r\nHSET\r\n$2\r\nk1\r\n$1\r\nf\r\n$1\r\nv\r\n", 1))
    in_flight.exchange(unread=1)  # sent, its reply not read
    client.client_kill_filter(_type="normal", skipme=True)  # the loader's connection dropped: k1 never ran
    client.execute_command("CLIENT", "UNPAUSE")
    in_flight.unread.append((b"*4\r\n$4\r\nHSET\r\n$2\r\nk2\r\n$1\r\nf\r\n$1\r\nw\r\n", 1))
    in_flight.exchange(unread=0)
    assert client.hget("k1", "f") == b"v" and client.hget("k2", "f") == b"w" and not in_flight.unread


def test_a_health_check_never_reads_a_reply_due_to_a_chunk(redis_server):
    """A connection string may set `health_check_interval` (Feast passes it to redis-py): its
    PING before a send must not take the reply of a chunk whose replies are not read yet (the
    replies would then be read one late, and the last waited for forever)."""
    host, port = redis_server.split(":")
    client = redis.Redis(host=host, port=int(port))
    checked = redis.Redis(host=host, port=int(port), health_check_interval=1)
    in_flight = _InFlight(checked.connection_pool.get_connection())

    def load() -> None:
        for key in (b"h1", b"h2"):
            in_flight.unread.append((b"*4\r\n$4\r\nHSET\r\n$2\r\n%s\r\n$1\r\nf\r\n$1\r\nv\r\n" % key, 1))
            in_flight.exchange(unread=1)
            time.sleep(1.2)  # past the interval: the next send checks, unless a reply is due
        in_flight.exchange(unread=0)

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    loader.join(timeout=15)
    assert not loader.is_alive(), "the load waits for a reply that never comes"
    assert client.hget("h1", "f") == b"v" and client.hget("h2", "f") == b"v" and not in_flight.unread


def test_a_row_without_an_id_is_refused_before_anything_is_sent(redis_server, tmp_path, small_feature_store,
                                                                tricky_rows):
    rows = tricky_rows(4)
    store, view = small_feature_store(tmp_path, rows, _redis(redis_server), "noid")
    batch = pa.RecordBatch.from_pandas(rows.assign(pid=["P0", None, "P2", "P3"]), preserve_index=False)
    with pytest.raises(ValueError, match="1 rows without a pid"), column_writer(store) as write_columns:
        write_columns(store.config, view, column_rows(view, batch))
    host, port = redis_server.split(":")
    assert not _hashes(redis.Redis(host=host, port=int(port)), "noid")


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
