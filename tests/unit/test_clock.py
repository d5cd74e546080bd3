"""The clock: the world's clock starts at the world's end, moves, changes speed without a jump."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from leadscore.clock import WallClock, WorldClock, open_clock, world_end

START = datetime(2026, 11, 1, tzinfo=UTC)


def test_the_world_clock_starts_at_the_worlds_end_and_moves(tmp_path):
    clock = WorldClock(tmp_path / "clock.json", START)
    first = clock.now()
    assert START <= first < START + timedelta(seconds=5)
    time.sleep(0.05)
    assert clock.now() > first


def test_every_process_reads_the_same_clock(tmp_path):
    a = WorldClock(tmp_path / "clock.json", START)
    a.now()
    b = WorldClock(tmp_path / "clock.json", START + timedelta(days=99))  # a later start is ignored
    assert abs(b.now() - a.now()) < timedelta(seconds=1)
    a.set_speed(3600)
    time.sleep(0.1)
    assert b.now() - START > timedelta(minutes=5)  # b sees a's speed


def test_a_new_speed_never_makes_the_clock_jump(tmp_path):
    clock = WorldClock(tmp_path / "clock.json", START)
    clock.advance(timedelta(days=2))
    before = clock.now()
    clock.set_speed(86_400)
    after = clock.now()
    assert timedelta(0) <= after - before < timedelta(hours=1)
    with pytest.raises(ValueError, match="never moves back"):
        clock.advance(timedelta(seconds=-1))
    with pytest.raises(ValueError, match="positive"):
        clock.set_speed(-1)
    paused = clock.set_speed(0)
    time.sleep(0.02)
    assert clock.now() == paused.world


def test_modes_come_from_the_settings(settings, tmp_path):
    local = settings.with_data_dir(tmp_path)
    assert isinstance(open_clock(local), WorldClock)
    assert world_end(local) == datetime(2026, 11, 1, tzinfo=UTC)
    wall = local.model_copy(update={"clock": local.clock.model_copy(update={"mode": "wall"})})
    assert abs(open_clock(wall).now() - WallClock().now()) < timedelta(seconds=1)
