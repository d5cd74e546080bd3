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
    COLLEAGUE_ACCOUNTS,
    FeatureDefinitions,
    LiveRecords,
    features_at,
    open_middle_layer,
    write_online,
)
from leadscore.features.store import read_view
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

    def live_records(self, log: EventLog, pids: Sequence[str], held: tuple[int, int],
                     people: dict[str, dict], cids: Sequence[str]) -> LiveRecords:
        """What the log holds since the middle layer (its rows after `held`: interaction, record)
        for these people (`people`: their rows folded live) and the companies `cids` (their
        groups'): the interactions, and the rows of the colleagues who engaged live (a person
        first seen live counts for their company's buying committee too)."""
        after, records_after = held
        interactions = log.interactions(pids=pids, cids=cids, after=after)
        colleagues = sorted(set(interactions["pid"].dropna()) - set(pids))
        people = {**log.people(colleagues, records_after), **people}
        cookies = {pid: [key.split(":", 1)[1] for key in log.known_cookies_of(pid, records_after)]
                   for pid in pids}
        return LiveRecords(interactions=interactions,
                           people=pd.DataFrame(list(people.values())) if people else None,
                           cookies={pid: found for pid, found in cookies.items() if found})

    def update(self, log: EventLog, pids: Sequence[str], at: datetime) -> dict[str, int]:
        """Write the features of `pids` at `at` online; returns rows written per view.

        A person's engagement changes the buying-committee counts (`person_account`) of
        everyone at their company and its group: when a target company's count of engaged
        people differs from the one online, those colleagues' rows are written too.

        Two workers touching one person (or company) at once may write in the opposite order
        to the one they read in, and the online store keeps the last write. So after writing,
        a worker checks whether the log changed for these people or their companies' groups
        since it read, and if so computes and writes again: the last write then always holds
        every record committed before it."""
        if not pids:
            return {}
        con, held = self.middle(log)
        for _ in range(MAX_ROUNDS):
            people = log.people(pids, held[1])
            cids = _group_companies(con, pids, people)
            seen = log.last_change(pids, cids)  # before reading: a change after it shows
            rows = features_at(con, self.definitions, list(pids), at,
                               self.live_records(log, pids, held, people, cids), colleagues=True)
            colleagues = self._colleagues_to_rewrite(con, rows)
            rows["person_account"] = pd.concat([rows["person_account"], colleagues], ignore_index=True)
            with self._writing:
                write_online(self.store, rows)
            if log.last_change(pids, cids) == seen:
                break
        log.features_written({view: list(frame["pid"]) for view, frame in rows.items() if "pid" in frame},
                             at)
        return {view: len(frame) for view, frame in rows.items()}

    def _colleagues_to_rewrite(self, con: duckdb.DuckDBPyConnection,
                               rows: dict[str, pd.DataFrame]) -> pd.DataFrame:
        """The colleagues' `person_account` rows (from `rows`, which loses them) in the groups of
        the target companies whose count of engaged people is not the one online."""
        colleagues = rows.pop(COLLEAGUE_ACCOUNTS)
        engagement = rows["company_engagement"]
        if engagement.empty or colleagues.empty:
            return colleagues.drop(columns=["cid", "eid"]).iloc[:0]
        cids = list(engagement["cid"])
        online = read_view(self.store, "company_engagement", "cid", cids, ["people_engaged_30d"])
        changed = [cid for cid, now, before in zip(cids, engagement["people_engaged_30d"], online,
                                                   strict=True)
                   if before is None or before["people_engaged_30d"] != now]
        with con.cursor() as cur:
            groups = [row[0] for row in cur.execute(
                "SELECT DISTINCT eid FROM company WHERE cid IN (SELECT unnest($1::VARCHAR[]))",
                [changed]).fetchall()]
        return colleagues[colleagues["eid"].isin(groups)].drop(columns=["cid", "eid"])



def _group_companies(con: duckdb.DuckDBPyConnection, pids: Sequence[str],
                     people: dict[str, dict]) -> list[str]:
    """Every company in the groups of these people's companies (`people`: rows folded live,
    which win over the middle layer's)."""
    live = [row["cid"] for row in people.values() if row.get("cid")]
    stored = [pid for pid in pids if pid not in people]
    with con.cursor() as cur:
        return [row[0] for row in cur.execute("""
            SELECT cid FROM company WHERE eid IN (SELECT eid FROM company WHERE cid IN (
                SELECT cid FROM person WHERE pid IN (SELECT unnest($1::VARCHAR[]))
                UNION SELECT unnest($2::VARCHAR[])))
            ORDER BY cid""", [stored, live]).fetchall()]
