"""After an ingest: the touched people's online features, by the batch's definitions, now.

`OnlineUpdater` keeps a worker's in-memory copy of the middle layer (features/live.py's
`open_middle_layer`, reopened when the batch replaces the middle layer) and, for the people
an ingest touched, computes every feature view at the clock's instant from the middle layer
plus what the event log holds since (their interactions and their colleagues', the person
rows folded live, the cookies bound live), then writes the rows to the online store through
Feast. The next online read (a /score, the re-score that follows the ingest) sees them.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import duckdb
import pandas as pd

from leadscore.config import Settings
from leadscore.features.live import (
    FeatureDefinitions,
    LiveRecords,
    features_at,
    open_middle_layer,
    write_online,
)
from leadscore.live.log import EventLog, compacted

if TYPE_CHECKING:
    from feast import FeatureStore

MAX_ROUNDS = 5  # writes of one update when other workers keep changing the same people


class OnlineUpdater:
    """Recomputes and writes online features for touched people (thread-safe)."""

    def __init__(self, settings: Settings, store: FeatureStore) -> None:
        self.settings = settings
        self.store = store
        self.definitions = FeatureDefinitions.from_settings(settings)
        self._lock = threading.Lock()
        self._writing = threading.Lock()  # the store's one SQLite connection, one writer at a time
        self._middle: tuple[int, duckdb.DuckDBPyConnection, tuple[int, int]] | None = None

    def middle(self, log: EventLog) -> tuple[duckdb.DuckDBPyConnection, tuple[int, int]]:
        """The worker's copy of the middle layer and the event-log rows it holds (interaction,
        record); copied again when the batch has replaced the file."""
        stamp = self.settings.middle_db.stat().st_mtime_ns
        with self._lock:
            if self._middle is None or self._middle[0] != stamp:
                con = open_middle_layer(self.settings.middle_db)
                with duckdb.connect(str(self.settings.middle_db), read_only=True) as middle:
                    seq = (compacted(middle, log.id), compacted(middle, log.id, "record"))
                self._middle = (stamp, con, seq)
            return self._middle[1], self._middle[2]

    def live_records(self, log: EventLog, pids: Sequence[str], held: tuple[int, int]) -> LiveRecords:
        """What the log holds since the middle layer (its rows after `held`: interaction, record)
        for these people and their companies."""
        after, records_after = held
        people = log.people(pids, records_after)
        cids = sorted({row["cid"] for row in people.values() if row.get("cid")})
        interactions = log.interactions(pids=pids, cids=cids, after=after)
        cookies = {pid: [key.split(":", 1)[1] for key in log.known_cookies_of(pid, records_after)]
                   for pid in pids}
        return LiveRecords(interactions=interactions,
                           people=pd.DataFrame(list(people.values())) if people else None,
                           cookies={pid: found for pid, found in cookies.items() if found})

    def update(self, log: EventLog, pids: Sequence[str], at: datetime) -> dict[str, int]:
        """Write the features of `pids` at `at` online; returns rows written per view.

        Two workers touching one person at once may write in the opposite order to the one they
        read in, and the online store keeps the last write. So after writing, a worker checks
        whether the log changed for these people since it read, and if so computes and writes
        again: the last write then always holds all of their own records committed before it.
        (Colleagues' records change the account-level counts too; those are refreshed when the
        person is next touched, or by the batch.)"""
        if not pids:
            return {}
        con, held = self.middle(log)
        for _ in range(MAX_ROUNDS):
            seen = log.last_change(pids)  # before reading: a change after it shows
            rows = features_at(con, self.definitions, list(pids), at, self.live_records(log, pids, held))
            with self._writing:
                write_online(self.store, rows)
            if log.last_change(pids) == seen:
                break
        log.features_updated(pids, at)
        return {view: len(frame) for view, frame in rows.items()}

