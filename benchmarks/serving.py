"""`leadscore bench serving`: the live service under load, side by side with a bare BentoML endpoint.

Each server is started as a real `bentoml serve` process (one worker, the same settings) in
the same run (servers.py), and driven by the same asyncio load generator (load.py: aiohttp,
keep-alive connections, uvloop when installed) running in this process, on the same machine. Both are
up at once and measured one at a time, in two rounds that alternate which goes first; the
figures pool the rounds. Warm-up requests are discarded. The servers' CPU time per request
is recorded too: it depends less than latency on what else the machine is doing.

- score_single: `POST /score` by PID (online features, reasons) at concurrency 1, against
  the reference (reference_service.py, a constant with the same request). Goals: p50 <= 5 ms,
  p99 <= 15 ms, and p50 at most twice the reference's (`ratio`);
- score_concurrent: the same at concurrency 16 for a fixed duration; goal: requests/s >= 50%
  of the reference's, with no errors (non-2xx answers or failed requests);
- portrait: `GET /portrait/{pid}` (JSON) as the admin, at concurrency 1;
- batch: in process, no server. `rows_per_s` is the whole `Scorer.score_records` (encode,
  FastTreeShap, probabilities, scores, tiers and the JSON-ready records with reasons) from
  feature columns; `baseline_rows_per_s` is LightGBM's own TreeSHAP on the same rows
  (`booster.predict(matrix, pred_contrib=True)`, what SHAP's TreeExplainer calls), the
  explanation alone, on the already encoded matrix. Goal: ratio >= 3. `contributions_rows_per_s`
  is FastTreeShap alone on the same matrix, `max_abs_diff` its largest difference from
  pred_contrib. `http_score_batch` is `/score_batch` with 1000 PIDs a call, over HTTP.

The service runs as `leadscore serve` runs it, with `serving.workers` processes (2: one per
core), and once more with a single worker for comparison (`score_concurrent.one_worker`); the
reference is a bare endpoint with BentoML's default single worker, as the issue defines it.

BentoML's per-request access log is disabled on both servers the same way
(`BENTOML_CONFIG_OVERRIDES`, services.logging.access.enabled: false): it is a log line per
request written by the serving process, not part of scoring. Prometheus metrics stay on.

The servers read the world through `<work_dir>/world`, symlinks to the entries of the data
directory, so that what the service writes (the audit log of portraits, the webhook outbox)
lands under `work_dir` and not in the data directory.
"""


from __future__ import annotations

import json
import os
import platform
import random
import shutil
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from leadscore.benchmarks.load import LoadResult, Request, json_request, percentile, pooled, run_load
from leadscore.benchmarks.servers import Server, bentoml_server
from leadscore.config import Settings
from leadscore.serving import OVERRIDES_ENV_VAR, bentoml_overrides

SERVICE_TARGET = "leadscore.serving.service:LeadScoring"
REFERENCE_TARGET = "leadscore.benchmarks.reference_service:Reference"
CRM_KEY = "demo-crm-key"
ADMIN_KEY = "demo-admin-key"

GOAL_P50_MS = 5.0
GOAL_P99_MS = 15.0
GOAL_LATENCY_RATIO = 2.0  # p50 at concurrency 1, over the reference's
GOAL_CONCURRENT_RATIO = 0.5
GOAL_BATCH_RATIO = 3.0

SEED = 6
SAMPLE_PIDS = 400
CONCURRENCY = 16
SINGLE_WARMUP, SINGLE_REQUESTS = 200, 2000  # 2000 in all, split over the rounds
CONCURRENT_WARMUP_S, CONCURRENT_S = 2.0, 10.0  # 10 s in all, split over the rounds
ROUNDS = 2
PORTRAIT_WARMUP, PORTRAIT_REQUESTS = 20, 300
HTTP_BATCH_SIZE, HTTP_BATCH_WARMUP, HTTP_BATCH_CALLS = 1000, 2, 10
BATCH_ROWS = 20_000
BATCH_REPEATS = 3
BATCH_READ_CHUNK = 2000
_NOT_IN_WORLD_VIEW = {"bench", "serving", "segments"}
BATCH_MEASURED = ("rows_per_s: Scorer.score_records from feature columns (encode, FastTreeShap, "
                  "probability, score, tier, responses with reasons); baseline_rows_per_s: "
                  "booster.predict(matrix, pred_contrib=True) on the encoded matrix alone; "
                  "contributions_rows_per_s: FastTreeShap.contributions on the same matrix; "
                  f"best of {BATCH_REPEATS}, all threads")


# ---- the world the servers read -------------------------------------------------------------


def world_view(data_dir: Path, target: Path) -> Path:
    """`target` with a symlink to every entry of `data_dir` (but bench output and service state)."""
    target.mkdir(parents=True, exist_ok=True)
    for entry in target.iterdir():
        if entry.is_symlink():
            entry.unlink()
    for entry in sorted(data_dir.iterdir()):
        if entry.name not in _NOT_IN_WORLD_VIEW:
            if (target / entry.name).is_dir():  # what an earlier run's service wrote (its live/)
                shutil.rmtree(target / entry.name)
            (target / entry.name).symlink_to(entry.resolve())
    return target


def online_pids(settings: Settings) -> list[str]:
    """Every PID with fit features (all of them are materialised online), sorted."""
    import duckdb

    path = settings.feature_data_dir / "person_fit.parquet" / "*.parquet"
    with duckdb.connect() as con:
        return [pid for pid, in con.execute(f"SELECT DISTINCT pid FROM read_parquet('{path}') ORDER BY pid")
                .fetchall()]


# ---- the measurements -----------------------------------------------------------------------


def _score_request(pids: Sequence[str]) -> Callable[[int], Request]:
    requests = [json_request("POST", "/score", {"pid": pid}, CRM_KEY) for pid in pids]
    return lambda i: requests[i % len(requests)]


def _measure_scoring(servers: dict[str, Server], pids: Sequence[str],
                     rounds: int = ROUNDS) -> dict[str, dict[str, LoadResult]]:
    """/score at concurrency 1 then 16 on every server, in rounds that alternate the order
    (reference first, then service first, ...) so that a slow spell of the machine is shared."""
    make = _score_request(pids)
    runs: dict[str, dict[str, list[LoadResult]]] = {name: {"single": [], "concurrent": []}
                                                    for name in servers}
    for round_ in range(rounds):
        order = list(servers) if round_ % 2 == 0 else list(reversed(servers))
        for name in order:
            server = servers[name]
            runs[name]["single"].append(run_load(server.url, make, 1, requests=SINGLE_REQUESTS // rounds,
                                                 warmup_requests=SINGLE_WARMUP, cpu_pids=server.pids))
        for name in order:
            server = servers[name]
            runs[name]["concurrent"].append(run_load(server.url, make, CONCURRENCY,
                                                     duration_s=CONCURRENT_S / rounds,
                                                     warmup_s=CONCURRENT_WARMUP_S, cpu_pids=server.pids))
    return {name: {kind: pooled(results) for kind, results in kinds.items()} for name, kinds in runs.items()}


def _measure_one_worker(settings: Settings, world: Path, work_dir: Path, pids: Sequence[str]) -> LoadResult:
    """/score at concurrency 16 on the service with a single worker process, for comparison."""
    with bentoml_server("service-1-worker", SERVICE_TARGET, settings, world, work_dir,
                        workers=1) as server:
        return run_load(server.url, _score_request(pids), CONCURRENCY, duration_s=CONCURRENT_S / ROUNDS,
                        warmup_s=CONCURRENT_WARMUP_S, cpu_pids=server.pids)


def _measure_portrait(server: Server, pids: Sequence[str]) -> LoadResult:
    requests = [json_request("GET", f"/portrait/{pid}", key=ADMIN_KEY) for pid in pids]
    return run_load(server.url, lambda i: requests[i % len(requests)], 1, requests=PORTRAIT_REQUESTS,
                    warmup_requests=PORTRAIT_WARMUP, cpu_pids=server.pids)


def _measure_http_batch(server: Server, pids: Sequence[str]) -> dict:
    rng = random.Random(SEED + 1)
    bodies = [json_request("POST", "/score_batch", {"items": [{"pid": pid} for pid in
                                                              rng.sample(list(pids), HTTP_BATCH_SIZE)]},
                           CRM_KEY) for _ in range(4)]
    result = run_load(server.url, lambda i: bodies[i % len(bodies)], 1, requests=HTTP_BATCH_CALLS,
                      warmup_requests=HTTP_BATCH_WARMUP, timeout_s=120, cpu_pids=server.pids)
    return {"rows_per_s": round(result.rps * HTTP_BATCH_SIZE, 1), "calls": result.requests,
            "rows_per_call": HTTP_BATCH_SIZE, "errors": result.errors,
            "p50_ms": round(percentile(result.latencies_ms, 50), 2)}


def _best_seconds(function: Callable[[], object], repeats: int = BATCH_REPEATS) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    return best


def _tree_depth(node: dict) -> int:
    if "split_index" not in node:  # a leaf
        return 0
    return 1 + max(_tree_depth(node["left_child"]), _tree_depth(node["right_child"]))


def model_shape(booster) -> dict:
    trees = booster.dump_model()["tree_info"]
    depth = max((_tree_depth(tree["tree_structure"]) for tree in trees), default=0)
    return {"trees": len(trees), "max_depth": depth,
            "num_leaves": max((t["num_leaves"] for t in trees), default=0),
            "features": booster.num_feature()}


def _feature_columns(settings: Settings, names: Sequence[str], pids: Sequence[str],
                     rows: int) -> tuple[list[str], dict[str, list], int]:
    """`rows` rows of online features of the first `rows` of `pids` (those known online,
    repeated when fewer): their PIDs, their columns, and how many distinct PIDs they are."""
    from leadscore.features.store import OnlineFeatures, open_store

    online = OnlineFeatures(open_store(settings))
    known_pids: list[str] = []
    columns: dict[str, list] = {name: [] for name in names}
    wanted = list(pids[:rows])
    for start in range(0, len(wanted), BATCH_READ_CHUNK):
        read = online.read_rows(wanted[start:start + BATCH_READ_CHUNK])
        keep = [i for i, known in enumerate(read.known) if known]
        known_pids += [read.pids[i] for i in keep]
        for name in names:
            values = read.columns[name]
            columns[name] += [values[i] for i in keep]
    if not known_pids:
        raise RuntimeError("no PID has online features: run `leadscore features materialize`")
    copies = -(-rows // len(known_pids))
    repeated = {name: (values * copies)[:rows] for name, values in columns.items()}
    return (known_pids * copies)[:rows], repeated, len(known_pids)


def measure_batch(settings: Settings, pids: Sequence[str], rows: int = BATCH_ROWS) -> dict:
    """Scoring with reasons in process against LightGBM's pred_contrib on the same rows."""
    from leadscore.serving.champion import ChampionWatcher
    from leadscore.serving.scorer import _LightGBMPath

    scorer = ChampionWatcher(settings).current
    path = scorer.path  # the fast path's (`scorer.fast_path`)
    if not isinstance(path, _LightGBMPath):
        raise RuntimeError(f"the champion is a {scorer.kind}, not LightGBM: no TreeSHAP to compare")
    batch_pids, columns, distinct = _feature_columns(settings, scorer.feature_names, pids, rows)
    shap = path.shap
    matrix, _ = path.encode(columns, rows)
    scorer.score_records(batch_pids[:1000], {name: values[:1000] for name, values in columns.items()})
    shap.booster.predict(matrix[:1000], pred_contrib=True)  # both warmed up (the numba kernel compiled)

    diff = float(np.max(np.abs(shap.contributions(matrix) - shap.booster.predict(matrix, pred_contrib=True))))
    full_s = _best_seconds(lambda: scorer.score_records(batch_pids, columns))
    contrib_s = _best_seconds(lambda: shap.contributions(matrix))
    baseline_s = _best_seconds(lambda: shap.booster.predict(matrix, pred_contrib=True))
    return {
        "rows": rows, "distinct_pids": distinct,
        "rows_per_s": round(rows / full_s, 1),
        "baseline_rows_per_s": round(rows / baseline_s, 1),
        "ratio": round(baseline_s / full_s, 3),
        "contributions_rows_per_s": round(rows / contrib_s, 1),
        "contributions_ratio": round(baseline_s / contrib_s, 3),
        "max_abs_diff": diff,
        "max_abs_diff_text": f"{diff:.2e}",  # survives rounding to a few decimals when printed
        "goal_ratio": GOAL_BATCH_RATIO, "meets_goal": baseline_s / full_s >= GOAL_BATCH_RATIO,
        "contributions_meet_goal": baseline_s / contrib_s >= GOAL_BATCH_RATIO,
        "model": model_shape(shap.booster), "model_version": scorer.version,
        "measured": BATCH_MEASURED,
    }


def machine() -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:  # pragma: no cover
        pass
    return {"cpu_count": os.cpu_count(), "cpus_usable": len(os.sched_getaffinity(0)), "cpu_model": model,
            "python": platform.python_version(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}


def _under_load(settings: Settings, world: Path, work_dir: Path, sample: Sequence[str],
                everyone: Sequence[str]) -> dict:
    """The reference and the service up at once (one idles while the other is measured, so
    the rounds can alternate): /score, portraits and /score_batch; then the service alone
    with one worker when it has more."""
    with ExitStack() as servers:
        reference = servers.enter_context(bentoml_server("reference", REFERENCE_TARGET, settings, world,
                                                         work_dir))
        service = servers.enter_context(bentoml_server("service", SERVICE_TARGET, settings, world, work_dir,
                                                       workers=settings.serving.workers))
        measured: dict[str, Any] = {
            "scoring": _measure_scoring({"reference": reference, "service": service}, sample),
            "portrait": _measure_portrait(service, sample),
            "http_batch": _measure_http_batch(service, everyone),
            "workers": {"reference": len(reference.workers), "service": len(service.workers)}}
    more = measured["workers"]["service"] > 1
    measured["one_worker"] = _measure_one_worker(settings, world, work_dir, sample) if more else None
    return measured


def _single_figures(single: LoadResult, reference: LoadResult) -> dict:
    p50, p99 = percentile(single.latencies_ms, 50), percentile(single.latencies_ms, 99)
    reference_p50 = percentile(reference.latencies_ms, 50)
    ratio = p50 / reference_p50
    return {
        "p50_ms": round(p50, 3), "p99_ms": round(p99, 3),
        "reference_p50_ms": round(reference_p50, 3),
        "reference_p99_ms": round(percentile(reference.latencies_ms, 99), 3),
        "ratio": round(ratio, 3),
        "requests": single.requests, "errors": single.errors,
        "server_cpu_ms_per_request": single.server_cpu_ms,
        "reference_server_cpu_ms_per_request": reference.server_cpu_ms,
        "goal_p50_ms": GOAL_P50_MS, "goal_p99_ms": GOAL_P99_MS, "goal_ratio": GOAL_LATENCY_RATIO,
        "meets_goal": (p50 <= GOAL_P50_MS and p99 <= GOAL_P99_MS and ratio <= GOAL_LATENCY_RATIO
                       and single.errors == 0),
    }


def _one_worker_figures(one_worker: LoadResult | None, reference: LoadResult) -> dict | None:
    if one_worker is None:
        return None
    return {"rps": round(one_worker.rps, 1), "ratio": round(one_worker.rps / reference.rps, 3),
            "server_cpu_ms_per_request": one_worker.server_cpu_ms,
            "errors": one_worker.errors + one_worker.warmup_errors}


def _concurrent_figures(concurrent: LoadResult, reference: LoadResult, one_worker: LoadResult | None,
                        workers: dict[str, int]) -> dict:
    ratio = concurrent.rps / reference.rps
    errors = concurrent.errors + concurrent.warmup_errors
    return {
        "concurrency": CONCURRENCY, "rps": round(concurrent.rps, 1),
        "reference_rps": round(reference.rps, 1), "ratio": round(ratio, 3),
        "p50_ms": round(percentile(concurrent.latencies_ms, 50), 3),
        "p99_ms": round(percentile(concurrent.latencies_ms, 99), 3),
        "reference_p99_ms": round(percentile(reference.latencies_ms, 99), 3),
        "errors": errors, "reference_errors": reference.errors + reference.warmup_errors,
        "requests": concurrent.requests, "duration_s": CONCURRENT_S,
        "server_cpu_ms_per_request": concurrent.server_cpu_ms,
        "reference_server_cpu_ms_per_request": reference.server_cpu_ms,
        "workers": workers["service"], "reference_workers": workers["reference"],
        "one_worker": _one_worker_figures(one_worker, reference),
        "goal_ratio": GOAL_CONCURRENT_RATIO,
        "meets_goal": ratio >= GOAL_CONCURRENT_RATIO and errors == 0,
    }


def _method(sample: Sequence[str], workers: dict[str, int], bentoml_version: str) -> dict:
    """How the figures were measured, in words."""
    return {
        "load_generator": "aiohttp on asyncio (uvloop), keep-alive connections, in the benchmark "
                          "process, on the same machine",
        "single": f"{SINGLE_REQUESTS} requests at concurrency 1 after {SINGLE_WARMUP} warm-up",
        "concurrent": f"{CONCURRENT_S:g} s at concurrency {CONCURRENCY} after {CONCURRENT_WARMUP_S:g} s "
                      "warm-up (errors include the warm-up)",
        "portrait": f"{PORTRAIT_REQUESTS} GET /portrait/{{pid}} (JSON, admin) at concurrency 1 after "
                    f"{PORTRAIT_WARMUP} warm-up",
        "pids": f"{len(sample)} online PIDs sampled with seed {SEED}, cycled",
        "servers": (f"bentoml serve, both started, measured one at a time in {ROUNDS} rounds alternating "
                    "which goes first; figures pool the rounds"),
        "workers": workers,
        "access_log": f"disabled on both: {OVERRIDES_ENV_VAR}={bentoml_overrides(access_log=False)}",
        "bentoml": bentoml_version,
    }


def run(settings: Settings, work_dir: Path) -> dict:
    """Every figure of `leadscore bench serving` (see the module docstring); logs in `work_dir`."""
    import bentoml

    work_dir.mkdir(parents=True, exist_ok=True)
    figures_machine = machine()
    everyone = online_pids(settings)
    if not everyone:
        raise RuntimeError(f"no feature rows in {settings.feature_data_dir}: run `leadscore pipeline`")
    sample = random.Random(SEED).sample(everyone, min(SAMPLE_PIDS, len(everyone)))
    world = world_view(settings.data_dir, work_dir / "world")
    measured = _under_load(settings, world, work_dir, sample, everyone)
    service, reference = measured["scoring"]["service"], measured["scoring"]["reference"]
    batch = measure_batch(settings.with_data_dir(world, settings.mlflow_dir), everyone)
    batch["http_score_batch"] = measured["http_batch"]
    portrait = measured["portrait"]
    return {
        "score_single": _single_figures(service["single"], reference["single"]),
        "score_concurrent": _concurrent_figures(service["concurrent"], reference["concurrent"],
                                                measured["one_worker"], measured["workers"]),
        "batch": batch,
        "portrait": {"p50_ms": round(percentile(portrait.latencies_ms, 50), 3),
                     "p99_ms": round(percentile(portrait.latencies_ms, 99), 3),
                     "requests": portrait.requests, "errors": portrait.errors},
        "details": {"service": {name: result.summary() for name, result in service.items()},
                    "reference": {name: result.summary() for name, result in reference.items()},
                    "portrait": portrait.summary()},
        "method": _method(sample, measured["workers"], bentoml.__version__),
        "machine": {**figures_machine, "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
    }


if __name__ == "__main__":  # pragma: no cover - `leadscore bench serving --json` is the entry point
    from leadscore.config import load_settings

    loaded = load_settings()
    print(json.dumps(run(loaded, loaded.data_dir / "bench" / "serving"), indent=2))  # noqa: T201
