"""execute_rows writes what executemany writes, in few statements, and keeps its pace beside a busy thread."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from leadscore.sqlite_rows import execute_rows

UPSERT = ("INSERT INTO t (k, f, v) VALUES {values} ON CONFLICT (k, f) DO UPDATE SET v = excluded.v")


def _table() -> sqlite3.Connection:
    con = sqlite3.connect(":memory:")
    con.execute("CREATE TABLE t (k TEXT, f TEXT, v BLOB, PRIMARY KEY (k, f))")
    con.execute("INSERT INTO t VALUES ('k1', 'a', x'00'), ('k9', 'a', x'09')")
    return con


def _rows(count: int) -> list[tuple]:
    """Keys repeated within the batch (the later wins, as executemany's later row does), an
    existing key, NULLs and bytes."""
    return [(f"k{i % (count // 2 + 1)}", "a" if i % 3 else "b", None if i % 7 == 0 else bytes([i % 256]))
            for i in range(count)]


@pytest.mark.parametrize("count", [0, 1, 5, 512, 1_000])
def test_it_leaves_what_executemany_leaves(count):
    ours, theirs = _table(), _table()
    statements: list[str] = []
    ours.set_trace_callback(statements.append)
    execute_rows(ours, UPSERT, iter(_rows(count)), width=3)  # a generator, as the log's writers give
    theirs.executemany(UPSERT.replace("{values}", "(?, ?, ?)"), _rows(count))
    assert ours.execute("SELECT * FROM t ORDER BY k, f").fetchall() == \
        theirs.execute("SELECT * FROM t ORDER BY k, f").fetchall()
    inserts = [statement for statement in statements if statement.startswith("INSERT")]
    assert len(inserts) == count // 512 + bin(count % 512).count("1")  # 1,000: 512 + 256 + 128 + 64 + 32 + 8


def test_a_delete_of_row_values():
    con = _table()
    execute_rows(con, "DELETE FROM t WHERE (k, f) IN (VALUES {values})", [("k1", "a"), ("k2", "a")], width=2)
    assert con.execute("SELECT k FROM t").fetchall() == [("k9",)]


def test_rows_wider_than_sqlite_binds_are_refused():
    con = _table()
    con.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 2)
    with pytest.raises(ValueError, match="more than SQLite binds"):
        execute_rows(con, UPSERT, [("k", "f", b"")], width=3)


def test_a_statement_without_a_place_for_its_rows_is_refused():
    with pytest.raises(ValueError, match="no {values}"):
        execute_rows(_table(), "INSERT INTO t VALUES (?, ?, ?)", [("k", "f", b"")], width=3)


def test_a_busy_thread_of_the_process_does_not_hold_it_up():
    """executemany takes the GIL back after every row's step and waits for a busy thread to
    give it up each time (some 20,000 rows: tens of seconds); here it changes hands once a
    statement."""
    con = _table()
    done = threading.Event()

    def busy() -> None:
        while not done.is_set():
            sum(i * i for i in range(1_000))

    thread = threading.Thread(target=busy)
    thread.start()
    try:
        started = time.perf_counter()
        with con:
            execute_rows(con, UPSERT, _rows(20_000), width=3)
        elapsed = time.perf_counter() - started
    finally:
        done.set()
        thread.join()
    assert con.execute("SELECT count(*) FROM t").fetchone()[0] > 10_000
    assert elapsed < 8, f"{elapsed:.1f} s for 20,000 rows beside a busy thread"  # executemany: 21 s
