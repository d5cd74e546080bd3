"""/metrics through the service's own app (FastAPI's TestClient), the service stood in: series by
route template, never by a request's own path, and a key unless the operator opened it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from leadscore.access.audit import AuditLog
from leadscore.access.auth import AccessList, KeyEntry, Role
from leadscore.serving import service as module

KEYS = {"admin": "admin", "prometheus": "monitoring", "sales-R1": "sales"}


@pytest.fixture
def service(settings, tmp_path) -> SimpleNamespace:
    roles = {"admin": Role(can=["portrait", "metrics"]), "monitoring": Role(can=["metrics"]),
             "sales": Role(can=["portrait"], own_accounts_only=True)}
    keys = [KeyEntry(key=key, role=role, name=key, employee_id=key) for key, role in KEYS.items()]
    return SimpleNamespace(access=AccessList(roles, keys), settings=settings,
                           audit=AuditLog(tmp_path / "audit.jsonl"))


@pytest.fixture
def client(service):
    for lookup in (module.get_current_service, module._current_service):  # as BentoML's server sets it
        module.app.dependency_overrides[lookup] = lambda: service
    module.app.state.max_body_bytes = 10_000
    yield TestClient(module.app)
    module.app.dependency_overrides.clear()
    del module.app.state.max_body_bytes


def test_requests_are_counted_by_route_template_and_no_pid_is_a_label(client):
    client.get("/portrait/P4D8A88C4F5", headers={"X-API-Key": "prometheus"})  # may not: a 403
    client.get("/no/such/path/P77")
    text = client.get("/metrics", headers={"X-API-Key": "prometheus"}).text
    assert 'endpoint="/portrait/{pid}",method="GET",status="403"' in text
    assert 'endpoint="unmatched",method="GET",status="404"' in text
    assert "P4D8A88C4F5" not in text and "P77" not in text


def test_metrics_need_a_key_whose_role_may_read_them_unless_opened(client, service):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"X-API-Key": "sales-R1"}).status_code == 403
    assert client.get("/metrics", headers={"X-API-Key": "admin"}).status_code == 200
    service.settings = service.settings.model_copy(
        update={"serving": service.settings.serving.model_copy(update={"metrics_open": True})})
    assert client.get("/metrics").status_code == 200


def test_bentomls_own_metrics_which_label_raw_paths_are_off():
    assert module.LeadScoring.config["metrics"]["enabled"] is False
