"""One "now" for every stage: windows, recency, "N minutes ago", TTLs and segment windows.

In production it is the machine's clock (`clock.mode: wall`). The demo world is frozen at
its end, so there the clock (`clock.mode: world`) starts at the world's end and moves
forward from the moment it is first read, at the speed `leadscore replay` sets (a replay
at speed 3600 runs an hour of the world per second). Every process reads the same small
file (`<data_dir>/live/clock.json`): an anchor (a world instant, the wall instant it was
true at, a speed), so all workers agree on "now" without talking to each other, and
changing the speed re-anchors at the current instant, so "now" never jumps.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from leadscore.config import Settings

CLOCK_FILE = "clock.json"


class Clock(Protocol):
    def now(self) -> datetime: ...


class WallClock:
    """The machine's clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True)
class Anchor:
    """`world` was the time at wall instant `wall`; since then the world moves `speed`
    times as fast as the wall clock."""

    world: datetime
    wall: datetime
    speed: float = 1.0

    def at(self, wall: datetime) -> datetime:
        return self.world + (wall - self.wall) * self.speed

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "world": self.world.isoformat(), "wall": self.wall.isoformat()})

    @classmethod
    def from_json(cls, text: str) -> Anchor:
        raw = json.loads(text)
        return cls(datetime.fromisoformat(raw["world"]), datetime.fromisoformat(raw["wall"]),
                   float(raw["speed"]))


class WorldClock:
    """The demo world's clock, shared through a file (re-read only when it changes)."""

    def __init__(self, path: Path, start: datetime) -> None:
        self.path = Path(path)
        self._start = start
        self._seen: tuple[tuple[int, int], Anchor] | None = None

    def now(self) -> datetime:
        return self.anchor().at(datetime.now(UTC))

    def anchor(self) -> Anchor:
        """The current anchor; the first read of a world with no clock file starts it at `start`."""
        try:
            status = self.path.stat()
            stamp = (status.st_ino, status.st_mtime_ns)  # a replaced file is a new inode
        except FileNotFoundError:
            self._write(Anchor(self._start, datetime.now(UTC)), replace=False)
            return self.anchor()
        if self._seen is None or self._seen[0] != stamp:
            self._seen = (stamp, Anchor.from_json(self.path.read_text()))
        return self._seen[1]

    def set_speed(self, speed: float) -> Anchor:
        """Move at `speed` from now on (0 pauses), re-anchored at the current instant: no jump."""
        wall = datetime.now(UTC)
        return self.place(self.anchor().at(wall), speed, wall)

    def place(self, world: datetime, speed: float = 1.0, wall: datetime | None = None) -> Anchor:
        """Set the clock to `world` (a new world, a test's fixed instant) moving at `speed`."""
        if speed < 0:
            raise ValueError(f"clock speed must be 0 (paused) or positive, got {speed}")
        anchor = Anchor(world, wall or datetime.now(UTC), speed)
        self._write(anchor, replace=True)
        return anchor

    def advance(self, delta: timedelta) -> Anchor:
        """Jump forward by `delta` (tests and a replay that skips idle nights); never back."""
        if delta < timedelta(0):
            raise ValueError("the clock never moves back")
        wall = datetime.now(UTC)
        current = self.anchor()
        anchor = Anchor(current.at(wall) + delta, wall, current.speed)
        self._write(anchor, replace=True)
        return anchor

    def _write(self, anchor: Anchor, replace: bool) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex}.tmp")
        tmp.write_text(anchor.to_json())
        if replace:
            os.replace(tmp, self.path)
            return
        try:  # two processes starting the clock at once: the first one wins
            os.link(tmp, self.path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()


def ago(seconds: float) -> str:
    """How long ago, as every page and reason says it: 'just now', '5 minutes ago', '3 hours
    ago', '2 days ago', '1 month ago' (whole units, rounded down), so that the portrait's "last
    touch" and a reason's "last touch" read the same for the same instant."""
    for size, unit in ((86_400 * 365, "year"), (86_400 * 30, "month"), (86_400, "day"), (3_600, "hour"),
                       (60, "minute")):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n > 1 else ''} ago"
    return "just now"


def world_end(settings: Settings) -> datetime:
    """The end of the synthetic world's observed window: midnight after `world.end_date`."""
    end = settings.world.end_date + timedelta(days=1)
    return datetime(end.year, end.month, end.day, tzinfo=UTC)


def open_clock(settings: Settings) -> WallClock | WorldClock:
    """The clock of `settings` (`clock.mode`)."""
    if settings.clock.mode == "wall":
        return WallClock()
    return WorldClock(settings.live_dir / CLOCK_FILE, world_end(settings))
