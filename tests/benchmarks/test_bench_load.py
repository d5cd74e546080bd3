"""The pure parts of `leadscore bench serving`: percentiles, pooling, and the load generator
against a throwaway local HTTP server (counts requests and errors, discards warm-up)."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from leadscore.benchmarks.load import LoadResult, Request, json_request, percentile, pooled, run_load
from leadscore.local_servers import free_port

pytestmark = pytest.mark.timeout(60)


class Recorder:
    """Answers 200 with the body echoed; paths under /fail answer 500."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.bodies: list[dict] = []
        self.lock = threading.Lock()


@pytest.fixture()
def server() -> Iterator[tuple[str, Recorder]]:
    recorder = Recorder()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the load generator expects

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            with recorder.lock:
                recorder.paths.append(self.path)
            self._answer(500 if self.path.startswith("/fail") else 200, b'{"ok": true}')

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with recorder.lock:
                recorder.paths.append(self.path)
                recorder.bodies.append(json.loads(body))
            self._answer(200, body)

        def log_message(self, *args) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", recorder
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_percentile_is_numpys_linear_one():
    values = list(range(1, 101))
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile([3.0], 99) == 3.0
    assert percentile([], 50) != percentile([], 50)  # NaN


def test_json_request_encodes_the_body_and_the_key():
    request = json_request("POST", "/score", {"pid": "P1"}, "key")
    assert json.loads(request.body) == {"pid": "P1"}
    assert request.headers["X-API-Key"] == "key" and request.headers["Content-Type"] == "application/json"
    assert json_request("GET", "/portrait/P1").body is None


def test_fixed_count_measures_only_after_the_warm_up(server):
    url, recorder = server
    result = run_load(url, lambda i: json_request("POST", "/score", {"i": i}), 1, requests=30,
                      warmup_requests=5)
    assert result.requests == 30 and result.requests_total == 35 and result.errors == 0
    assert result.statuses == Counter({200: 30})
    assert [body["i"] for body in recorder.bodies] == list(range(35))  # in order at concurrency 1
    assert all(ms > 0 for ms in result.latencies_ms) and result.rps > 0
    assert result.client_cpu_s is not None and result.server_cpu_s is None


def test_errors_are_counted_by_status_and_by_failure(server):
    url, recorder = server
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there

    def make(i: int) -> Request:
        return Request("GET", "/fail" if i % 4 == 0 else "/ok")

    result = run_load(url, make, 4, requests=40)
    assert result.requests == 40 and result.errors == 10
    assert result.statuses == Counter({200: 30, 500: 10})
    assert len(recorder.paths) == 40
    refused = run_load(dead, make, 2, requests=6, timeout_s=5)
    assert refused.requests == 6 and refused.errors == 6
    assert sum(refused.statuses.values()) == 6 and all(isinstance(k, str) for k in refused.statuses)


def test_fixed_duration_keeps_concurrency_and_discards_the_warm_up(server):
    url, recorder = server
    result = run_load(url, lambda i: Request("GET", "/ok"), 8, duration_s=0.5, warmup_s=0.2)
    assert result.errors == 0 and result.requests > 0
    assert result.requests < result.requests_total == len(recorder.paths)
    assert 0.45 < result.elapsed_s < 5.0  # the duration bounds the run (a busy machine finishes late)
    assert result.rps == pytest.approx(result.requests / result.elapsed_s)


def test_either_a_count_or_a_duration():
    with pytest.raises(ValueError):
        run_load("http://127.0.0.1:1", lambda i: Request("GET", "/"), 1)
    with pytest.raises(ValueError):
        run_load("http://127.0.0.1:1", lambda i: Request("GET", "/"), 1, requests=1, duration_s=1)


def test_pooled_runs_add_up():
    a = LoadResult(16, [1.0, 2.0], 1, 1.0, Counter({200: 1, 500: 1}), 0, 0.5, 0.1, 4)
    b = LoadResult(16, [3.0], 0, 0.5, Counter({200: 1}), 2, 0.25, 0.05, 2)
    both = pooled([a, b])
    assert both.latencies_ms == [1.0, 2.0, 3.0] and both.errors == 1 and both.warmup_errors == 2
    assert both.rps == pytest.approx(3 / 1.5) and both.statuses == Counter({200: 2, 500: 1})
    assert both.server_cpu_ms == pytest.approx(750 / 6, abs=1e-3)
