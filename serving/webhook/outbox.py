"""The webhook's durable state: what is known of each lead, and every message to the CRM.

State is one SQLite file, ``<state_dir>/webhook.sqlite``, in WAL mode so the service's worker
processes and the batch job can share it:

- ``lead_state``: the last score seen per pid and whether/when it was pushed;
- ``outbox``: one row per message, ``pending -> sending -> delivered | failed``; rows are never
  deleted, so nothing is lost, and ``requeue_failed()`` puts failed ones back in the queue.

Observed scores and their new messages are written in one transaction (``transaction()`` with
``lead_states`` and ``record``), which never touches the network, so a crash leaves either all
of a call or none of it. Delivery ``claim()``s one message at a time with an atomic
``UPDATE ... RETURNING`` that sets ``status='sending'`` and a lease: two processes never send
the same message at the same time, and a message left in ``sending`` by a crash is due again
once its lease ends. Delivery is therefore at-least-once; the ``Idempotency-Key`` lets the CRM
drop the rare duplicate. All timestamps in the database are Unix seconds (REAL).
"""

from __future__ import annotations

import logging
import random
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from leadscore.serving.webhook.crossings import LeadState
from leadscore.sqlite_rows import VALUES, execute_rows

log = logging.getLogger(__name__)

DB_NAME = "webhook.sqlite"
SCHEMA_VERSION = 1
STATUSES = ("pending", "sending", "delivered", "failed")
_CHUNK = 500  # pids per `IN (...)` lookup, well under SQLite's variable limit

_SCHEMA = """
CREATE TABLE IF NOT EXISTS lead_state (
    pid            TEXT PRIMARY KEY,
    last_score     REAL NOT NULL,
    above          INTEGER NOT NULL,            -- last_score >= the threshold at the time
    crossings      INTEGER NOT NULL DEFAULT 0,  -- upward crossings seen (pushed or not)
    mql_key        TEXT,                        -- key of the last message enqueued for the pid
    pushed_at      REAL,                        -- when the CRM accepted that message
    first_seen_at  REAL NOT NULL,
    last_seen_at   REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    idempotency_key  TEXT PRIMARY KEY,
    pid              TEXT NOT NULL,
    payload          TEXT NOT NULL,             -- the JSON body, exactly as sent
    status           TEXT NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'sending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  REAL NOT NULL,
    lease_until      REAL,                      -- while 'sending': due again after this
    last_error       TEXT,
    created_at       REAL NOT NULL,
    last_attempt_at  REAL,
    delivered_at     REAL
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS outbox_pid ON outbox (pid);
"""


class Message(NamedTuple):
    """A message to enqueue: its idempotency key, the lead and the JSON body."""

    key: str
    pid: str
    payload: str


class Claim(NamedTuple):
    """A message taken for sending, with its attempts so far (this one included)."""

    key: str
    payload: str
    attempts: int


class Outbox:
    """The state file, created on first use. Thread-safe; several processes may share `state_dir`."""

    def __init__(self, state_dir: Path, busy_timeout_s: float = 10.0) -> None:
        self.path = Path(state_dir) / DB_NAME
        self.busy_timeout_s = busy_timeout_s
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def exists(self) -> bool:
        """Whether there is any state yet (asking does not create the file)."""
        return self._db is not None or self.path.exists()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One BEGIN IMMEDIATE transaction, all or nothing; the outbox is locked meanwhile."""
        with self._lock:
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    def _conn(self) -> sqlite3.Connection:
        """The outbox's connection (callers hold `_lock`); schema created on first use."""
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None,
                                 check_same_thread=False)
            try:
                self._enable_wal(db)
                db.execute("PRAGMA synchronous=NORMAL")  # WAL: durable across crashes, not power cuts
                db.execute("BEGIN IMMEDIATE")
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                db.execute("COMMIT")
            except BaseException:
                db.close()
                raise
            self._db = db
        return self._db

    def _enable_wal(self, db: sqlite3.Connection) -> None:
        """Switch to WAL. The switch takes an exclusive lock without waiting on the busy timeout, so
        workers opening a new file at the same moment retry instead of failing."""
        deadline = time.monotonic() + self.busy_timeout_s
        while True:
            try:
                if db.execute("PRAGMA journal_mode=WAL").fetchone()[0].lower() == "wal":
                    return
                raise sqlite3.OperationalError(f"cannot use WAL mode for {self.path}")
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01 + 0.02 * random.random())

    def claim(self, now: float, lease_until: float) -> Claim | None:
        """Atomically take the most overdue message (pending and due, or sending past its lease)."""
        with self.transaction() as db:
            row = db.execute(
                "UPDATE outbox SET status = 'sending', lease_until = :lease, attempts = attempts + 1,"
                " last_attempt_at = :now WHERE idempotency_key = ("
                "  SELECT idempotency_key FROM outbox"
                "  WHERE (status = 'pending' AND next_attempt_at <= :now)"
                "     OR (status = 'sending' AND lease_until <= :now)"
                "  ORDER BY next_attempt_at LIMIT 1)"
                " RETURNING idempotency_key, payload, attempts",
                {"now": now, "lease": lease_until}).fetchone()
        return None if row is None else Claim(*row)

    def finish(self, key: str, status: str, error: str | None, next_attempt_at: float | None,
               now: float) -> None:
        """Record how a claimed message's attempt ended: `status` is delivered, pending or failed."""
        with self.transaction() as db:
            db.execute("UPDATE outbox SET status = ?, last_error = ?, lease_until = NULL,"
                       " next_attempt_at = coalesce(?, next_attempt_at), delivered_at = ?"
                       " WHERE idempotency_key = ?",
                       (status, error, next_attempt_at, now if status == "delivered" else None, key))
            if status == "delivered":
                db.execute("UPDATE lead_state SET pushed_at = ? WHERE mql_key = ?", (now, key))

    def next_due(self) -> float | None:
        """When the next pending message is due, or the next lease ends; None when none is left."""
        with self._lock:
            return self._conn().execute(
                "SELECT min(CASE status WHEN 'pending' THEN next_attempt_at ELSE lease_until END)"
                " FROM outbox WHERE status IN ('pending', 'sending')").fetchone()[0]

    def requeue_failed(self, keys: Iterable[str] | None, now: float) -> int:
        """Put failed messages (all, or those `keys`) back in the queue with a fresh attempt budget;
        their last error stays until the next attempt. Returns how many were re-queued."""
        if not self.path.exists():
            return 0
        sql = ("UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ?,"
               " lease_until = NULL WHERE status = 'failed'")
        with self.transaction() as db:
            if keys is None:
                return db.execute(sql, (now,)).rowcount
            return sum(db.execute(sql + " AND idempotency_key = ?", (now, key)).rowcount for key in keys)

    def stats(self) -> dict[str, int]:
        """Messages by status, and the number of leads with a known score (all zero before any state)."""
        counts = dict.fromkeys(STATUSES, 0) | {"leads": 0}
        if not self.exists():
            return counts
        with self._lock:
            db = self._conn()
            counts.update(db.execute("SELECT status, count(*) FROM outbox GROUP BY status").fetchall())
            counts["leads"] = db.execute("SELECT count(*) FROM lead_state").fetchone()[0]
        return counts

    def messages(self) -> list[dict[str, Any]]:
        """Every outbox row, oldest first."""
        if not self.exists():
            return []
        with self._lock:
            cursor = self._conn().execute("SELECT * FROM outbox ORDER BY created_at, idempotency_key")
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


def lead_states(db: sqlite3.Connection, pids: list[str]) -> dict[str, LeadState]:
    """The stored states of `pids` (those never seen are absent), inside a `transaction()`."""
    known: dict[str, LeadState] = {}
    for start in range(0, len(pids), _CHUNK):
        chunk = pids[start:start + _CHUNK]
        marks = ",".join("?" * len(chunk))
        for pid, last_score, above, crossings in db.execute(
                f"SELECT pid, last_score, above, crossings FROM lead_state WHERE pid IN ({marks})", chunk):
            known[pid] = LeadState(last_score, bool(above), crossings)
    return known


def record(db: sqlite3.Connection, states: Mapping[str, LeadState], messages: list[Message],
           now: float) -> int:
    """Store the leads' new states and enqueue the messages, inside a `transaction()`. A message
    whose key is already in the outbox is not enqueued again. Returns how many were enqueued."""
    execute_rows(
        db, "INSERT INTO lead_state (pid, last_score, above, crossings, mql_key, first_seen_at, last_seen_at)"
        f" VALUES {VALUES} ON CONFLICT (pid) DO UPDATE SET"
        " last_score = excluded.last_score, above = excluded.above,"
        " crossings = max(crossings, excluded.crossings),"  # below-only pids were not looked up
        " mql_key = coalesce(excluded.mql_key, mql_key), last_seen_at = excluded.last_seen_at",
        [(pid, s.score, int(s.above), s.crossings, s.mql_key, now, now) for pid, s in states.items()],
        width=7)
    if not messages:
        return 0
    before = db.total_changes
    execute_rows(db, "INSERT OR IGNORE INTO outbox (idempotency_key, pid, payload, next_attempt_at, "
                     f"created_at) VALUES {VALUES}", [(*m, now, now) for m in messages], width=5)
    enqueued = db.total_changes - before
    log.info("webhook: %d MQL crossing(s) enqueued", enqueued)
    return enqueued
