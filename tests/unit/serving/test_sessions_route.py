"""/login and /logout through the service's own app (FastAPI's TestClient), the service stood in
by as many "workers" as a test needs over one session table: the cookie holds a session's token,
never the key; it is no API key; logout ends it in every worker."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from leadscore.access.audit import AuditLog
from leadscore.access.auth import AccessList, KeyEntry, Role
from leadscore.access.sessions import SessionStore
from leadscore.serving import service as module

KEY = "ops-secret-key"


def _worker(settings, state_dir) -> SimpleNamespace:
    access = AccessList({"monitoring": Role(can=["metrics"])},
                        [KeyEntry(key=KEY, role="monitoring", name="ops", employee_id="E9")])
    return SimpleNamespace(access=access, settings=settings, audit=AuditLog(state_dir / "audit.jsonl"),
                           sessions=SessionStore(state_dir, ttl_s=3600))


@pytest.fixture
def workers(settings, tmp_path) -> list[SimpleNamespace]:
    return [_worker(settings, tmp_path), _worker(settings, tmp_path)]


def _client(worker: SimpleNamespace, base_url: str = "http://leadscore.example.com") -> TestClient:
    for lookup in (module.get_current_service, module._current_service):  # as BentoML's server sets it
        module.app.dependency_overrides[lookup] = lambda: worker
    module.app.state.max_body_bytes = 10_000
    return TestClient(module.app, base_url=base_url, follow_redirects=False)


@pytest.fixture(autouse=True)
def _app_restored():
    yield
    module.app.dependency_overrides.clear()
    del module.app.state.max_body_bytes


def _sign_in(client: TestClient) -> tuple[str, str]:
    """(the session cookie's value, its whole Set-Cookie line)."""
    answer = client.post("/login", data={"key": KEY, "next": "/metrics"})
    assert answer.status_code == 303 and answer.headers["location"] == "/metrics"
    line = answer.headers["set-cookie"]
    client.cookies.clear()  # each request below sends the cookie it means to
    return line.split(";")[0].removeprefix("leadscore_session="), line


def test_the_cookie_holds_a_session_token_not_the_key_and_is_no_api_key(workers):
    client = _client(workers[0])
    token, line = _sign_in(client)
    assert KEY not in line and token and token != KEY
    assert "HttpOnly" in line and "Secure" in line  # a host other than loopback, even on http
    assert client.get("/metrics", headers={"cookie": f"leadscore_session={token}"}).status_code == 200
    assert client.get("/metrics", headers={"X-API-Key": token}).status_code == 401
    assert client.get("/metrics", headers={"cookie": f"leadscore_session={KEY}"}).status_code == 401


def test_only_loopback_on_plain_http_gets_a_cookie_without_secure(workers):
    assert "Secure" not in _sign_in(_client(workers[0], "http://127.0.0.1:3000"))[1]
    assert "Secure" in _sign_in(_client(workers[0], "https://localhost"))[1]


def test_logout_in_one_worker_ends_the_session_in_every_worker(workers):
    token, _ = _sign_in(_client(workers[0]))
    stolen = {"cookie": f"leadscore_session={token}"}
    assert _client(workers[1]).get("/metrics", headers=stolen).status_code == 200
    logout = _client(workers[1]).get("/logout", headers=stolen)
    assert logout.status_code == 303 and "Max-Age=0" in logout.headers["set-cookie"]
    client = _client(workers[0])
    assert client.get("/metrics", headers=stolen).status_code == 401
    page = client.get("/metrics", headers={**stolen, "accept": "text/html"})
    assert page.status_code == 303 and page.headers["location"].startswith("/login")


def test_an_unknown_key_opens_no_session(workers):
    answer = _client(workers[0]).post("/login", data={"key": "guess", "next": "/metrics"})
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login?error=1")
    assert "set-cookie" not in answer.headers
