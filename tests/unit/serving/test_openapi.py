"""The service's OpenAPI document through its own app: each route's error answers, the key as a
security scheme, and a docs page that loads nothing from another site."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from leadscore.serving import service as module


@pytest.fixture
def schema() -> dict:
    module.app.openapi_schema = None  # made again from the routes of this process
    yield module.app.openapi()
    module.app.openapi_schema = None


@pytest.mark.parametrize("path, method, statuses", [
    ("/score", "post", {"401", "403", "404", "413", "422"}),
    ("/score_batch", "post", {"401", "403", "413", "422"}),
    ("/portrait/{pid}", "get", {"401", "403", "404", "422"}),
    ("/model", "get", {"401"}),
    ("/metrics", "get", {"401", "403"}),
])
def test_each_route_documents_its_error_answers_in_the_one_error_shape(schema, path, method, statuses):
    operation = schema["paths"][path][method]
    assert statuses <= set(operation["responses"])
    for status in statuses:
        content = operation["responses"][status]["content"]["application/json"]["schema"]
        assert content == {"$ref": "#/components/schemas/Error"}
    assert operation["security"] == [{"ApiKey": []}]


def test_the_key_is_a_security_scheme_of_the_header(schema):
    assert schema["components"]["securitySchemes"]["ApiKey"] | {"description": ""} == {
        "type": "apiKey", "in": "header", "name": "X-API-Key", "description": ""}


def test_the_docs_page_loads_swagger_ui_from_the_service_itself():
    client = TestClient(module.app)
    module.app.state.max_body_bytes = 10_000
    try:
        page = client.get("/api/docs")
        assert page.status_code == 200
        sources = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
        assert sources and all(source.startswith("/") for source in sources), sources
        for source in sources:
            assert client.get(source).status_code == 200, source
        assert any(source.endswith("swagger-ui-bundle.js") for source in sources)
    finally:
        del module.app.state.max_body_bytes
