"""POST /outcomes: the CRM tells how leads turned out, the loop's way back.

Opportunities opened, moved to a stage, won or lost, and what sales did with each pushed MQL
(accepted, rejected with a configured reason, recycled to nurture), one outcome or a list.
Each is in the event log before the answer (live/outcomes.py); one sent again (the same
kind, CRM id and time) is answered `duplicate` and changes nothing. A call with any bad
outcome stores none of them: the 422 names each problem, so the CRM can fix and resend all.

(No `from __future__ import annotations` here: FastAPI reads the route's annotations, which
name the permission dependency given to `build_router`.)
"""

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, HTTPException
from pydantic import BaseModel, Field

from leadscore.access.auth import Caller
from leadscore.config import OutcomeSettings
from leadscore.live.log import utc_text
from leadscore.live.outcomes import Disposition, OpportunityOutcome, Outcome, ahead_problems, reason_problems

EXAMPLE = {"kind": "disposition", "crm_id": "LEAD-2291", "pid": "P52E77B6E8D",
           "at": "2026-10-31T09:30:00Z", "disposition": "rejected", "reason": "no_budget"}


class OutcomeFate(BaseModel):
    kind: str
    crm_id: str
    at: str = Field(description="When it happened (ISO 8601, UTC).")
    status: Literal["accepted", "duplicate"] = Field(
        description="accepted: stored now; duplicate: stored before (same kind, CRM id and time), "
                    "nothing changed.")


class OutcomesResponse(BaseModel):
    accepted: int
    duplicates: int
    outcomes: list[OutcomeFate] = Field(description="Each outcome's fate, in request order.")


Store = Callable[[list[OpportunityOutcome | Disposition]], list[bool]]
UnknownPids = Callable[[list[str]], set[str]]


def build_router(store: Store, unknown_pids: UnknownPids, permission: Callable,
                 settings: OutcomeSettings, now: Callable[[], datetime], max_ahead_hours: float) -> APIRouter:
    """The /outcomes route: `store(outcomes)` appends them (True: new), `unknown_pids(pids)`
    names those of no known person; an outcome dated more than `max_ahead_hours`
    (`live.max_ahead_hours`) after the clock's `now()` is refused."""
    router = APIRouter(tags=["outcomes"])

    def outcomes(body: Annotated[list[Outcome] | Outcome, Body(openapi_examples={  # type: ignore[valid-type]
                     "rejected MQL": {"value": EXAMPLE}})],
                 who: Annotated[Caller, Depends(permission)]) -> dict:
        batch = body if isinstance(body, list) else [body]
        if len(batch) > settings.max_outcomes:
            raise HTTPException(413, f"{len(batch)} outcomes is more than the maximum of "
                                     f"{settings.max_outcomes} per call (outcomes.max_outcomes): split them")
        problems = _problems(batch, settings.rejection_reasons, unknown_pids) + [
            (i, "at", message) for i, message in ahead_problems(batch, now(), max_ahead_hours)]
        if problems:
            raise HTTPException(422, [_error(i if isinstance(body, list) else None, field, message)
                                      for i, field, message in problems])
        return describe(batch, store(batch))

    router.add_api_route(
        "/outcomes", outcomes, methods=["POST"], response_model=OutcomesResponse, name="outcomes",
        summary="Outcomes and sales dispositions from the CRM",
        description="Opportunities (`opportunity_created`, `stage_changed`, `won`, `lost`) and the "
                    "`disposition` of a pushed MQL (`accepted`, `rejected` with a reason, `recycled` "
                    f"to nurture). One outcome or a list of at most {settings.max_outcomes}. Rejection "
                    f"reasons (outcomes.rejection_reasons): {', '.join(settings.rejection_reasons)}. "
                    "An outcome already stored (same kind, CRM id and time) changes nothing.",
        responses={413: {"description": f"More than {settings.max_outcomes} outcomes in one call"}})
    return router


def _problems(batch: Sequence[OpportunityOutcome | Disposition], reasons: Sequence[str],
              unknown_pids: UnknownPids) -> list[tuple[int, str, str]]:
    """(position, field, message) of what the models cannot check: configured reasons, known people."""
    unknown = unknown_pids(list(dict.fromkeys(o.pid for o in batch)))
    return ([(i, "reason", message) for i, message in reason_problems(batch, reasons)]
            + [(i, "pid", f"unknown pid {o.pid!r}: no such person (the PID of the MQL push or of /score)")
               for i, o in enumerate(batch) if o.pid in unknown])


def _error(position: int | None, field: str, message: str) -> dict:
    """A 422 item as FastAPI words its own: where in the body (the position in a list), what."""
    where = ["body"] if position is None else ["body", position]
    return {"loc": [*where, field], "msg": message, "type": "value_error"}


def describe(batch: Sequence[OpportunityOutcome | Disposition], stored: Sequence[bool]) -> dict:
    """The answer: each outcome, in request order, accepted now or a duplicate."""
    fates = [{"kind": o.kind, "crm_id": o.crm_id, "at": utc_text(o.at),
              "status": "accepted" if new else "duplicate"} for o, new in zip(batch, stored, strict=True)]
    return {"accepted": sum(stored), "duplicates": len(stored) - sum(stored), "outcomes": fates}
