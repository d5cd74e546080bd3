"""Push marketing-qualified leads (MQLs) to the CRM's webhook: once, durably, with retries.

A lead *crosses* the MQL threshold (``settings.serving.webhook.mql_threshold``, default 60) when
its new score is at or above the threshold and its previous known score was below it, or it was
never seen before. The first crossing of a pid puts one message in an outbox; later crossings
(a lead that fell below and came back) are counted in ``lead_state.crossings`` but not pushed
again, as the design says an MQL is pushed to the CRM *once* (``repush_on_recross=True`` changes
that: every crossing then gets its own message and key). Re-observing a high score, or re-running
the batch job, enqueues nothing.

State is one SQLite file, ``<state_dir>/webhook.sqlite``, in WAL mode so the service's worker
processes and the batch job can share it:

- ``lead_state``: the last score seen per pid and whether/when it was pushed;
- ``outbox``: one row per message, ``pending -> sending -> delivered | failed``; rows are never
  deleted, so nothing is lost, and ``retry_failed()`` puts failed ones back in the queue.

``observe()`` writes the new scores and any new messages in one transaction: it never touches the
network, so a crash leaves either all of a call or none of it. Delivery (a daemon thread started
by ``start()``, or ``deliver_due()`` called directly) claims one message at a time with an atomic
``UPDATE ... RETURNING`` that sets ``status='sending'`` and a lease: two processes never send the
same message at the same time, and a message left in ``sending`` by a crash is due again once its
lease ends. Delivery is therefore at-least-once; the ``Idempotency-Key`` header (a UUID derived
from the pid and the crossing number, so stable even if the state file is lost) lets the CRM
drop the rare duplicate.

Responses: 2xx delivered; 408, 429 and 5xx, timeouts and connection errors are retried after
``backoff_s * 2**(attempt-1)`` seconds (plus up to 10% jitter, at least any ``Retry-After``,
at most ``backoff_max_s``) until ``max_attempts`` attempts, then ``failed``; any other status
(4xx, or a 3xx: redirects are not followed) is a permanent failure. The error is kept in
``last_error``.

With ``url`` unset the pusher is disabled: ``observe()`` stores nothing and no thread runs.

The payload (``Content-Type: application/json``), schema version 1::

    {
      "event": "lead.mql",
      "schema_version": 1,
      "idempotency_key": "5b0c...-...",        # same as the Idempotency-Key header
      "pid": "P000123",
      "score": 72.4,                           # 0-100
      "previous_score": 41.0,                  # null when the lead was never seen before
      "threshold": 60.0,
      "crossing": 1,                           # 1 = first time this pid became an MQL
      "probability": 0.23,
      "tier": "high-value",
      "routing": {"action": "route_to_sales", "channel": "crm",
                  "description": "direct contact by the owning rep"},
      "reasons": ["Visited the pricing page 3 times in the last 7 days", "..."],
      "model_version": "7",
      "crossed_at": "2025-01-31T12:00:00.123456+00:00"
    }

``routing`` is the row's own (from the model version's routing table, as the scorer returns it),
else ``routing_table[tier]`` when ``observe()`` is given the table (batch rows carry no routing).
Fields the caller did not provide are null (``routing`` fields, ``tier``...); ``reasons`` is then
an empty list. All timestamps in the database are Unix seconds (REAL).
"""

from __future__ import annotations

import json
import logging
import math
import random
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx

from leadscore.config import WebhookSettings

log = logging.getLogger(__name__)
T = TypeVar("T")

DB_NAME = "webhook.sqlite"
SCHEMA_VERSION = 1
PAYLOAD_VERSION = 1
STATUSES = ("pending", "sending", "delivered", "failed")
RETRIABLE_STATUS = frozenset({408, 429})
_KEY_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/leadscore/leadscore/mql")
_CHUNK = 500  # pids per `IN (...)` lookup, well under SQLite's variable limit
_MAX_ERROR_CHARS = 500

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


def idempotency_key(pid: str, crossing: int = 1) -> str:
    """The message key of a pid's `crossing`-th MQL crossing: deterministic, header-safe."""
    return str(uuid.uuid5(_KEY_NAMESPACE, f"{pid}\x1f{crossing}"))


def _field(row: Any, name: str) -> Any:
    if isinstance(row, Mapping):
        return row.get(name)
    return getattr(row, name, None)


def _reason_text(reason: Any) -> str | None:
    if reason is None or isinstance(reason, str):
        return reason
    text = _field(reason, "text")
    return None if text is None else str(text)


def _float_or_none(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat()


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class MqlPusher:
    """Detects MQL crossings in observed scores and delivers them to the CRM webhook.

    Thread-safe; several pushers (in several processes) may share one `state_dir`. Use as a context
    manager or call `close()`.
    """

    def __init__(self, settings: WebhookSettings, state_dir: Path, *, repush_on_recross: bool = False,
                 poll_s: float = 1.0, busy_timeout_s: float = 10.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.settings = settings
        self.state_dir = Path(state_dir)
        self.db_path = self.state_dir / DB_NAME
        self.repush_on_recross = repush_on_recross
        self.poll_s = poll_s
        self.busy_timeout_s = busy_timeout_s
        self.lease_s = 2 * settings.timeout_s + 10  # one POST, with room to record its outcome
        self._transport = transport
        self._db: sqlite3.Connection | None = None
        self._db_lock = threading.Lock()
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.settings.url)

    # -- storage -------------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        """The pusher's connection (callers hold `_db_lock`); schema created on first use."""
        if self._db is None:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.db_path, timeout=self.busy_timeout_s, isolation_level=None,
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
                raise sqlite3.OperationalError(f"cannot use WAL mode for {self.db_path}")
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01 + 0.02 * random.random())

    def _write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(db, *args) inside one BEGIN IMMEDIATE transaction (all or nothing)."""
        with self._db_lock:
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
            try:
                result = fn(db, *args)
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            return result

    # -- observing scores ----------------------------------------------------------------------

    def observe(self, rows: Iterable[Any], *, routing_table: Mapping[str, Any] | None = None,
                now: float | None = None) -> int:
        """Record scored leads; enqueue a message for each MQL crossing. Returns how many were enqueued.

        Each row is a mapping or an object (e.g. a `ScoreResponse`) with `pid` and `score`, and for the
        payload `probability`, `tier`, `model_version`, `routing` (`action`, `channel`, `description`;
        or those as top-level fields) and `reasons_up` (texts, or objects/mappings with `text`).
        `routing_table` (tier -> action, channel, description: the `routing` section of the model
        version's tier config) fills the routing of rows that carry none, e.g. batch-scored rows.
        Rows without a pid or a finite score are skipped with a warning. One transaction: on error
        (e.g. the database stays locked longer than `busy_timeout_s`) nothing is written and
        `sqlite3.Error` is raised. A no-op returning 0 when no url is configured.
        """
        if not self.enabled:
            return 0
        now = time.time() if now is None else now
        parsed: list[tuple[str, float, Any]] = []
        skipped = 0
        for row in rows:
            pid, score = _field(row, "pid"), _float_or_none(_field(row, "score"))
            if pid is None or pid == "" or score is None:
                skipped += 1
                continue
            parsed.append((str(pid), score, row))
        if skipped:
            log.warning("webhook: skipped %d scored rows without a pid or a finite score", skipped)
        if not parsed:
            return 0
        enqueued = self._write(self._observe, parsed, routing_table or {}, now)
        if enqueued:
            self._wake.set()
        return enqueued

    def _observe(self, db: sqlite3.Connection, parsed: list[tuple[str, float, Any]],
                 routing_table: Mapping[str, Any], now: float) -> int:
        threshold = float(self.settings.mql_threshold)
        # Only a score at or above the threshold can cross: look up just those pids' history.
        candidates = list({pid for pid, score, _ in parsed if score >= threshold})
        known: dict[str, tuple[float, int]] = {}
        for start in range(0, len(candidates), _CHUNK):
            chunk = candidates[start:start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            for pid, last_score, crossings in db.execute(
                    f"SELECT pid, last_score, crossings FROM lead_state WHERE pid IN ({marks})", chunk):
                known[pid] = (last_score, crossings)
        states: dict[str, tuple] = {}  # pid -> lead_state row; a pid seen twice keeps the latest
        messages: list[tuple] = []
        for pid, score, row in parsed:
            previous = states.get(pid)
            if previous is not None:
                prev_score, crossings, mql_key = previous[1], previous[3], previous[4]
            elif pid in known:
                (prev_score, crossings), mql_key = known[pid], None
            else:
                prev_score, crossings, mql_key = None, 0, None
            above = score >= threshold
            if above and (prev_score is None or prev_score < threshold):
                crossings += 1
                if crossings == 1 or self.repush_on_recross:
                    mql_key = idempotency_key(pid, crossings)
                    body = self._payload(row, pid, score, prev_score, crossings, mql_key, routing_table, now)
                    messages.append((mql_key, pid, body, now, now))
            states[pid] = (pid, score, int(above), crossings, mql_key, now, now)
        db.executemany(
            "INSERT INTO lead_state (pid, last_score, above, crossings, mql_key, first_seen_at, last_seen_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (pid) DO UPDATE SET"
            " last_score = excluded.last_score, above = excluded.above,"
            " crossings = max(crossings, excluded.crossings),"  # below-only pids were not looked up
            " mql_key = coalesce(excluded.mql_key, mql_key), last_seen_at = excluded.last_seen_at",
            states.values())
        if not messages:
            return 0
        before = db.total_changes
        db.executemany("INSERT OR IGNORE INTO outbox (idempotency_key, pid, payload, next_attempt_at, "
                       "created_at) VALUES (?, ?, ?, ?, ?)", messages)
        enqueued = db.total_changes - before
        log.info("webhook: %d MQL crossing(s) enqueued", enqueued)
        return enqueued

    def _payload(self, row: Any, pid: str, score: float, previous: float | None, crossing: int,
                 key: str, routing_table: Mapping[str, Any], now: float) -> str:
        tier = _field(row, "tier")
        routing = _field(row, "routing")
        if routing is None and _field(row, "action") is None:
            routing = routing_table.get(tier) if isinstance(tier, str) else None
        source = row if routing is None else routing
        reasons = [text for text in map(_reason_text, _field(row, "reasons_up") or []) if text]
        version = _field(row, "model_version")
        return json.dumps({
            "event": "lead.mql",
            "schema_version": PAYLOAD_VERSION,
            "idempotency_key": key,
            "pid": pid,
            "score": score,
            "previous_score": previous,
            "threshold": float(self.settings.mql_threshold),
            "crossing": crossing,
            "probability": _float_or_none(_field(row, "probability")),
            "tier": tier,
            "routing": {name: _field(source, name) for name in ("action", "channel", "description")},
            "reasons": reasons,
            "model_version": None if version is None else str(version),
            "crossed_at": _iso(now),
        }, separators=(",", ":"), default=str)

    # -- delivery ------------------------------------------------------------------------------

    def _http(self) -> httpx.Client:
        with self._client_lock:
            if self._client is None:
                self._client = httpx.Client(timeout=self.settings.timeout_s, follow_redirects=False,
                                            transport=self._transport,
                                            headers={"User-Agent": "leadscore-mql-webhook/1"})
            return self._client

    def _claim(self, now: float) -> tuple[str, str, int] | None:
        """Atomically take the most overdue message (pending and due, or sending past its lease)."""
        def claim(db: sqlite3.Connection) -> tuple[str, str, int] | None:
            return db.execute(
                "UPDATE outbox SET status = 'sending', lease_until = :lease, attempts = attempts + 1,"
                " last_attempt_at = :now WHERE idempotency_key = ("
                "  SELECT idempotency_key FROM outbox"
                "  WHERE (status = 'pending' AND next_attempt_at <= :now)"
                "     OR (status = 'sending' AND lease_until <= :now)"
                "  ORDER BY next_attempt_at LIMIT 1)"
                " RETURNING idempotency_key, payload, attempts",
                {"now": now, "lease": now + self.lease_s}).fetchone()
        return self._write(claim)

    def _finish(self, key: str, status: str, error: str | None, next_attempt_at: float | None,
                now: float) -> None:
        def finish(db: sqlite3.Connection) -> None:
            db.execute("UPDATE outbox SET status = ?, last_error = ?, lease_until = NULL,"
                       " next_attempt_at = coalesce(?, next_attempt_at), delivered_at = ?"
                       " WHERE idempotency_key = ?",
                       (status, error, next_attempt_at, now if status == "delivered" else None, key))
            if status == "delivered":
                db.execute("UPDATE lead_state SET pushed_at = ? WHERE mql_key = ?", (now, key))
        self._write(finish)

    def _backoff(self, attempts: int, retry_after: float | None) -> float:
        delay = self.settings.backoff_s * 2 ** (attempts - 1) * (1 + 0.1 * random.random())
        if retry_after is not None:
            delay = max(delay, retry_after)
        return min(delay, self.settings.backoff_max_s)

    def _send(self, key: str, payload: str) -> tuple[bool, bool, str | None, float | None]:
        """POST one message: (delivered, retriable, error, retry_after)."""
        try:
            response = self._http().post(str(self.settings.url), content=payload.encode(), headers={
                "Idempotency-Key": key, "Content-Type": "application/json"})
        except Exception as exc:  # refused/reset connections, timeouts, and even a bad url: retry later
            return False, True, f"{type(exc).__name__}: {exc}"[:_MAX_ERROR_CHARS], None
        if response.is_success:
            return True, False, None, None
        error = f"HTTP {response.status_code}: {response.text}"[:_MAX_ERROR_CHARS]
        retriable = response.status_code in RETRIABLE_STATUS or response.status_code >= 500
        return False, retriable, error, _retry_after(response) if retriable else None

    def deliver_due(self, now: float | None = None) -> int:
        """Send every message that is due; returns how many were delivered. `now` (Unix seconds, default
        the real clock) is the clock for this call: due-ness, leases and the next retry times are
        reckoned from it. Safe to run in several threads and processes at once."""
        return self._deliver(now, None)

    def _deliver(self, now: float | None, stop: threading.Event | None) -> int:
        if not self.enabled:
            return 0
        clock = time.time if now is None else (lambda: now)
        delivered = 0
        while stop is None or not stop.is_set():
            claimed = self._claim(clock())
            if claimed is None:
                break
            key, payload, attempts = claimed
            if attempts > self.settings.max_attempts:  # its last attempt died with its process
                self._finish(key, "failed", "lease expired after the last attempt", None, clock())
                continue
            ok, retriable, error, retry_after = self._send(key, payload)
            done_at = clock()
            if ok:
                self._finish(key, "delivered", None, None, done_at)
                delivered += 1
                log.info("webhook: delivered %s (attempt %d)", key, attempts)
            elif retriable and attempts < self.settings.max_attempts:
                delay = self._backoff(attempts, retry_after)
                self._finish(key, "pending", error, done_at + delay, done_at)
                log.warning("webhook: %s attempt %d/%d failed (%s); retry in %.2fs", key, attempts,
                            self.settings.max_attempts, error, delay)
            else:
                self._finish(key, "failed", error, None, done_at)
                log.error("webhook: %s failed for good after %d attempt(s): %s", key, attempts, error)
        return delivered

    def _next_due(self) -> float | None:
        with self._db_lock:
            return self._conn().execute(
                "SELECT min(CASE status WHEN 'pending' THEN next_attempt_at ELSE lease_until END)"
                " FROM outbox WHERE status IN ('pending', 'sending')").fetchone()[0]

    def _run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self._deliver(None, stop)
                next_due = self._next_due()
            except Exception:  # never let the thread die: log, wait, try again
                log.exception("webhook: delivery loop error")
                next_due = None
            wait = self.poll_s if next_due is None else min(self.poll_s, max(0.0, next_due - time.time()))
            self._wake.wait(wait)
            self._wake.clear()
        log.debug("webhook: delivery thread stopped")

    def start(self) -> MqlPusher:
        """Deliver in a daemon thread until `close()`. Does nothing when no url is configured."""
        if self.enabled and (self._thread is None or not self._thread.is_alive()):
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._run, args=(self._stop,), name="mql-webhook",
                                            daemon=True)
            self._thread.start()
        return self

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop the thread (an in-flight POST finishes or times out) and close the connections."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None
        with self._db_lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> MqlPusher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- operations ----------------------------------------------------------------------------

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until no message is pending or sending (each is delivered or failed), delivering them
        here when no thread runs. True if that happened within `timeout_s`."""
        if not self.enabled:
            return True
        deadline = time.time() + timeout_s
        while True:
            if self._thread is None:
                self.deliver_due()
            counts = self.stats()
            if counts["pending"] == 0 and counts["sending"] == 0:
                return True
            left = deadline - time.time()
            if left <= 0:
                return False
            next_due = self._next_due()
            wait = 0.05 if next_due is None else max(0.0, next_due - time.time())
            time.sleep(min(wait, 0.05 if self._thread else 0.25, left))

    def retry_failed(self, keys: Iterable[str] | None = None, now: float | None = None) -> int:
        """Put failed messages (all, or those `keys`) back in the queue with a fresh attempt budget;
        their last error stays until the next attempt. Returns how many were re-queued."""
        now = time.time() if now is None else now
        if not self.db_path.exists():
            return 0

        def requeue(db: sqlite3.Connection) -> int:
            sql = ("UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ?,"
                   " lease_until = NULL WHERE status = 'failed'")
            if keys is None:
                return db.execute(sql, (now,)).rowcount
            return sum(db.execute(sql + " AND idempotency_key = ?", (now, key)).rowcount for key in keys)
        count = self._write(requeue)
        if count:
            log.info("webhook: %d failed message(s) re-queued", count)
            self._wake.set()
        return count

    def stats(self) -> dict[str, int]:
        """Messages by status, and the number of leads with a known score (all zero before any state)."""
        counts = dict.fromkeys(STATUSES, 0) | {"leads": 0}
        if self._db is None and not self.db_path.exists():
            return counts
        with self._db_lock:
            db = self._conn()
            counts.update(db.execute("SELECT status, count(*) FROM outbox GROUP BY status").fetchall())
            counts["leads"] = db.execute("SELECT count(*) FROM lead_state").fetchone()[0]
        return counts

    def messages(self) -> list[dict[str, Any]]:
        """Every outbox row, oldest first (for tests, debugging and a future admin command)."""
        if self._db is None and not self.db_path.exists():
            return []
        with self._db_lock:
            cursor = self._conn().execute("SELECT * FROM outbox ORDER BY created_at, idempotency_key")
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
