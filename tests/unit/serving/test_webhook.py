"""The MQL webhook against a real local HTTP receiver: pushed once, retried on failure, nothing lost."""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from leadscore.config import WebhookSettings
from leadscore.local_servers import free_port
from leadscore.serving.schemas import Reason, Routing, ScoreResponse
from leadscore.serving.webhook import DB_NAME, MqlPusher, idempotency_key

pytestmark = pytest.mark.timeout(60)


class Receiver:
    """A CRM stand-in: records every POST; answers the next few with a chosen failure if told to."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.requests: list[dict] = []
        self.failures: list[tuple[int, dict[str, str], str]] = []
        self.delay_s = 0.0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)
                with receiver.lock:
                    receiver.requests.append({"at": time.monotonic(), "headers": dict(self.headers),
                                              "body": body, "path": self.path})
                    status, headers, text = receiver.failures.pop(0) if receiver.failures else (200, {}, "ok")
                data = text.encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/crm/leads"

    def fail_next(self, n: int, status: int = 500, headers: dict[str, str] | None = None,
                  text: str = "boom") -> None:
        with self.lock:
            self.failures.extend([(status, headers or {}, text)] * n)

    def keys(self) -> list[str]:
        with self.lock:
            return [r["headers"]["Idempotency-Key"] for r in self.requests]

    def payloads(self) -> list[dict]:
        with self.lock:
            return [json.loads(r["body"]) for r in self.requests]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


def make_settings(url: str | None, **overrides: float) -> WebhookSettings:
    values = {"url": url, "mql_threshold": 60, "timeout_s": 2, "max_attempts": 6, "backoff_s": 0.05,
              "backoff_max_s": 1.0} | overrides
    return WebhookSettings(**values)


@pytest.fixture
def pushers() -> Iterator[list[MqlPusher]]:
    made: list[MqlPusher] = []
    yield made
    for pusher in made:
        pusher.close()


def new_pusher(pushers: list[MqlPusher], url: str | None, state_dir: Path, **kwargs: object) -> MqlPusher:
    repush = bool(kwargs.pop("repush_on_recross", False))
    pusher = MqlPusher(make_settings(url, **kwargs), state_dir, repush_on_recross=repush)
    pushers.append(pusher)
    return pusher


def row(pid: str, score: float, tier: str = "high-value") -> dict:
    return {"pid": pid, "score": score, "probability": 0.2, "tier": tier, "model_version": "7",
            "routing": {"action": "route_to_sales", "channel": "crm", "description": "call them"},
            "reasons_up": [{"feature": "visits", "text": "Visited pricing 3 times", "impact": 0.4}]}


def outbox(state_dir: Path) -> list[dict]:
    with sqlite3.connect(state_dir / DB_NAME) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM outbox ORDER BY created_at")]


# -- crossings ------------------------------------------------------------------------------------


def test_crossing_is_pushed_once_with_key_and_documented_payload(receiver: Receiver, tmp_path: Path,
                                                                 pushers: list[MqlPusher]) -> None:
    pusher = new_pusher(pushers, receiver.url, tmp_path)
    response = ScoreResponse(
        pid="P1", probability=0.23, score=72.5, fit_score=80, interest_score=60, tier="high-value",
        routing=Routing(action="route_to_sales", channel="crm", description="direct contact"),
        reasons_up=[Reason(feature="pricing_visits_7d", text="Visited pricing 3 times", impact=0.8),
                    Reason(feature="title", text="Decision maker", impact=0.5)],
        reasons_down=[], model_version="7", model_kind="lightgbm", horizon_days=90)

    assert pusher.observe([row("P1", 41.0)]) == 0
    assert pusher.observe([response]) == 1
    assert pusher.flush(5)

    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    key = idempotency_key("P1", 1)
    assert request["headers"]["Idempotency-Key"] == key
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["path"] == "/crm/leads"
    payload = json.loads(request["body"])
    crossed_at = payload.pop("crossed_at")
    assert crossed_at.endswith("+00:00")
    assert payload == {
        "event": "lead.mql", "schema_version": 1, "idempotency_key": key, "pid": "P1", "score": 72.5,
        "previous_score": 41.0, "threshold": 60.0, "crossing": 1, "probability": 0.23, "tier": "high-value",
        "routing": {"action": "route_to_sales", "channel": "crm", "description": "direct contact"},
        "reasons": ["Visited pricing 3 times", "Decision maker"], "model_version": "7"}

    # the same high score again, a higher one, a restart: nothing new
    assert pusher.observe([response]) == 0
    assert pusher.observe([row("P1", 90.0)]) == 0
    restarted = new_pusher(pushers, receiver.url, tmp_path)
    assert restarted.observe([response]) == 0
    assert restarted.flush(5)
    assert len(receiver.requests) == 1
    assert pusher.stats() == {"pending": 0, "sending": 0, "delivered": 1, "failed": 0, "leads": 1}
    with sqlite3.connect(tmp_path / DB_NAME) as db:
        last_score, pushed_at, mql_key = db.execute(
            "SELECT last_score, pushed_at, mql_key FROM lead_state WHERE pid = 'P1'").fetchone()
    assert (last_score, mql_key) == (72.5, key) and pushed_at is not None


def test_below_threshold_is_never_pushed_and_first_seen_above_is_a_crossing(
        receiver: Receiver, tmp_path: Path, pushers: list[MqlPusher]) -> None:
    pusher = new_pusher(pushers, receiver.url, tmp_path)
    assert pusher.observe([row("LOW", 59.9), row("EDGE", 60.0), row("NEW", 95.0)]) == 2
    assert pusher.observe([row("LOW", 10.0), row("LOW", 59.99)]) == 0
    assert pusher.flush(5)
    assert sorted(p["pid"] for p in receiver.payloads()) == ["EDGE", "NEW"]
    assert [p["previous_score"] for p in receiver.payloads()] == [None, None]
    assert pusher.stats()["leads"] == 3


def test_rerunning_a_batch_enqueues_nothing_new(receiver: Receiver, tmp_path: Path,
                                                pushers: list[MqlPusher]) -> None:
    rows = [row(f"P{i}", float(i)) for i in range(100)]  # 40 at or above 60
    assert new_pusher(pushers, receiver.url, tmp_path).observe(rows) == 40
    assert new_pusher(pushers, receiver.url, tmp_path).observe(rows) == 0
    assert pushers[0].flush(5)
    assert len(receiver.requests) == 40 and len(set(receiver.keys())) == 40


def test_a_lost_lead_state_does_not_resend(receiver: Receiver, tmp_path: Path,
                                           pushers: list[MqlPusher]) -> None:
    pusher = new_pusher(pushers, receiver.url, tmp_path)
    assert pusher.observe([row("P", 80)]) == 1
    assert pusher.flush(5)
    with sqlite3.connect(tmp_path / DB_NAME) as db:
        db.execute("DELETE FROM lead_state")
    assert pusher.observe([row("P", 80)]) == 0  # same key: the delivered message is kept as it is
    assert pusher.flush(5)
    assert len(receiver.requests) == 1
    assert [m["status"] for m in outbox(tmp_path)] == ["delivered"]


def test_a_pid_seen_twice_in_one_batch_crosses_once(receiver: Receiver, tmp_path: Path,
                                                    pushers: list[MqlPusher]) -> None:
    pusher = new_pusher(pushers, receiver.url, tmp_path)
    assert pusher.observe([row("P", 30), row("P", 70), row("P", 20), row("P", 80)]) == 1
    [message] = outbox(tmp_path)
    assert json.loads(message["payload"])["previous_score"] == 30
    with sqlite3.connect(tmp_path / DB_NAME) as db:
        assert db.execute("SELECT last_score, crossings FROM lead_state").fetchone() == (80, 2)


def test_falling_below_and_crossing_again_is_not_pushed_again_by_default(
        receiver: Receiver, tmp_path: Path, pushers: list[MqlPusher]) -> None:
    once = new_pusher(pushers, receiver.url, tmp_path / "once")
    again = new_pusher(pushers, receiver.url, tmp_path / "again", repush_on_recross=True)
    for pusher in (once, again):
        for score in (70, 40, 75, 80):  # 80: still above, not a new crossing
            pusher.observe([row("P", score)])
    assert [m["idempotency_key"] for m in outbox(tmp_path / "once")] == [idempotency_key("P", 1)]
    repushed = outbox(tmp_path / "again")
    assert [m["idempotency_key"] for m in repushed] == [idempotency_key("P", 1), idempotency_key("P", 2)]
    assert json.loads(repushed[1]["payload"])["crossing"] == 2
    for state_dir in (tmp_path / "once", tmp_path / "again"):
        with sqlite3.connect(state_dir / DB_NAME) as db:
            assert db.execute("SELECT last_score, above, crossings FROM lead_state").fetchone() == (80, 1, 2)


def test_batch_rows_get_their_routing_from_the_model_versions_table(
        receiver: Receiver, tmp_path: Path, pushers: list[MqlPusher]) -> None:
    pusher = new_pusher(pushers, receiver.url, tmp_path)
    table = {"high-value": {"action": "route_to_sales", "channel": "crm", "description": "call"},
             "to-nurture": {"action": "nurture_track", "channel": "marketing_automation",
                            "description": "mail"}}
    batch_rows = [{"pid": "A", "score": 81.0, "probability": 0.3, "tier": "high-value", "model_version": 7},
                  {"pid": "B", "score": 64.0, "probability": 0.1, "tier": "to-nurture", "model_version": 7},
                  {"pid": "C", "score": 66.0, "tier": "unknown-tier"},
                  {"pid": "D", "score": 70.0, "tier": "high-value", "action": "custom", "channel": "x"}]
    assert pusher.observe(batch_rows, routing_table=table) == 4
    payloads = {json.loads(m["payload"])["pid"]: json.loads(m["payload"]) for m in outbox(tmp_path)}
    assert payloads["A"]["routing"] == table["high-value"] and payloads["A"]["model_version"] == "7"
    assert payloads["B"]["routing"]["action"] == "nurture_track"
    assert payloads["C"]["routing"] == {"action": None, "channel": None, "description": None}
    assert payloads["C"]["reasons"] == [] and payloads["C"]["probability"] is None
    assert payloads["D"]["routing"] == {"action": "custom", "channel": "x", "description": None}


def test_bad_rows_are_skipped_and_the_rest_kept(receiver: Receiver, tmp_path: Path,
                                                pushers: list[MqlPusher]) -> None:
    pusher = new_pusher(pushers, receiver.url, tmp_path)
    rows = [{"pid": None, "score": 90}, {"pid": "A", "score": math.nan}, {"pid": "B", "score": "x"},
            {"pid": "C"}, row("OK", 88)]
    assert pusher.observe(rows) == 1
    assert pusher.stats()["leads"] == 1


def test_observe_is_all_or_nothing(receiver: Receiver, tmp_path: Path, pushers: list[MqlPusher],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    pusher = new_pusher(pushers, receiver.url, tmp_path)
    calls = []

    def crash_on_second(*args: object) -> str:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("crash mid-batch")
        return "{}"

    monkeypatch.setattr(pusher, "_payload", crash_on_second)
    with pytest.raises(RuntimeError):
        pusher.observe([row("A", 90), row("B", 90), row("C", 10)])
    assert pusher.stats() == {"pending": 0, "sending": 0, "delivered": 0, "failed": 0, "leads": 0}
    monkeypatch.undo()
    assert pusher.observe([row("A", 90), row("B", 90), row("C", 10)]) == 2  # the crossings are not lost


def test_no_url_stores_nothing(tmp_path: Path, pushers: list[MqlPusher]) -> None:
    state_dir = tmp_path / "serving"
    pusher = new_pusher(pushers, None, state_dir).start()
    assert pusher.observe([row("P", 99)]) == 0
    assert pusher.deliver_due() == 0 and pusher.flush(1)
    assert pusher._thread is None
    assert not state_dir.exists()
    assert pusher.stats() == {"pending": 0, "sending": 0, "delivered": 0, "failed": 0, "leads": 0}


# -- delivery -------------------------------------------------------------------------------------


def test_server_errors_are_retried_with_growing_backoff(receiver: Receiver, tmp_path: Path,
                                                        pushers: list[MqlPusher]) -> None:
    pusher = new_pusher(pushers, receiver.url, tmp_path, backoff_s=0.05)
    receiver.fail_next(3, status=500)
    pusher.observe([row("P", 80)])
    assert pusher.flush(10)

    assert len(receiver.requests) == 4
    assert set(receiver.keys()) == {idempotency_key("P", 1)}
    times = [r["at"] for r in receiver.requests]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    for i, gap in enumerate(gaps):
        assert gap >= 0.05 * 2**i * 0.95, gaps  # backoff_s * 2**(attempt-1), at least
    assert gaps[0] < gaps[1] < gaps[2], gaps
    [message] = outbox(tmp_path)
    assert (message["status"], message["attempts"]) == ("delivered", 4)
    assert message["last_error"] is None and message["delivered_at"] is not None


def test_client_errors_fail_for_good_and_keep_the_error(receiver: Receiver, tmp_path: Path,
                                                        pushers: list[MqlPusher]) -> None:
    pusher = new_pusher(pushers, receiver.url, tmp_path)
    receiver.fail_next(1, status=422, text="unknown field: tier")
    pusher.observe([row("P", 80)])
    assert pusher.flush(5)
    assert len(receiver.requests) == 1
    [message] = outbox(tmp_path)
    assert message["status"] == "failed" and message["attempts"] == 1
    assert "422" in message["last_error"] and "unknown field: tier" in message["last_error"]
    assert json.loads(message["payload"])["pid"] == "P"  # kept, not deleted
    assert pusher.stats()["failed"] == 1


def test_rate_limit_is_retried_after_retry_after(receiver: Receiver, tmp_path: Path,
                                                 pushers: list[MqlPusher]) -> None:
    pusher = new_pusher(pushers, receiver.url, tmp_path, backoff_s=0.01)
    receiver.fail_next(1, status=429, headers={"Retry-After": "1"})
    pusher.observe([row("P", 80)])
    assert pusher.flush(5)
    assert len(receiver.requests) == 2
    assert receiver.requests[1]["at"] - receiver.requests[0]["at"] >= 0.95
    assert pusher.stats()["delivered"] == 1


def test_receiver_down_is_retried_until_it_comes_up(tmp_path: Path, pushers: list[MqlPusher]) -> None:
    port = free_port()
    pusher = new_pusher(pushers, f"http://127.0.0.1:{port}/crm/leads", tmp_path, backoff_s=0.05)
    pusher.observe([row("P", 80)])
    assert pusher.deliver_due() == 0
    [message] = outbox(tmp_path)
    assert (message["status"], message["attempts"]) == ("pending", 1)
    assert "ConnectError" in message["last_error"]

    late = Receiver(port)
    try:
        assert pusher.flush(5)
        assert late.keys() == [idempotency_key("P", 1)]
        assert outbox(tmp_path)[0]["status"] == "delivered"
    finally:
        late.stop()


def test_max_attempts_then_failed_and_retry_failed_requeues(receiver: Receiver, tmp_path: Path,
                                                            pushers: list[MqlPusher]) -> None:
    pusher = new_pusher(pushers, receiver.url, tmp_path, max_attempts=3, backoff_s=0.01)
    receiver.fail_next(3, status=503, text="maintenance")
    pusher.observe([row("P", 80), row("Q", 10)])
    assert pusher.flush(5)
    assert len(receiver.requests) == 3
    [message] = outbox(tmp_path)
    assert (message["status"], message["attempts"]) == ("failed", 3)
    assert "503" in message["last_error"]

    assert pusher.retry_failed() == 1
    assert pusher.stats()["pending"] == 1
    assert pusher.flush(5)
    assert len(receiver.requests) == 4 and len(set(receiver.keys())) == 1
    assert pusher.stats() == {"pending": 0, "sending": 0, "delivered": 1, "failed": 0, "leads": 2}
    assert pusher.retry_failed() == 0


def test_two_workers_deliver_each_message_once(receiver: Receiver, tmp_path: Path,
                                               pushers: list[MqlPusher]) -> None:
    workers = [new_pusher(pushers, receiver.url, tmp_path) for _ in range(2)]
    rows = [row(f"P{i}", 50 + i % 50) for i in range(120)]
    crossing = sum(r["score"] >= 60 for r in rows)
    barrier = threading.Barrier(2)
    observed: list[int] = []
    delivered: list[int] = []

    def observe(worker: MqlPusher) -> None:
        barrier.wait()
        observed.append(worker.observe(rows))

    def deliver(worker: MqlPusher) -> None:
        barrier.wait()
        delivered.append(worker.deliver_due())

    for job in (observe, deliver):
        threads = [threading.Thread(target=job, args=(w,)) for w in workers]
        receiver.delay_s = 0.005
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert crossing == 90 and sorted(observed) == [0, crossing]  # seen by both workers: enqueued once
    assert sum(delivered) == crossing and min(delivered) > 0, delivered  # both took part
    keys = receiver.keys()
    assert len(keys) == crossing and len(set(keys)) == crossing
    assert workers[0].stats()["delivered"] == crossing


def test_background_threads_of_two_workers(receiver: Receiver, tmp_path: Path,
                                           pushers: list[MqlPusher]) -> None:
    workers = [new_pusher(pushers, receiver.url, tmp_path).start() for _ in range(2)]
    receiver.delay_s = 0.002
    workers[0].observe([row(f"A{i}", 80) for i in range(20)])
    workers[1].observe([row(f"B{i}", 80) for i in range(20)])
    assert workers[0].flush(10) and workers[1].flush(10)
    assert len(receiver.keys()) == 40 and len(set(receiver.keys())) == 40
    thread = workers[0]._thread
    workers[0].close()
    assert thread is not None and not thread.is_alive()


def test_a_message_left_sending_by_a_crash_is_due_after_its_lease(receiver: Receiver, tmp_path: Path,
                                                                  pushers: list[MqlPusher]) -> None:
    crashed = new_pusher(pushers, receiver.url, tmp_path)
    crashed.observe([row("P", 80)])
    now = time.time()
    assert crashed._claim(now) is not None  # claimed, then the worker "dies" before sending
    assert outbox(tmp_path)[0]["status"] == "sending"

    survivor = new_pusher(pushers, receiver.url, tmp_path)
    assert survivor.deliver_due(now) == 0  # leased to the dead worker: not sent twice meanwhile
    assert receiver.requests == []
    assert survivor.deliver_due(now + survivor.lease_s + 1) == 1
    assert receiver.keys() == [idempotency_key("P", 1)]
    [message] = outbox(tmp_path)
    assert (message["status"], message["attempts"]) == ("delivered", 2)


def test_observe_25k_rows_in_one_call(receiver: Receiver, tmp_path: Path, pushers: list[MqlPusher]) -> None:
    pusher = new_pusher(pushers, receiver.url, tmp_path)
    rows = [row(f"P{i:06d}", (i * 37) % 100) for i in range(25_000)]
    expected = sum(r["score"] >= 60 for r in rows)

    started = time.perf_counter()
    assert pusher.observe(rows) == expected
    first = time.perf_counter() - started
    started = time.perf_counter()
    assert pusher.observe(rows) == 0
    rerun = time.perf_counter() - started
    singles = [row(f"S{i}", 30 + i % 60) for i in range(2_000)]
    started = time.perf_counter()
    for single in singles:
        pusher.observe([single])
    single = time.perf_counter() - started

    assert pusher.stats()["pending"] == expected + sum(r["score"] >= 60 for r in singles)
    print(f"\nobserve: 25k rows {first * 1e3:.0f} ms ({first / 25_000 * 1e6:.1f} us/row, "  # noqa: T201
          f"{expected} crossings), re-run {rerun * 1e3:.0f} ms; one row per call "
          f"{single / len(singles) * 1e6:.0f} us")
