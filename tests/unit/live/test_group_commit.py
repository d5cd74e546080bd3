"""Group commit: calls waiting while a group runs go together in the next, each with its own answer."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from leadscore.live.group_commit import GroupCommit, NothingDone


class Recorder:
    """A `process` that records every group it is given; the first waits until `release`.
    A group holding "bad" fails before committing anything, one holding "late" after."""

    def __init__(self) -> None:
        self.groups: list[list[str]] = []
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self, calls: Sequence[str]) -> list[str]:
        self.groups.append(list(calls))
        self.started.set()
        self.release.wait(5)
        if "bad" in calls:
            raise NothingDone from ValueError("a bad call")
        if "late" in calls:
            raise OSError("failed after the commit")
        return [call.upper() for call in calls]


def _submit_all(group: GroupCommit, calls: list[str], recorder: Recorder) -> dict[str, object]:
    """The first call alone, the rest while it is processed; each call's answer or error."""
    answers: dict[str, object] = {}

    def submit(call: str) -> None:
        try:
            answers[call] = group.submit(call)
        except Exception as error:  # noqa: BLE001 - the answer under test
            answers[call] = error

    threads = [threading.Thread(target=submit, args=(call,)) for call in calls]
    threads[0].start()
    assert recorder.started.wait(5)
    for thread in threads[1:]:
        thread.start()
    deadline = time.monotonic() + 5
    while group._waiting.qsize() < len(calls) - 1 and time.monotonic() < deadline:
        time.sleep(0.01)  # until all of them wait behind the first group
    recorder.release.set()
    for thread in threads:
        thread.join(5)
    return answers


def test_calls_that_wait_go_together_and_each_gets_its_answer():
    recorder = Recorder()
    group = GroupCommit(recorder, size=len, group_records=100)
    answers = _submit_all(group, ["a", "bb", "cc", "dd"], recorder)
    group.close()
    assert recorder.groups[0] == ["a"]
    assert sorted(recorder.groups[1]) == ["bb", "cc", "dd"] and len(recorder.groups) == 2
    assert answers == {"a": "A", "bb": "BB", "cc": "CC", "dd": "DD"}


def test_a_group_stops_growing_at_group_records():
    recorder = Recorder()
    group = GroupCommit(recorder, size=len, group_records=3)
    _submit_all(group, ["a", "bb", "cc", "dd"], recorder)
    group.close()
    # two calls of 2 reach 4 >= 3: the group closes (a call is never split), the last goes next
    assert [sum(map(len, calls)) for calls in recorder.groups[1:]] == [4, 2]


def test_a_call_that_fails_before_committing_fails_alone():
    recorder = Recorder()
    group = GroupCommit(recorder, size=len, group_records=100)
    answers = _submit_all(group, ["a", "bb", "bad", "dd"], recorder)
    group.close()
    assert sorted(recorder.groups[1]) == ["bad", "bb", "dd"]  # tried together first
    assert sorted(recorder.groups[2:]) == [["bad"], ["bb"], ["dd"]]  # then each alone
    assert isinstance(answers["bad"], ValueError)  # its own error, not the wrapper
    assert {call: answers[call] for call in ("a", "bb", "dd")} == {"a": "A", "bb": "BB", "dd": "DD"}


def test_a_failure_after_the_commit_is_every_calls_answer_and_nothing_is_redone():
    """Retried alone, the calls would find their own records stored and call them duplicates."""
    recorder = Recorder()
    group = GroupCommit(recorder, size=len, group_records=100)
    answers = _submit_all(group, ["a", "bb", "late", "dd"], recorder)
    group.close()
    assert len(recorder.groups) == 2
    assert all(isinstance(answers[call], OSError) for call in ("bb", "late", "dd"))


def test_a_wrong_number_of_answers_fails_the_calls_and_the_thread_goes_on():
    group = GroupCommit(lambda calls: [] if "x" in calls else list(calls), size=len, group_records=10)
    with pytest.raises(RuntimeError, match="0 answers to 1 calls"):
        group.submit("x")
    assert group.submit("y") == "y"
    group.close()


def test_a_closed_group_refuses_calls():
    group = GroupCommit(lambda calls: list(calls), size=len, group_records=10)
    assert group.submit("x") == "x"
    group.close()
    with pytest.raises(RuntimeError, match="stopped"):
        group.submit("y")


def test_posted_calls_return_at_once_go_together_and_a_submit_behind_them_waits_for_them():
    """/score posts its records (serving/service.py) and a test waits for them by submitting."""
    recorder = Recorder()
    group = GroupCommit(recorder, size=len, group_records=100)
    group.post("a")  # the recorder holds this group until released
    assert recorder.started.wait(5)
    started = time.monotonic()
    for call in ("bb", "cc"):
        group.post(call)
    assert time.monotonic() - started < 1  # nobody waited for the held group
    recorder.release.set()
    assert group.submit("dd") == "DD"  # processed after everything posted before it
    group.close()
    later = sorted(call for calls in recorder.groups[1:] for call in calls)
    assert recorder.groups[0] == ["a"] and later == ["bb", "cc", "dd"]


def test_a_posted_call_that_fails_is_logged(caplog):
    def process(calls: Sequence[str]) -> list[str]:
        if "late" in calls:
            raise OSError("failed after the commit")
        return list(calls)

    group = GroupCommit(process, size=len, group_records=100)
    group.post("late")
    group.close()  # after the calls already waiting
    assert "a call posted without waiting failed" in caplog.text


def test_posted_calls_linger_together_until_a_caller_waits():
    """The challenger's shadow scores (serving/shadow.py): posted calls wait `linger_s` for
    company, and a submitted one closes the group at once."""
    groups: list[list[str]] = []
    group = GroupCommit(lambda calls: groups.append(list(calls)) or list(calls), size=len,
                        group_records=100, linger_s=60)
    group.post("a")
    group.post("b")
    time.sleep(0.2)
    assert groups == []  # still lingering
    started = time.monotonic()
    assert group.submit("c") == "c"
    assert time.monotonic() - started < 5 and groups == [["a", "b", "c"]]
    group.post("d")
    group.close()  # a stop does not linger either
    assert groups[-1] == ["d"]


def test_after_a_group_of_several_calls_the_next_waits_for_as_many():
    """Answered together, callers come back together: the first of them is not taken alone."""
    recorder = Recorder()
    group = GroupCommit(recorder, size=len, group_records=100, crowd_wait_s=5)
    assert _submit_all(group, ["a", "b", "c"], recorder) == {"a": "A", "b": "B", "c": "C"}
    assert recorder.groups == [["a"], ["b", "c"]]
    answers: dict[str, str] = {}
    threads = [threading.Thread(target=lambda call=call: answers.update({call: group.submit(call)}))
               for call in ("d", "e")]
    for thread in threads:
        thread.start()
        time.sleep(0.3)  # the second comes 0.3 s after the first: within the wait
    for thread in threads:
        thread.join(5)
    assert recorder.groups[-1] == ["d", "e"] and answers == {"d": "D", "e": "E"}
    started = time.monotonic()
    assert group.submit("f") == "F"  # after a group of two, one more call is waited for...
    assert recorder.groups[-1] == ["f"] and 4 < time.monotonic() - started < 6  # ...5 s at most
    assert group.submit("g") == "G" and recorder.groups[-1] == ["g"]  # after one call, no wait
    group.close()


def test_idle_says_whether_a_group_runs_or_waits():
    recorder = Recorder()
    group = GroupCommit(recorder, size=len, group_records=100)
    assert group.idle
    thread = threading.Thread(target=group.submit, args=("a",))
    thread.start()
    assert recorder.started.wait(5)
    assert not group.idle and group.idle_behind  # processing "a", nothing behind it
    group.post("b")
    assert not group.idle_behind
    recorder.release.set()
    thread.join(5)
    deadline = time.monotonic() + 5
    while not group.idle and time.monotonic() < deadline:
        time.sleep(0.01)
    assert group.idle
    group.close()
