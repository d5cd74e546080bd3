"""What a request may make the service do before a route runs, through the service's own app
(FastAPI's TestClient) with the service and the caller stood in: a body over
serving.max_body_bytes and a batch over serving.max_batch are 413s before anything is parsed
or validated, and a feature row's 422 stays small whatever the row."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from fastapi import HTTPException
from fastapi.testclient import TestClient
from toy_model import FEATURES, make_scorer

from leadscore.access.auth import Caller
from leadscore.serving import service as module
from leadscore.serving.feature_row import MAX_NAMED

CRM = Caller(name="CRM", role="crm", employee_id="", can=frozenset({"score"}), own_accounts_only=False,
             reveal_pii=False)
MAX_BYTES = 10_000


@pytest.fixture
def client(settings):
    """The service's app with a stand-in service (its settings only) and a caller who may score."""
    stand_in = SimpleNamespace(settings=settings)
    overrides = module.app.dependency_overrides
    for lookup in (module.get_current_service, module._current_service):  # as BentoML's server sets it
        overrides[lookup] = lambda: stand_in
    overrides[module.caller] = lambda: CRM
    module.app.state.max_body_bytes = MAX_BYTES
    yield TestClient(module.app)
    module.app.dependency_overrides.clear()
    del module.app.state.max_body_bytes


def test_a_body_over_the_limit_is_a_413_naming_the_setting_before_it_is_read(client):
    big = {"items": [{"pid": "P" * 60}] * 200}
    answer = client.post("/score_batch", json=big)
    assert answer.status_code == 413 and "serving.max_body_bytes" in answer.json()["detail"]
    chunks = iter([b'{"items": [', b'{"pid": "P1"}, ' * 1000, b'{"pid": "P2"}]}'])  # no Content-Length
    answer = client.post("/score_batch", content=chunks, headers={"content-type": "application/json"})
    assert answer.status_code == 413 and "10,000 bytes" in answer.json()["detail"]


def test_a_batch_over_max_batch_is_a_413_before_its_items_are_validated(client, settings):
    limit = settings.serving.max_batch
    module.app.state.max_body_bytes = 10**8
    invalid = [{"not_a_field": i} for i in range(limit + 1)]  # each one a 422 if it were validated
    answer = client.post("/score_batch", json={"items": invalid})
    assert answer.status_code == 413 and f"maximum of {limit}" in answer.json()["detail"]
    assert client.post("/score_batch", json={"items": invalid[:2]}).status_code == 422


@pytest.fixture(scope="module")
def scorer():
    return make_scorer("lightgbm")[0]


def _problems(row: dict, scorer) -> dict[tuple, str]:
    with pytest.raises(HTTPException) as error:
        module._check_feature_row(row, scorer, ["body"])
    assert error.value.status_code == 422
    return {tuple(problem["loc"]): problem["msg"] for problem in error.value.detail}


def test_unknown_feature_names_are_listed_up_to_a_bound_and_the_valid_ones_named_once(scorer):
    row = {f"colour_{i:03d}": 1 for i in range(500)} | {"x" * 10_000: 1}
    problems = _problems(row, scorer)
    assert len(problems) == MAX_NAMED + 1
    assert "unknown feature 'colour_000'" in problems[("body", "features", "colour_000")]
    summary = problems[("body", "features")]
    assert "501 unknown feature name(s); the first 20 are listed" in summary
    assert all(summary.count(name) == 1 for name in FEATURES.all)
    assert sum(message.count("visits_30d") for message in problems.values()) == 1
    assert len(str(problems)) < 5_000
