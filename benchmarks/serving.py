"""`leadscore bench serving`: the live service under load, side by side with a bare BentoML endpoint.

Each server is started as a real `bentoml serve` process (one worker, the same settings) in
the same run, and driven by the same asyncio load generator (aiohttp, keep-alive
connections, uvloop when installed) running in this process, on the same machine. Both are
up at once and measured one at a time, in two rounds that alternate which goes first; the
figures pool the rounds. Warm-up requests are discarded. The servers' CPU time per request
is recorded too: it depends less than latency on what else the machine is doing.

- score_single: `POST /score` by PID (online features, reasons) at concurrency 1, against
  the reference (reference_service.py, a constant with the same request). Goals: p50 <= 5 ms,
  p99 <= 15 ms;
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

import asyncio
import gc
import itertools
import json
import os
import platform
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from leadscore.config import DATA_DIR_ENV_VAR, SETTINGS_ENV_VAR, Settings
from leadscore.local_servers import free_port
from leadscore.serving import OVERRIDES_ENV_VAR, bentoml_overrides

SERVICE_TARGET = "leadscore.serving.service:LeadScoring"
REFERENCE_TARGET = "leadscore.benchmarks.reference_service:Reference"
CRM_KEY = "demo-crm-key"
ADMIN_KEY = "demo-admin-key"

GOAL_P50_MS = 5.0
GOAL_P99_MS = 15.0
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
STARTUP_S = 300.0
_NOT_IN_WORLD_VIEW = {"bench", "serving", "segments"}


# ---- the load generator -------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One HTTP request: `body` is sent as is (pre-encoded JSON, see `json_request`)."""

    method: str
    path: str
    body: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


def json_request(method: str, path: str, payload: object | None = None, key: str | None = None) -> Request:
    headers = {"Accept": "application/json"}
    if key:
        headers["X-API-Key"] = key
    if payload is None:
        return Request(method, path, None, headers)
    headers["Content-Type"] = "application/json"
    return Request(method, path, json.dumps(payload).encode(), headers)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear between closest ranks (numpy's default); NaN if empty."""
    if len(values) == 0:
        return float("nan")
    return float(np.percentile(np.asarray(values, dtype=float), q))


@dataclass
class LoadResult:
    """The measured requests of one load run (warm-up left out)."""

    concurrency: int
    latencies_ms: list[float]
    errors: int
    elapsed_s: float
    statuses: Counter
    warmup_errors: int = 0
    server_cpu_s: float | None = None  # CPU time of the server's processes during the whole run
    client_cpu_s: float | None = None  # CPU time of the load generator (this process) during it
    requests_total: int = 0  # warm-up included, for CPU time per request

    @property
    def requests(self) -> int:
        return len(self.latencies_ms)

    @property
    def rps(self) -> float:
        return self.requests / self.elapsed_s if self.elapsed_s > 0 else float("nan")

    def _per_request_ms(self, seconds: float | None) -> float | None:
        if seconds is None or not self.requests_total:
            return None
        return round(seconds * 1000 / self.requests_total, 3)

    @property
    def server_cpu_ms(self) -> float | None:
        """The server's CPU time per request (warm-up included), in ms."""
        return self._per_request_ms(self.server_cpu_s)

    @property
    def client_cpu_ms(self) -> float | None:
        """The load generator's CPU time per request (warm-up included), in ms."""
        return self._per_request_ms(self.client_cpu_s)

    def summary(self) -> dict:
        return {"requests": self.requests, "errors": self.errors, "rps": round(self.rps, 1),
                "server_cpu_ms_per_request": self.server_cpu_ms,
                "client_cpu_ms_per_request": self.client_cpu_ms,
                "p50_ms": round(percentile(self.latencies_ms, 50), 3),
                "p90_ms": round(percentile(self.latencies_ms, 90), 3),
                "p99_ms": round(percentile(self.latencies_ms, 99), 3),
                "max_ms": round(max(self.latencies_ms, default=float("nan")), 3),
                "statuses": {str(k): v for k, v in sorted(self.statuses.items(), key=str)}}


async def _drive(base_url: str, make: Callable[[int], Request], concurrency: int, requests: int | None,
                 duration_s: float | None, warmup_requests: int, warmup_s: float,
                 timeout_s: float) -> LoadResult:
    import aiohttp
    import yarl

    clock = time.perf_counter
    urls: dict[str, yarl.URL] = {}
    latencies: list[float] = []
    statuses: Counter = Counter()
    errors = warmup_errors = total = 0
    counter = itertools.count()
    started = clock()
    measure_from = started + warmup_s
    measure_until = measure_from + (duration_s or 0.0)
    first_start, last_end = float("inf"), started

    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=timeout_s),
                                     auto_decompress=False) as session:

        async def one(request: Request) -> tuple[bool, int | str]:
            url = urls.get(request.path)
            if url is None:
                url = urls[request.path] = yarl.URL(base_url + request.path)
            try:
                async with session.request(request.method, url, data=request.body,
                                           headers=request.headers) as response:
                    await response.read()
                    return 200 <= response.status < 300, response.status
            except Exception as error:  # noqa: BLE001 - every failed request is an error, by kind
                return False, type(error).__name__

        async def worker() -> None:
            nonlocal errors, warmup_errors, total, first_start, last_end
            while True:
                i = next(counter)
                if requests is not None and i >= warmup_requests + requests:
                    return
                began = clock()
                if duration_s is not None and began >= measure_until:
                    return
                ok, status = await one(make(i))
                ended = clock()
                total += 1
                measured = i >= warmup_requests if duration_s is None else began >= measure_from
                if not measured:
                    warmup_errors += not ok
                    continue
                latencies.append((ended - began) * 1000)
                statuses[status] += 1
                errors += not ok
                first_start, last_end = min(first_start, began), max(last_end, ended)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    if duration_s is not None:
        elapsed = last_end - measure_from
    else:
        elapsed = last_end - first_start if latencies else 0.0
    return LoadResult(concurrency, latencies, errors, elapsed, statuses, warmup_errors,
                      requests_total=total)


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time of processes (those gone count as 0)."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks / os.sysconf("SC_CLK_TCK")


def run_load(base_url: str, make: Callable[[int], Request], concurrency: int = 1, *,
             requests: int | None = None, duration_s: float | None = None, warmup_requests: int = 0,
             warmup_s: float = 0.0, timeout_s: float = 30.0, cpu_pids: Sequence[int] = ()) -> LoadResult:
    """Drive `base_url` with `concurrency` workers on keep-alive connections; request i is `make(i)`.

    Either a fixed number of measured `requests` after `warmup_requests` discarded ones, or a
    fixed `duration_s` after `warmup_s` seconds discarded (a request counts when it started in
    the window; rps = measured requests / (end of the last one - start of the window)). Errors
    are answers outside 2xx and requests that failed (connection error, timeout). With
    `cpu_pids` (the server's processes), their CPU time during the run is recorded."""
    if (requests is None) == (duration_s is None):
        raise ValueError("give either requests or duration_s")
    coroutine = _drive(base_url.rstrip("/"), make, concurrency, requests, duration_s, warmup_requests,
                       warmup_s, timeout_s)
    try:
        import uvloop
        loop_factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        loop_factory = None
    gc.collect()
    gc.freeze()  # a big heap in this process should not add collector pauses to the client
    server_cpu, client_cpu = cpu_seconds(cpu_pids), time.process_time()
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            result = runner.run(coroutine)
    finally:
        gc.unfreeze()
    result.client_cpu_s = time.process_time() - client_cpu
    if cpu_pids:
        result.server_cpu_s = cpu_seconds(cpu_pids) - server_cpu
    return result


# ---- servers --------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    """PIDs whose parent is `pid` (BentoML's workers run in sessions of their own)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover
        return True
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen
    log: Path
    workers: list[int] = field(default_factory=list)

    @property
    def pids(self) -> list[int]:
        return [self.process.pid, *self.workers]


def _wait_ready(server: Server, timeout_s: float) -> None:
    import urllib.error
    import urllib.request

    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {server.process.returncode} before it was "
                               f"ready; last log lines:\n{_tail(server.log)}")
        try:
            with urllib.request.urlopen(f"{server.url}/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{server.name} was not ready in {timeout_s:.0f} s; last log lines:\n"
                       f"{_tail(server.log)}")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _stop(server: Server) -> None:
    """SIGTERM to the server's process group (BentoML stops its workers), then SIGKILL what is left."""
    process = server.process
    workers = set(server.workers) | set(_children(process.pid))
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    deadline = time.time() + 10
    while any(_alive(pid) for pid in workers) and time.time() < deadline:
        time.sleep(0.2)
    for pid in workers:
        if _alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@contextmanager
def bentoml_server(name: str, target: str, settings: Settings, data_dir: Path, work_dir: Path,
                   startup_s: float = STARTUP_S, workers: int | None = None) -> Iterator[Server]:
    """`bentoml serve target` on a free port in a new session; stopped when the block ends, always."""
    port = free_port()
    env = dict(os.environ)
    env[SETTINGS_ENV_VAR] = str(settings.source)
    env[DATA_DIR_ENV_VAR] = str(data_dir)
    env[OVERRIDES_ENV_VAR] = bentoml_overrides(workers=workers, access_log=False)
    env["PYTHONUNBUFFERED"] = "1"
    bentoml = Path(sys.executable).parent / "bentoml"
    log = work_dir / f"{name}.log"
    command = [str(bentoml), "serve", target, "--host", "127.0.0.1", "--port", str(port)]
    with open(log, "w") as out:
        process = subprocess.Popen(command, cwd=settings.root, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    server = Server(name, f"http://127.0.0.1:{port}", process, log)
    try:
        _wait_ready(server, startup_s)
        server.workers = _children(process.pid)
        yield server
    finally:
        _stop(server)


# ---- the world the servers read -------------------------------------------------------------


def world_view(data_dir: Path, target: Path) -> Path:
    """`target` with a symlink to every entry of `data_dir` (but bench output and service state)."""
    target.mkdir(parents=True, exist_ok=True)
    for entry in target.iterdir():
        if entry.is_symlink():
            entry.unlink()
    for entry in sorted(data_dir.iterdir()):
        if entry.name not in _NOT_IN_WORLD_VIEW:
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


def pooled(results: Sequence[LoadResult]) -> LoadResult:
    """Several runs of the same load as one: latencies together, rps = requests / total time."""
    statuses: Counter = Counter()
    for result in results:
        statuses.update(result.statuses)

    def total(values: list) -> float | None:
        return None if any(value is None for value in values) else sum(values)

    return LoadResult(results[0].concurrency, [ms for result in results for ms in result.latencies_ms],
                      sum(result.errors for result in results), sum(result.elapsed_s for result in results),
                      statuses, sum(result.warmup_errors for result in results),
                      total([result.server_cpu_s for result in results]),
                      total([result.client_cpu_s for result in results]),
                      sum(result.requests_total for result in results))


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


def measure_batch(settings: Settings, pids: Sequence[str], rows: int = BATCH_ROWS) -> dict:
    """Scoring with reasons in process against LightGBM's pred_contrib on the same rows."""
    from leadscore.features.store import OnlineFeatures, open_store
    from leadscore.serving.champion import ChampionWatcher

    scorer = ChampionWatcher(settings).scorer
    if not scorer.fast_path:
        raise RuntimeError(f"the champion is a {scorer.kind}, not LightGBM: no TreeSHAP to compare")
    online = OnlineFeatures(open_store(settings))
    names = scorer.feature_names
    known_pids: list[str] = []
    columns: dict[str, list] = {name: [] for name in names}
    wanted = list(pids[:rows])  # repeated below when fewer
    for start in range(0, len(wanted), 2000):
        read = online.read_rows(wanted[start:start + 2000])
        keep = [i for i, known in enumerate(read.known) if known]
        known_pids += [read.pids[i] for i in keep]
        for name in names:
            values = read.columns[name]
            columns[name] += [values[i] for i in keep]
    if not known_pids:
        raise RuntimeError("no PID has online features: run `leadscore features materialize`")
    copies = -(-rows // len(known_pids))
    batch_pids = (known_pids * copies)[:rows]
    columns = {name: (values * copies)[:rows] for name, values in columns.items()}

    path = scorer.path
    booster = path.shap.booster
    matrix, _ = path.encode(columns, rows)
    small = {name: values[:1000] for name, values in columns.items()}
    scorer.score_records(batch_pids[:1000], small)  # compiles the numba kernel
    booster.predict(matrix[:1000], pred_contrib=True)

    ours = path.shap.contributions(matrix)
    theirs = booster.predict(matrix, pred_contrib=True)
    full_s = _best_seconds(lambda: scorer.score_records(batch_pids, columns))
    contrib_s = _best_seconds(lambda: path.shap.contributions(matrix))
    baseline_s = _best_seconds(lambda: booster.predict(matrix, pred_contrib=True))
    diff = float(np.max(np.abs(ours - theirs)))
    return {
        "rows": rows, "distinct_pids": len(known_pids),
        "rows_per_s": round(rows / full_s, 1),
        "baseline_rows_per_s": round(rows / baseline_s, 1),
        "ratio": round(baseline_s / full_s, 3),
        "contributions_rows_per_s": round(rows / contrib_s, 1),
        "contributions_ratio": round(baseline_s / contrib_s, 3),
        "max_abs_diff": diff,
        "max_abs_diff_text": f"{diff:.2e}",  # survives rounding to a few decimals when printed
        "goal_ratio": GOAL_BATCH_RATIO, "meets_goal": baseline_s / full_s >= GOAL_BATCH_RATIO,
        "contributions_meet_goal": baseline_s / contrib_s >= GOAL_BATCH_RATIO,
        "model": model_shape(booster), "model_version": scorer.version,
        "measured": ("rows_per_s: Scorer.score_records from feature columns (encode, FastTreeShap, "
                     "probability, score, tier, responses with reasons); baseline_rows_per_s: "
                     "booster.predict(matrix, pred_contrib=True) on the encoded matrix alone; "
                     "contributions_rows_per_s: FastTreeShap.contributions on the same matrix; "
                     f"best of {BATCH_REPEATS}, all threads"),
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

    with ExitStack() as servers:
        # Both up at once (one idles while the other is measured), so the rounds can alternate.
        reference_server = servers.enter_context(
            bentoml_server("reference", REFERENCE_TARGET, settings, world, work_dir))
        service_server = servers.enter_context(
            bentoml_server("service", SERVICE_TARGET, settings, world, work_dir,
                           workers=settings.serving.workers))
        scoring = _measure_scoring({"reference": reference_server, "service": service_server}, sample)
        portrait = _measure_portrait(service_server, sample)
        http_batch = _measure_http_batch(service_server, everyone)
        workers = {"reference": len(reference_server.workers), "service": len(service_server.workers)}
    one_worker = _measure_one_worker(settings, world, work_dir, sample) if workers["service"] > 1 else None
    reference, service = scoring["reference"], scoring["service"]
    batch = measure_batch(settings.with_data_dir(world, settings.mlflow_dir), everyone)
    batch["http_score_batch"] = http_batch

    single, ref_single = service["single"], reference["single"]
    concurrent, ref_concurrent = service["concurrent"], reference["concurrent"]
    p50, p99 = percentile(single.latencies_ms, 50), percentile(single.latencies_ms, 99)
    ratio = concurrent.rps / ref_concurrent.rps
    concurrent_errors = concurrent.errors + concurrent.warmup_errors
    return {
        "score_single": {
            "p50_ms": round(p50, 3), "p99_ms": round(p99, 3),
            "reference_p50_ms": round(percentile(ref_single.latencies_ms, 50), 3),
            "reference_p99_ms": round(percentile(ref_single.latencies_ms, 99), 3),
            "requests": single.requests, "errors": single.errors,
            "goal_p50_ms": GOAL_P50_MS, "goal_p99_ms": GOAL_P99_MS,
            "meets_goal": p50 <= GOAL_P50_MS and p99 <= GOAL_P99_MS and single.errors == 0,
        },
        "score_concurrent": {
            "concurrency": CONCURRENCY, "rps": round(concurrent.rps, 1),
            "reference_rps": round(ref_concurrent.rps, 1), "ratio": round(ratio, 3),
            "p50_ms": round(percentile(concurrent.latencies_ms, 50), 3),
            "p99_ms": round(percentile(concurrent.latencies_ms, 99), 3),
            "reference_p99_ms": round(percentile(ref_concurrent.latencies_ms, 99), 3),
            "errors": concurrent_errors,
            "reference_errors": ref_concurrent.errors + ref_concurrent.warmup_errors,
            "requests": concurrent.requests, "duration_s": CONCURRENT_S,
            "server_cpu_ms_per_request": concurrent.server_cpu_ms,
            "reference_server_cpu_ms_per_request": ref_concurrent.server_cpu_ms,
            "workers": workers["service"], "reference_workers": workers["reference"],
            "one_worker": one_worker and {"rps": round(one_worker.rps, 1),
                                          "ratio": round(one_worker.rps / ref_concurrent.rps, 3),
                                          "server_cpu_ms_per_request": one_worker.server_cpu_ms,
                                          "errors": one_worker.errors + one_worker.warmup_errors},
            "goal_ratio": GOAL_CONCURRENT_RATIO,
            "meets_goal": ratio >= GOAL_CONCURRENT_RATIO and concurrent_errors == 0,
        },
        "batch": batch,
        "portrait": {"p50_ms": round(percentile(portrait.latencies_ms, 50), 3),
                     "p99_ms": round(percentile(portrait.latencies_ms, 99), 3),
                     "requests": portrait.requests, "errors": portrait.errors},
        "details": {"service": {name: result.summary() for name, result in service.items()},
                    "reference": {name: result.summary() for name, result in reference.items()},
                    "portrait": portrait.summary()},
        "method": {
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
            "bentoml": bentoml.__version__,
        },
        "machine": {**figures_machine, "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
    }


if __name__ == "__main__":  # pragma: no cover - `leadscore bench serving --json` is the entry point
    from leadscore.config import load_settings

    loaded = load_settings()
    print(json.dumps(run(loaded, loaded.data_dir / "bench" / "serving"), indent=2))  # noqa: T201
