"""Group commit: calls that arrive while one group is being processed go together in the next.

An ingest call's fixed costs (one event-log transaction, standardising a frame, the
interactions' SQL once per source) outweigh its per-record costs, and so do a feature
update's (its SQL costs ~160 ms for one person, ~280 ms for two hundred). A worker therefore
runs ingests on one thread of its own (and its feature updates on another): a call waits in
a queue, and each round takes every call waiting (a group stops growing once it holds
`group_records` records) and processes them together; each call gets its own answer. A call
that arrives alone after a quiet spell is processed alone at once (no waiting for company),
so latency at low load is that of a single call; under load, the calls that queued while
the last group ran share the next group's fixed costs. Databases commit concurrent
transactions this way.

If processing a group fails with `NothingDone` (nothing of it was committed), each of its
calls is processed alone, so one bad call cannot fail the others; any other error is the
answer of every call of the group (what was committed stays, and a call sent again finds it).

A call can also be posted without waiting for it (`post`): the scoring service records what
/score served this way, after the answer has gone.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, NamedTuple, TypeVar

log = logging.getLogger(__name__)

Call = TypeVar("Call")
Answer = TypeVar("Answer")


class NothingDone(Exception):
    """Raised by `process` when it failed before committing anything: each call is tried alone.
    The error that made it fail is its `__cause__`."""


class _Queued(NamedTuple, Generic[Call, Answer]):
    call: Call
    answer: Future[Answer]
    waited_for: bool  # submitted (a caller waits for it), not posted


class GroupCommit(Generic[Call, Answer]):
    """`process(calls) -> answers` (same order) run on a thread of its own, over groups of calls.
    With `linger_s`, a group that begins with a posted call waits that long for company (unless
    a caller waits): for a `process` whose fixed cost dwarfs all else, and for callers that must
    not be slowed by the thread waking for each call they post. With `crowd_wait_s`, a group
    that follows one of several calls waits up to that long for as many (see above)."""

    def __init__(self, process: Callable[[Sequence[Call]], list[Answer]],
                 size: Callable[[Call], int], group_records: int, name: str = "group-commit",
                 linger_s: float = 0.0, crowd_wait_s: float = 0.0) -> None:
        self._process = process
        self._size = size
        self._group_records = group_records
        self._linger_s = linger_s
        self._crowd_wait_s = crowd_wait_s
        self._last_calls = 0  # how many calls the last group held
        self._waiting: queue.SimpleQueue[_Queued | None] = queue.SimpleQueue()
        self._closing = threading.Lock()
        self._hurry = threading.Event()  # a caller waits, or a stop: no more lingering
        self._behind = False  # the last group was full: more may wait
        self._closed = False
        self._working = False  # a group is being processed
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, call: Call, timeout_s: float | None = None) -> Answer:
        """Process `call` (with whatever else is waiting) and return its answer, or raise its
        error (TimeoutError after `timeout_s`: the call is still processed)."""
        return self._queue(call, waited_for=True).result(timeout_s)

    @property
    def idle(self) -> bool:
        """Nothing is being processed and nothing waits (as of now: it may change at once)."""
        return not self._working and self._waiting.empty()

    @property
    def idle_behind(self) -> bool:
        """Nothing waits behind the group being processed (`process` may ask; as of now)."""
        return self._waiting.empty()

    def post(self, call: Call) -> None:
        """Process `call` with the next group, without waiting for it (its error is logged)."""
        self._queue(call, waited_for=False).add_done_callback(_log_failure)

    def _queue(self, call: Call, waited_for: bool) -> Future[Answer]:
        answer: Future[Answer] = Future()
        with self._closing:
            if self._closed or not self._thread.is_alive():
                raise RuntimeError("the group-commit thread has stopped")
            self._waiting.put(_Queued(call, answer, waited_for))
        if waited_for:
            self._hurry.set()
        return answer

    def close(self) -> None:
        """Stop after the calls already waiting."""
        with self._closing:
            self._closed = True
            self._waiting.put(None)
        self._hurry.set()
        self._thread.join()

    def _next_group(self, first: _Queued) -> tuple[list[_Queued], bool]:
        """`first` and what waits behind it until the group holds `group_records` records (a
        call is never split: the last one may take the group past the bound); and whether a
        stop was asked for. A posted `first` lingers `linger_s` first, for company: the calls
        posted meanwhile only queue (waking nobody: the thread would otherwise take the GIL
        from the caller's thread once per call), a call submitted or a stop cuts it short.
        A group that is full already, or follows a full one (more may wait), does not linger."""
        records = self._size(first.call)
        full = self._behind or records >= self._group_records
        if not first.waited_for and self._linger_s > 0 and not full:
            self._hurry.wait(self._linger_s)
        elif first.waited_for and self._last_calls > 1 and not full:
            self._wait_for_crowd(self._last_calls - 1)
        self._hurry.clear()  # what set it is queued by now and goes in this group or the next
        group = [first]
        self._behind = False
        while records < self._group_records:
            try:
                item = self._waiting.get_nowait()
            except queue.Empty:
                return group, False
            if item is None:
                return group, True
            group.append(item)
            records += self._size(item.call)
        self._behind = True
        return group, False

    def _wait_for_crowd(self, calls: int) -> None:
        """Until `calls` more calls wait (or a stop), at most `crowd_wait_s`."""
        deadline = time.monotonic() + self._crowd_wait_s
        while self._waiting.qsize() < calls and not self._closed:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._hurry.clear()
            if self._waiting.qsize() >= calls:  # queued between the check and the clear
                return
            self._hurry.wait(left)

    def _run(self) -> None:
        stop = False
        while not stop:
            first = self._waiting.get()
            if first is None:
                break
            group = [first]
            self._working = True
            try:
                group, stop = self._next_group(first)
                self._last_calls = len(group)
                self._answer(group)
            except BaseException as error:  # noqa: BLE001 - no caller may wait forever
                _fail([queued.answer for queued in group], error)
                if not isinstance(error, Exception):
                    raise
            finally:
                self._working = False
        self._fail_waiting()

    def _fail_waiting(self) -> None:
        """After the stop: nothing is left waiting for an answer."""
        while True:
            try:
                item = self._waiting.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                _fail([item.answer], RuntimeError("the group-commit thread has stopped"))

    def _answer(self, group: list[_Queued]) -> None:
        try:
            answers = self._process([queued.call for queued in group])
            if len(answers) != len(group):
                raise RuntimeError(f"{len(answers)} answers to {len(group)} calls")
        except NothingDone as failed:
            if len(group) == 1:
                _fail([group[0].answer], failed.__cause__ or failed)
                return
            log.warning("a group of %d calls failed before committing: processing each alone",
                        len(group), exc_info=True)
            for item in group:
                self._answer([item])
            return
        except Exception as error:  # noqa: BLE001 - the group's error is each call's answer
            log.exception("a group of %d calls failed", len(group))
            _fail([queued.answer for queued in group], error)
            return
        for queued, answer in zip(group, answers, strict=True):
            queued.answer.set_result(answer)


def _fail(futures: list[Future], error: BaseException) -> None:
    for future in futures:
        if not future.done():
            future.set_exception(error)


def _log_failure(answer: Future) -> None:
    if answer.exception() is not None:
        log.error("a call posted without waiting failed", exc_info=answer.exception())
