"""`leadscore bench marketing`: marketing's side of the service, against a running service.

- personalize: `GET /personalize` from the website on every page view, as `leadscore serve`
  runs it (`serving.workers` processes) on a view of the current world: cookies of known
  visitors (bound to a person by a form fill) and anonymous ones, three known to one
  anonymous; p50 and p99 at concurrency 1, requests/s at concurrency 16. Goal: p99 <= 10 ms.
- funnel: seconds to compute every funnel table (by campaign, channel, campaign type, demand
  tag, tier x month) and the campaign ROI table (attribution included) from the middle layer,
  on the default world (`default_s`) and on a world ten times larger (`x10_s`). The 10x world is
  the middle layer's people, interactions, campaign touches, opportunities and scores copied
  ten times with new ids (`<id>~<k>`) into a DuckDB file of its own (same campaigns, ten times
  their reach): what the analyses read, at ten times the rows, without a 10x identity run.
  Goals: 2 s and 15 s. Each is timed in wall seconds and in CPU seconds of this process (user
  + system, DuckDB's threads included: `default_cpu_s`, `x10_cpu_s`): other work on the
  machine stretches the first, hardly the second.
- truth: campaign-level won deals by first touch against the synthetic world's hidden truth,
  raw and restricted to what was observable, and the planted email frequency turning point
  (benchmarks/marketing_truth.py).
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from urllib.parse import quote

import duckdb
import pandas as pd

from leadscore.benchmarks.load import json_request, percentile, run_load
from leadscore.benchmarks.marketing_truth import measure_truth
from leadscore.benchmarks.servers import bentoml_server
from leadscore.benchmarks.serving import SERVICE_TARGET, machine, world_view
from leadscore.config import Settings
from leadscore.marketing.funnel import funnel_table, prepare, roi_table
from leadscore.marketing.inputs import connect, read_dispositions, read_scores, register_frames

WEB_KEY = "demo-web-key"
GOAL_P99_MS = 10.0
SEED = 11
KNOWN_COOKIES, ANONYMOUS_COOKIES = 600, 200
CONCURRENCY = 16
SINGLE_WARMUP, SINGLE_REQUESTS = 200, 2000
CONCURRENT_WARMUP_S, CONCURRENT_S = 2.0, 8.0
GOAL_FUNNEL_S, GOAL_FUNNEL_X10_S = 2.0, 15.0
FUNNEL_VIEWS = ("campaign", "channel", "campaign_type", "demand_tag", ("tier", "month"))
COPIES = 10
# the tables the analyses read, copied COPIES times: (table, id columns given a suffix)
REPLICATED = {"person": ("pid", "cid"), "interaction": ("lid", "pid", "cid", "cookie_id"),
              "campaign_touch": ("lid", "pid", "cid", "cookie_id"),
              "outcome": ("opportunity_id", "pid", "cid"),
              "person_demand_tag": ("pid",), "campaign_invitation": ("pid", "email")}


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


def all_tables(con: duckdb.DuckDBPyConnection, mql_threshold: float) -> dict[str, pd.DataFrame]:
    """Every funnel view and the ROI table, as the dashboard and `leadscore marketing` compute them."""
    prepare(con, mql_threshold)
    tables = {"+".join([view] if isinstance(view, str) else view): funnel_table(con, view)
              for view in FUNNEL_VIEWS}
    return {**tables, "roi": roi_table(con)}


def timed_tables(open_con, mql_threshold: float) -> tuple[float, float, dict[str, pd.DataFrame]]:
    """(wall seconds, CPU seconds of the process) from opening the connection to the last
    table, and the tables."""
    started, cpu = time.perf_counter(), time.process_time()
    with open_con() as con:
        tables = all_tables(con, mql_threshold)
    return time.perf_counter() - started, time.process_time() - cpu, tables


def replicate_middle(settings: Settings, target: Path) -> None:
    """The middle layer's analysed tables COPIES times with new ids (see the docstring)."""
    target.unlink(missing_ok=True)
    with duckdb.connect(str(target)) as con:
        con.execute(f"ATTACH '{settings.middle_db}' AS m (READ_ONLY)")
        con.execute("CREATE TABLE campaign AS SELECT * FROM m.campaign")
        for table, ids in REPLICATED.items():
            columns = [c for c, in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_catalog = 'm' "
                "AND table_name = $1 ORDER BY ordinal_position", [table]).fetchall()]
            select = ", ".join(f"{c} || '~' || k AS {c}" if c in ids else c for c in columns)
            con.execute(f"CREATE TABLE {table} AS SELECT {select} FROM m.{table}, range({COPIES}) r(k)")
        con.execute("DETACH m")


def replicated_frames(settings: Settings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The scores and dispositions, COPIES times with the same new pids."""
    scores, judged = read_scores(settings), read_dispositions(settings)
    copy = lambda frame: pd.concat([frame.assign(pid=frame["pid"] + f"~{k}") for k in range(COPIES)],  # noqa: E731
                                   ignore_index=True)
    return copy(scores), copy(judged)


def measure_funnel(settings: Settings, work_dir: Path) -> dict:
    threshold = settings.serving.webhook.mql_threshold
    default_s, default_cpu_s, tables = timed_tables(lambda: connect(settings), threshold)
    x10_db = work_dir / "middle_x10.duckdb"
    started = time.perf_counter()
    replicate_middle(settings, x10_db)
    scores, judged = replicated_frames(settings)
    x10_scores = work_dir / "score_history_x10.parquet"
    scores.to_parquet(x10_scores, index=False)  # read by DuckDB, as the batch history is
    build_s = time.perf_counter() - started

    def open_x10() -> duckdb.DuckDBPyConnection:
        con = duckdb.connect(str(x10_db), read_only=True)
        register_frames(con, scores.head(0), judged, x10_scores)
        return con

    x10_s, x10_cpu_s, tables_x10 = timed_tables(open_x10, threshold)
    leads = int(tables["channel"]["lead"].sum())
    return {"default_s": round(default_s, 3), "x10_s": round(x10_s, 3),
            "default_cpu_s": round(default_cpu_s, 3), "x10_cpu_s": round(x10_cpu_s, 3),
            "goal_default_s": GOAL_FUNNEL_S, "goal_x10_s": GOAL_FUNNEL_X10_S,
            "meets_goal": default_s <= GOAL_FUNNEL_S and x10_s <= GOAL_FUNNEL_X10_S,
            "leads": leads, "leads_x10": int(tables_x10["channel"]["lead"].sum()),
            "campaigns": len(tables["roi"]), "x10_build_s": round(build_s, 1),
            "x10_how": "middle layer rows copied 10x with new ids (same campaigns); scores and "
                       "dispositions likewise"}


PARTS = ("personalize", "funnel", "truth")


def run(settings: Settings, work_dir: Path, parts: tuple[str, ...] = PARTS) -> dict:
    """Every figure of `leadscore bench marketing` (see the module docstring); logs in `work_dir`."""
    work_dir.mkdir(parents=True, exist_ok=True)
    figures_machine = machine()
    return {"personalize": measure_personalize(settings, work_dir) if "personalize" in parts else None,
            "funnel": measure_funnel(settings, work_dir) if "funnel" in parts else None,
            "truth": measure_truth(settings) if "truth" in parts else None,
            "machine": {**figures_machine, "load_average_at_end": [round(x, 2) for x in os.getloadavg()]}}
