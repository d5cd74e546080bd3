"""The segment engine: live counts, previews and CSV exports of segments, and the store.

`SegmentEngine(settings)` loads the world into memory once (world.py); a request then
compiles its segment (compile.py) and runs one query, in milliseconds. Before each request
the engine compares the sources' modification times with those it loaded (a few `stat`
calls) and reloads when the middle layer, the tags or the scores changed, so "the latest
scoring" stays the latest without a restart; `refresh()` reloads on demand.

"Now" for relative windows ("the last 7 days") is the segment's `as_of` if it has one,
else the clock's now (leadscore/clock.py: the wall clock, or the demo world's, which starts
at its end); a world made in memory (benchmarks) keeps its own `as_of`. Records ingested
since the batch count at once: each request first appends the event log's new
interactions to the loaded world (world.LiveTail).

Previews and exports mask email and phone (access.masking) whoever asks; an export's text
cells that a spreadsheet would read as a formula are made text (a leading quote). An export
may leave out the members already at their contact frequency cap (`over_frequency_cap`: the
segment's own caps, marketing/frequency.py, counted on the same loaded world).
"""

from __future__ import annotations

import csv
import io
import logging
import threading
import time
from collections.abc import Collection, Iterator
from datetime import datetime
from typing import Any

import duckdb

from leadscore.access.masking import mask_record
from leadscore.clock import open_clock
from leadscore.config import Settings, load_yaml
from leadscore.marketing import frequency
from leadscore.segments.compile import MEMBER_COLUMNS, count_sql, members_sql
from leadscore.segments.dsl import Segment, parse_segment
from leadscore.segments.store import SegmentStore
from leadscore.segments.world import LiveTail, World, load_world, source_stamps

log = logging.getLogger(__name__)

UNSCORED = "unscored"
EXPORT_BATCH = 2000
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CAMPAIGN = "campaign_id"  # an email's campaign in the loaded world (a property column)


class SegmentEngine:
    """Counts, previews and exports segments of one world. `world`: an already loaded (or
    in-memory, e.g. benchmark) world to use instead of loading the settings' data."""

    def __init__(self, settings: Settings, world: World | None = None):
        self.settings = settings
        self.store = SegmentStore(settings.data_dir / "segments")
        self._lock = threading.Lock()
        self._world = world or load_world(settings)
        self.clock = open_clock(settings)
        event_types = list(load_yaml(settings.config_file("event_types.yaml"))["event_types"])
        self._tail = LiveTail(settings.live_dir / "events.db", event_types)

    def now(self, world: World) -> datetime:
        """The "now" of relative windows: the clock's, or an in-memory world's own."""
        return world.as_of if world.stamps is None else self.clock.now()

    def refresh(self) -> None:
        """Reload the world from the middle layer, tags and scores."""
        world = load_world(self.settings)
        with self._lock:
            self._world = world

    def world(self) -> World:
        """The current world, reloaded first if a source file changed since it was loaded."""
        world = self._world
        if world.stamps is None:
            return world
        if source_stamps(self.settings) != world.stamps:
            with self._lock:
                if self._world is world:  # not reloaded by another request meanwhile
                    self._reload(world)
                world = self._world
        with self._lock:
            self._tail.sync(world)
        return world

    def _reload(self, old: World) -> None:
        try:
            self._world = load_world(self.settings)
        except Exception as error:  # a source being rewritten: keep serving the old world
            log.warning("segments: reload failed (%s); keeping the world of %s", error, old.as_of)
            self._world = World(old.con, old.vocabulary, old.as_of, old.tiers, source_stamps(self.settings),
                                old.extract, old.live_seq)

    def vocabulary(self) -> dict:
        """Fields, event types, properties, tags, score fields and tiers, as JSON."""
        world = self.world()
        return {**world.vocabulary.describe(), "tiers": list(world.tiers),
                "as_of": self.now(world).isoformat()}

    def count(self, segment: Segment | dict) -> dict:
        """{count, by_tier (every tier and `unscored`), by_axes (members per cell of the score's
        fit x interest plane, 10 points a side: [fit cell, interest cell, members], scored members
        with both axes only), as_of, sql_ms}."""
        segment, world = parse_segment(segment), self.world()
        sql, params = count_sql(segment, world.vocabulary, self.now(world))
        started = time.perf_counter()
        with world.con.cursor() as cursor:
            rows = cursor.execute(sql, params).fetchall()
        sql_ms = (time.perf_counter() - started) * 1000
        by_tier = dict.fromkeys([*world.tiers, UNSCORED], 0)
        by_axes: dict[tuple[int, int], int] = {}
        for tier, fit, interest, members in rows:
            by_tier[tier or UNSCORED] = by_tier.get(tier or UNSCORED, 0) + members
            if fit is not None and interest is not None:  # a score of 100 joins the top cell
                cell = (min(fit, 9), min(interest, 9))
                by_axes[cell] = by_axes.get(cell, 0) + members
        return {"count": sum(by_tier.values()), "by_tier": by_tier,
                "by_axes": [[fit, interest, n] for (fit, interest), n in sorted(by_axes.items())],
                "as_of": (segment.as_of or self.now(world)).isoformat(), "sql_ms": round(sql_ms, 2)}

    def preview(self, segment: Segment | dict, limit: int = 20) -> list[dict]:
        """The first `limit` members (best score first), email and phone masked."""
        segment, world = parse_segment(segment), self.world()
        sql, params = members_sql(segment, world.vocabulary, self.now(world), limit)
        with world.con.cursor() as cursor:
            cursor.execute(sql, params)
            names = [d[0] for d in cursor.description]
            return [mask_record(dict(zip(names, row, strict=True))) for row in cursor.fetchall()]

    def export_csv(self, segment: Segment | dict, leave_out: Collection[str] = frozenset()) -> Iterator[str]:
        """Every member as CSV text (but those of `leave_out`), in chunks, email and phone
        masked. The segment is checked before the first chunk, so a bad one fails before
        anything is sent."""
        segment, world = parse_segment(segment), self.world()
        sql, params = members_sql(segment, world.vocabulary, self.now(world))
        cursor = world.con.cursor()
        cursor.execute(sql, params)
        return _csv_chunks(cursor, frozenset(leave_out))

    def member_pids(self, segment: Segment | dict) -> list[str]:
        segment, world = parse_segment(segment), self.world()
        sql, params = members_sql(segment, world.vocabulary, self.now(world))
        with world.con.cursor() as cursor:
            return [pid for pid, in cursor.execute(f"SELECT pid FROM ({sql})", params).fetchall()]

    def frequency_caps(self, segment: Segment | dict,
                       members: list[str] | None = None) -> dict[str, frequency.TurningPoint]:
        """The segment's turning points and caps per interest group (marketing/frequency.py:
        from its members' emails, else everyone's where its own are too few). `members`: the
        segment's, when known already."""
        world, config = self.world(), self.settings.marketing.frequency
        now = self.now(world)
        _, everyone = frequency.analyse(world.con, now, config, campaign=CAMPAIGN)
        members = self.member_pids(segment) if members is None else members
        return frequency.segment_caps(world.con, now, config, members, everyone, CAMPAIGN)

    def over_frequency_cap(self, segment: Segment | dict) -> set[str]:
        """The members already at or over their cap (marketing/frequency.py `over_cap`)."""
        world, members = self.world(), self.member_pids(segment)
        return frequency.over_cap(world.con, self.now(world), self.settings.marketing.frequency,
                                  members, self.frequency_caps(segment, members))

    def save(self, segment: Segment | dict, created_by: str | None = None) -> dict:
        """Store a segment after checking it compiles against the current vocabulary."""
        segment, world = parse_segment(segment), self.world()
        count_sql(segment, world.vocabulary, self.now(world))
        return self.store.save(segment, created_by)

    def saved(self, segment_id: str) -> dict[str, Any]:
        """A saved segment's record; KeyError when there is none."""
        return self.store.get(segment_id)


def _csv_chunks(cursor: duckdb.DuckDBPyConnection, leave_out: frozenset[str]) -> Iterator[str]:
    """The header, then the rows (but those of pids in `leave_out`) in batches; the cursor is
    closed when done or abandoned."""
    try:
        names = list(MEMBER_COLUMNS)
        pid = names.index("pid")
        yield _csv_text([names])
        while rows := cursor.fetchmany(EXPORT_BATCH):
            yield _csv_text([list(mask_record(dict(zip(names, row, strict=True))).values())
                             for row in rows if row[pid] not in leave_out])
    finally:
        cursor.close()


def _csv_text(rows: list[list]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([[_inert(cell) for cell in row] for row in rows])
    return buffer.getvalue()


def _inert(cell: object) -> object:
    """A text cell a spreadsheet would run as a formula (it starts with = + - @, a tab or a
    carriage return: OWASP's CSV injection rule) with a quote before it, which makes it text."""
    if isinstance(cell, str) and cell.startswith(FORMULA_STARTS):
        return "'" + cell
    return cell
