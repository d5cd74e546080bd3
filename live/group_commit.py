"""Group commit: calls that arrive while one group is being processed go together in the next.

An ingest call's fixed costs (one event-log transaction, standardising a frame, a feature
computation whose SQL costs ~130 ms whether it serves 1 person or 100, one write per feature
view, one scoring) dwarf its per-record costs. A worker therefore runs ingests on one thread
of its own: a call waits in a queue, and each round takes every call waiting (up to
`max_records` records) and processes them together; each call gets its own answer. A call
that arrives alone is processed alone at once (no waiting for company), so latency at low
load is that of a single call; under load, the calls that queued while the last group ran
share the next group's fixed costs. Databases commit concurrent transactions this way.

If processing a group fails, each of its calls is processed alone, so one bad call cannot
fail the others.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

Call = TypeVar("Call")
Answer = TypeVar("Answer")


class GroupCommit(Generic[Call, Answer]):
    """`process(calls) -> answers` (same order) run on a thread of its own, over groups of calls."""

    def __init__(self, process: Callable[[Sequence[Call]], list[Answer]],
                 size: Callable[[Call], int], max_records: int, name: str = "group-commit") -> None:
        self._process = process
        self._size = size
        self._max_records = max_records
        self._waiting: queue.SimpleQueue[tuple[Call, Future[Answer]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, call: Call) -> Answer:
        """Process `call` (with whatever else is waiting) and return its answer, or raise its error."""
        if not self._thread.is_alive():
            raise RuntimeError("the group-commit thread has stopped")
        answer: Future[Answer] = Future()
        self._waiting.put((call, answer))
        return answer.result()

    def close(self) -> None:
        """Stop after the calls already waiting."""
        self._waiting.put(None)
        self._thread.join()

    def _next_group(self, first: tuple[Call, Future[Answer]]) -> tuple[list, bool]:
        """`first` and what waits behind it, up to `max_records` records (at least one call);
        and whether a stop was asked for."""
        group, records = [first], self._size(first[0])
        while records < self._max_records:
            try:
                item = self._waiting.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return group, True
            group.append(item)
            records += self._size(item[0])
            # a call that would overflow the group still goes in it: calls are at most
            # live.max_records, so a group is at most twice the bound
        return group, False

    def _run(self) -> None:
        while True:
            first = self._waiting.get()
            if first is None:
                return
            group, stop = self._next_group(first)
            self._answer(group)
            if stop:
                return

    def _answer(self, group: list[tuple[Call, Future[Answer]]]) -> None:
        try:
            answers = self._process([call for call, _ in group])
        except Exception as error:  # noqa: BLE001 - the call's own error is its answer
            if len(group) == 1:
                group[0][1].set_exception(error)
            else:
                log.warning("a group of %d calls failed (%s): processing each alone", len(group), error)
                for item in group:
                    self._answer([item])
            return
        for (_, future), answer in zip(group, answers, strict=True):
            future.set_result(answer)
