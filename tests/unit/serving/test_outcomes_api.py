"""POST /outcomes through FastAPI's TestClient: a real event log, a stand-in for the service's guard."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi import FastAPI, Header, HTTPException
from fastapi.testclient import TestClient

from leadscore.access.auth import Caller
from leadscore.config import OutcomeSettings
from leadscore.live.log import EventLog
from leadscore.live.outcomes import append_outcomes
from leadscore.serving.outcomes import build_router

CRM = Caller(name="CRM", role="crm", employee_id="SYS-CRM", can=frozenset({"score", "outcomes"}),
             own_accounts_only=False, reveal_pii=False)
KNOWN = {"P1", "P2"}
SETTINGS = OutcomeSettings(rejection_reasons=["no_budget", "no_need"], max_outcomes=3)
NOW = datetime(2026, 11, 2, 12, tzinfo=UTC)  # the service's clock
WON = {"kind": "won", "crm_id": "OPP-1", "pid": "P1", "at": "2026-11-03T09:00:00+08:00", "amount_usd": 12000}
REJECTED = {"kind": "disposition", "crm_id": "LEAD-9", "pid": "P2", "at": "2026-11-02T10:00:00Z",
            "disposition": "rejected", "reason": "no_budget"}


def guard(x_api_key: str | None = Header(None)) -> Caller:
    """Like the service's: no key 401, a key without the `outcomes` right 403."""
    if x_api_key is None:
        raise HTTPException(401, "no API key")
    if x_api_key != "crm-key":
        raise HTTPException(403, "may not use outcomes")
    return CRM


@pytest.fixture
def log(tmp_path):
    log = EventLog(tmp_path / "events.db")
    yield log
    log.close()


@pytest.fixture
def client(log) -> TestClient:
    app = FastAPI()
    app.include_router(build_router(lambda batch: append_outcomes(log, batch, NOW),
                                    lambda pids: set(pids) - KNOWN, guard, SETTINGS, lambda: NOW, 24))
    return TestClient(app, headers={"X-API-Key": "crm-key"})


def test_one_outcome_or_a_list_and_a_resend_is_a_duplicate(client, log):
    one = client.post("/outcomes", json=WON)
    assert one.status_code == 200
    assert one.json() == {"accepted": 1, "duplicates": 0, "outcomes": [
        {"kind": "won", "crm_id": "OPP-1", "at": "2026-11-03T01:00:00.000000+00:00", "status": "accepted"}]}
    both = client.post("/outcomes", json=[REJECTED, WON]).json()
    assert (both["accepted"], both["duplicates"]) == (1, 1)
    assert [o["status"] for o in both["outcomes"]] == ["accepted", "duplicate"]
    assert len(log.outcomes()) == 2


def test_a_reason_outside_the_list_is_a_422_naming_the_allowed_ones_and_stores_nothing(client, log):
    bad = REJECTED | {"reason": "too_small"}
    response = client.post("/outcomes", json=[WON, bad])
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["body", 1, "reason"]
    assert "'too_small'" in problem["msg"] and "no_budget, no_need" in problem["msg"]
    assert log.outcomes().empty


def test_an_unknown_pid_is_a_422_naming_it(client):
    response = client.post("/outcomes", json=WON | {"pid": "P404"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "pid"]
    assert "'P404'" in response.json()["detail"][0]["msg"]


def test_an_outcome_dated_beyond_the_clocks_allowance_is_a_422_naming_at_and_the_limit(client, log):
    """As an ingested record dated ahead (live.max_ahead_hours): a CRM's wrong clock or 2150 for
    2015, stored as a label it would count as a conversion once the clock got there."""
    typo = WON | {"crm_id": "OPP-2150", "at": "2150-11-01T12:00:00Z"}
    late = WON | {"crm_id": "OPP-LATE", "at": "2026-11-03T12:00:01Z"}  # a second past the allowance
    response = client.post("/outcomes", json=[WON, typo, late])
    assert response.status_code == 422
    problems = response.json()["detail"]
    assert [problem["loc"] for problem in problems] == [["body", 1, "at"], ["body", 2, "at"]]
    assert "2150-11-01" in problems[0]["msg"] and "live.max_ahead_hours (24 h)" in problems[0]["msg"]
    assert "2026-11-03T12:00:00+00:00" in problems[0]["msg"]  # the latest time allowed
    assert log.outcomes().empty
    alone = client.post("/outcomes", json=typo)
    assert alone.status_code == 422 and alone.json()["detail"][0]["loc"] == ["body", "at"]
    soon = WON | {"at": "2026-11-03T12:00:00Z"}  # a CRM's clock a day ahead: still taken
    assert client.post("/outcomes", json=soon).status_code == 200


@pytest.mark.parametrize("body, field", [
    (WON | {"at": "yesterday"}, "at"),
    (REJECTED | {"reason": None}, "reason"),
    (WON | {"kind": "signed"}, "kind"),
    ({k: v for k, v in WON.items() if k != "crm_id"}, "crm_id"),
    (WON | {"colour": "red"}, "colour"),
])
def test_a_malformed_outcome_is_a_422_naming_its_field(client, body, field):
    response = client.post("/outcomes", json=body)
    assert response.status_code == 422 and field in str(response.json()["detail"])


def test_too_many_outcomes_is_a_413_and_no_key_a_401_and_another_role_a_403(client):
    assert client.post("/outcomes", json=[WON] * 4).status_code == 413
    assert client.post("/outcomes", json=WON, headers={"X-API-Key": "ingest-key"}).status_code == 403
    anonymous = TestClient(client.app)
    assert anonymous.post("/outcomes", json=WON).status_code == 401


def test_the_openapi_page_documents_both_kinds_and_the_reasons(client):
    schema = client.get("/openapi.json").json()
    assert {"OpportunityOutcome", "Disposition", "OutcomesResponse"} <= set(schema["components"]["schemas"])
    assert "no_budget, no_need" in schema["paths"]["/outcomes"]["post"]["description"]
