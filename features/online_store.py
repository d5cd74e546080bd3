"""Reads and batch writes of Feast's SQLite (and batch writes of its Redis) online store, as
Feast's own, with less Python.

Feast's `SqliteOnlineStore.online_read` converts the event timestamp of every feature value
it reads (a `datetime` from the column's declared type, then tagged UTC) and keeps only the
last one of each entity: 66 conversions for one /score, a twentieth of its CPU. The subclass
here reads the same rows with the same query, converts one timestamp per entity (the last,
as Feast keeps it) and so answers exactly what Feast's does.

Its `online_write_batch` writes the rows Feast's writes, with Feast's statement (an upsert per
value), in one `executemany` instead of one `execute` per value, each distinct value proto
serialised once (a column holds few distinct values: features/store.py `write_rows` shares
them), each timestamp converted once per entity, on a connection with a larger page cache:
the live updates and a full load spend most of their writing there. The repo's online
store stays `type: sqlite` (Feast applies and plans the infrastructure of that type alone);
a store with value_num or vector columns is written by Feast's own method.

For Feast's Redis store (`features.online_store: redis`), `LeanRedisStore` writes a batch as
Feast's `online_write_batch` does with `skip_dedup`: the same HSET commands, whose protocol
bytes are built here (each feature's field hashed once per batch, each value and timestamp
serialised once) and sent 2,000 at a time on one connection (sent again after a dropped
connection, as redis-py's pipeline retries). Where Feast would read timestamps first
(no `skip_dedup`), set key TTLs, or talk to a cluster or sentinel, Feast's own write runs.
"""

from __future__ import annotations

import functools
import itertools
import sqlite3
from collections.abc import Callable
from datetime import datetime, timezone

from feast import FeatureStore, FeatureView
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.infra.online_stores.helpers import _mmh3, extract_text_and_num
from feast.infra.online_stores.redis import RedisOnlineStore, RedisType, _versioned_fv_name
from feast.infra.online_stores.sqlite import SqliteOnlineStore, _quote_id, _table_id
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value as ValueProto
from feast.repo_config import RepoConfig
from feast.utils import make_tzaware, to_naive_utc
from google.protobuf.timestamp_pb2 import Timestamp
from redis.connection import Connection

Read = list[tuple[datetime | None, dict[str, ValueProto] | None]]
OnlineRead = Callable[[RepoConfig, FeatureView, list[EntityKey], list[str]], Read]
Row = tuple[EntityKey, dict[str, ValueProto], datetime, datetime | None]
PAGE_CACHE_KIB = 131_072  # 128 MiB at most, as the pages are read
KEYS_REMEMBERED = 65_536
REDIS_COMMANDS = 2_000  # HSETs sent before their replies are read
OnlineWrite = Callable[[RepoConfig, FeatureView, list[Row], Callable[[int], object] | None], None]


class LeanSqliteStore(SqliteOnlineStore):
    """`SqliteOnlineStore` (on its own connection), reading one timestamp per entity instead
    of one per value, and writing a batch in one `executemany`."""

    def online_write_batch(self, config: RepoConfig, table: FeatureView, data: list[Row],
                           progress: Callable[[int], object] | None) -> None:
        store = config.online_store
        if getattr(store, "enable_openai_compatible_store", False) or store.vector_enabled:
            super().online_write_batch(config, table, data, progress)
            return
        name = _quote_id(_table_id(config.project, table,
                                   config.registry.enable_online_feature_view_versioning))
        version = config.entity_key_serialization_version
        encoded: dict[int, tuple[bytes, str | None]] = {}  # by id: the protos live in `data`
        rows = []
        for entity_key, values, timestamp, created in data:
            key = _serialized_key(entity_key, version)
            stamp, created = _epoch(timestamp), None if created is None else _epoch(created)
            for feature, value in values.items():
                value_and_text = encoded.get(id(value))
                if value_and_text is None:
                    value_and_text = encoded[id(value)] = (value.SerializeToString(),
                                                           extract_text_and_num(value, False)[0])
                rows.append((key, feature, *value_and_text, stamp, created))
        with self._get_conn(config) as conn:  # Feast's statement, one transaction
            conn.executemany(
                f"INSERT INTO {name} (entity_key, feature_name, value, value_text, event_ts, created_ts) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(entity_key, feature_name) DO UPDATE SET "
                "value = excluded.value, value_text = excluded.value_text, event_ts = excluded.event_ts, "
                "created_ts = excluded.created_ts", rows)
        if progress:
            progress(len(data))

    def online_read(self, config: RepoConfig, table: FeatureView, entity_keys: list[EntityKey],
                    requested_features: list[str] | None = None) -> Read:
        version = config.entity_key_serialization_version
        keys = [_serialized_key(key, version) for key in entity_keys]
        name = _quote_id(_table_id(config.project, table,
                                   config.registry.enable_online_feature_view_versioning))
        # the timestamp as stored (a CAST has no declared type: sqlite3 leaves it unconverted)
        rows = self._get_conn(config).execute(
            f"SELECT entity_key, feature_name, value, CAST(event_ts AS INTEGER) FROM {name} "
            f"WHERE entity_key IN ({','.join('?' * len(keys))}) ORDER BY entity_key", keys).fetchall()
        by_key = {key: list(group) for key, group in itertools.groupby(rows, key=lambda row: row[0])}
        parsed: dict[bytes, ValueProto] = {}  # a column holds few distinct values: each parsed once
        return [_entity_read(by_key.get(key), parsed) for key in keys]

    def _get_conn(self, config: RepoConfig) -> sqlite3.Connection:
        """Feast's connection, with a page cache of `PAGE_CACHE_KIB`: SQLite's default 2 MiB
        reads the pages of a batch's upserts again and again (a full view is some 100 MB)."""
        if not self._conn:
            super()._get_conn(config).execute(f"PRAGMA cache_size = -{PAGE_CACHE_KIB}")
        return self._conn


class LeanRedisStore(RedisOnlineStore):
    """`RedisOnlineStore` (its own client) whose batch write, with `skip_dedup` and no key
    TTL (how leadscore configures it), sends the commands Feast's would, as the protocol's
    bytes built here: a hash per entity (Feast's key), its view's timestamp field and a
    murmur3 field per feature. Feast's builds each command through redis-py and hashes each
    feature's name for every value: most of a full load's time went there."""

    def online_write_batch(self, config: RepoConfig, table: FeatureView, data: list[Row],
                           progress: Callable[[int], object] | None) -> None:
        store = config.online_store
        if not store.skip_dedup or store.key_ttl_seconds or store.redis_type != RedisType.redis:
            super().online_write_batch(config, table, data, progress)
            return
        view = _versioned_fv_name(table, config)
        project = config.project.encode()
        version = config.entity_key_serialization_version
        fields = _Fields(view)
        stamp_field = _bulk(f"_ts:{view}".encode())
        encoded: dict[int, bytes] = {}  # by id: the protos live in `data`
        stamps: dict[datetime, bytes] = {}
        pool = self._get_client(store).connection_pool
        connection = pool.get_connection()
        try:
            for start in range(0, len(data), REDIS_COMMANDS):
                chunk = data[start:start + REDIS_COMMANDS]
                commands = b"".join(_hset(_serialized_key(key, version) + project, stamp_field,
                                          _stamp(timestamp, stamps), values, fields, encoded)
                                    for key, values, timestamp, _ in chunk)
                # as redis-py's pipeline: sent again after a dropped connection (HSET is idempotent)
                connection.retry.call_with_retry(functools.partial(_send, connection, commands, len(chunk)),
                                                 lambda error: connection.disconnect())
        except BaseException:
            connection.disconnect()  # replies may be left unread: never hand it back as it is
            raise
        finally:
            pool.release(connection)
        if progress:
            progress(len(data))


class _Fields(dict):
    """A view's hash fields by feature name as Feast names them (murmur3 of `view:feature`,
    as a bulk string), each computed once."""

    def __init__(self, view: str) -> None:
        super().__init__()
        self.view = view

    def __missing__(self, feature: str) -> bytes:
        field = self[feature] = _bulk(_mmh3(f"{self.view}:{feature}"))
        return field


def _send(connection: Connection, commands: bytes, replies: int) -> None:
    """Send packed commands and read their replies (an error reply is raised)."""
    connection.send_packed_command([commands])
    for _ in range(replies):
        connection.read_response(disable_decoding=True)


def _bulk(value: bytes) -> bytes:
    """A bulk string of the Redis protocol."""
    return b"$%d\r\n%s\r\n" % (len(value), value)


def _hset(key: bytes, stamp_field: bytes, stamp: bytes, values: dict[str, ValueProto],
          fields: _Fields, encoded: dict[int, bytes]) -> bytes:
    """HSET key, the view's timestamp, then each feature's field and value (Feast's order)."""
    parts = [b"*%d\r\n$4\r\nHSET\r\n" % (2 + 2 * (1 + len(values))), _bulk(key), stamp_field, stamp]
    for feature, value in values.items():
        bulk = encoded.get(id(value))
        if bulk is None:
            bulk = encoded[id(value)] = _bulk(value.SerializeToString())
        parts += (fields[feature], bulk)
    return b"".join(parts)


def _stamp(timestamp: datetime, stamps: dict[datetime, bytes]) -> bytes:
    """The view's timestamp field's value as Feast writes it (a Timestamp proto), per instant once."""
    bulk = stamps.get(timestamp)
    if bulk is None:
        proto = Timestamp()
        proto.FromDatetime(make_tzaware(timestamp))
        bulk = stamps[timestamp] = _bulk(proto.SerializeToString())
    return bulk


def _serialized_key(entity_key: EntityKey, version: int) -> bytes:
    """Feast's `serialize_entity_key`, remembered for up to `KEYS_REMEMBERED` keys (then
    forgotten all at once): a live update writes and reads the same people's keys in every
    view (some 25,000 a thousand people, ~6 microseconds each), and the proto's own bytes
    are ten times cheaper; a full load, whose keys come once, pays them on top."""
    cache_key = (entity_key.SerializeToString(deterministic=True), version)
    key = _KEYS.get(cache_key)
    if key is None:
        if len(_KEYS) >= KEYS_REMEMBERED:
            _KEYS.clear()
        key = _KEYS[cache_key] = serialize_entity_key(entity_key, entity_key_serialization_version=version)
    return key


_KEYS: dict[tuple[bytes, int], bytes] = {}


def _epoch(stamp: datetime) -> int:
    """A timestamp as Feast's SQLite store keeps it: its sqlite3 adapter's epoch seconds of
    the naive UTC time (given once per entity here, not adapted once per value)."""
    return int(to_naive_utc(stamp).timestamp())


def online_reader(store: FeatureStore) -> OnlineRead:
    """The provider's `online_read`, or for Feast's own SQLite store, the read above."""
    if type(store.provider.online_store) is SqliteOnlineStore:
        return LeanSqliteStore().online_read
    return store.provider.online_read


def read_back(store: FeatureStore) -> Callable[[datetime], datetime] | None:
    """For a store this module reads (Feast's SQLite), the timestamp its read gives a row
    written at a time: the values a process has just written are then the ones a read would
    give it, without reading them (features/store.py `OnlineFeatures.read_rows`). None for
    another store."""
    if type(store.provider.online_store) is SqliteOnlineStore:
        return lambda stamp: _as_read(_epoch(stamp))
    return None


def online_writer(store: FeatureStore) -> OnlineWrite:
    """The provider's `online_write_batch`, or for Feast's own SQLite or Redis store, the
    writes above."""
    lean = {SqliteOnlineStore: LeanSqliteStore, RedisOnlineStore: LeanRedisStore}.get(
        type(store.provider.online_store))
    return store.provider.online_write_batch if lean is None else lean().online_write_batch


def _entity_read(rows: list[tuple] | None,
                 parsed: dict[bytes, ValueProto]) -> tuple[datetime | None, dict[str, ValueProto] | None]:
    """One entity's values and the timestamp Feast gives them: its last row's (`_as_read`).
    `parsed`: the protos of the values read so far (shared: the readers only read them)."""
    if not rows:
        return None, None
    values = {}
    for _, feature, value, _ in rows:
        proto = parsed.get(value)
        if proto is None:
            proto = parsed[value] = ValueProto.FromString(value)
        values[feature] = proto
    return _as_read(int(rows[-1][3])), values


def _as_read(epoch: int) -> datetime:
    """A stored timestamp as Feast's `convert_timestamp` reads it (local time from the
    epoch), then tagged UTC."""
    return datetime.fromtimestamp(epoch).replace(tzinfo=timezone.utc)
