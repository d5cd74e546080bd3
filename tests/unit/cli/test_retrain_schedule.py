"""`leadscore retrain --every`: the interval as written, and the schedule as it runs (a real
process): a run that cannot start is reported and the next one still comes; Ctrl-C stops it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import typer

from leadscore.cli.retrain import parse_every
from leadscore.local_servers import ctrl_c_at_default

LEADSCORE = str(Path(sys.executable).parent / "leadscore")


@pytest.mark.parametrize("text, expected", [
    ("7d", timedelta(days=7)), ("12h", timedelta(hours=12)), ("1d12h", timedelta(days=1, hours=12)),
    ("90s", timedelta(seconds=90)), ("1.5h", timedelta(minutes=90))])
def test_an_interval_is_days_hours_minutes_or_seconds(text, expected):
    assert parse_every(text) == expected


@pytest.mark.parametrize("text", ["7", "weekly", "7d x", "0d", "-1d"])
def test_anything_else_is_refused_naming_the_option(text):
    with pytest.raises(typer.BadParameter):
        parse_every(text)


def test_a_schedule_reports_a_run_that_cannot_start_goes_on_and_stops_on_ctrl_c(retrain_lock_holder,
                                                                                 tmp_path):
    # Ctrl-C heard as in a terminal, even where the suite itself was started with SIGINT ignored
    schedule = subprocess.Popen([LEADSCORE, "--data-dir", str(tmp_path), "retrain", "--every", "1s"],
                                stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_at_default)
    try:
        seen: list[str] = []
        deadline = time.monotonic() + 120
        while sum("another retrain is running" in line for line in seen) < 2 and time.monotonic() < deadline:
            seen.append(schedule.stderr.readline())
        schedule.send_signal(signal.SIGINT)
        rest = schedule.communicate(timeout=60)[1]
    finally:
        schedule.kill()
        schedule.wait()
    assert sum("another retrain is running" in line for line in seen) == 2
    assert schedule.returncode == 0 and "retrain schedule stopped" in rest
