"""`leadscore bench marketing`: marketing's side of the service, against a running service.

- personalize: `GET /personalize` from the website on every page view, as `leadscore serve`
  runs it (`serving.workers` processes) on a view of the current world: cookies of known
  visitors (bound to a person by a form fill) and anonymous ones, three known to one
  anonymous; p50 and p99 at concurrency 1, requests/s at concurrency 16. Goal: p99 <= 10 ms.

- truth.frequency_turning_point: the synthetic world's planted email frequency effect
  (data/truth/email_frequency.parquet: people with no product interest open less past two
  sends a week) against the turning points `leadscore marketing frequency` finds in the
  middle layer, in sends a month; `ok` when the one of people with no interest is found within
  one send a month and people interested in a product have none (their rate keeps rising).

Not built yet (issue "Marketing's side"): `funnel` (the lifecycle funnel and campaign ROI)
and `truth.campaign_won_deals`: null here.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from urllib.parse import quote

import duckdb
import pandas as pd

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
FREQUENCY_TOLERANCE = 1.0  # sends a month


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


def measure_frequency_truth(settings: Settings) -> dict:
    """Planted against recovered turning points, per interest group (sends a month)."""
    from leadscore.marketing.frequency import NOT_INTERESTED, frequency_table

    path = settings.truth_dir / "email_frequency.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"no planted frequency effect at {path}: run `leadscore synth`")
    planted = pd.read_parquet(path).set_index("interest")["turning_point_sends_per_month"]
    found = frequency_table(settings).groupby("interest")["turning_point"].first()
    groups = {}
    for group, value in planted.items():
        recovered = found.get(group)
        planted_value = None if pd.isna(value) else round(float(value), 2)
        recovered_value = None if recovered is None or pd.isna(recovered) else float(recovered)
        if planted_value is None or recovered_value is None:
            ok = planted_value is None and recovered_value is None
        else:
            ok = abs(recovered_value - planted_value) <= FREQUENCY_TOLERANCE
        groups[group] = {"planted": planted_value, "recovered": recovered_value, "ok": ok}
    return {**groups[NOT_INTERESTED], "by_interest": groups, "unit": "sends a month",
            "tolerance": FREQUENCY_TOLERANCE, "ok": all(g["ok"] for g in groups.values())}


def run(settings: Settings, work_dir: Path) -> dict:
    """Every figure of `leadscore bench marketing` (see the module docstring); logs in `work_dir`."""
    work_dir.mkdir(parents=True, exist_ok=True)
    figures_machine = machine()
    return {"personalize": measure_personalize(settings, work_dir),
            "funnel": None, "truth": {"frequency_turning_point": measure_frequency_truth(settings)},
            "not_built": ["funnel", "truth.campaign_won_deals"],
            "machine": {**figures_machine, "load_average_at_end": [round(x, 2) for x in os.getloadavg()]}}
