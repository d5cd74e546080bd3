"""The segments' HTTP routes and builder page, as a FastAPI router the service mounts.

Every route, the page included, depends on `guard`, the service's check of the caller's
key and role (only roles that may use `segments` pass). A body that is not a segment (its
shape, or a date, window or number out of bounds) is a 422 saying what to fix, like every
request the service cannot validate; a segment that does not compile against the data is a
400 whose message names the bad field, event type, property or tag and lists the valid
ones; an unknown saved segment is a 404; saving a name another saved segment has (without
case and outer spaces) is a 409 naming it.

Previews and exports show people (masked), the whole base for an export: each one is
written to the audit log (leadscore/access/audit.py) with its answer, the segment, and the
members a preview showed, as portraits are.

Routes (under /segments): POST /count, POST /preview?limit=N, POST (save), GET (list, newest
first, ?limit=N&offset=M: at most MAX_LIST a page, with the total), GET /vocabulary, GET /page,
GET /{id}, DELETE /{id or name} (audited), GET /{id}/export (CSV, audited; with
`?within_frequency_cap=true` without the members already at their contact frequency cap,
marketing/frequency.py, how many in the header `X-Left-Out-Over-Cap`).

Embedding the page (`GET /segments/page`) in another system's page:

    <iframe src="https://leadscore.example.com/login?next=/segments/page" width="100%" height="900">

The page is guarded like every route, and a frame cannot send headers, so the caller is
known by the `leadscore_session` cookie that the service's /login sets (a session's token,
never the key); the page's own calls go to its own origin and carry it. A site that frames
the page from another site (the CRM at crm.example.com, leadscore at leadscore.other.com)
only gets the cookie sent if it is
`SameSite=None; Secure; Partitioned` and set inside the frame: browsers block third-party
cookies, and a partitioned cookie lives in the jar of the framing site. Hence the iframe
opens /login (the user signs in once per framing site) and /login sends it on to the page.
A frame of the same site (crm.example.com framing leadscore.example.com) needs nothing more.
The page sets no `X-Frame-Options`; its Content-Security-Policy allows only its own inline
code and calls to its own origin, and no `frame-ancestors`, so any site may frame it.

When it saves a segment inside a frame, the page tells the framing page with
`postMessage({type: "leadscore:segment-saved", id, name, count}, parent_origin)` if its URL
carries `?parent_origin=https://crm.example.com` (nothing is posted without it).
"""

# No `from __future__ import annotations` here: FastAPI reads the routes' `Annotated`
# parameters, which name `body` and `guard`, locals of build_router, at definition time.
from collections.abc import Callable
from importlib.resources import files
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Query
from fastapi.responses import HTMLResponse, StreamingResponse

from leadscore.access.audit import AuditLog
from leadscore.access.auth import Caller
from leadscore.segments.compile import MEMBER_COLUMNS
from leadscore.segments.dsl import Segment, SegmentError, examples, parse_segment
from leadscore.segments.engine import SegmentEngine
from leadscore.segments.store import NameTaken

MAX_PREVIEW = 100
LIST_PAGE, MAX_LIST = 50, 500  # saved segments a GET /segments lists by default, and at most
PAGE_HEADERS = {"Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline'; "
                                           "style-src 'unsafe-inline'; img-src 'self' data:",
                "Cache-Control": "no-store"}
# what a preview or an export shows of each member, for the audit log (as a portrait's fields)
MEMBER_FIELDS = [f"{name}:masked" if name in ("email", "phone") else name for name in MEMBER_COLUMNS]
SEGMENT_ROUTES = ("/segments/count", "/segments/preview", "/segments")  # POST: a Segment in the body
Answers = dict[int | str, dict[str, Any]]  # a route's documented answers, as FastAPI takes them
NOT_IN_DATA: Answers = {400: {"description": "A field, event type, property or tag the data does not hold "
                                             "(named, with the valid ones)"}}
NO_SUCH: Answers = {404: {"description": "No saved segment of that id (or name)"}}
BODY_HELP = ("A segment: `{name, where: {all|any: [...]} | {not: ...} | condition}` "
             "(see GET /segments/vocabulary and segments/dsl.py)")


def _bad_segment(call: Callable[[], Any]) -> Any:
    """Run `call`, turning a segment that does not compile into a 400."""
    try:
        return call()
    except SegmentError as error:
        raise HTTPException(status_code=400, detail=str(error)) from None


def _parsed(data: dict) -> Segment:
    """The body as a Segment, or a 422 naming what to fix: it is never run or saved."""
    try:
        return parse_segment(data)
    except SegmentError as error:
        raise HTTPException(status_code=422, detail=str(error)) from None


def _saved(engine: SegmentEngine, segment_id: str) -> dict:
    try:
        return engine.saved(segment_id)
    except KeyError:
        raise HTTPException(status_code=404, detail=f"no saved segment {segment_id!r}; "
                                                    "GET /segments lists them") from None


def _saved_anew(engine: SegmentEngine, segment: dict, who: Caller) -> dict:
    try:
        return _bad_segment(lambda: engine.save(_parsed(segment), who.employee_id))
    except NameTaken as taken:
        clash = taken.existing
        raise HTTPException(status_code=409, detail=(
            f"a segment named {clash['name']!r} is saved already ({clash['id']}, by "
            f"{clash['created_by'] or 'someone'} at {clash['created_at']}): choose another name, "
            f"or DELETE /segments/{clash['id']} first")) from None


def _deleted(engine: SegmentEngine, id_or_name: str) -> dict:
    try:
        return engine.store.delete(id_or_name)
    except KeyError:
        raise HTTPException(status_code=404, detail=f"no saved segment {id_or_name!r} (by id or by "
                                                    "name); GET /segments lists them") from None


def _audited(audit: AuditLog, who: Caller, action: str, detail: dict, call: Callable[[], Any],
             shown: Callable[[Any], dict] = lambda result: {}, fields: list[str] = MEMBER_FIELDS) -> Any:
    """Run `call` and audit its answer: 200 with `detail`, what `shown` says of the result and
    the `fields` of people it read, or the status of the HTTPException it raised."""
    try:
        result = call()
    except HTTPException as error:
        audit.record(who, action, None, error.status_code, [], detail)
        raise
    audit.record(who, action, None, 200, fields, {**detail, **shown(result)})
    return result


def build_router(engine: SegmentEngine, guard: Callable[..., Any], audit: AuditLog) -> APIRouter:
    """The /segments routes over `engine`; `guard` (a FastAPI dependency returning the Caller
    or raising 401/403) runs before each of them. Previews and exports go to `audit`."""
    router = APIRouter(prefix="/segments", tags=["segments"], dependencies=[Depends(guard)])
    page = (files("leadscore.segments") / "templates" / "builder.html").read_text()
    shipped = {name: segment.to_data() for name, segment in examples().items()}
    body = Body(description=BODY_HELP, examples=[shipped["seed"]])

    @router.post("/count", responses=NOT_IN_DATA)
    def count(segment: Annotated[dict, body]) -> dict:
        """Live count of the segment, and its members by tier of the latest scoring."""
        return _bad_segment(lambda: engine.count(_parsed(segment)))

    @router.post("/preview", responses=NOT_IN_DATA)
    def preview(segment: Annotated[dict, body], caller: Annotated[Caller, Depends(guard)],
                limit: Annotated[int, Query(ge=1, le=MAX_PREVIEW)] = 20) -> dict:
        """The first `limit` members, best score first; email and phone masked. Audited."""
        members = _audited(audit, caller, "segment_preview", {"segment": segment.get("name")},
                           lambda: _bad_segment(lambda: engine.preview(_parsed(segment), limit)),
                           lambda shown: {"members": [member["pid"] for member in shown]})
        return {"limit": limit, "members": members}

    @router.post("", status_code=201, responses={
        **NOT_IN_DATA, 409: {"description": "A segment of that name is saved already (named)"}})
    def save(segment: Annotated[dict, body], caller: Annotated[Caller, Depends(guard)]) -> dict:
        """Save the segment; returns its id (and the stored record). A name saved already is a 409."""
        return _saved_anew(engine, segment, caller)

    @router.get("")
    def saved_segments(limit: Annotated[int, Query(ge=1, le=MAX_LIST)] = LIST_PAGE,
                       offset: Annotated[int, Query(ge=0)] = 0) -> dict:
        """A page of the saved segments, newest first (id, name, description, created_at,
        created_by), and how many there are in all (`total`)."""
        summaries = engine.store.list()
        return {"total": len(summaries), "limit": limit, "offset": offset,
                "segments": summaries[offset:offset + limit]}

    @router.get("/vocabulary")
    def vocabulary() -> dict:
        """What a segment may name: fields, event types and properties, tags, score fields,
        operators per type and known values; and the shipped example segments."""
        return {**engine.vocabulary(), "examples": shipped}

    @router.get("/page", response_class=HTMLResponse)
    def builder_page() -> HTMLResponse:
        """The segment builder; embeddable in an iframe (see the module docstring)."""
        return HTMLResponse(page, headers=PAGE_HEADERS)

    @router.get("/{segment_id}", responses=NO_SUCH)
    def saved_segment(segment_id: str) -> dict:
        return _saved(engine, segment_id)

    @router.delete("/{id_or_name}", responses=NO_SUCH)
    def delete(id_or_name: str, caller: Annotated[Caller, Depends(guard)]) -> dict:
        """Remove a saved segment, named by its id or its name; returns what was removed. Audited."""
        removed = _audited(audit, caller, "segment_delete", {"segment": id_or_name},
                           lambda: _deleted(engine, id_or_name), fields=[])
        return {"deleted": removed}

    @router.get("/{segment_id}/export", responses={**NOT_IN_DATA, **NO_SUCH})
    def export(segment_id: str, caller: Annotated[Caller, Depends(guard)],
               within_frequency_cap: Annotated[bool, Query(description=(
                   "Leave out the members whose emails of the last days already reach their contact "
                   "frequency cap (GET /marketing, `leadscore marketing frequency`)"))] = False,
               ) -> StreamingResponse:
        """Every member of a saved segment as CSV, email and phone masked. Audited."""
        capped = {"within_frequency_cap": True} if within_frequency_cap else {}
        record = _audited(audit, caller, "segment_export", {"segment_id": segment_id, **capped},
                          lambda: _saved(engine, segment_id))
        leave_out = _bad_segment(lambda: engine.over_frequency_cap(record["segment"])) \
            if within_frequency_cap else set()
        chunks = _bad_segment(lambda: engine.export_csv(record["segment"], leave_out))
        return StreamingResponse(chunks, media_type="text/csv", headers={
            "Content-Disposition": f'attachment; filename="{segment_id}.csv"',
            "X-Left-Out-Over-Cap": str(len(leave_out))})

    return router


def document_segment_body(schema: dict) -> None:
    """Type the body of the SEGMENT_ROUTES in an OpenAPI document (the service's) as the DSL's
    Segment, with its conditions told apart by `kind`: the routes read the body as a dict, to
    answer a 422 that says what to fix, so FastAPI cannot see the model."""
    model = Segment.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(model.pop("$defs", {}))
    schemas["Segment"] = model
    for path in set(SEGMENT_ROUTES) & set(schema["paths"]):
        body = schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        body["schema"] = {"$ref": "#/components/schemas/Segment"}
