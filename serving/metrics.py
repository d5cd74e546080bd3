"""The service's Prometheus metrics: requests counted and timed by route template.

BentoML's own /metrics labelled each request with its raw path
(`endpoint="/portrait/P4D8A88C4F5"`): one series per PID read, so the metrics grew
without bound and told anyone who could read them which people were looked at; and it
needed no key. The service turns BentoML's off (its `metrics` config) and serves these
instead, behind a key (service.py): the label is the route's template (`/portrait/{pid}`),
or `unmatched` for a path no route takes, so the series are as many as the routes.

With several workers BentoML gives each the same PROMETHEUS_MULTIPROC_DIR, and a scrape
of any one of them reads every worker's counts from there. prometheus_client is imported
at the first request, not at import: it picks its mode from that variable, which
BentoML sets in the worker after it imported this module.
"""

from __future__ import annotations

import os
import time
from functools import cache
from typing import Any

from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED = "unmatched"  # the label of a path no route takes: one series for all of them
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


@cache
def _instruments() -> tuple[Any, Any]:
    """(requests counter, duration histogram), created once per process."""
    from prometheus_client import Counter, Histogram

    labels = ["method", "endpoint", "status"]
    return (Counter("leadscore_http_requests", "HTTP requests answered, by route template", labels),
            Histogram("leadscore_http_request_duration_seconds", "Time to answer, by route template",
                      labels))


def observe(method: str, endpoint: str, status: int, seconds: float) -> None:
    requests, durations = _instruments()
    requests.labels(method, endpoint, str(status)).inc()
    durations.labels(method, endpoint, str(status)).observe(seconds)


def exposition() -> bytes:
    """The metrics in Prometheus' text format: every worker's, when there are several."""
    from prometheus_client import CollectorRegistry, generate_latest, multiprocess

    _instruments()  # a scrape before any request still lists the metrics
    if not os.environ.get(MULTIPROCESS_ENV):
        return generate_latest()
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry)


class RouteMetrics:
    """ASGI middleware: each HTTP request observed under the template of the route that took
    it (the router writes the route into the scope, which is shared down the stack)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500  # unless a response starts

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            route = scope.get("route")  # BentoML's mount of the app, when no route of the app matched
            endpoint = route.path if isinstance(route, Route) else UNMATCHED
            observe(scope["method"], endpoint, status, time.perf_counter() - started)
