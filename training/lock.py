"""One retraining at a time: an exclusive file lock under the data dir.

Two retrains at once would build the same features and register two challengers, each
overwriting the other's alias. The lock is `fcntl.flock` on a file that says who holds it
(pid, since when), taken without waiting: a second retrain fails at once and names the
first. The kernel releases it when its holder exits, however it exits, so a crashed retrain
never leaves a stale lock behind (the file stays; its words are only read while it is locked).
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

LOCK_FILE = "retrain.lock"


class AlreadyRunning(RuntimeError):
    """Another process holds the lock."""


def _holder(handle) -> str:
    handle.seek(0)
    try:
        holder = json.loads(handle.read() or "{}")
    except ValueError:
        holder = {}
    return f"since {holder.get('since', 'an unknown time')}, pid {holder.get('pid', 'unknown')}"


@contextmanager
def exclusive(path: Path, what: str = "retrain") -> Iterator[None]:
    """Hold the lock at `path` for the block; AlreadyRunning at once if another process holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT, 0o644), "r+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AlreadyRunning(f"another {what} is running {_holder(handle)} (lock: {path})") from None
        try:
            handle.seek(0)
            handle.truncate()
            since = datetime.now(UTC).isoformat(timespec="seconds")
            handle.write(json.dumps({"pid": os.getpid(), "since": since}))
            handle.flush()
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
