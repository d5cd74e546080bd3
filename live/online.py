"""After an ingest: the touched people's online features, by the batch's definitions, now.

`OnlineUpdater` keeps a worker's in-memory copy of the middle layer (features/live.py's
`open_middle_layer`, reopened when the batch replaces the middle layer) and, for the people
an ingest touched, computes every feature view at the clock's instant from the middle layer
plus what the event log holds since (their interactions and their colleagues', the person
rows folded live, the cookies bound live), then writes the rows to the online store through
Feast. The next online read (a /score, the re-score that follows the ingest) sees them.

Behind the answer: an ingest marks its people due (live/log.py `due_update`) and a worker's
update takes every person due, whichever worker ingested them, so that one computation
serves all that arrived meanwhile (the feature SQL costs about as much for one person as
for a hundred). One update at a time writes the online store, and it reads the log after
taking the store's lock: a write can then never hide a record committed before its read,
and the record committed after it is marked due again for the next update.
"""

from __future__ import annotations

import fcntl
import functools
import logging
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pandas as pd

from leadscore.config import Settings
from leadscore.features.live import (
    COLLEAGUE_ACCOUNTS,
    COMPANY_VIEWS,
    PERSON_VIEWS,
    FeatureDefinitions,
    LiveRecords,
    features_at,
    open_middle_layer,
    write_ahead_log,
    write_online,
)
from leadscore.features.online_store import OnlineRead, online_reader
from leadscore.features.store import ViewWrite, Written, read_view, view_writer, written_rows
from leadscore.live.log import EVENT_LOG, EventLog, compacted

if TYPE_CHECKING:
    from feast import FeatureStore, FeatureView

logger = logging.getLogger(__name__)
Then = Callable[[list[str], Written | None], object]  # after an update: its PIDs, their rows as written
STORE_LOCK = "online_store.lock"  # in the live directory: one worker writes the online store at a time
LOCK_POLL_S = 0.005


class StoreBusy(Exception):
    """Another update holds the online store's lock (asked not to wait for it)."""


class OnlineUpdater:
    """Recomputes and writes online features for touched people (thread-safe)."""

    def __init__(self, settings: Settings, store: FeatureStore) -> None:
        self.settings = settings
        self.store = store
        self.definitions = FeatureDefinitions.from_settings(settings)
        self._lock = threading.Lock()
        self._writing = threading.Lock()  # the store's one SQLite connection, one writer at a time
        self._middle: tuple[int, duckdb.DuckDBPyConnection, tuple[int, int]] | None = None
        try:
            write_ahead_log(store)
        except sqlite3.OperationalError as error:  # the first update's write asks again
            logger.warning("online store not switched to WAL mode yet: %s", error)

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

    def live_records(self, con: duckdb.DuckDBPyConnection, log: EventLog, pids: Sequence[str],
                     held: tuple[int, int], people: dict[str, dict], cids: Sequence[str]) -> LiveRecords:
        """What the log holds since the middle layer (its rows after `held`: interaction, record)
        for these people (`people`: their rows folded live) and the companies `cids` (their
        groups'): the interactions; the rows of the colleagues the log changed (who engaged,
        or joined or left one of these companies live: each counts in a buying committee);
        and every cookie bound live (a colleague's anonymous sessions the batch holds count
        for them as well)."""
        after, records_after = held
        interactions = log.interactions(pids=pids, cids=cids, after=after)
        with con.cursor() as cur:  # the batch's people at these companies
            stored = [row[0] for row in cur.execute(
                "SELECT pid FROM person WHERE cid IN (SELECT unnest($1::VARCHAR[]))",
                [list(cids)]).fetchall()]
        colleagues = {pid for pid in [*interactions["pid"].dropna(), *stored] if pid not in people}
        people = {**log.people(colleagues, records_after), **log.people_at(cids, records_after), **people}
        return LiveRecords(interactions=interactions,
                           people=pd.DataFrame(list(people.values())) if people else None,
                           # all since the batch (features_at keeps the scope's): a few per form fill
                           cookies=log.bound_cookies(records_after))

    def update_due(self, log: EventLog, now: Callable[[], datetime], limit: int,
                   then: Then = lambda pids, written: None, wait: bool = True) -> list[str]:
        """Write the features of up to `limit` people due (any worker's: the longest waiting
        first) at the clock's `now()` once they are read (never before their records were
        received), call `then` with their PIDs and their rows as written (`written_rows`:
        the re-scoring reads none of them again), and clear their marks, all under the
        store's lock (another update would take them again); returns the PIDs (none:
        nothing was due).

        A failure is tried again on each half of the people: one whose update fails alone
        while others' went through is set aside (its mark cleared, an error logged: its next
        record marks it again); if none went through, the error is raised and every mark
        stays for the next update (the store or the log is down, not a person).

        `wait`: False raises StoreBusy at once if another update (of any worker) holds the
        lock: that one takes what is due after its batch, as its caller loops until nothing is."""
        with self._store_lock(wait):
            due = log.due(limit)
            failed = self._write_due(log, due, now, then, probe=True) if due else []
            if failed and len(failed) == len(due):
                raise RuntimeError(f"no feature update of the {len(due)} people due went through")
            if failed:
                logger.error("set aside until their next record: the feature updates of %s failed",
                             ", ".join(pid for pid, _ in failed))
                log.updated(failed)
        return [pid for pid, _ in due]

    def _write_due(self, log: EventLog, due: list[tuple[str, int]], now: Callable[[], datetime],
                   then: Then, probe: bool = False) -> list[tuple[str, int]]:
        """`update_due` for these marks, each half again on a failure; the marks of the people
        whose update failed alone (those that went through are cleared). `probe`: after a
        failure, the newest person alone first; if that fails too, every mark is given back
        (a store or log that fails everyone costs two tries, not one per person)."""
        pids = [pid for pid, _ in due]
        at, noted = now(), None
        try:
            written, noted = self._compute_and_write(log, pids, at)
            then(pids, written)
        except Exception:
            _note_written_anyway(log, noted, at)
            if len(due) == 1:
                logger.exception("the feature update of %s failed", pids[0])
                return due
            if probe and self._write_due(log, due[-1:], now, then):
                return due
            rest = due[:-1] if probe else due
            half = len(rest) // 2
            return [*self._write_due(log, rest[:half], now, then),
                    *self._write_due(log, rest[half:], now, then)]
        log.updated(due, noted, at)
        return []

    def _compute_and_write(self, log: EventLog, pids: list[str],
                           at: datetime) -> tuple[Written | None, dict[str, list[str]]]:
        """The features of `pids` at `at` from the log as it is now, written online (the
        caller holds the store's lock); their rows as a read gives them (None: this store's
        read is not known, read it), and the PIDs written in each view (for the log's
        `features_written`, noted with the marks cleared).

        A person's engagement changes the buying-committee counts (`person_account`) of
        everyone at their company and its group: when the count of engaged people of a company
        in the group differs from the one online, the colleagues' rows that changed are
        written too, with the group's company rows."""
        con, held = self.middle(log)
        with log.reading():  # one view of the log for every read
            people = log.people(pids, held[1])
            groups = _group_companies(con, pids, people, log.companies_of(pids, held[1]))
            cids = sorted({cid for companies in groups.values() for cid in companies})
            live = self.live_records(con, log, pids, held, people, cids)
        rows = features_at(con, self.definitions, pids, at, live, colleagues=True, companies=cids)
        colleagues = self._colleagues_to_rewrite(con, rows)
        rows["person_account"] = pd.concat([rows["person_account"], colleagues], ignore_index=True)
        data = write_online(self.store, rows, self.views, self._write)
        mine = {view: data[view] for view in PERSON_VIEWS if view in data}
        return (written_rows(self.store, self.views, mine, pids),
                {view: list(frame["pid"]) for view, frame in rows.items() if "pid" in frame})

    @functools.cached_property
    def views(self) -> dict[str, FeatureView]:
        """The store's feature views that live writes, looked up once (as the service's
        online reads are: a new definition takes a restart)."""
        return {name: self.store.get_feature_view(name) for name in (*PERSON_VIEWS, *COMPANY_VIEWS)}

    @functools.cached_property
    def _read(self) -> OnlineRead:
        """The store's online read (features/online_store.py), made once."""
        return online_reader(self.store)

    @functools.cached_property
    def _write(self) -> ViewWrite:
        """The store's write of a view's rows (by column where it has one), made once."""
        return view_writer(self.store)

    @contextmanager
    def _store_lock(self, wait: bool = True) -> Iterator[None]:
        """`store_lock`, across this worker's threads too."""
        if not self._writing.acquire(blocking=wait):
            raise StoreBusy("another update of this worker is running")
        try:
            with store_lock(self.settings.live_dir, self.settings.live.busy_timeout_s, wait):
                yield
        finally:
            self._writing.release()

    def _colleagues_to_rewrite(self, con: duckdb.DuckDBPyConnection,
                               rows: dict[str, pd.DataFrame]) -> pd.DataFrame:
        """The colleagues' `person_account` rows (from `rows`, which loses them) that differ
        from their rows online, looked for only in the groups with a company whose count of
        engaged people is not the one online. (The company rows of a group are written with its
        colleagues' rows, under the store's lock, so that the two never disagree online.)"""
        colleagues = rows.pop(COLLEAGUE_ACCOUNTS)
        engagement = rows["company_engagement"]
        if engagement.empty or colleagues.empty:
            return colleagues.drop(columns=["cid", "eid"]).iloc[:0]
        cids = list(engagement["cid"])
        online = read_view(self.store, self.views["company_engagement"], "cid", cids, ["people_engaged_30d"],
                           self._read)
        changed = [cid for cid, now, before in zip(cids, engagement["people_engaged_30d"], online,
                                                   strict=True)
                   if _differ(now, None if before is None else before["people_engaged_30d"])]
        with con.cursor() as cur:
            groups = [row[0] for row in cur.execute(
                "SELECT DISTINCT eid FROM company WHERE cid IN (SELECT unnest($1::VARCHAR[]))",
                [changed]).fetchall()]
        candidates = colleagues[colleagues["eid"].isin(groups)].drop(columns=["cid", "eid"])
        return candidates[self._differ_online(candidates, "person_account")]

    def _differ_online(self, frame: pd.DataFrame, view: str) -> pd.Series:
        """For each row of `frame` (a pid-keyed view's rows), whether its features differ from
        the row online (or it has none): writing the same values again would change nothing."""
        if frame.empty:
            return pd.Series(False, index=frame.index)
        names = [c for c in frame.columns if c not in ("pid", "event_timestamp")]
        online = read_view(self.store, self.views[view], "pid", list(frame["pid"]), names, self._read)
        return pd.Series([before is None or any(_differ(now[name], before[name]) for name in names)
                          for now, before in zip(frame[names].to_dict("records"), online, strict=True)],
                         index=frame.index)


def _note_written_anyway(log: EventLog, noted: dict[str, list[str]] | None, at: datetime) -> None:
    """Note rows an update wrote online before it failed (its re-scoring, say): a batch load
    must know them (`mark_behind_a_load`), and a colleague's row written then is not written,
    so not noted, by the tries that follow (it no longer differs from the one online)."""
    if not noted:
        return
    try:
        log.features_written(noted, at)
    except Exception:  # noqa: BLE001 - the update's own failure is the one to report
        logger.exception("the rows written before the update failed could not be noted")


@contextmanager
def store_lock(live_dir: Path, timeout_s: float, wait: bool = True) -> Iterator[None]:
    """The online store's write lock of the live path, across processes (one update at a
    time); a TimeoutError after `timeout_s` (another worker stuck while holding it), or
    without `wait` StoreBusy at once if another holds it."""
    path = live_dir / STORE_LOCK
    with open(path, "a") as handle:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not wait:
                    raise StoreBusy(f"another worker holds the online store's lock ({path})") from None
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the online store's lock ({path}) was held by another "
                                       f"worker for more than {timeout_s} s") from None
                time.sleep(LOCK_POLL_S)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def mark_behind_a_load(settings: Settings) -> list[str]:
    """After a batch load of the online store, mark due the people whose online rows the live
    path had computed from records the build did not hold: written at or after the receipt
    of the last record of the log that the middle layer compacted (all of them when it holds
    none of this log). The load put the build's rows over theirs; the next live update (any
    worker's, while idle) writes them again. Marked under the store's lock: an update running
    meanwhile could otherwise clear a mark renewed at its own record. Returns their PIDs."""
    path = settings.live_dir / EVENT_LOG
    if not path.is_file():
        return []
    log = EventLog(path, settings.live.busy_timeout_s)
    try:
        with duckdb.connect(str(settings.middle_db), read_only=True) as middle:
            held = compacted(middle, log.id, "record")
        with store_lock(settings.live_dir, settings.live.busy_timeout_s):
            return log.mark_written_after(log.received_at(held))
    finally:
        log.close()


def _group_companies(con: duckdb.DuckDBPyConnection, pids: Sequence[str], people: dict[str, dict],
                     logged: Sequence[tuple[str, str]]) -> dict[str, set[str]]:
    """pid -> every company in the groups of the person's companies: the one now (`people`:
    rows folded live, which win over the middle layer's) and those they were at since the
    batch (the middle layer's, and `logged`: (pid, cid) of their records in the log). A
    person who moves to another group leaves a count behind: that group is rewritten too.
    People without a company are left out."""
    live = [(pid, row["cid"]) for pid, row in people.items() if row.get("cid")] + list(logged)
    groups: dict[str, set[str]] = {}
    with con.cursor() as cur:
        for pid, cid in cur.execute("""
                WITH mine AS (
                    SELECT pid, cid FROM person WHERE pid IN (SELECT unnest($1::VARCHAR[]))
                    UNION SELECT unnest($2::VARCHAR[]), unnest($3::VARCHAR[]))
                SELECT m.pid, g.cid FROM mine m JOIN company c USING (cid) JOIN company g USING (eid)""",
                [list(pids), [pid for pid, _ in live], [cid for _, cid in live]]).fetchall():
            groups.setdefault(pid, set()).add(cid)
    return groups

def _differ(now: object, before: object) -> bool:
    """Whether a computed value (NaN or None when missing) is not the one online (None)."""
    missing = now is None or now is pd.NA or (isinstance(now, float) and math.isnan(now))
    return (before is not None) if missing else (before is None or before != now)
