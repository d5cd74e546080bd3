"""Reads and batch writes of Feast's SQLite (and batch writes of its Redis) online store, as
Feast's own, with less Python.

Feast's `SqliteOnlineStore.online_read` converts the event timestamp of every feature value
it reads (a `datetime` from the column's declared type, then tagged UTC) and keeps only the
last one of each entity: 66 conversions for one /score, a twentieth of its CPU. The subclass
here reads the same rows with the same query, converts one timestamp per entity (the last,
as Feast keeps it) and so answers exactly what Feast's does.

Its `online_write_batch` writes the rows Feast's writes, with Feast's statement (an upsert per
value), in one transaction of a few multi-row statements (`execute_rows`) instead of one
`execute` per value, each distinct value proto serialised once (a column holds few distinct
values: `proto_values` shares them), each timestamp converted once per entity, on a
connection with a larger page cache:
the live updates and a full load spend most of their writing there. The repo's online
store stays `type: sqlite` (Feast applies and plans the infrastructure of that type alone);
a store with value_num or vector columns is written by Feast's own method.

For Feast's Redis store (`features.online_store: redis`), `LeanRedisStore` writes a batch as
Feast's `online_write_batch` does with `skip_dedup`: the same HSET commands, whose protocol
bytes are built here (each feature's field hashed once per batch, each value and timestamp
serialised once) and sent 2,000 at a time on one connection (sent again after a dropped
connection, as redis-py's pipeline retries). Where Feast would read timestamps first
(no `skip_dedup`), set key TTLs, or talk to a cluster or sentinel, Feast's own write runs.

`LeanSqliteStore.write_columns` writes the same rows from a batch's columns: the entity keys
laid out in Arrow, doubles in NumPy, other values and timestamps converted once per distinct
value, and Feast's upserts' parameters zipped from the columns, so that SQLite's own upserts
are nearly all of the time (a full load, `column_writer`, and the live updates,
`online_column_writer`, write this way).

A full load into that Redis store (`column_writer`) builds the same commands by column, as
Redis' mass insertion does: Arrow joins each row's command from its key, its timestamp and
each feature's field and value, each distinct value encoded once (doubles and keys laid out
in Arrow, checked against protobuf's and Feast's own encodings), while a thread sends the
chunks and reads their replies, so that Redis runs one chunk while the next is built. On the
default world it writes the hashes Feast's `materialize` writes about ten times faster; the
Redis server's own HSETs are then about half of its time.
"""

from __future__ import annotations

import functools
import itertools
import math
import queue
import sqlite3
import struct
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from feast import FeatureStore, FeatureView
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.infra.online_stores.helpers import _mmh3, extract_text_and_num
from feast.infra.online_stores.redis import (
    RedisOnlineStore,
    RedisOnlineStoreConfig,
    RedisType,
    _versioned_fv_name,
)
from feast.infra.online_stores.sqlite import SqliteOnlineStore, _quote_id, _table_id
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value as ValueProto
from feast.repo_config import RepoConfig
from feast.type_map import python_values_to_proto_values
from feast.utils import make_tzaware, to_naive_utc
from feast.value_type import ValueType
from google.protobuf.timestamp_pb2 import Timestamp
from redis.connection import Connection

from leadscore.sqlite_rows import VALUES, execute_rows

Read = list[tuple[datetime | None, dict[str, ValueProto] | None]]
OnlineRead = Callable[[RepoConfig, FeatureView, list[EntityKey], list[str]], Read]
Row = tuple[EntityKey, dict[str, ValueProto], datetime, datetime | None]
T = TypeVar("T")
PAGE_CACHE_KIB = 131_072  # 128 MiB at most, as the pages are read
KEYS_REMEMBERED = 65_536
REDIS_COMMANDS = 2_000  # HSETs sent before their replies are read
Chunk = tuple[bytes, int]  # packed Redis commands and how many
QUEUED_CHUNKS = 16  # of a full load, built and waiting to be sent
OnlineWrite = Callable[[RepoConfig, FeatureView, list[Row], Callable[[int], object] | None], None]


@dataclass(frozen=True)
class ColumnRows:
    """A view's rows by column, as a full load reads them from its source: the join key and
    each entity's id (strings), each row's timestamp, and each feature's column with the
    Feast value type it is written as."""

    join_key: str
    ids: pa.Array
    stamps: pa.Array
    features: dict[str, tuple[pa.Array, ValueType]]


# a store's write of a view's rows by column (`online_column_writer`, `column_writer`)
ColumnWrite = Callable[[RepoConfig, FeatureView, ColumnRows], None]


class LeanSqliteStore(SqliteOnlineStore):
    """`SqliteOnlineStore` (on its own connection), reading one timestamp per entity instead
    of one per value, and writing a batch in a few multi-row statements (`execute_rows`)."""

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
            stamp, created_at = _epoch(timestamp), None if created is None else _epoch(created)
            for feature, value in values.items():
                value_and_text = encoded.get(id(value))
                if value_and_text is None:
                    value_and_text = encoded[id(value)] = (value.SerializeToString(),
                                                           extract_text_and_num(value, False)[0])
                rows.append((key, feature, *value_and_text, stamp, created_at))
        with self._get_conn(config) as conn:  # Feast's statement, one transaction
            execute_rows(conn, _upsert(name), rows, width=6)
        if progress:
            progress(len(data))

    def write_columns(self, config: RepoConfig, table: FeatureView, rows: ColumnRows) -> None:
        """Write the rows `online_write_batch` writes for the same rows (the values as
        `proto_values` converts them), in the same order and one transaction, built by
        column: the keys laid out in Arrow, doubles in NumPy, each other column's distinct
        values and each distinct timestamp converted once, and each upsert's parameters zipped
        from the columns (no Python step per value: a third of a live update's write, two
        thirds of the Python around SQLite's own upserts, went there). `online_column_writer`
        gives it for a store Feast's statement fits."""
        if rows.ids.null_count:
            raise ValueError(f"{table.name}: {rows.ids.null_count} rows without a {rows.join_key}")
        version = config.entity_key_serialization_version
        keys = _entity_keys_built(rows.join_key, rows.ids, version).to_pylist()
        stamps = _by_distinct(rows.stamps, lambda distinct: [_epoch(stamp) for stamp in distinct])
        columns = [zip(keys, itertools.repeat(feature), *_sqlite_values(column, value_type), stamps,
                       itertools.repeat(None))
                   for feature, (column, value_type) in rows.features.items()]
        name = _quote_id(_table_id(config.project, table,
                                   config.registry.enable_online_feature_view_versioning))
        by_entity = itertools.chain.from_iterable(zip(*columns, strict=True))  # Feast's order
        with self._get_conn(config) as conn:  # Feast's statement, one transaction
            execute_rows(conn, _upsert(name), by_entity, width=6)

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
        if self._conn:
            return self._conn
        conn: sqlite3.Connection = super()._get_conn(config)
        conn.execute(f"PRAGMA cache_size = -{PAGE_CACHE_KIB}")
        return conn


def _upsert(table: str) -> str:
    """Feast's SQLite statement writing values (without value_num and vector columns), its rows
    given by `execute_rows`: Feast's `executemany` would wait for the GIL once per value in a
    busy service."""
    return (f"INSERT INTO {table} (entity_key, feature_name, value, value_text, event_ts, created_ts) "
            f"VALUES {VALUES} ON CONFLICT(entity_key, feature_name) DO UPDATE SET "
            "value = excluded.value, value_text = excluded.value_text, event_ts = excluded.event_ts, "
            "created_ts = excluded.created_ts")


def _sqlite_values(column: pa.Array, value_type: ValueType) -> tuple[Sequence[bytes], Sequence[str | None]]:
    """Each row's serialised Value and `value_text`, as Feast's SQLite write stores the value
    `proto_values` converts: a double's bytes laid out in NumPy from a numeric column (a column
    of them has about as many distinct values as rows), the rest from the column's distinct
    values."""
    numeric = pa.types.is_floating(column.type) or pa.types.is_integer(column.type)
    if value_type != ValueType.DOUBLE or not numeric:  # (a decimal's cast to double is not Python's)
        distinct, indices = _distinct(column)
        protos = proto_values(distinct, value_type)
        return (_taken([proto.SerializeToString() for proto in protos], indices),
                _taken([extract_text_and_num(proto, False)[0] for proto in protos], indices))
    column = column.cast(pa.float64())
    numbers = pc.fill_null(column, 0.0).to_numpy(zero_copy_only=False).astype("<f8")
    laid = np.empty((len(numbers), len(_DOUBLE_TAG) + 8), np.uint8)
    laid[:, :len(_DOUBLE_TAG)] = np.frombuffer(_DOUBLE_TAG, np.uint8)
    laid[:, len(_DOUBLE_TAG):] = numbers.view(np.uint8).reshape(-1, 8)
    values = laid.view(f"V{laid.shape[1]}").ravel().tolist()  # bytes, trailing zeros kept
    for row in np.flatnonzero(pc.fill_null(pc.is_nan(column), True).to_numpy(zero_copy_only=False)):
        values[row] = b""  # null or NaN: an empty Value
    # Feast's text of a double is str() of the proto's double_val: the float itself
    return values, _by_distinct(column, lambda distinct: [None if number is None or number != number
                                                          else str(number) for number in distinct])


class LeanRedisStore(RedisOnlineStore):
    """`RedisOnlineStore` (its own client) whose batch write, with `skip_dedup` and no key
    TTL (how leadscore configures it), sends the commands Feast's would, as the protocol's
    bytes built here: a hash per entity (Feast's key), its view's timestamp field and a
    murmur3 field per feature. Feast's builds each command through redis-py and hashes each
    feature's name for every value: most of a full load's time went there."""

    def online_write_batch(self, config: RepoConfig, table: FeatureView, data: list[Row],
                           progress: Callable[[int], object] | None) -> None:
        if not _written_lean(config.online_store):
            super().online_write_batch(config, table, data, progress)
            return
        view = _versioned_fv_name(table, config)
        project = config.project.encode()
        version = config.entity_key_serialization_version
        fields = _Fields(view)
        stamp_field = _bulk(f"_ts:{view}".encode())
        encoded: dict[int, bytes] = {}  # by id: the protos live in `data`
        stamps: dict[datetime, bytes] = {}
        chunks = (data[start:start + REDIS_COMMANDS] for start in range(0, len(data), REDIS_COMMANDS))
        self.send(config, ((b"".join(_hset(_serialized_key(key, version) + project, stamp_field,
                                           _stamp(timestamp, stamps), values, fields, encoded)
                                     for key, values, timestamp, _ in chunk), len(chunk))
                           for chunk in chunks))
        if progress:
            progress(len(data))

    def write_columns(self, config: RepoConfig, table: FeatureView, rows: ColumnRows,
                      send: Callable[[bytes, int], None]) -> None:
        """`send` rows by column (a full load's, a live update's): the HSETs
        `online_write_batch` sends for the same rows (the values as `proto_values` converts
        them), built as Redis' mass insertion builds its input (the protocol's bytes,
        pipelined), each distinct value and timestamp encoded once, doubles and keys in Arrow,
        every command joined in Arrow (no Python step per value); `column_writer` (a load's,
        sent behind it) and `online_column_writer` (each chunk's replies read in turn) give
        `send`."""
        if rows.ids.null_count:
            raise ValueError(f"{table.name}: {rows.ids.null_count} rows without a {rows.join_key}")
        view = _versioned_fv_name(table, config)
        project = config.project.encode()
        fields = _Fields(view)
        head = _hset_head(len(rows.features))
        stamp_field = _bulk(f"_ts:{view}".encode())
        by_instant: dict[datetime, bytes] = {}
        keys = _entity_key_bulks(rows.join_key, rows.ids, project, config.entity_key_serialization_version)
        stamps = _bulks_by_distinct(rows.stamps, lambda distinct: [stamp_field + _stamp(stamp, by_instant)
                                                             for stamp in distinct])
        columns = [_value_bulks(fields[feature], column, value_type)
                   for feature, (column, value_type) in rows.features.items()]
        commands = pc.binary_join_element_wise(head, keys, stamps, *columns, b"")
        if not len(commands):
            return
        _, offsets, data = commands.buffers()  # a new array, offsets from 0; no nulls (no id is null)
        offsets = np.frombuffer(offsets, np.int32)
        for start in range(0, len(commands), REDIS_COMMANDS):
            stop = min(start + REDIS_COMMANDS, len(commands))
            send(data[offsets[start]:offsets[stop]].to_pybytes(), stop - start)

    def send(self, config: RepoConfig, chunks: Iterable[Chunk]) -> None:
        """Send each chunk of packed commands (with its number of commands) on one pooled
        connection and read its replies, an error reply raised. A chunk is sent before the
        replies of the one before it are read, so that Redis has the next one to run while
        they are read."""
        pool = self._get_client(config.online_store).connection_pool
        connection = pool.get_connection()
        in_flight = _InFlight(connection)
        try:
            for chunk in chunks:
                in_flight.unread.append(chunk)
                in_flight.exchange(unread=1)
            in_flight.exchange(unread=0)
        except BaseException:
            connection.disconnect()  # replies may be left unread: never hand it back as it is
            raise
        finally:
            pool.release(connection)


class _InFlight:
    """Chunks sent on a connection whose replies are not all read yet. As redis-py's pipeline
    does, they are sent again after a dropped connection (HSET is idempotent)."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.unread: list[Chunk] = []
        self.sent = 0  # how many of `unread` went on the connection as it is now

    def exchange(self, unread: int) -> None:
        """Send the chunks not sent yet, then read replies until `unread` chunks wait for theirs."""
        self.connection.retry.call_with_retry(functools.partial(self._exchange, unread), self._reconnect)

    def _exchange(self, unread: int) -> None:
        for commands, _ in self.unread[self.sent:]:
            # a health check (a connection's `health_check_interval`) would read a reply due to
            # an unread chunk as its own: only when none is due
            self.connection.send_packed_command([commands], check_health=self.sent == 0)
            self.sent += 1
        while len(self.unread) > unread:
            for _ in range(self.unread[0][1]):
                self.connection.read_response(disable_decoding=True)
            self.unread.pop(0)
            self.sent -= 1

    def _reconnect(self, error: Exception) -> None:
        self.connection.disconnect()
        self.sent = 0


@contextmanager
def _sent_behind(send: Callable[[Iterable[Chunk]], None]) -> Iterator[Callable[[bytes, int], None]]:
    """A function queueing chunks of packed commands for `send`, which takes them on a thread
    of its own: Redis runs a chunk (and that thread waits for its replies, the GIL released)
    while the caller builds the next. `QUEUED_CHUNKS` at most wait in the queue; an error of
    `send` is raised at the caller's next chunk or at the block's end."""
    chunks: queue.Queue[Chunk | None] = queue.Queue(maxsize=QUEUED_CHUNKS)
    failed: list[BaseException] = []

    def run() -> None:
        taken = iter(chunks.get, None)  # ends at the caller's None, and stays ended
        try:
            send(taken)
        except BaseException as error:  # noqa: BLE001 - raised on the caller's thread
            failed.append(error)
            for _ in taken:  # the caller never waits on a queue nobody takes from
                pass

    def put(commands: bytes, count: int) -> None:
        if failed:
            raise failed[0]
        chunks.put((commands, count))

    thread = threading.Thread(target=run, name="online-store-load", daemon=True)
    thread.start()
    try:
        yield put
    except BaseException:
        _drop_queued(chunks)  # the caller failed: what it queued is not sent
        raise
    finally:
        chunks.put(None)
        thread.join()
        if failed:  # (over the caller's own error, if any: it is kept as the context)
            raise failed[0]


def _drop_queued(chunks: queue.Queue) -> None:
    """Empty a queue that another thread takes from."""
    while True:
        try:
            chunks.get_nowait()
        except queue.Empty:
            return


def _entity_keys_built(join_key: str, ids: pa.Array, version: int) -> pa.Array:
    """Feast's `serialize_entity_key` of each string id, built in Arrow: a Python call per
    entity was a third of a full load. Feast's key of one string id is the join key's name
    and type, then the id's length (4 bytes, little-endian) and bytes: the part before the
    length is taken from Feast's key of one id, and the first id's key is checked against
    Feast's own."""
    probe = serialize_entity_key(_string_key(join_key, "x"), entity_key_serialization_version=version)
    before_length = probe[:-5]  # the length (4 bytes) and "x" end it
    lengths = pc.binary_length(ids).to_numpy(zero_copy_only=False).astype("<u4").tobytes()
    keys = pc.binary_join_element_wise(before_length, _fixed_width(lengths, 4), ids.cast(pa.binary()), b"")
    first = _string_key(join_key, ids[0].as_py()) if len(ids) else None
    if first and keys[0].as_py() != serialize_entity_key(first, version):
        raise ValueError(f"Feast's entity key of {join_key} is not laid out as this module builds it")
    return keys


def _entity_key_bulks(join_key: str, ids: pa.Array, project: bytes, version: int) -> pa.Array:
    """Each entity's Redis key (Feast's entity key, then the project's name) as a bulk string."""
    keys = pc.binary_join_element_wise(_entity_keys_built(join_key, ids, version), project, b"")
    sizes = pc.binary_length(keys).cast(pa.string()).cast(pa.binary())
    return pc.binary_join_element_wise(b"$", sizes, b"\r\n", keys, b"\r\n", b"")


def _string_key(join_key: str, value: str) -> EntityKey:
    return EntityKey(join_keys=[join_key], entity_values=[ValueProto(string_val=value)])


def _written_lean(config: RedisOnlineStoreConfig) -> bool:
    """Whether `LeanRedisStore` writes for this store (else Feast's own write runs): no read
    of the stored timestamps first (`skip_dedup`), no key TTL, one server."""
    return bool(config.skip_dedup) and not config.key_ttl_seconds and config.redis_type == RedisType.redis


def _by_distinct(column: pa.Array, encode: Callable[[list], list[T]]) -> list[T]:
    """Each row's encoding, `encode` given the column's distinct values once (a null is one
    more, the last)."""
    distinct, indices = _distinct(column)
    return _taken(encode(distinct), indices)


def _taken(encoded: list[T], indices: pa.Array) -> list[T]:
    """Each row's item of `encoded` (one per distinct value), by the row's index."""
    return list(map(encoded.__getitem__, indices.to_numpy(zero_copy_only=False).tolist()))


def _bulks_by_distinct(column: pa.Array, encode: Callable[[list], list[bytes]]) -> pa.Array:
    """Each row's bytes, as an Arrow array, `encode` given the column's distinct values once."""
    distinct, indices = _distinct(column)
    return pa.array(encode(distinct), pa.binary()).take(indices)


def _distinct(column: pa.Array) -> tuple[list, pa.Array]:
    """A column's distinct values (a null is one more, the last) and each row's index among them."""
    encoded = pc.dictionary_encode(column)
    distinct = [*encoded.dictionary.to_pylist(), *([None] if column.null_count else [])]
    return distinct, pc.fill_null(encoded.indices, len(distinct) - 1)


def _value_bulks(field: bytes, column: pa.Array, value_type: ValueType) -> pa.Array:
    """Each row's field and value, bulk strings, the value as `proto_values` converts it and
    protobuf serialises it: a double's laid out in Arrow (a column of them has as many
    distinct values as rows), another's from its distinct values."""
    if value_type != ValueType.DOUBLE:
        return _bulks_by_distinct(column, lambda distinct: [field + _bulk(proto.SerializeToString())
                                                      for proto in proto_values(distinct, value_type)])
    numbers = pc.fill_null(column, 0.0).to_numpy(zero_copy_only=False).astype("<f8")
    present = pc.binary_join_element_wise(field + b"$%d\r\n" % (len(_DOUBLE_TAG) + 8) + _DOUBLE_TAG,
                                          _fixed_width(numbers.tobytes(), 8), b"\r\n", b"")
    return pc.if_else(pc.fill_null(pc.is_nan(column), True), field + _bulk(b""), present)


# A double's Value proto is its field's tag, then the number's 8 bytes, little-endian (a
# oneof member is written even when 0): checked here, on protobuf's own encoding, once.
_DOUBLE_TAG = ValueProto(double_val=-1.5).SerializeToString()[:-8]
if ValueProto(double_val=-1.5).SerializeToString() != _DOUBLE_TAG + struct.pack("<d", -1.5):
    raise ImportError("protobuf lays out a double's Value proto otherwise than features/online_store.py")


def _fixed_width(data: bytes, width: int) -> pa.Array:
    """Binary values of `width` bytes each, cut from `data`."""
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), len(data) // width,
                                                [None, pa.py_buffer(data)]).cast(pa.binary())


# Feast's scalar types and the field of its Value proto each is stored in
_PROTO_FIELDS = {ValueType.INT64: ("int64_val", int), ValueType.DOUBLE: ("double_val", float),
                 ValueType.STRING: ("string_val", str)}


def proto_values(values: list, value_type: ValueType) -> list[ValueProto]:
    """Feast's Value protos of one column's values, as its `write_to_online_store` converts
    them (its own converter for a type not listed): a missing value (null, NaN) is an empty
    Value; each distinct value's proto is built once and shared by the rows that hold it."""
    if value_type not in _PROTO_FIELDS:
        return python_values_to_proto_values(values, value_type)
    name, cast = _PROTO_FIELDS[value_type]
    empty, built = ValueProto(), dict[object, ValueProto]()
    protos = []
    for value in values:
        if value is None or value != value:  # null or NaN
            protos.append(empty)
            continue
        key = (value, math.copysign(1.0, value)) if value == 0 and isinstance(value, float) else value  # -0.0
        proto = built.get(key)
        if proto is None:
            proto = built[key] = ValueProto(**{name: cast(value)})
        protos.append(proto)
    return protos


class _Fields(dict):
    """A view's hash fields by feature name as Feast names them (murmur3 of `view:feature`,
    as a bulk string), each computed once."""

    def __init__(self, view: str) -> None:
        super().__init__()
        self.view = view

    def __missing__(self, feature: str) -> bytes:
        field = self[feature] = _bulk(_mmh3(f"{self.view}:{feature}"))
        return field


def _bulk(value: bytes) -> bytes:
    """A bulk string of the Redis protocol."""
    return b"$%d\r\n%s\r\n" % (len(value), value)


def _hset_head(features: int) -> bytes:
    """The start of an HSET of a hash's key, its view's timestamp and `features` fields."""
    return b"*%d\r\n$4\r\nHSET\r\n" % (2 + 2 * (1 + features))


def _hset(key: bytes, stamp_field: bytes, stamp: bytes, values: dict[str, ValueProto],
          fields: _Fields, encoded: dict[int, bytes]) -> bytes:
    """HSET key, the view's timestamp, then each feature's field and value (Feast's order)."""
    parts = [_hset_head(len(values)), _bulk(key), stamp_field, stamp]
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


def online_column_writer(store: FeatureStore) -> ColumnWrite | None:
    """The store's write by column, for a caller that writes often (a live update): Feast's
    SQLite store's (on a connection of its own) or its Redis store's as leadscore configures
    it (each chunk's replies read before the next is sent); None for another store, written
    through `online_writer`."""
    if (sqlite := _lean_sqlite(store)) is not None:
        return sqlite.write_columns
    if _lean_redis(store):
        redis = LeanRedisStore()
        return functools.partial(redis.write_columns,
                                 send=lambda commands, count: redis.send(store.config, [(commands, count)]))
    return None


@contextmanager
def column_writer(store: FeatureStore) -> Iterator[ColumnWrite | None]:
    """The by-column write of a full load, for a store that has one (`online_column_writer`),
    on a connection (client) of its own, closed after the block; on Redis, the commands are
    sent and their replies read behind the caller (all of them by the block's end). None for
    another store, whose load goes through `online_writer`."""
    if _lean_redis(store):
        redis = LeanRedisStore()
        try:
            with _sent_behind(functools.partial(redis.send, store.config)) as send:
                yield functools.partial(redis.write_columns, send=send)
        finally:
            redis._get_client(store.config.online_store).close()  # its own client: nobody else's pool
        return
    sqlite = _lean_sqlite(store)
    try:
        yield None if sqlite is None else sqlite.write_columns
    finally:
        if sqlite is not None and sqlite._conn is not None:
            sqlite._conn.close()


def _lean_sqlite(store: FeatureStore) -> LeanSqliteStore | None:
    """A `LeanSqliteStore` for Feast's SQLite store when Feast's plain statement writes it
    (no value_num or vector columns)."""
    config = store.config.online_store
    if type(store.provider.online_store) is not SqliteOnlineStore or config.vector_enabled or getattr(
            config, "enable_openai_compatible_store", False):
        return None
    return LeanSqliteStore()


def _lean_redis(store: FeatureStore) -> bool:
    """Whether the store is Feast's Redis store as `LeanRedisStore` writes it (`_written_lean`)."""
    return type(store.provider.online_store) is RedisOnlineStore and _written_lean(store.config.online_store)


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
