"""The event log: every record ingested between batch runs, appended durably before the answer.

Why SQLite in WAL mode: the middle layer is one DuckDB file, which only one process may
open for writing, while several service workers ingest at once. SQLite lets many processes
write one file (one write transaction at a time, readers never blocked), commits are
durable (`synchronous=FULL`), and it needs no server. Each ingest call is one
`BEGIN IMMEDIATE` transaction: identity decisions read the identifiers learnt live and add
new ones under the same lock, so two workers never mint two PIDs for one new email.

Tables
- `record`: one row per (source, source_record_id), the raw record (as validated), `kept` or
  `quarantined` with its reason, and its pid/cid. The primary key makes a re-sent record
  a no-op (idempotent by source and source id).
- `interaction`: the kept behaviour records as middle-layer interactions (same columns,
  times as ISO text), read beside the middle layer by portraits, segments and features.
- `identifier`: identifiers learnt live ('email:x@y.com' -> pid, the name keys seen
  with it), and cookies bound to a person by a form fill. Like `person`, each row carries
  `seq`, the last `record` row when it was written: once the batch holds that row (its
  `live_watermark.record`), the batch's own knowledge supersedes it (after a merge, say).
- `person`: the person rows of PIDs touched live (the middle layer's `person` columns,
  folded with what the live records taught), as JSON.
- `outcome`: what the CRM sent back (live/outcomes.py): opportunities opened, staged, won or
  lost, and the sales disposition of pushed MQLs, one row per (kind, crm_id, at), so a
  re-sent outcome is a no-op. The batch does not compact it: it is the labels' own record
  (live/labels.py).
- `feature_write`: the instant each person's online row of each view was last computed for
  (the online store keeps whole seconds; checks of the live features need the exact instant;
  a colleague's buying-committee row may be newer than the rest of theirs).
- `due_update`: the people whose online features are behind the log (live/online.py), marked
  in the transaction that stores their records, with the last `record` row then; a feature
  update takes them and removes each mark it covered. A worker that dies after an answer
  leaves its marks for the next update of any worker: nothing acknowledged stays unscored.
  A batch load of the online store marks the people whose rows it put over newer live ones
  (live/online.py `mark_behind_a_load`).
- `due_later`: people with a record dated at or after the clock's now (within
  `live.max_ahead_hours`: a source system's clock a little ahead), and that instant. A
  feature update counts what happened before its now, so such a record would count only at
  the person's next update, whenever something else brought one; once the clock has passed
  the instant, the person is marked due (`released`: at each ingest, and at each idle worker's
  look at the queue), and the row is cleared, with the person's mark, by an update computed
  after it. An anonymous visit dated ahead has no person yet: a form fill that binds its
  cookie (`bind_cookie`) writes the row for the person then.

The batch compacts the log: `leadscore identity resolve` reads its records beside the raw
sources and keeps their PIDs (stable IDs), after which they are in the middle layer; its
`live_watermark` table names the log (`meta.id`, random at creation) and its last rows held,
so readers add only later rows, and never skip rows of another log.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd

from leadscore.identity.resolve import LoggedRecords
from leadscore.live.sources import LATEST, stored_frame
from leadscore.sqlite_rows import VALUES, execute_rows

EVENT_LOG = "events.db"

SCHEMA = """
CREATE TABLE IF NOT EXISTS record (
    source TEXT NOT NULL, source_record_id TEXT NOT NULL, received_at TEXT NOT NULL,
    seen_at TEXT, status TEXT NOT NULL CHECK (status IN ('kept', 'quarantined')), reason TEXT,
    pid TEXT, cid TEXT, rule TEXT, payload TEXT NOT NULL,
    PRIMARY KEY (source, source_record_id));
CREATE INDEX IF NOT EXISTS record_pid ON record (pid);
CREATE INDEX IF NOT EXISTS record_cid ON record (cid);
CREATE TABLE IF NOT EXISTS interaction (
    lid TEXT PRIMARY KEY, pid TEXT, cid TEXT, event_type TEXT NOT NULL, event_time TEXT NOT NULL,
    channel TEXT, source TEXT NOT NULL, source_record_id TEXT NOT NULL, cookie_id TEXT,
    properties TEXT);
CREATE INDEX IF NOT EXISTS interaction_pid ON interaction (pid);
CREATE INDEX IF NOT EXISTS interaction_cookie ON interaction (cookie_id);
CREATE INDEX IF NOT EXISTS interaction_cid ON interaction (cid);
CREATE TABLE IF NOT EXISTS identifier (
    key TEXT PRIMARY KEY, pid TEXT, names TEXT NOT NULL DEFAULT '[]', seq INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS person (pid TEXT PRIMARY KEY, row TEXT NOT NULL, seq INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS feature_write (
    pid TEXT NOT NULL, view TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (pid, view));
CREATE TABLE IF NOT EXISTS due_update (pid TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS due_later (pid TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (pid, at));
CREATE INDEX IF NOT EXISTS due_later_at ON due_later (at);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outcome (
    kind TEXT NOT NULL, crm_id TEXT NOT NULL, at TEXT NOT NULL, pid TEXT NOT NULL, received_at TEXT NOT NULL,
    stage TEXT, amount_usd REAL, disposition TEXT, reason TEXT, payload TEXT NOT NULL,
    PRIMARY KEY (kind, crm_id, at));
CREATE INDEX IF NOT EXISTS outcome_pid ON outcome (pid);
"""
RECORD_COLUMNS = ["source", "source_record_id", "received_at", "seen_at", "status", "reason", "pid", "cid",
                  "rule", "payload"]
OUTCOME_COLUMNS = ["kind", "crm_id", "at", "pid", "received_at", "stage", "amount_usd", "disposition",
                   "reason"]
INTERACTION_COLUMNS = ["lid", "pid", "cid", "event_type", "event_time", "channel", "source",
                       "source_record_id", "cookie_id", "properties"]


@dataclass(frozen=True)
class Known:
    """What the log knows of an identifier: its person (None: a cookie not yet bound) and
    the name keys it was seen with."""

    pid: str | None
    names: frozenset[str]


def _iso(value) -> str | None:
    if value is None or value is pd.NaT or (isinstance(value, float) and pd.isna(value)):
        return None
    return pd.Timestamp(value).tz_convert("UTC").isoformat()


class EventLog:
    """One connection to the event log (one per thread: sqlite3 connections are not shared)."""

    def __init__(self, path: Path, busy_timeout_s: float = 30) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.con = sqlite3.connect(self.path, timeout=busy_timeout_s, isolation_level=None,
                                   check_same_thread=False)
        self.con.execute("PRAGMA journal_mode=WAL")
        self.con.execute("PRAGMA synchronous=FULL")
        self.con.executescript(SCHEMA)
        row = self.con.execute("SELECT value FROM meta WHERE key = 'id'").fetchone()
        if row is None:  # a new log (a write only then: opening an existing log takes no lock)
            self.con.execute("INSERT OR IGNORE INTO meta VALUES ('id', ?)", [uuid.uuid4().hex])
            row = self.con.execute("SELECT value FROM meta WHERE key = 'id'").fetchone()
        self.id = row[0]

    def close(self) -> None:
        self.con.close()

    @contextmanager
    def writing(self) -> Iterator[EventLog]:
        """One write transaction, taken at once (the lock that serialises identity decisions)."""
        self.con.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    @contextmanager
    def reading(self) -> Iterator[EventLog]:
        """One read transaction: every read inside sees the same committed state."""
        self.con.execute("BEGIN")
        try:
            yield self
        finally:
            self.con.execute("COMMIT")

    # --- reads ------------------------------------------------------------------------------

    def already_stored(self, source: str, ids: Iterable[str]) -> dict[str, str | None]:
        """The ids of this source already in the log, with their person."""
        ids = list(ids)
        found: dict[str, str | None] = {}
        for chunk in _chunks(ids):
            found.update(self.con.execute(
                f"SELECT source_record_id, pid FROM record WHERE source = ? AND source_record_id IN "
                f"({','.join('?' * len(chunk))})", [source, *chunk]).fetchall())
        return found

    def known(self, keys: Iterable[str], after: int = 0) -> dict[str, Known]:
        """What the log learnt of these identifiers since record row `after`."""
        keys = list(dict.fromkeys(keys))
        out: dict[str, Known] = {}
        for chunk in _chunks(keys):
            for key, pid, names in self.con.execute(
                    f"SELECT key, pid, names FROM identifier WHERE seq > ? AND key IN "
                    f"({','.join('?' * len(chunk))})", [after, *chunk]):
                out[key] = Known(pid, frozenset(json.loads(names)))
        return out

    def known_cookies_of(self, pid: str, after: int = 0) -> dict[str, Known]:
        """The cookies bound to `pid` live since record row `after` ('cookie_id:<id>' -> what is known)."""
        return {key: Known(owner, frozenset(json.loads(names))) for key, owner, names in self.con.execute(
            "SELECT key, pid, names FROM identifier WHERE pid = ? AND seq > ? AND key LIKE 'cookie_id:%'",
            [pid, after])}

    def bound_cookies(self, after: int = 0) -> dict[str, list[str]]:
        """pid -> the cookies bound to them live since record row `after`."""
        bound: dict[str, list[str]] = {}
        for key, pid in self.con.execute("SELECT key, pid FROM identifier WHERE pid IS NOT NULL AND seq > ? "
                                         "AND key LIKE 'cookie_id:%' ORDER BY key", [after]):
            bound.setdefault(pid, []).append(key.split(":", 1)[1])
        return bound

    def people_at(self, cids: Sequence[str], after: int = 0) -> dict[str, dict]:
        """The person rows folded live since record row `after` that place them at these companies."""
        out: dict[str, dict] = {}
        for chunk in _chunks(list(cids)):
            for pid, row in self.con.execute(
                    f"SELECT pid, row FROM person WHERE seq > ? AND json_extract(row, '$.cid') IN "
                    f"({','.join('?' * len(chunk))})", [after, *chunk]):
                out[pid] = json.loads(row)
        return out

    def people(self, pids: Iterable[str], after: int = 0) -> dict[str, dict]:
        """The person rows folded live since record row `after`."""
        pids = list(dict.fromkeys(pids))
        out: dict[str, dict] = {}
        for chunk in _chunks(pids):
            for pid, row in self.con.execute(
                    f"SELECT pid, row FROM person WHERE seq > ? AND pid IN ({','.join('?' * len(chunk))})",
                    [after, *chunk]):
                out[pid] = json.loads(row)
        return out

    def companies_of(self, pids: Sequence[str], after: int = 0) -> list[tuple[str, str]]:
        """(pid, cid) of every company these people's records logged after record row `after`
        carry (a record takes its person's company of the moment: where they have been)."""
        out: list[tuple[str, str]] = []
        for chunk in _chunks(list(pids)):
            out += self.con.execute(
                f"SELECT DISTINCT pid, cid FROM record WHERE rowid > ? AND cid IS NOT NULL AND pid IN "
                f"({','.join('?' * len(chunk))})", [after, *chunk]).fetchall()
        return out

    def interactions(self, pids: Iterable[str] = (), cookies: Iterable[str] = (),
                     everyone: bool = False, after: int = 0, cids: Iterable[str] = ()) -> pd.DataFrame:
        """Live interactions of these people and of these cookies (or all of them) not yet in
        the middle layer (log rows after `after`, its `live_watermark`), typed as the middle
        layer's (event_time as UTC timestamps)."""
        if everyone:
            frame = pd.read_sql_query("SELECT * FROM interaction WHERE rowid > ?", self.con, params=[after])
        else:
            parts = []
            for column, values in (("pid", list(pids)), ("cookie_id", list(cookies)), ("cid", list(cids))):
                for chunk in _chunks(values):
                    parts.append(pd.read_sql_query(
                        f"SELECT * FROM interaction WHERE rowid > ? AND {column} IN "
                        f"({','.join('?' * len(chunk))})", self.con, params=[after, *chunk]))
            frame = (pd.concat(parts, ignore_index=True).drop_duplicates("lid") if parts
                     else pd.DataFrame(columns=INTERACTION_COLUMNS))
        frame["event_time"] = pd.to_datetime(frame["event_time"], utc=True, format="ISO8601")
        return frame.astype({c: "string" for c in INTERACTION_COLUMNS if c != "event_time"})

    def mark_due(self, pids: Iterable[str]) -> None:
        """The people's online features are behind the log now (inside `writing`, after their
        records): a mark made earlier is renewed, so an update that read before this one's
        records cannot clear it."""
        seq = self._last_record()
        execute_rows(self.con, f"INSERT INTO due_update VALUES {VALUES} ON CONFLICT (pid) DO UPDATE SET "
                               "seq = excluded.seq", [(pid, seq) for pid in dict.fromkeys(pids)], width=2)

    def mark_due_later(self, dated: Iterable[tuple[str, datetime]]) -> None:
        """(pid, instant) of records dated at or after the clock's now (inside `writing`): an
        update counts what happened before its instant, so each person is marked due again
        once the clock has passed it (`released`)."""
        execute_rows(self.con, f"INSERT OR IGNORE INTO due_later VALUES {VALUES}",
                     [(pid, utc_text(at)) for pid, at in dict.fromkeys(dated)], width=2)

    def released(self, now: datetime, limit: int = -1) -> list[str]:
        """The people with a record dated before `now` that no update has counted yet (`due_later`)
        and no mark waiting: to be marked due (at most `limit`; -1: all). Their rows stay until
        an update after the record's instant clears them with the person's mark (`updated`),
        so a release that races an update in flight is made again at the next look."""
        return [pid for pid, in self.con.execute(
            "SELECT DISTINCT d.pid FROM due_later AS d WHERE d.at < ? AND NOT EXISTS "
            "(SELECT 1 FROM due_update AS u WHERE u.pid = d.pid) LIMIT ?", [utc_text(now), limit]).fetchall()]

    def release_due(self, now: datetime) -> int:
        """Mark due the people `released` at `now`; how many. A look without a lock first: an idle
        worker runs this at every look at the queue, and it almost always finds nobody."""
        if not self.released(now, limit=1):
            return 0
        with self.writing():
            pids = self.released(now)
            self.mark_due(pids)
        return len(pids)

    def mark_written_after(self, since: datetime | None) -> list[str]:
        """Mark due the people whose online rows were computed live at or after `since` (all
        of them: None); returns their PIDs. (`live/online.py` `mark_behind_a_load`: after a
        batch load put older rows in their place.)"""
        writes = self.feature_writes()
        if since is not None:
            writes = writes[writes["at"] >= pd.Timestamp(since).tz_convert(UTC)]
        pids = sorted(set(writes["pid"]))
        if pids:
            with self.writing():
                self.mark_due(pids)
        return pids

    def received_at(self, seq: int) -> datetime | None:
        """When record row `seq` was received (None: no such row, as for 0)."""
        row = self.con.execute("SELECT received_at FROM record WHERE rowid = ?", [seq]).fetchone()
        return None if row is None else datetime.fromisoformat(row[0])

    def due(self, limit: int) -> list[tuple[str, int]]:
        """(pid, mark) of up to `limit` people whose features are behind, the longest waiting first."""
        return [(pid, int(seq)) for pid, seq in self.con.execute(
            "SELECT pid, seq FROM due_update ORDER BY seq, pid LIMIT ?", [limit]).fetchall()]

    def updated(self, marks: Sequence[tuple[str, int]], written: Mapping[str, Sequence[str]] | None = None,
                at: datetime | None = None) -> None:
        """Remove the marks an update covered (a mark renewed since stays: its records came
        later) and note the rows it wrote (`written`: view -> PIDs) as computed at `at`
        (`features_written`), in one transaction: the update waits for the log's writers once
        (their busy handler sleeps up to 100 ms between tries while ingests commit), not twice."""
        with self.writing():
            # (a row-value IN would scan the table: the join finds each mark by its pid)
            execute_rows(self.con, "DELETE FROM due_update WHERE rowid IN (SELECT d.rowid FROM "
                                   f"(VALUES {VALUES}) AS v JOIN due_update AS d ON d.pid = v.column1 "
                                   "AND d.seq = v.column2)", marks, width=2)
            self._counted_later(marks, at)
            if written:
                if at is None:
                    raise ValueError("rows written are noted with the instant they were computed for")
                self._note_written(written, at)

    def interactions_after(self, seq: int) -> tuple[pd.DataFrame, int]:
        """The interactions appended after row `seq` of the log, and the last row's number."""
        frame = pd.read_sql_query("SELECT rowid AS seq, * FROM interaction WHERE rowid > ? ORDER BY rowid",
                                  self.con, params=[seq])
        last = int(frame["seq"].max()) if len(frame) else seq
        frame["event_time"] = pd.to_datetime(frame["event_time"], utc=True, format="ISO8601")
        return frame.drop(columns="seq"), last

    def records(self, status: str | None = None) -> pd.DataFrame:
        where = "" if status is None else "WHERE status = ?"
        return pd.read_sql_query(f"SELECT * FROM record {where} ORDER BY rowid", self.con,
                                 params=[] if status is None else [status])

    def for_batch(self) -> LoggedRecords:
        """Everything the log holds, for the batch to compact into the middle layer."""
        with self.reading():  # one consistent snapshot (WAL: writers go on meanwhile)
            records = self.records()
            marks = self.con.execute("SELECT (SELECT coalesce(max(rowid), 0) FROM record), "
                                     "(SELECT coalesce(max(rowid), 0) FROM interaction)").fetchone()
        sources = {source: stored_frame(source, rows["payload"])
                   for source, rows in records.groupby("source", sort=False)}
        kept = records[records["pid"].notna()]
        keys = (kept["source"] + ":" + kept["source_record_id"]).to_numpy()
        pids = pd.Series(kept["pid"].to_numpy(), index=keys, dtype="string")
        return LoggedRecords(sources, pids, {"log": self.id, "record": int(marks[0]),
                                           "interaction": int(marks[1])})

    def outcomes(self, pids: Iterable[str] | None = None, until: datetime | None = None) -> pd.DataFrame:
        """The CRM's outcomes (of these people; up to `until`, inclusive), oldest first, times
        as UTC timestamps."""
        conditions, params = [], []
        if until is not None:
            conditions.append("at <= ?")
            params.append(utc_text(until))
        if pids is not None:
            conditions.append("pid IN (SELECT value FROM json_each(?))")
            params.append(json.dumps(list(dict.fromkeys(pids))))
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        frame = pd.read_sql_query(f"SELECT {', '.join(OUTCOME_COLUMNS)} FROM outcome {where} "
                                  "ORDER BY at, kind, crm_id", self.con, params=params)
        for column in ("at", "received_at"):
            frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
        return frame

    def counts(self, since: datetime | None = None) -> dict[str, int]:
        """Records by status (kept, quarantined), of those received from `since` on if given."""
        where, params = ("WHERE received_at >= ?", [utc_text(since)]) if since is not None else ("", [])
        rows = self.con.execute(f"SELECT status, count(*) FROM record {where} GROUP BY status",
                                params).fetchall()
        return {status: n for status, n in rows}

    # --- writes (inside `writing()`) ---------------------------------------------------------

    def add_records(self, rows: Iterable[dict]) -> None:
        execute_rows(self.con, f"INSERT OR IGNORE INTO record ({', '.join(RECORD_COLUMNS)}) VALUES {VALUES}",
                     ([row[column] for column in RECORD_COLUMNS] for row in rows), width=len(RECORD_COLUMNS))

    def add_interactions(self, frame: pd.DataFrame) -> None:
        rows = frame.reindex(columns=INTERACTION_COLUMNS).astype(object)
        rows["event_time"] = [_iso(t) for t in frame["event_time"]]
        rows = rows.where(rows.notna(), None)
        execute_rows(self.con, f"INSERT OR IGNORE INTO interaction VALUES {VALUES}",
                     rows.itertuples(index=False, name=None), width=len(INTERACTION_COLUMNS))

    def add_outcomes(self, rows: Sequence[dict]) -> list[bool]:
        """Insert each outcome row unless its (kind, crm_id, at) is stored: True where inserted."""
        return [self.con.execute(
            f"INSERT OR IGNORE INTO outcome ({', '.join(OUTCOME_COLUMNS)}, payload) VALUES "
            f"({', '.join(':' + c for c in OUTCOME_COLUMNS)}, :payload)", row).rowcount == 1 for row in rows]

    def _last_record(self) -> int:
        return int(self.con.execute("SELECT coalesce(max(rowid), 0) FROM record").fetchone()[0])

    def learn(self, identifiers: dict[str, Known]) -> None:
        seq = self._last_record()
        rows = [(key, known.pid, json.dumps(sorted(known.names)), seq) for key, known in identifiers.items()]
        execute_rows(self.con, f"INSERT INTO identifier (key, pid, names, seq) VALUES {VALUES} "
                               "ON CONFLICT (key) DO UPDATE SET names = excluded.names, seq = excluded.seq, "
                               "pid = coalesce(identifier.pid, excluded.pid)", rows, width=4)

    def bind_cookie(self, cookie_id: str, pid: str, cid: str | None, now: datetime) -> None:
        """Give a cookie's anonymous live sessions and their interactions to the person who just
        revealed it, at their company `cid` (as the batch's connected components do); those
        dated at or after the clock's `now` make the person due later (`mark_due_later`)."""
        times = pd.to_datetime(pd.Series([at for at, in self.con.execute(
            "SELECT event_time FROM interaction WHERE cookie_id = ? AND pid IS NULL", [cookie_id])],
            dtype=object), utc=True, format="ISO8601")
        self.mark_due_later((pid, at) for at in times[times >= pd.Timestamp(now)])
        self.con.execute("UPDATE interaction SET pid = ?, cid = ? WHERE cookie_id = ? AND pid IS NULL",
                         [pid, cid, cookie_id])
        self.con.execute("UPDATE record SET pid = ?, cid = ?, rule = 'cookie_id' WHERE pid IS NULL "
                         "AND status = 'kept' AND source = 'web_sessions' "
                         "AND trim(json_extract(payload, '$.cookie_id')) = ?", [pid, cid, cookie_id])

    def features_written(self, views: Mapping[str, Sequence[str]], at: datetime) -> None:
        """Note that the online rows of these people in these views were computed at `at`
        (the latest wins). One transaction: one commit for all."""
        with self.writing():
            self._note_written(views, at)

    def _counted_later(self, marks: Sequence[tuple[str, int]], at: datetime | None) -> None:
        """After the marks were removed: forget the records dated ahead (`due_later`) of these
        people that an update computed at `at` counted (those before it); without `at` (people
        set aside after a failure, until their next record) all of theirs. A person whose mark
        was renewed meanwhile (a record stored during the update) keeps them: their next update
        comes anyway, and clears them once it counts them."""
        before = utc_text(LATEST if at is None else at)  # (every record is dated before LATEST)
        execute_rows(self.con, "DELETE FROM due_later WHERE rowid IN (SELECT d.rowid FROM "
                               f"(VALUES {VALUES}) AS v JOIN due_later AS d ON d.pid = v.column1 "
                               "AND d.at < v.column2 WHERE NOT EXISTS (SELECT 1 FROM due_update AS u "
                               "WHERE u.pid = d.pid))",
                     [(pid, before) for pid in dict.fromkeys(pid for pid, _ in marks)], width=2)

    def _note_written(self, views: Mapping[str, Sequence[str]], at: datetime) -> None:
        execute_rows(self.con, f"INSERT INTO feature_write (pid, view, at) VALUES {VALUES} ON CONFLICT "
                               "(pid, view) DO UPDATE SET at = max(feature_write.at, excluded.at)",
                     [(pid, view, at.isoformat()) for view, pids in views.items() for pid in pids], width=3)

    def feature_writes(self) -> pd.DataFrame:
        """pid, view, at: the instant of each person's latest online row of each view."""
        frame = pd.read_sql_query("SELECT pid, view, at FROM feature_write", self.con)
        return frame.assign(at=pd.to_datetime(frame["at"], utc=True, format="ISO8601"))

    def save_people(self, rows: dict[str, dict]) -> None:
        seq = self._last_record()
        execute_rows(self.con, f"INSERT OR REPLACE INTO person (pid, row, seq) VALUES {VALUES}",
                     [(pid, json.dumps(row, default=str), seq) for pid, row in rows.items()], width=3)


def utc_text(at: datetime) -> str:
    """One spelling per instant (UTC, microseconds), so that times compare and sort as text."""
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def compacted(middle: duckdb.DuckDBPyConnection, log_id: str, table: str = "interaction") -> int:
    """The last row of event log `log_id`'s `table` (interaction or record) that the middle
    layer holds (0: none, an older layer, or another log, such as one of an earlier world)."""
    try:
        row = middle.execute(f"SELECT {table} FROM live_watermark WHERE log = $1", [log_id]).fetchone()
    except duckdb.Error:
        return 0
    return int(row[0]) if row else 0


def _chunks(values: list, size: int = 500) -> Iterator[list]:
    for start in range(0, len(values), size):
        yield values[start:start + size]
