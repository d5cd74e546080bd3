"""`leadscore bench segments`: how fast a live count answers, at the default world and at 10x.

Two segments (templates/example_*.yaml): the seed's example (three event conditions in an
OR) and ten conditions of every kind. Each count is timed end to end through the engine
(parse, compile, query), after warm-up runs, at the settings' world and at a world ten
times as large made in memory from it: every person, company, event, tag and score copied
under suffixed IDs, so the shape of the data stays the real one. Goals: p95 <= 200 ms at
the default world, <= 1 s at 10x.

When nothing was scored yet, the tier condition runs on stand-in scores (a hash of the
pid), so the timing still includes the join on the latest scores; `scores` says which.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from leadscore.config import Settings
from leadscore.duckdb_rows import one_row
from leadscore.segments.dsl import Segment, examples
from leadscore.segments.engine import SegmentEngine
from leadscore.segments.world import World, load_world

GOALS_P95_MS = {"default": 200.0, "x10": 1000.0}
COPIES = 10
WARMUP = 3
RUNS = 40
_KEYED = {"person": ["pid", "cid"], "company": ["cid", "eid"], "interaction": ["pid"],
          "person_tag": ["pid"], "latest_score": ["pid"]}
_ORDER = {"interaction": "ORDER BY event_type, event_time", "person_tag": "ORDER BY tag, pid"}


def replicate(world: World, copies: int) -> None:
    """Make the world `copies` times as large, in place, with IDs suffixed `-<copy>`."""
    for table, keys in _KEYED.items():
        replaced = ", ".join(f"{key} || '-' || copy AS {key}" for key in keys)
        world.con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * EXCLUDE (copy) REPLACE ({replaced}) "
                          f"FROM {table}, range({copies}) AS r(copy) {_ORDER.get(table, '')}")


def _stand_in_scores(world: World) -> World:
    """Scores for every person from a hash of the pid, for a world not scored yet."""
    world.con.execute("""
        INSERT INTO latest_score (pid, tier, score, probability, fit_score, interest_score, scored_at)
        SELECT pid, list_extract($1, (hash(pid) % len($1))::INTEGER + 1), hash(pid) % 100,
               (hash(pid) % 100) / 100, hash(pid || 'f') % 100, hash(pid || 'i') % 100, now()
        FROM person""", [list(world.tiers)])
    vocabulary = dataclasses.replace(world.vocabulary, scored=True)
    return dataclasses.replace(world, vocabulary=vocabulary)


def _timed(engine: SegmentEngine, segment: Segment) -> dict:
    """p50 / p95 of the count in ms, and the count itself."""
    for _ in range(WARMUP):
        result = engine.count(segment)
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        engine.count(segment)
        times.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": round(float(np.percentile(times, 50)), 2),
            "p95_ms": round(float(np.percentile(times, 95)), 2), "count": result["count"]}


def _size(world: World) -> dict:
    persons, = one_row(world.con, "SELECT count(*) FROM person")
    events, = one_row(world.con, "SELECT count(*) FROM interaction")
    return {"persons": persons, "identified_events": events}


def _measure(engine: SegmentEngine, segments: dict[str, Segment], scale: str, figures: dict) -> None:
    for name, segment in segments.items():
        timing = _timed(engine, segment)
        timing["meets_goal"] = timing["p95_ms"] <= GOALS_P95_MS[scale]
        figures[name][scale] = timing


def run_benchmark(settings: Settings) -> dict:
    """{seed_example: {default: {p50_ms, p95_ms, count, meets_goal}, x10: {...}},
    ten_conditions: {...}, goals, worlds, scores, runs}."""
    started = time.perf_counter()
    world = load_world(settings)
    load_s = time.perf_counter() - started
    scores = "latest scoring" if world.vocabulary.scored else "stand-in (no scores yet)"
    if not world.vocabulary.scored:
        world = _stand_in_scores(world)
    shipped = examples()
    segments = {"seed_example": shipped["seed"], "ten_conditions": shipped["ten_conditions"]}
    figures: dict = {name: {} for name in segments}
    engine = SegmentEngine(settings, world=dataclasses.replace(world, stamps=None))
    worlds = {"default": {**_size(world), "load_s": round(load_s, 2)}}
    _measure(engine, segments, "default", figures)
    started = time.perf_counter()
    replicate(world, COPIES)
    worlds["x10"] = {**_size(world), "replicate_s": round(time.perf_counter() - started, 2)}
    _measure(engine, segments, "x10", figures)
    return {**figures, "goals": {f"{scale}_p95_ms": goal for scale, goal in GOALS_P95_MS.items()},
            "worlds": worlds, "scores": scores, "runs": RUNS}
