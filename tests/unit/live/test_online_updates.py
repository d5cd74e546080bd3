"""The feature update behind the answers (live/online.py `update_due`): what fails, and what stays due."""

from __future__ import annotations

import threading
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from leadscore.live.log import EventLog
from leadscore.live.online import OnlineUpdater, StoreBusy, store_lock

NOW = datetime(2026, 11, 2, 9, tzinfo=UTC)


def _updater(monkeypatch, failing: set[str] | None,
             colleague: str | None = None) -> tuple[OnlineUpdater, list[list[str]]]:
    """An updater whose feature writes fail for the people in `failing` (everyone: None), and
    the groups of people it was asked to write; with a `colleague`, each write also rewrites
    that colleague's account row, and then fails after writing (as a re-scoring would)."""
    asked: list[list[str]] = []

    def compute_and_write(log, pids, at):
        asked.append(list(pids))
        if colleague is None and (failing is None or failing & set(pids)):
            raise OSError("the write failed")
        return None, {"person_interest": list(pids), "person_account": [colleague] if colleague else []}

    updater = OnlineUpdater.__new__(OnlineUpdater)
    monkeypatch.setattr(updater, "_store_lock", nullcontext, raising=False)
    monkeypatch.setattr(updater, "_compute_and_write", compute_and_write, raising=False)
    return updater, asked


@pytest.fixture
def log(tmp_path) -> EventLog:
    log = EventLog(tmp_path / "events.db")
    with log.writing():
        log.mark_due([f"P{i}" for i in range(8)])
    return log


def test_one_person_who_fails_is_set_aside_and_the_others_go_through(monkeypatch, log, caplog):
    updater, asked = _updater(monkeypatch, failing={"P2"})
    scored: list[str] = []
    everyone = [f"P{i}" for i in range(8)]
    assert updater.update_due(log, lambda: NOW, 100, lambda pids, written: scored.extend(pids)) == everyone
    assert sorted(scored) == sorted(f"P{i}" for i in range(8) if i != 2)
    assert log.due(100) == []  # P2 set aside: its next record marks it again
    assert sorted(log.feature_writes()["pid"]) == sorted(scored)  # noted with the marks cleared
    assert "P2" in caplog.text and len(asked) <= 12  # halves, not one try per person


def test_rows_written_before_the_rescoring_failed_are_noted_all_the_same(monkeypatch, log):
    """The re-scoring fails for P2 after its rows were written online: a batch load must still
    know those rows, and the colleague's, which the tries after write no more."""
    updater, _ = _updater(monkeypatch, failing=None, colleague="C9")

    def rescore(pids, written):
        if "P2" in pids:
            raise OSError("the re-scoring failed")

    updater.update_due(log, lambda: NOW, 100, rescore)
    assert log.due(100) == []  # P2 set aside
    assert sorted(set(log.feature_writes()["pid"])) == ["C9", *(f"P{i}" for i in range(8))]


def test_a_store_that_fails_everyone_keeps_every_mark_and_says_so(monkeypatch, log):
    updater, asked = _updater(monkeypatch, failing=None)
    with pytest.raises(RuntimeError, match="no feature update of the 8 people"):
        updater.update_due(log, lambda: NOW, 100)
    assert len(log.due(100)) == 8 and len(asked) == 2  # the whole, then the newest alone


def test_people_written_live_at_or_after_an_instant_are_marked_due_again(log):
    log.updated(log.due(100))
    log.features_written({"person_interest": ["P1", "P2"], "person_account": ["P3"]}, NOW)
    log.features_written({"person_interest": ["P4"]}, NOW - timedelta(hours=1))
    assert log.mark_written_after(NOW) == ["P1", "P2", "P3"]  # P4's row is older
    assert sorted(pid for pid, _ in log.due(100)) == ["P1", "P2", "P3"]
    assert log.mark_written_after(None) == ["P1", "P2", "P3", "P4"]  # no record compacted: all
    assert log.received_at(0) is None


def test_an_update_clears_its_marks_only_each_found_by_its_pid(log):
    """`updated` removes the marks it was given (a mark renewed since, with a later seq, stays),
    each looked up by its pid: a long queue of people due is not scanned for every mark."""
    with log.writing():
        log.mark_due([f"Q{i}" for i in range(2_000)])
    marks = log.due(5)
    with log.writing():  # renewed: a record of theirs came after the update read (a later seq)
        log.con.execute("UPDATE due_update SET seq = seq + 1 WHERE pid = ?", [marks[0][0]])
    log.updated(marks)
    left = dict(log.due(10_000))
    assert marks[0][0] in left and not any(pid in left for pid, _ in marks[1:])
    assert len(left) == 8 + 2_000 - 4
    traced: list[str] = []
    log.con.set_trace_callback(traced.append)
    log.updated(log.due(3))
    deleted = next(statement for statement in traced if statement.startswith("DELETE"))
    plan = " ".join(str(row[-1]) for row in log.con.execute("EXPLAIN QUERY PLAN " + deleted))
    assert "SCAN d " not in plan and "SCAN due_update" not in plan, plan


def test_an_update_asked_not_to_wait_leaves_the_people_due_to_the_one_holding_the_lock(log, tmp_path):
    asked: list[list[str]] = []

    def compute_and_write(log, pids, at):
        asked.append(list(pids))
        return None, {}

    updater = OnlineUpdater.__new__(OnlineUpdater)  # with the real lock, across processes
    updater.settings = SimpleNamespace(live_dir=tmp_path, live=SimpleNamespace(busy_timeout_s=0.2))
    updater._writing = threading.Lock()
    updater._compute_and_write = compute_and_write
    with store_lock(tmp_path, 1):  # another worker's update (flock: another open file, another holder)
        with pytest.raises(StoreBusy):
            updater.update_due(log, lambda: NOW, 100, wait=False)
        with pytest.raises(TimeoutError):  # waiting, it would take them once the other is done
            updater.update_due(log, lambda: NOW, 100)
        assert asked == [] and len(log.due(100)) == 8
    with updater._writing, pytest.raises(StoreBusy):  # this worker's own update runs
        updater.update_due(log, lambda: NOW, 100, wait=False)
    assert len(updater.update_due(log, lambda: NOW, 100, wait=False)) == 8
    assert asked == [[f"P{i}" for i in range(8)]] and log.due(100) == []
