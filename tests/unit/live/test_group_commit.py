"""Group commit: calls waiting while a group runs go together in the next, each with its own answer."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from leadscore.live.group_commit import GroupCommit


class Recorder:
    """A `process` that records its groups; the first group waits until `release` is set."""

    def __init__(self) -> None:
        self.groups: list[list[str]] = []
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self, calls: Sequence[str]) -> list[str]:
        self.started.set()
        self.release.wait(5)
        if "bad" in calls:
            raise ValueError("a bad call")
        self.groups.append(list(calls))
        return [call.upper() for call in calls]


def _submit_all(group: GroupCommit, calls: list[str], recorder: Recorder) -> dict[str, object]:
    """The first call alone, the rest while it is processed; each call's answer or error."""
    answers: dict[str, object] = {}

    def submit(call: str) -> None:
        try:
            answers[call] = group.submit(call)
        except ValueError as error:
            answers[call] = error

    threads = [threading.Thread(target=submit, args=(calls[0],))]
    threads[0].start()
    assert recorder.started.wait(5)
    for call in calls[1:]:
        threads.append(threading.Thread(target=submit, args=(call,)))
        threads[-1].start()
    time.sleep(0.2)  # all of them waiting behind the first group
    recorder.release.set()
    for thread in threads:
        thread.join(5)
    return answers


def test_calls_that_wait_go_together_and_each_gets_its_answer():
    recorder = Recorder()
    group = GroupCommit(recorder, size=len, max_records=100)
    answers = _submit_all(group, ["a", "bb", "cc", "dd"], recorder)
    group.close()
    assert recorder.groups[0] == ["a"]
    assert sorted(recorder.groups[1]) == ["bb", "cc", "dd"] and len(recorder.groups) == 2
    assert answers == {"a": "A", "bb": "BB", "cc": "CC", "dd": "DD"}


def test_a_group_holds_at_most_max_records_records():
    recorder = Recorder()
    group = GroupCommit(recorder, size=len, max_records=4)
    _submit_all(group, ["a", "bb", "cc", "dd"], recorder)
    group.close()
    assert [sum(map(len, calls)) for calls in recorder.groups[1:]] == [4, 2]


def test_a_failing_call_fails_alone():
    recorder = Recorder()
    group = GroupCommit(recorder, size=len, max_records=100)
    answers = _submit_all(group, ["a", "bb", "bad", "dd"], recorder)
    group.close()
    assert isinstance(answers["bad"], ValueError)
    assert {call: answers[call] for call in ("a", "bb", "dd")} == {"a": "A", "bb": "BB", "dd": "DD"}
    assert ["bad"] not in recorder.groups and ["bb"] in recorder.groups and ["dd"] in recorder.groups


def test_a_closed_group_refuses_calls():
    group = GroupCommit(lambda calls: list(calls), size=len, max_records=10)
    assert group.submit("x") == "x"
    group.close()
    with pytest.raises(RuntimeError, match="stopped"):
        group.submit("y")
