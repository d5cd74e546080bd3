"""POST /ingest/{source}: a source system's records, as they happen, to fresh scores.

One route per source system, each documented by its record model (live/sources.py), so
that the OpenAPI page shows every schema. A call takes one record or a list of them; it
answers, per record, whether it was accepted (with its PID), a duplicate of one already
stored (re-sending changes nothing) or quarantined (with the reason), and the people its
records name. Everything is in the event log before the answer; the people's features and
scores follow it (live/online.py: at a quiet time before the answer, under load within an
update or so).

(No `from __future__ import annotations` here: FastAPI reads the route's annotations, which
name a model chosen per route at run time.)
"""

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, HTTPException
from pydantic import BaseModel, Field

from leadscore.access.auth import Caller
from leadscore.live.ingest import Ingested
from leadscore.live.sources import SOURCES, SourceRecord


class IngestedRecord(BaseModel):
    source_record_id: str
    status: Literal["accepted", "duplicate", "quarantined"]
    pid: str | None = Field(None, description="The person the record was resolved to (accepted, or a "
                                              "duplicate: when first stored; null for an anonymous web "
                                              "session).")
    reason: str | None = Field(None, description="Why the record was quarantined.")


class IngestResponse(BaseModel):
    source: str
    at: str = Field(description="Now, by the clock: when the records were received (ISO 8601, UTC). "
                                "The people's features and scores follow: `/score` shows a "
                                "`feature_timestamp` (whole seconds) at or after this instant's "
                                "second once they are fresh.")
    accepted: int
    duplicates: int
    quarantined: int
    records: list[IngestedRecord] = Field(description="Each record's fate, in request order.")
    people: list[str] = Field(description="The PIDs the records name (new records' people are "
                                          "re-scored at once, behind the answer).")


def describe(done: Ingested, order: list[str], at: datetime) -> dict:
    """The answer of one call, its records in request order."""
    fate: dict[str, dict] = {}
    for item in done.accepted:
        fate[item["source_record_id"]] = {"status": "accepted", "pid": item["pid"]}
    for item in done.quarantined:
        fate[item["source_record_id"]] = {"status": "quarantined", "reason": item["reason"]}
    def duplicate(i: str) -> dict:  # stored before: with its person, when it has one
        return {"status": "duplicate", "pid": done.duplicate_pids.get(i)}

    records = [{"source_record_id": i, **(fate.get(i) or duplicate(i))} for i in order]
    return {"source": done.source, "at": at.isoformat(), "accepted": len(done.accepted),
            "duplicates": len(done.duplicates),
            "quarantined": len(done.quarantined), "records": records, "people": done.touched}


Ingest = Callable[[str, list[SourceRecord]], dict]


def errors_of_the_shape_sent(errors: Sequence[dict], body: object) -> list[dict]:
    """A call's body is one record or a list of them, and pydantic checks a bad one against
    both readings: a single bad record comes back with "Input should be a valid list" beside
    its real error, both located under pydantic's internal name of each reading
    (`list[function-after[...]]`). Keep the errors of the reading that matches what was sent,
    located as the client wrote it (["body", 0, "started_at"])."""
    many = isinstance(body, list)
    kept = []
    for error in errors:
        loc = list(error.get("loc", ()))
        if len(loc) > 1 and loc[0] == "body" and isinstance(loc[1], str):
            if loc[1].startswith("list[") != many:
                continue  # the other reading
            error = {**error, "loc": ("body", *loc[2:])}
        kept.append(error)
    return kept or list(errors)


def build_router(ingest: Ingest, permission: Callable, max_records: int) -> APIRouter:
    """The /ingest routes; `ingest(source, records)` does the work and returns the answer."""
    router = APIRouter(tags=["ingest"])
    for source, model in SOURCES.items():
        router.add_api_route(
            f"/ingest/{source}", _endpoint(source, model, ingest, permission, max_records),
            methods=["POST"], response_model=IngestResponse, name=f"ingest_{source}",
            summary=f"Ingest {source.replace('_', ' ')}",
            description=f"{model.__doc__} One record or a list of at most {max_records} "
                        "(`live.max_records`); a record already stored (same id) changes nothing.",
            responses={413: {"description": f"More than {max_records} records in one call"}})
    router.add_api_route("/ingest/{source}", _unknown_source(permission), methods=["POST"],
                         include_in_schema=False)
    return router


def _unknown_source(permission: Callable) -> Callable:
    """After every source's route: a 404 that names the sources there are."""
    def unknown_source(source: str, who: Annotated[Caller, Depends(permission)]) -> None:
        raise HTTPException(404, f"no source system {source[:100]!r}: POST /ingest/<source> with one of "
                                 f"{', '.join(SOURCES)}")

    return unknown_source


def _endpoint(source: str, model: type[SourceRecord], ingest: Ingest, permission: Callable,
              max_records: int) -> Callable:
    def endpoint(records: Annotated[list[model] | model, Body()],  # type: ignore[valid-type]
                 who: Annotated[Caller, Depends(permission)]) -> dict:
        batch = records if isinstance(records, list) else [records]
        if len(batch) > max_records:
            raise HTTPException(413, f"{len(batch)} records is more than the maximum of {max_records} "
                                     "per call (live.max_records): split them")
        return ingest(source, batch)

    endpoint.__name__ = f"ingest_{source}"
    return endpoint
