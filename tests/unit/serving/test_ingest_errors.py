"""An ingest call's 422 speaks of the body as sent: one record, or a list of them."""

from typing import Annotated

from fastapi import Body, FastAPI
from fastapi.testclient import TestClient

from leadscore.live.sources import SOURCES
from leadscore.serving.ingest import errors_of_the_shape_sent

Session = SOURCES["web_sessions"]


def _errors(body) -> list[dict]:
    """pydantic's errors for `body` read as the ingest routes read it (one record or a list)."""
    app = FastAPI()

    @app.post("/ingest/web_sessions")
    def ingest(records: Annotated[list[Session] | Session, Body()]) -> dict:
        return {}

    answer = TestClient(app).post("/ingest/web_sessions", json=body)
    assert answer.status_code == 422
    return answer.json()["detail"]


def test_one_bad_record_is_told_its_field_only():
    body = {"session_id": "s", "started_at": "yesterday"}
    raw = _errors(body)
    assert len(raw) == 2  # pydantic's two readings: what the function cleans up
    errors = errors_of_the_shape_sent(raw, body)
    assert [e["loc"] for e in errors] == [("body", "started_at")]


def test_a_bad_record_in_a_list_is_told_its_position():
    body = [{"session_id": "s", "started_at": "2026-10-01T00:00:00Z"}, {"session_id": "t"}]
    errors = errors_of_the_shape_sent(_errors(body), body)
    assert [e["loc"] for e in errors] == [("body", 1, "started_at")]


def test_a_body_of_neither_shape_says_what_it_should_be():
    errors = errors_of_the_shape_sent(_errors("a session"), "a session")
    assert [e["loc"] for e in errors] == [("body",)] and "dictionary" in errors[0]["msg"]
