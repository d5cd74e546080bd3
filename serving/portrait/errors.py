"""What a portrait request can fail with, apart from the reader so the service can name them
without loading the reader (DuckDB, pandas)."""

from __future__ import annotations


class UnknownPerson(KeyError):
    """No person with this PID in the middle layer (the service answers 404)."""

    def __init__(self, pid: str):
        super().__init__(pid)
        self.pid = pid

    def __str__(self) -> str:
        return f"unknown pid {self.pid!r}: no such person in the middle layer"


class PortraitUnavailable(RuntimeError):
    """The middle layer cannot be read right now (missing, or locked by a writer): 503."""
