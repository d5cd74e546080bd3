"""Delivering claimed messages to the CRM's webhook: one HTTP POST each, retried with backoff.

Responses: 2xx delivered; 408, 429 and 5xx, timeouts and connection errors are retried after
``backoff_s * 2**(attempt-1)`` seconds (plus up to 10% jitter, at least any ``Retry-After``,
at most ``backoff_max_s``) until ``max_attempts`` attempts, then ``failed``; any other status
(4xx, or a 3xx: redirects are not followed) is a permanent failure. The error is kept in
``last_error``.

Messages are delivered by a daemon thread (`DeliveryThread`), or by whoever calls for it
(``MqlPusher.deliver_due()``); either way one message at a time, claimed from the outbox.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import httpx

from leadscore.config import WebhookSettings
from leadscore.serving.webhook.outbox import Claim, Outbox

log = logging.getLogger(__name__)

RETRIABLE_STATUS = frozenset({408, 429})
_MAX_ERROR_CHARS = 500


@dataclass(frozen=True)
class Attempt:
    """How one POST went."""

    delivered: bool
    retriable: bool = False
    error: str | None = None
    retry_after: float | None = None  # seconds, when the CRM said how long to wait


class Courier:
    """POSTs claimed messages to `settings.url` and records each outcome in the outbox. Thread-safe."""

    def __init__(self, settings: WebhookSettings, outbox: Outbox,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.settings = settings
        self.outbox = outbox
        self._transport = transport
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()

    def deliver(self, claim: Claim, clock: Callable[[], float]) -> bool:
        """Send one claimed message; it ends delivered, pending a retry, or failed. True if delivered."""
        key, attempts, max_attempts = claim.key, claim.attempts, self.settings.max_attempts
        if attempts > max_attempts:  # its last attempt died with its process
            self.outbox.finish(key, "failed", "lease expired after the last attempt", None, clock())
            return False
        attempt = self.post(key, claim.payload)
        done_at = clock()
        if attempt.delivered:
            self.outbox.finish(key, "delivered", None, None, done_at)
            log.info("webhook: delivered %s (attempt %d)", key, attempts)
        elif attempt.retriable and attempts < max_attempts:
            delay = self._backoff(attempts, attempt.retry_after)
            self.outbox.finish(key, "pending", attempt.error, done_at + delay, done_at)
            log.warning("webhook: %s attempt %d/%d failed (%s); retry in %.2fs", key, attempts,
                        max_attempts, attempt.error, delay)
        else:
            self.outbox.finish(key, "failed", attempt.error, None, done_at)
            log.error("webhook: %s failed for good after %d attempt(s): %s", key, attempts, attempt.error)
        return attempt.delivered

    def post(self, key: str, payload: str) -> Attempt:
        """POST one message with its Idempotency-Key."""
        try:
            response = self._http().post(str(self.settings.url), content=payload.encode(), headers={
                "Idempotency-Key": key, "Content-Type": "application/json"})
        except Exception as exc:  # refused/reset connections, timeouts, and even a bad url: retry later
            return Attempt(False, True, f"{type(exc).__name__}: {exc}"[:_MAX_ERROR_CHARS])
        if response.is_success:
            return Attempt(True)
        error = f"HTTP {response.status_code}: {response.text}"[:_MAX_ERROR_CHARS]
        retriable = response.status_code in RETRIABLE_STATUS or response.status_code >= 500
        return Attempt(False, retriable, error, retry_after(response) if retriable else None)

    def _backoff(self, attempts: int, retry_after: float | None) -> float:
        delay = self.settings.backoff_s * 2 ** (attempts - 1) * (1 + 0.1 * random.random())
        if retry_after is not None:
            delay = max(delay, retry_after)
        return min(delay, self.settings.backoff_max_s)

    def _http(self) -> httpx.Client:
        with self._client_lock:
            if self._client is None:
                self._client = httpx.Client(timeout=self.settings.timeout_s, follow_redirects=False,
                                            transport=self._transport,
                                            headers={"User-Agent": "leadscore-mql-webhook/1"})
            return self._client

    def close(self) -> None:
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None


def retry_after(response: httpx.Response) -> float | None:
    """The response's Retry-After in seconds from now (given in seconds or as an HTTP date)."""
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


class DeliveryThread(threading.Thread):
    """A daemon thread that runs `deliver_due(stopping)` until stopped, then waits until the next
    message is due (`next_due`, Unix seconds), at most `poll_s`, or until `wake` is set."""

    def __init__(self, deliver_due: Callable[[threading.Event], object],
                 next_due: Callable[[], float | None], wake: threading.Event, poll_s: float) -> None:
        super().__init__(name="mql-webhook", daemon=True)
        self._deliver_due = deliver_due
        self._next_due = next_due
        self._wake = wake
        self._poll_s = poll_s
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._deliver_due(self._stopping)
                next_due = self._next_due()
            except Exception:  # never let the thread die: log, wait, try again
                log.exception("webhook: delivery loop error")
                next_due = None
            wait = self._poll_s if next_due is None else min(self._poll_s, max(0.0, next_due - time.time()))
            self._wake.wait(wait)
            self._wake.clear()
        log.debug("webhook: delivery thread stopped")

    def stop(self, timeout_s: float) -> None:
        """Stop after the message in flight (its POST finishes or times out); wait up to `timeout_s`."""
        self._stopping.set()
        self._wake.set()
        self.join(timeout_s)
