"""The service's reads of Feast's SQLite online store, one timestamp per entity.

Feast's `SqliteOnlineStore.online_read` converts the event timestamp of every feature value
it reads (a `datetime` from the column's declared type, then tagged UTC) and keeps only the
last one of each entity: 66 conversions for one /score, a twentieth of its CPU. The subclass
here reads the same rows with the same query, converts one timestamp per entity (the last,
as Feast keeps it) and so answers exactly what Feast's does. It only reads: the repo's
online store stays `type: sqlite` (Feast applies and plans the infrastructure of that type
alone), and writes and materialisation stay Feast's own.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import datetime, timezone

from feast import FeatureStore, FeatureView
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.infra.online_stores.sqlite import SqliteOnlineStore, _quote_id, _table_id
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value as ValueProto
from feast.repo_config import RepoConfig

Read = list[tuple[datetime | None, dict[str, ValueProto] | None]]
OnlineRead = Callable[[RepoConfig, FeatureView, list[EntityKey], list[str]], Read]


class OneTimestampSqliteStore(SqliteOnlineStore):
    """`SqliteOnlineStore` (on its own connection), reading one timestamp per entity instead
    of one per value."""

    def online_read(self, config: RepoConfig, table: FeatureView, entity_keys: list[EntityKey],
                    requested_features: list[str] | None = None) -> Read:
        version = config.entity_key_serialization_version
        keys = [serialize_entity_key(key, entity_key_serialization_version=version) for key in entity_keys]
        name = _quote_id(_table_id(config.project, table,
                                   config.registry.enable_online_feature_view_versioning))
        # the timestamp as stored (a CAST has no declared type: sqlite3 leaves it unconverted)
        rows = self._get_conn(config).execute(
            f"SELECT entity_key, feature_name, value, CAST(event_ts AS INTEGER) FROM {name} "
            f"WHERE entity_key IN ({','.join('?' * len(keys))}) ORDER BY entity_key", keys).fetchall()
        by_key = {key: list(group) for key, group in itertools.groupby(rows, key=lambda row: row[0])}
        return [_entity_read(by_key.get(key)) for key in keys]


def online_reader(store: FeatureStore) -> OnlineRead:
    """The provider's `online_read`, or for Feast's own SQLite store, the read above."""
    if type(store.provider.online_store) is SqliteOnlineStore:
        return OneTimestampSqliteStore().online_read
    return store.provider.online_read


def _entity_read(rows: list[tuple] | None) -> tuple[datetime | None, dict[str, ValueProto] | None]:
    """One entity's values and the timestamp Feast gives them: its last row's, read as Feast's
    `convert_timestamp` reads it (local time from the epoch), then tagged UTC."""
    if not rows:
        return None, None
    values = {feature: ValueProto.FromString(value) for _, feature, value, _ in rows}
    return datetime.fromtimestamp(int(rows[-1][3])).replace(tzinfo=timezone.utc), values
