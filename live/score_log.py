"""The score log: every score the service returned or computed on ingest, as it was served.

What sales and the CRM actually saw (not today's model re-scoring the past): the portrait's
history and the monitoring read it. A challenger's scores in shadow are logged beside them
(trigger `shadow`, the challenger's model version): never served, so the portrait and the
digest leave them out, while monitoring compares them with the champion's by model version.
One SQLite file per day (`<live_dir>/scores/<YYYY-MM-DD>.db`, the day of the clock), in WAL
mode so that every worker appends to it at once and readers never wait; a day is a partition
that can be archived or dropped whole. `reasons` is JSON: the reasons up and down, and the
score's fit and interest axes where the model tells them (so the portrait draws the lead's path
across the fit x interest chart from what was served).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

import pandas as pd

from leadscore.sqlite_rows import VALUES, execute_rows

SCHEMA = """
CREATE TABLE IF NOT EXISTS score (
    at TEXT NOT NULL, pid TEXT NOT NULL, model_version TEXT NOT NULL, probability REAL NOT NULL,
    score REAL NOT NULL, tier TEXT NOT NULL, reasons TEXT NOT NULL, feature_timestamp TEXT,
    trigger TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS score_pid ON score (pid, at);
"""
SHADOW = "shadow"  # the trigger of a challenger's score, logged and never served
INGEST = "ingest"  # the trigger of a score served because a record of the person arrived
COLUMNS = ["at", "pid", "model_version", "probability", "score", "tier", "reasons",
           "feature_timestamp", "trigger"]


class ScoreLog:
    """Appends and reads the day files of `folder`: one connection per thread to the day
    being written; reads open and close theirs."""

    def __init__(self, folder: Path, busy_timeout_s: float = 30) -> None:
        self.folder = Path(folder)
        self.busy_timeout_s = busy_timeout_s
        self._local = threading.local()

    def _open(self, day: str) -> sqlite3.Connection:
        self.folder.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.folder / f"{day}.db", timeout=self.busy_timeout_s,
                              isolation_level=None, check_same_thread=False)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")  # in WAL: durable across a process crash
        con.executescript(SCHEMA)
        return con

    def _writer(self, day: str) -> sqlite3.Connection:
        """This thread's connection to the day being written (the previous day's is closed)."""
        current = getattr(self._local, "writer", None)
        if current is None or current[0] != day:
            if current is not None:
                current[1].close()
            self._local.writer = (day, self._open(day))
        return self._local.writer[1]

    def append(self, scores: Iterable[dict], at: datetime, trigger: str) -> int:
        """Log scores (the scorer's records) served at `at`; `trigger`: score, score_batch,
        ingest or portrait, or `shadow` for a challenger's scores of the same rows. One
        transaction: a batch's rows in autocommit would be one each (4x the time of one
        transaction for 1,000 rows)."""
        rows = _rows(scores, at, trigger)
        self._write(at.date().isoformat(), rows)
        return len(rows)

    def append_each(self, scores: Sequence[dict], ats: Sequence[datetime], triggers: Sequence[str]) -> int:
        """Log scores each served at its own instant by its own trigger (`ats` and `triggers`,
        one per score): what several calls served, or a challenger's shadow scores of them,
        in one transaction per day file."""
        by_day: dict[str, list[tuple]] = {}
        for score, at, trigger in zip(scores, ats, triggers, strict=True):
            by_day.setdefault(at.date().isoformat(), []).extend(_rows([score], at, trigger))
        for day, rows in by_day.items():
            self._write(day, rows)
        return sum(map(len, by_day.values()))

    def _write(self, day: str, rows: list[tuple]) -> None:
        insert = f"INSERT INTO score VALUES {VALUES}"
        if len(rows) == 1:
            execute_rows(self._writer(day), insert, rows, width=len(COLUMNS))
        elif rows:
            con = self._writer(day)
            con.execute("BEGIN IMMEDIATE")
            try:
                execute_rows(con, insert, rows, width=len(COLUMNS))
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

    def days(self) -> list[str]:
        return sorted(path.stem for path in self.folder.glob("*.db"))

    def read(self, pids: list[str] | None = None, since: datetime | None = None,
             shadow: bool = True) -> pd.DataFrame:
        """Logged scores (of these people, from this instant on; without `shadow`, only those
        served), oldest first."""
        frames = []
        for day in self.days():
            if since is not None and day < since.date().isoformat():
                continue
            where, params = [], []
            if pids is not None:
                where.append(f"pid IN ({','.join('?' * len(pids))})")
                params += pids
            if since is not None:
                where.append("at >= ?")
                params.append(since.isoformat())
            if not shadow:
                where.append("trigger != ?")
                params.append(SHADOW)
            sql = "SELECT * FROM score" + (f" WHERE {' AND '.join(where)}" if where else "")
            con = self._open(day)
            try:
                day_rows = pd.read_sql_query(sql, con, params=params)
            finally:
                con.close()
            if not day_rows.empty:  # pandas warns of concatenating empty frames
                frames.append(day_rows)
        frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
        frame["at"] = pd.to_datetime(frame["at"], utc=True, format="ISO8601")
        return frame.sort_values("at", kind="stable").reset_index(drop=True)


def _rows(scores: Iterable[dict], at: datetime, trigger: str) -> list[tuple]:
    """The log's rows of scores with a pid (the scorer's records)."""
    return [(at.isoformat(), s["pid"], s["model_version"], s["probability"], s["score"], s["tier"],
             json.dumps({"up": s["reasons_up"], "down": s["reasons_down"],
                         "fit": s.get("fit"), "interest": s.get("interest")}),
             s.get("feature_timestamp"), trigger)
            for s in scores if s.get("pid") is not None]
