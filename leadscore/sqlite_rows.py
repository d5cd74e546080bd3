"""Many rows written to SQLite in few statements, for the writers that share a busy process.

Python's `sqlite3` releases the GIL around each statement's step and takes it back after it.
`executemany` steps once per row, and a thread taking the GIL back waits until the thread
holding it gives it up (up to the interpreter's 5 ms switch interval): beside one busy
Python thread, 60,000 upserts by `executemany` took 70 s instead of 0.13 s alone. A
service worker's feature update writes that many rows while its ingests run. `execute_rows`
binds the rows into statements of a multi-row VALUES clause, as many rows as SQLite binds
parameters for, so the GIL changes hands once per statement: the same upserts took 0.19 s
beside the busy thread (0.09 s alone). SQLite applies a statement's rows in order, so the
result is `executemany`'s, a key repeated within a batch included; a row that fails fails
its whole statement (every caller here then rolls its transaction back, as after
`executemany`'s failure).

The statements have a power of two of rows (512, 256, ... 1), so that each shape is parsed
once and then taken from the connection's statement cache: ten shapes of a statement, a few
MiB of prepared statements per connection (4,096 rows a statement held 9-13 MiB for one).
"""

from __future__ import annotations

import functools
import itertools
import sqlite3
from collections.abc import Iterable, Sequence

VALUES = "{values}"  # where a statement's rows go
MAX_ROWS = 512  # rows per statement at most (fewer when SQLite binds fewer parameters)


def execute_rows(con: sqlite3.Connection, statement: str, rows: Iterable[Sequence], width: int) -> None:
    """Run `statement` over `rows` (each `width` parameters, in order) as `executemany` would:
    the statement names its rows' place `{values}` (`INSERT INTO t (a, b) VALUES {values}`, or
    `... WHERE (a, b) IN (VALUES {values})`). Inside the caller's transaction, if any."""
    if VALUES not in statement:
        raise ValueError(f"the statement has no {VALUES} for its rows: {statement[:80]}")
    limit = min(MAX_ROWS, con.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width)
    if limit < 1:
        raise ValueError(f"rows of {width} parameters: more than SQLite binds in one statement")
    rows = iter(rows)
    while batch := list(itertools.islice(rows, _power_of_two(limit))):
        while batch:
            size = _power_of_two(len(batch))
            part, batch = batch[:size], batch[size:]
            con.execute(statement.replace(VALUES, _placeholders(width, size)),
                        list(itertools.chain.from_iterable(part)))


def _power_of_two(n: int) -> int:
    """The largest power of two not above `n` (n >= 1)."""
    return 1 << (n.bit_length() - 1)


@functools.cache
def _placeholders(width: int, rows: int) -> str:
    row = "(" + ", ".join("?" * width) + ")"
    return ", ".join(itertools.repeat(row, rows))
