"""The /portrait route through the service's own app (FastAPI's TestClient), with the service
stood in: what a sales rep may learn of people outside their accounts, and what is audited."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from leadscore.access.audit import AuditLog
from leadscore.access.auth import AccessList, KeyEntry, Role
from leadscore.serving import service as module
from leadscore.serving.portrait.errors import UnknownPerson
from leadscore.serving.portrait.schemas import Engagement, PersonProfile, Portrait

OWNERS = {"P1": "R1", "P2": "R2"}  # pid: the rep owning their account
KEYS = {"sales-R1": ("sales", "R1"), "crm": ("crm", "SYS-CRM"), "admin": ("admin", "E0001")}


class Portraits:
    """The reader stood in: two people, and the `visible_to` each portrait was read with."""

    def __init__(self) -> None:
        self.visible_to: list[str | None] = []

    def owner(self, pid: str) -> str | None:
        if pid not in OWNERS:
            raise UnknownPerson(pid)
        return OWNERS[pid]

    def portrait(self, pid: str, score: object, reveal_pii: bool,
                 visible_to: str | None = None) -> Portrait:
        self.visible_to.append(visible_to)
        return Portrait(pid=pid, generated_at=datetime.now(UTC), pii="masked",
                        person=PersonProfile(pid=pid, pii_masked=True),
                        engagement=Engagement(events_30d=0, events_90d=0, events_total=0))


@pytest.fixture
def service(tmp_path) -> SimpleNamespace:
    roles = {"sales": Role(can=["portrait"], own_accounts_only=True), "crm": Role(can=["score"]),
             "admin": Role(can=["portrait", "score"], reveal_pii=True)}
    keys = [KeyEntry(key=key, role=role, name=key, employee_id=employee)
            for key, (role, employee) in KEYS.items()]
    return SimpleNamespace(access=AccessList(roles, keys), audit=AuditLog(tmp_path / "audit.jsonl"),
                           portraits=Portraits(), _score_items=lambda items, trigger: ([], []))


@pytest.fixture
def client(service, monkeypatch):
    for lookup in (module.get_current_service, module._current_service):  # as BentoML's server sets it
        module.app.dependency_overrides[lookup] = lambda: service
    monkeypatch.setattr(module, "get_current_service", lambda: service)  # the 422 handler's look-up
    module.app.state.max_body_bytes = 10_000
    yield TestClient(module.app)
    module.app.dependency_overrides.clear()
    del module.app.state.max_body_bytes


def _get(client: TestClient, pid: str, key: str, **params: str):
    return client.get(f"/portrait/{pid}", params=params,
                      headers={"X-API-Key": key, "accept": "application/json"})


def test_a_sales_rep_gets_the_same_404_for_another_reps_pid_as_for_an_unknown_one(client, service):
    others, unknown = _get(client, "P2", "sales-R1"), _get(client, "P404", "sales-R1")
    assert others.status_code == unknown.status_code == 404
    assert others.json()["detail"] == unknown.json()["detail"].replace("P404", "P2")
    assert _get(client, "P2", "admin").status_code == 200 and _get(client, "P404", "admin").status_code == 404
    audited = [(e["pid"], e["status"], e.get("detail")) for e in service.audit.entries()]
    assert audited[0] == ("P2", 404, {"refused": "an account the caller does not own"})


def test_a_sales_reps_portrait_lists_only_the_people_of_their_own_accounts(client, service):
    assert _get(client, "P1", "sales-R1").status_code == 200
    assert _get(client, "P1", "admin").status_code == 200
    assert service.portraits.visible_to == ["R1", None]  # the rep's accounts; every account


def test_a_portraits_422_is_audited_and_a_long_pid_is_refused_and_written_capped(client, service):
    assert _get(client, "P1", "sales-R1", format="xml").status_code == 422
    long_pid = "P" * 60_000
    assert _get(client, long_pid, "crm").status_code == 422
    assert _get(client, "P" * 64, "crm").status_code == 403
    entries = service.audit.entries()
    assert [(e["who"], e["status"]) for e in entries] == [("sales-R1", 422), ("crm", 422), ("crm", 403)]
    assert entries[0]["pid"] == "P1" and entries[1]["pid"] == "P" * 64 + "... (60,000 characters)"
    assert service.audit.path.stat().st_size < 1_000
