"""The load generator of `leadscore bench serving`: asyncio workers on keep-alive aiohttp
connections (uvloop when installed), in the benchmark process.

`run_load` drives a base URL with `concurrency` workers; request i is `make(i)`. Either a
fixed number of measured requests after a discarded warm-up count, or a fixed duration
after a discarded warm-up time. Errors are answers outside 2xx and requests that failed
(connection error, timeout). With the server's PIDs, its CPU time during the run is
recorded too.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import numpy as np
import yarl  # aiohttp's URL type; parsed once per path, not per request

clock = time.perf_counter


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


# ---- one run ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """Which requests a run sends and which it measures: a count after a warm-up count
    (`requests`), or whatever starts in `duration_s` after `warmup_s` (from `measure_from`)."""

    requests: int | None
    duration_s: float | None
    warmup_requests: int
    warmup_s: float
    started: float = field(default_factory=clock)

    @property
    def measure_from(self) -> float:
        return self.started + self.warmup_s

    def over(self, i: int, began: float) -> bool:
        """True when request `i`, about to start at `began`, should not be sent."""
        if self.requests is not None:
            return i >= self.warmup_requests + self.requests
        assert self.duration_s is not None, "a window has `requests` or `duration_s` (run_load checks)"
        return began >= self.measure_from + self.duration_s

    def measured(self, i: int, began: float) -> bool:
        return i >= self.warmup_requests if self.duration_s is None else began >= self.measure_from


@dataclass
class Tally:
    """What the workers of one run have seen so far."""

    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    errors: int = 0
    warmup_errors: int = 0
    total: int = 0
    first_start: float = float("inf")
    last_end: float = 0.0

    def add(self, ok: bool, status: int | str, began: float, ended: float, measured: bool) -> None:
        self.total += 1
        if not measured:
            self.warmup_errors += not ok
            return
        self.latencies_ms.append((ended - began) * 1000)
        self.statuses[status] += 1
        self.errors += not ok
        self.first_start, self.last_end = min(self.first_start, began), max(self.last_end, ended)

    def result(self, concurrency: int, window: Window) -> LoadResult:
        """rps over the measured time: from the window's start (a duration) or the first
        measured request's (a count) to the end of the last one."""
        if window.duration_s is not None:
            elapsed = self.last_end - window.measure_from
        else:
            elapsed = self.last_end - self.first_start if self.latencies_ms else 0.0
        return LoadResult(concurrency, self.latencies_ms, self.errors, elapsed, self.statuses,
                          self.warmup_errors, requests_total=self.total)


class Client:
    """One aiohttp session on `concurrency` keep-alive connections to `base_url`."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self.session = session
        self.base_url = base_url
        self.urls: dict[str, yarl.URL] = {}

    async def send(self, request: Request) -> tuple[bool, int | str]:
        """(answered 2xx, the status or the kind of failure)."""
        url = self.urls.get(request.path)
        if url is None:
            url = self.urls[request.path] = yarl.URL(self.base_url + request.path)
        try:
            async with self.session.request(request.method, url, data=request.body,
                                            headers=request.headers) as response:
                await response.read()
                return 200 <= response.status < 300, response.status
        except Exception as error:  # noqa: BLE001 - every failed request is an error, by kind
            return False, type(error).__name__


async def _worker(client: Client, make: Callable[[int], Request], counter: itertools.count,
                  window: Window, tally: Tally) -> None:
    """Send request after request (the next number from the shared `counter`) until the window ends."""
    while True:
        i = next(counter)
        began = clock()
        if window.over(i, began):
            return
        ok, status = await client.send(make(i))
        tally.add(ok, status, began, clock(), window.measured(i, began))


async def _drive(base_url: str, make: Callable[[int], Request], concurrency: int, requests: int | None,
                 duration_s: float | None, warmup_requests: int, warmup_s: float,
                 timeout_s: float) -> LoadResult:
    window = Window(requests, duration_s, warmup_requests, warmup_s)  # the clock starts once the loop runs
    tally, counter = Tally(last_end=window.started), itertools.count()
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=timeout_s),
                                     auto_decompress=False) as session:
        client = Client(session, base_url)
        await asyncio.gather(*(_worker(client, make, counter, window, tally) for _ in range(concurrency)))
    return tally.result(concurrency, window)


# ---- around the run: event loop, garbage collector, CPU time ---------------------------------


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


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        return None
    return uvloop.new_event_loop


@contextmanager
def _frozen_heap() -> Iterator[None]:
    """A big heap in this process should not add collector pauses to the client."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


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
    loop_factory = _loop_factory()
    with _frozen_heap():
        server_cpu, client_cpu = cpu_seconds(cpu_pids), time.process_time()
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            result = runner.run(coroutine)
    result.client_cpu_s = time.process_time() - client_cpu
    if cpu_pids:
        result.server_cpu_s = cpu_seconds(cpu_pids) - server_cpu
    return result
