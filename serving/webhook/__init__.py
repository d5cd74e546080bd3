"""Push marketing-qualified leads (MQLs) to the CRM's webhook: once, durably, with retries.

`MqlPusher` is the whole of it for its callers (the service, the batch job); one module a step:

- `crossings`: which observed scores cross the MQL threshold (``settings.serving.webhook.
  mql_threshold``, default 60), the message of each crossing and its idempotency key (pure);
- `outbox`: the SQLite state shared by every process, ``<state_dir>/webhook.sqlite`` (the last
  score of each lead, and every message with its delivery status);
- `delivery`: the HTTP POST of each message, its retries, and the delivery thread.

``observe()`` records scores and enqueues a message per crossing in one transaction, never
touching the network; delivery (a daemon thread started by ``start()``, or ``deliver_due()``
called directly) claims one message at a time, so it is at-least-once and the
``Idempotency-Key`` header lets the CRM drop the rare duplicate. Failed messages are kept;
``retry_failed()`` puts them back in the queue.

With ``url`` unset the pusher is disabled: ``observe()`` stores nothing and no thread runs.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx

from leadscore.config import WebhookSettings
from leadscore.serving.webhook.crossings import (
    Crossing,
    Scored,
    detect_crossings,
    idempotency_key,
    may_cross,
    mql_payload,
    scored_rows,
)
from leadscore.serving.webhook.delivery import Courier, DeliveryThread
from leadscore.serving.webhook.outbox import DB_NAME, Claim, Message, Outbox, lead_states, record

__all__ = ["DB_NAME", "Message", "MqlPusher", "idempotency_key"]

log = logging.getLogger(__name__)


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
        self.repush_on_recross = repush_on_recross
        self.poll_s = poll_s
        self.lease_s = 2 * settings.timeout_s + 10  # one POST, with room to record its outcome
        self.outbox = Outbox(self.state_dir, busy_timeout_s)
        self._courier = Courier(settings, self.outbox, transport)
        self._wake = threading.Event()
        self._thread: DeliveryThread | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.settings.url)

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
        scored, skipped = scored_rows(rows)
        if skipped:
            log.warning("webhook: skipped %d scored rows without a pid or a finite score", skipped)
        if not scored:
            return 0
        enqueued = self._observe(scored, routing_table or {}, time.time() if now is None else now)
        if enqueued:
            self._wake.set()
        return enqueued

    def enqueue(self, messages: list[Message]) -> int:
        """Queue other messages (the daily digest) for delivery; a key already queued is not
        queued again. Returns how many were new."""
        if not self.enabled or not messages:
            return 0
        with self.outbox.transaction() as db:
            enqueued = record(db, {}, messages, time.time())
        if enqueued:
            self._wake.set()
        return enqueued

    def _observe(self, scored: list[Scored], routing_table: Mapping[str, Any], now: float) -> int:
        threshold = float(self.settings.mql_threshold)
        with self.outbox.transaction() as db:
            known = lead_states(db, may_cross(scored, threshold))
            states, crossings = detect_crossings(scored, known, threshold, self.repush_on_recross)
            messages = [Message(c.key, c.lead.pid, self._payload(c, routing_table, now)) for c in crossings]
            return record(db, states, messages, now)

    def _payload(self, crossing: Crossing, routing_table: Mapping[str, Any], now: float) -> str:
        return mql_payload(crossing, float(self.settings.mql_threshold), routing_table, now)

    # -- delivery ------------------------------------------------------------------------------

    def deliver_due(self, now: float | None = None) -> int:
        """Send every message that is due; returns how many were delivered. `now` (Unix seconds, default
        the real clock) is the clock for this call: due-ness, leases and the next retry times are
        reckoned from it. Safe to run in several threads and processes at once."""
        return self._deliver(time.time if now is None else lambda: now, None)

    def _deliver(self, clock: Callable[[], float], stop: threading.Event | None) -> int:
        if not self.enabled:
            return 0
        delivered = 0
        while stop is None or not stop.is_set():
            claimed = self._claim(clock())
            if claimed is None:
                break
            delivered += self._courier.deliver(claimed, clock)
        return delivered

    def _claim(self, now: float) -> Claim | None:
        return self.outbox.claim(now, lease_until=now + self.lease_s)

    def start(self) -> MqlPusher:
        """Deliver in a daemon thread until `close()`. Does nothing when no url is configured."""
        if self.enabled and (self._thread is None or not self._thread.is_alive()):
            self._thread = DeliveryThread(functools.partial(self._deliver, time.time), self.outbox.next_due,
                                          self._wake, self.poll_s)
            self._thread.start()
        return self

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop the thread (an in-flight POST finishes or times out) and close the connections."""
        if self._thread is not None:
            self._thread.stop(timeout_s)
            self._thread = None
        self._courier.close()
        self.outbox.close()

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
            next_due = self.outbox.next_due()
            wait = 0.05 if next_due is None else max(0.0, next_due - time.time())
            time.sleep(min(wait, 0.05 if self._thread else 0.25, left))

    def retry_failed(self, keys: Iterable[str] | None = None, now: float | None = None) -> int:
        """Put failed messages (all, or those `keys`) back in the queue with a fresh attempt budget;
        their last error stays until the next attempt. Returns how many were re-queued."""
        count = self.outbox.requeue_failed(keys, time.time() if now is None else now)
        if count:
            log.info("webhook: %d failed message(s) re-queued", count)
            self._wake.set()
        return count

    def stats(self) -> dict[str, int]:
        """Messages by status, and the number of leads with a known score (all zero before any state)."""
        return self.outbox.stats()

    def messages(self) -> list[dict[str, Any]]:
        """Every outbox row, oldest first (for tests, debugging and a future admin command)."""
        return self.outbox.messages()
