"""The /segments routes through FastAPI's TestClient, behind a stand-in for the service's guard."""

from __future__ import annotations

import csv
import io

import pytest
from fastapi import FastAPI, Header, HTTPException
from fastapi.testclient import TestClient
from segments_tiny_world import SEED_MEMBERS

from leadscore.access.audit import AuditLog
from leadscore.access.auth import Caller
from leadscore.segments.api import build_router
from leadscore.segments.dsl import examples

MARKETER = Caller(name="Marketing", role="marketer", employee_id="E0100", can=frozenset({"segments"}),
                  own_accounts_only=False, reveal_pii=False)
KEYS = {"marketer-key": MARKETER}


def guard(x_api_key: str | None = Header(None)) -> Caller:
    """Like the service's: no key 401, a key without the `segments` right 403."""
    if x_api_key is None:
        raise HTTPException(401, "no API key")
    if x_api_key not in KEYS:
        raise HTTPException(403, "may not use segments")
    return KEYS[x_api_key]


@pytest.fixture
def audit(tmp_path) -> AuditLog:
    return AuditLog(tmp_path / "audit.jsonl")


@pytest.fixture
def client(own_engine, audit) -> TestClient:
    app = FastAPI()
    app.include_router(build_router(own_engine, guard, audit))
    return TestClient(app, headers={"X-API-Key": "marketer-key"})


SEED = examples()["seed"].to_data()


def test_count(client):
    response = client.post("/segments/count", json=SEED)
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == len(SEED_MEMBERS) and body["by_tier"]["high-value"] == 1
    assert set(body) == {"count", "by_tier", "by_axes", "as_of", "sql_ms"}
    # every scored member on the fit x interest plane, in 10-point cells: P1 at fit 75, interest 55
    assert sum(n for *_, n in body["by_axes"]) == body["count"] - body["by_tier"]["unscored"]
    assert [7, 5, 1] in body["by_axes"]


def test_preview_is_masked_and_limited(client):
    response = client.post("/segments/preview", params={"limit": 2}, json=SEED)
    members = response.json()["members"]
    assert response.status_code == 200 and len(members) == 2
    assert members[0]["pid"] == "P1" and members[0]["email"] == "a***@acme.com"
    assert client.post("/segments/preview", params={"limit": 101}, json=SEED).status_code == 422


def test_save_list_get_export(client):
    saved = client.post("/segments", json=SEED)
    assert saved.status_code == 201
    segment_id = saved.json()["id"]
    assert saved.json()["created_by"] == "E0100"
    assert [s["id"] for s in client.get("/segments").json()["segments"]] == [segment_id]
    assert client.get(f"/segments/{segment_id}").json()["segment"] == SEED
    export = client.get(f"/segments/{segment_id}/export")
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    assert f'filename="{segment_id}.csv"' in export.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert {row["pid"] for row in rows} == SEED_MEMBERS
    assert "alice@acme.com" not in export.text


def test_previews_and_exports_are_audited_with_their_answer_and_the_members_shown(client, audit):
    preview = client.post("/segments/preview", params={"limit": 2}, json={**SEED, "name": "seed"})
    saved = client.post("/segments", json=SEED).json()["id"]
    client.get(f"/segments/{saved}/export")
    client.get("/segments/seg_000000000000/export")
    client.post("/segments/preview", json={"where": {"kind": "event", "event_type": "email_opn"}})
    client.post("/segments/count", json=SEED)  # a count shows no one: not audited
    entries = audit.entries()
    assert [(e["action"], e["status"], e["employee_id"]) for e in entries] == [
        ("segment_preview", 200, "E0100"), ("segment_export", 200, "E0100"),
        ("segment_export", 404, "E0100"), ("segment_preview", 400, "E0100")]
    assert entries[0]["detail"] == {"segment": "seed",
                                    "members": [m["pid"] for m in preview.json()["members"]]}
    assert "email:masked" in entries[0]["fields"] and entries[1]["detail"] == {"segment_id": saved}


def test_a_segment_the_data_does_not_hold_is_a_400_naming_it(client):
    response = client.post("/segments/count", json={"where": {"kind": "event", "event_type": "email_opn"}})
    assert response.status_code == 400
    assert "unknown event type `email_opn`; valid event types: " in response.json()["detail"]
    assert "email_open" in response.json()["detail"]
    unknown_field = client.post("/segments/preview", json={"where": {"kind": "attribute", "field": "industry",
                                                                     "op": "=", "value": "software"}})
    assert unknown_field.status_code == 400 and "company.industry" in unknown_field.json()["detail"]
    assert client.get("/segments").json()["total"] == 0  # nothing saved


def test_a_body_that_is_not_a_segment_is_a_422_and_not_saved(client):
    shape = client.post("/segments", json={"where": {"kind": "sql"}})
    assert shape.status_code == 422 and "attribute, tag, event or score" in shape.json()["detail"]
    assert client.get("/segments").json()["total"] == 0


OPEN = {"kind": "event", "event_type": "email_open"}
EMPLOYEES = {"kind": "attribute", "field": "company.employees"}
BEYOND_128_BITS = 2**130


@pytest.mark.parametrize("segment, fix", [
    ({"where": {**OPEN, "window": {"last_days": 1_000_000}}}, "window.last_days: at most 36525 days"),
    ({"where": {**OPEN, "window": {"to": "9999-12-31"}}}, "window.to: 9999-12-31 is not between 1900"),
    ({"where": {**OPEN, "window": {"from": "0001-01-01"}}}, "window.from: 0001-01-01 is not between"),
    ({"as_of": "0001-01-01", "where": {**OPEN, "window": {"last_days": 7}}}, "as_of: 0001-01-01 is not"),
    ({"where": {**OPEN, "min_count": BEYOND_128_BITS}}, "min_count: Input should be less than or equal"),
    ({"where": {**EMPLOYEES, "op": ">=", "value": BEYOND_128_BITS}},
     "value: numbers are at most 9,223,372,036,854,775,807"),
    ({"where": {**EMPLOYEES, "op": "in", "value": [1, -BEYOND_128_BITS]}},
     "value: numbers are at most"),
    ({"where": {**OPEN, "where": [{"property": "subject", "op": "=", "value": BEYOND_128_BITS}]}},
     "where.0.value: numbers are at most"),
])
def test_a_segment_out_of_bounds_is_a_422_saying_what_to_fix_and_never_saved(client, segment, fix):
    for route in ("/segments/count", "/segments/preview", "/segments"):
        response = client.post(route, json=segment)
        assert response.status_code == 422 and fix in response.json()["detail"], route
    assert client.get("/segments").json()["total"] == 0


def test_unknown_saved_segment_is_a_404(client):
    assert client.get("/segments/seg_000000000000").status_code == 404
    assert client.get("/segments/seg_000000000000/export").status_code == 404


def test_vocabulary_and_page(client):
    vocabulary = client.get("/segments/vocabulary").json()
    assert "email_open" in vocabulary["events"] and vocabulary["examples"]["seed"] == SEED
    page = client.get("/segments/page")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "x-frame-options" not in page.headers
    assert "frame-ancestors" not in page.headers["content-security-policy"]
    assert "<script src" not in page.text and "<link rel=\"stylesheet\"" not in page.text  # self-contained


def _requests(app: FastAPI):
    """One request per segment route (from the OpenAPI paths), with a made-up id in the path."""
    for path, methods in app.openapi()["paths"].items():
        for method in methods:
            yield method.upper(), path.replace("{segment_id}", "seg_000000000000").replace(
                "{id_or_name}", "seg_000000000000")


@pytest.mark.parametrize("key, status", [(None, 401), ("crm-key", 403)])
def test_every_route_depends_on_the_guard(own_engine, audit, key, status):
    app = FastAPI()
    app.include_router(build_router(own_engine, guard, audit))
    client = TestClient(app)
    requests = list(_requests(app))
    assert len(requests) == 9  # count, preview, save, list, vocabulary, page, get, delete, export
    for method, path in requests:
        headers = {"X-API-Key": key} if key else {}
        response = client.request(method, path, json=SEED, headers=headers)
        assert response.status_code == status, (method, path)


def test_a_saved_name_is_unique_whatever_its_case_and_the_clash_is_a_409_naming_it(client):
    first = client.post("/segments", json={**SEED, "name": "Product A fans"}).json()
    clash = client.post("/segments", json={**SEED, "name": " product a FANS "})
    assert clash.status_code == 409
    assert "'Product A fans'" in clash.json()["detail"] and first["id"] in clash.json()["detail"]
    assert client.get("/segments").json()["total"] == 1
    assert client.post("/segments", json={**SEED, "name": "Product A fans 2"}).status_code == 201


def test_a_saved_segment_is_deleted_by_id_or_by_name_and_each_delete_is_audited(client, audit):
    by_id = client.post("/segments", json={**SEED, "name": "one"}).json()["id"]
    client.post("/segments", json={**SEED, "name": "two"})
    assert client.delete(f"/segments/{by_id}").json()["deleted"]["name"] == "one"
    assert client.delete("/segments/TWO").json()["deleted"]["name"] == "two"
    assert client.get("/segments").json()["total"] == 0
    assert client.get(f"/segments/{by_id}").status_code == 404
    missing = client.delete("/segments/two")
    assert missing.status_code == 404 and "'two'" in missing.json()["detail"]
    assert client.delete("/segments/one", headers={"X-API-Key": "crm-key"}).status_code == 403
    assert [(e["action"], e["status"], e["detail"]["segment"]) for e in audit.entries()] == [
        ("segment_delete", 200, by_id), ("segment_delete", 200, "TWO"), ("segment_delete", 404, "two")]
    assert client.post("/segments", json={**SEED, "name": "one"}).status_code == 201  # the name is free


def test_saved_segments_are_listed_a_page_at_a_time_with_the_total(client):
    ids = [client.post("/segments", json={**SEED, "name": f"s{i}"}).json()["id"] for i in range(5)]
    page = client.get("/segments", params={"limit": 2, "offset": 1}).json()
    everything = client.get("/segments").json()
    assert page["total"] == everything["total"] == 5 and len(page["segments"]) == 2
    assert page["segments"] == everything["segments"][1:3]
    assert {s["id"] for s in everything["segments"]} == set(ids) and everything["limit"] == 50
    assert client.get("/segments", params={"limit": 501}).status_code == 422
    assert client.get("/segments", params={"offset": -1}).status_code == 422


def test_an_export_makes_text_of_every_cell_a_spreadsheet_would_run_as_a_formula(world_settings, audit):
    import duckdb

    from leadscore.segments.engine import SegmentEngine

    formulas = {"P1": '=HYPERLINK("http://x.example","y")', "P2": "+1+1", "P4": "-2+3", "P6": "@SUM(A1)",
                "P7": "\tcmd"}
    with duckdb.connect(str(world_settings.data_dir / "middle.duckdb")) as con:
        for pid, title in formulas.items():
            con.execute("UPDATE person SET title = ? WHERE pid = ?", [title, pid])
    app = FastAPI()
    app.include_router(build_router(SegmentEngine(world_settings), guard, audit))
    client = TestClient(app, headers={"X-API-Key": "marketer-key"})
    saved = client.post("/segments", json=SEED).json()["id"]
    rows = list(csv.DictReader(io.StringIO(client.get(f"/segments/{saved}/export").text)))
    assert {row["pid"]: row["title"] for row in rows} == {pid: "'" + title for pid, title in formulas.items()}
    assert not [cell for row in rows for cell in row.values() if cell[:1] in ("=", "+", "-", "@", "\t", "\r")]


def test_the_openapi_types_a_segment_body_with_its_conditions_told_apart_by_kind(client):
    from leadscore.segments.api import document_segment_body

    schema = client.app.openapi()
    document_segment_body(schema)
    schemas = schema["components"]["schemas"]
    for path in ("/segments/count", "/segments/preview", "/segments"):
        body = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert body == {"$ref": "#/components/schemas/Segment"}
    where = schemas["Segment"]["properties"]["where"]
    kinds = {schemas[ref["$ref"].rsplit("/", 1)[1]]["properties"].get("kind", {}).get("const")
             for ref in where["oneOf"]}
    assert {"attribute", "tag", "event", "score"} <= kinds
    assert schemas["EventCondition"]["properties"]["min_count"]["maximum"] == 1_000_000
