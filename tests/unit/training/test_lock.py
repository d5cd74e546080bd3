"""Two retrains never overlap: while one process holds the retrain lock, a second retrain (the
real command, in another process) fails at once naming the first; once the first is gone, the
lock is free again, whatever way it went."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from leadscore.training.lock import LOCK_FILE, AlreadyRunning, exclusive

LEADSCORE = str(Path(sys.executable).parent / "leadscore")


def test_a_second_retrain_fails_at_once_naming_the_first(retrain_lock_holder, tmp_path):
    holder = retrain_lock_holder
    start = time.monotonic()
    result = subprocess.run([LEADSCORE, "--data-dir", str(tmp_path), "retrain"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 1
    message = " ".join(result.stderr.split())
    assert "another retrain is running since" in message and f"pid {holder.pid}" in message
    assert not (tmp_path / "middle.duckdb").exists()  # it did nothing
    assert time.monotonic() - start < 60  # no waiting for the first (a command's start-up only)


def test_the_lock_is_free_again_once_its_holder_is_gone(retrain_lock_holder, tmp_path):
    holder = retrain_lock_holder
    with pytest.raises(AlreadyRunning, match=f"pid {holder.pid}"), exclusive(tmp_path / LOCK_FILE):
        pass
    holder.send_signal(signal.SIGKILL)  # a crashed retrain leaves no stale lock
    holder.wait()
    with exclusive(tmp_path / LOCK_FILE):
        assert f'"pid": {os.getpid()}' in (tmp_path / LOCK_FILE).read_text()


def test_two_retrains_in_one_process_exclude_each_other_too(tmp_path):
    with exclusive(tmp_path / LOCK_FILE), pytest.raises(AlreadyRunning, match="another retrain"):
        with exclusive(tmp_path / LOCK_FILE):
            pass
    with exclusive(tmp_path / LOCK_FILE):  # released after the block
        pass
