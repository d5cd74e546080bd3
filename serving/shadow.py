"""The challenger's scores in shadow, computed off the request path, in batches.

A challenger scores every row the champion serves, and the score log keeps its scores
(trigger `shadow`) for monitoring to compare with the champion's once outcomes mature
(monitoring/promotion.py). Scored on the request, a LightGBM challenger doubled a /score's
cost, and a logistic regression one multiplied it by 20: its scikit-learn pipeline costs
about 25 ms a call whether for 1 row or 1,000. So the rows served wait in a queue, and a
thread of the worker's scores what has gathered every `flush_s` seconds, in one call per
challenger version, and logs each score at the instant its row was served.

Nothing served waits for it. A crash loses at most the last `flush_s` of shadow scores,
never served: the evidence for a promotion only grows a little more slowly.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the service imports this module at start: no pandas or LightGBM before it needs them
    from leadscore.live.score_log import ScoreLog
    from leadscore.serving.scorer import Columns, Scorer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShadowRows:
    """Rows the champion scored, for `scorer` (the challenger) to score in shadow."""

    scorer: Scorer
    pids: list[str | None]
    columns: Columns
    times: list[str | None]


_Queued = tuple[ShadowRows, datetime] | threading.Event | None  # rows, a flush asked for, or stop


class ShadowScoring:
    """A queue of rows served and the thread that scores them in shadow and logs the scores."""

    def __init__(self, score_log: ScoreLog, flush_s: float, max_rows: int) -> None:
        self._score_log = score_log
        self._flush_s = flush_s
        self._max_rows = max_rows
        self._queue: queue.SimpleQueue[_Queued] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="shadow-scoring", daemon=True)
        self._thread.start()

    def add(self, rows: ShadowRows, served_at: datetime) -> None:
        """Score `rows` in shadow soon, logged at `served_at`; returns at once."""
        if rows.pids:
            self._queue.put((rows, served_at))

    def flush(self) -> None:
        """Wait until every row added before this call is scored and logged."""
        done = threading.Event()
        self._queue.put(done)
        while not done.wait(1):
            if not self._thread.is_alive():
                raise RuntimeError("the shadow-scoring thread has stopped")

    def close(self) -> None:
        """Score and log what is queued, then stop."""
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            batch: list[tuple[ShadowRows, datetime]] = []
            flushes: list[threading.Event] = []
            stopping = self._gather(first, batch, flushes)
            self._score_and_log(batch)
            for done in flushes:
                done.set()

    def _gather(self, first: _Queued, batch: list[tuple[ShadowRows, datetime]],
                flushes: list[threading.Event]) -> bool:
        """Fill `batch` with rows queued for up to `flush_s` from `first`, until `max_rows`, a
        flush or a stop; whether a stop was asked for."""
        deadline, item, rows = time.monotonic() + self._flush_s, first, 0
        while True:
            if item is None:
                return True
            if isinstance(item, threading.Event):
                flushes.append(item)
                return False
            batch.append(item)
            rows += len(item[0].pids)
            wait = deadline - time.monotonic()
            if rows >= self._max_rows or wait <= 0:
                return False
            try:
                item = self._queue.get(timeout=wait)
            except queue.Empty:
                return False

    def _score_and_log(self, batch: list[tuple[ShadowRows, datetime]]) -> None:
        from leadscore.live.score_log import SHADOW

        by_scorer: dict[int, list[tuple[ShadowRows, datetime]]] = {}
        for rows, served_at in batch:
            by_scorer.setdefault(id(rows.scorer), []).append((rows, served_at))
        for parts in by_scorer.values():
            scorer = parts[0][0].scorer
            pids = [pid for rows, _ in parts for pid in rows.pids]
            try:
                records = scorer.shadow_records(
                    pids, {name: [value for rows, _ in parts for value in rows.columns[name]]
                     for name in scorer.feature_names},
                    [t for rows, _ in parts for t in rows.times])
                self._score_log.append_each(records, [at for rows, at in parts for _ in rows.pids],
                                            [SHADOW] * len(records))
            except Exception:  # noqa: BLE001 - a shadow score never fails what was served
                log.exception("could not score or log %d rows in shadow with challenger version %s",
                              len(pids), scorer.version)
