"""`leadscore bench marketing`: marketing's side of the service, against a running service.

- personalize: `GET /personalize` from the website on every page view, as `leadscore serve`
  runs it (`serving.workers` processes) on a view of the current world: cookies of known
  visitors (bound to a person by a form fill) and anonymous ones, three known to one
  anonymous; p50 and p99 at concurrency 1, requests/s at concurrency 16. Goal: p99 <= 10 ms.

Not built yet (issue "Marketing's side"): `funnel` (the lifecycle funnel and campaign ROI)
and `truth` (the planted contact-frequency effect and campaign won deals): null here.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from urllib.parse import quote

import duckdb

from leadscore.benchmarks.load import json_request, percentile, run_load
from leadscore.benchmarks.servers import bentoml_server
from leadscore.benchmarks.serving import SERVICE_TARGET, machine, world_view
from leadscore.config import Settings

WEB_KEY = "demo-web-key"
GOAL_P99_MS = 10.0
SEED = 11
KNOWN_COOKIES, ANONYMOUS_COOKIES = 600, 200
CONCURRENCY = 16
SINGLE_WARMUP, SINGLE_REQUESTS = 200, 2000
CONCURRENT_WARMUP_S, CONCURRENT_S = 2.0, 8.0


def cookies(settings: Settings) -> tuple[list[str], list[str]]:
    """(cookies the batch bound to a person, not shared computers', cookies of anonymous
    sessions only), sampled."""
    with duckdb.connect(str(settings.middle_db), read_only=True) as con:
        known = [c for c, in con.execute(
            "SELECT DISTINCT cookie_id FROM record WHERE cookie_id IS NOT NULL AND pid IS NOT NULL "
            "AND 'cookie_id:' || cookie_id NOT IN (SELECT key FROM shared_identifier) "
            "ORDER BY cookie_id").fetchall()]
        anonymous = [c for c, in con.execute(
            "SELECT DISTINCT cookie_id FROM interaction WHERE cookie_id IS NOT NULL AND pid IS NULL "
            "ORDER BY cookie_id").fetchall()]
    if not known:
        raise RuntimeError(f"no cookie bound to a person in {settings.middle_db}: run `leadscore pipeline`")
    rng = random.Random(SEED)
    return (rng.sample(known, min(KNOWN_COOKIES, len(known))),
            rng.sample(anonymous, min(ANONYMOUS_COOKIES, len(anonymous))))


def measure_personalize(settings: Settings, work_dir: Path) -> dict:
    known, anonymous = cookies(settings)
    mixed = known[: 3 * len(anonymous)] + anonymous
    random.Random(SEED + 1).shuffle(mixed)
    requests = [json_request("GET", f"/personalize?cookie_id={quote(cookie)}", key=WEB_KEY)
                for cookie in mixed]

    def make(i: int):
        return requests[i % len(requests)]

    world = world_view(settings.data_dir, work_dir / "world")
    with bentoml_server("service", SERVICE_TARGET, settings, world, work_dir) as server:
        single = run_load(server.url, make, 1, requests=SINGLE_REQUESTS, warmup_requests=SINGLE_WARMUP,
                          cpu_pids=server.pids)
        concurrent = run_load(server.url, make, CONCURRENCY, duration_s=CONCURRENT_S,
                              warmup_s=CONCURRENT_WARMUP_S, cpu_pids=server.pids)
    p99 = percentile(single.latencies_ms, 99)
    return {"p50_ms": round(percentile(single.latencies_ms, 50), 3), "p99_ms": round(p99, 3),
            "rps": round(concurrent.rps, 1), "concurrency": CONCURRENCY,
            "errors": single.errors + concurrent.errors,
            "cookies": {"known": len(known), "anonymous": len(anonymous)},
            "goal_p99_ms": GOAL_P99_MS,
            "meets_goal": p99 <= GOAL_P99_MS and not single.errors and not concurrent.errors,
            "details": {"single": single.summary(), "concurrent": concurrent.summary()}}


def run(settings: Settings, work_dir: Path) -> dict:
    """Every figure of `leadscore bench marketing` (see the module docstring); logs in `work_dir`."""
    work_dir.mkdir(parents=True, exist_ok=True)
    figures_machine = machine()
    return {"personalize": measure_personalize(settings, work_dir),
            "funnel": None, "truth": None,
            "not_built": ["funnel", "truth"],
            "machine": {**figures_machine, "load_average_at_end": [round(x, 2) for x in os.getloadavg()]}}
