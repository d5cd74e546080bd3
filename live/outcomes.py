"""What the CRM sends back (POST /outcomes): opportunities and the sales disposition of pushed MQLs.

One pydantic model per kind of outcome, so that the OpenAPI page documents each and a
malformed outcome gets a 422 naming its field. The rejection reasons are config
(`outcomes.rejection_reasons`), not a type: `reason_problems` checks them, naming the
allowed ones, so that monitoring can count rejections by a reason it knows. An outcome dated
more than `live.max_ahead_hours` after the clock's now is refused (`ahead_problems`), by the
rule the ingest quarantines a record with.

An outcome is stored once per (kind, CRM id, time): the CRM may send it again (a retry, a
replay of its own log) and nothing changes. The kind is part of the key because a CRM often
opens an opportunity and gives it its first stage in the same instant.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Annotated, Literal, get_args

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from leadscore.live.log import EventLog, utc_text
from leadscore.live.sources import EARLIEST, LATEST, MAX_TEXT, RecordId

OpportunityKind = Literal["opportunity_created", "stage_changed", "won", "lost"]
OPPORTUNITY_KINDS: tuple[str, ...] = get_args(OpportunityKind)


class CrmOutcome(BaseModel):
    """What every outcome carries: the CRM's id, the person, and when it happened."""

    model_config = ConfigDict(extra="forbid", str_max_length=MAX_TEXT)

    crm_id: RecordId = Field(description="The CRM's id of the opportunity, or of the lead a disposition "
                                         "is about.")
    pid: str = Field(min_length=1, max_length=64,
                     description="The person (One ID PID), as the MQL push and /score gave it.")
    at: AwareDatetime = Field(description="When it happened in the CRM (ISO 8601 with a time zone). "
                                          "With the kind and the CRM id, the outcome's identity: "
                                          "sent again, it changes nothing.")

    @model_validator(mode="after")
    def _plausible_time(self) -> CrmOutcome:
        if not EARLIEST <= self.at < LATEST:
            raise ValueError(f"at: {self.at.isoformat()} is not between 1900 and 2200")
        return self


class OpportunityOutcome(CrmOutcome):
    """An opportunity opened, moved to another stage, won or lost."""

    kind: OpportunityKind
    stage: str | None = Field(None, max_length=100, description="The new stage, as the CRM names it: "
                                                                "required for `stage_changed`.")
    amount_usd: float | None = Field(None, ge=0, le=1e12, description="The opportunity's amount in USD, "
                                                                      "if known (the won amount for `won`).")

    @model_validator(mode="after")
    def _stage_when_changed(self) -> OpportunityOutcome:
        if self.kind == "stage_changed" and not self.stage:
            raise ValueError("stage: a `stage_changed` outcome names the new stage")
        return self


class Disposition(CrmOutcome):
    """What sales did with a pushed MQL: accepted it, rejected it (with a reason from
    `outcomes.rejection_reasons`) or recycled it to nurture."""

    kind: Literal["disposition"]
    disposition: Literal["accepted", "rejected", "recycled"]
    reason: str | None = Field(None, max_length=100, description="Why it was rejected: one of the "
                                                                 "configured rejection reasons; only "
                                                                 "with `rejected`.")

    @model_validator(mode="after")
    def _reason_with_rejection(self) -> Disposition:
        if (self.disposition == "rejected") != (self.reason is not None):
            raise ValueError("reason: give a reason with `rejected`, and only then")
        return self


Outcome = Annotated[OpportunityOutcome | Disposition, Field(discriminator="kind")]


def reason_problems(outcomes: Sequence[OpportunityOutcome | Disposition],
                    allowed: Sequence[str]) -> list[tuple[int, str]]:
    """(position, message) of each rejection whose reason is not in the configured list."""
    return [(i, f"unknown rejection reason {o.reason!r}; allowed (outcomes.rejection_reasons): "
                f"{', '.join(allowed)}")
            for i, o in enumerate(outcomes)
            if isinstance(o, Disposition) and o.reason is not None and o.reason not in allowed]


def ahead_problems(outcomes: Sequence[OpportunityOutcome | Disposition], now: datetime,
                   max_ahead_hours: float) -> list[tuple[int, str]]:
    """(position, message) of each outcome dated more than `live.max_ahead_hours` after the
    clock's `now`: a CRM's wrong clock or a typo (2150 for 2015), which stored as a label would
    count as a conversion once the clock reached it. The ingest's own rule for a record."""
    latest = now + timedelta(hours=max_ahead_hours)
    return [(i, f"{o.at.isoformat()} is later than the clock allows: at most live.max_ahead_hours "
                f"({max_ahead_hours:g} h) after its now, {latest.isoformat()}")
            for i, o in enumerate(outcomes) if o.at > latest]


def outcome_row(outcome: OpportunityOutcome | Disposition, received_at: datetime) -> dict:
    """The event log's `outcome` row of an outcome."""
    opportunity = outcome if isinstance(outcome, OpportunityOutcome) else None
    disposition = None if isinstance(outcome, OpportunityOutcome) else outcome
    return {"kind": outcome.kind, "crm_id": outcome.crm_id, "at": utc_text(outcome.at), "pid": outcome.pid,
            "received_at": utc_text(received_at),
            "stage": None if opportunity is None else opportunity.stage,
            "amount_usd": None if opportunity is None else opportunity.amount_usd,
            "disposition": None if disposition is None else disposition.disposition,
            "reason": None if disposition is None else disposition.reason,
            "payload": outcome.model_dump_json()}


def append_outcomes(log: EventLog, outcomes: Sequence[OpportunityOutcome | Disposition],
                    received_at: datetime) -> list[bool]:
    """Store the outcomes durably in one transaction; for each, True if stored now, False if
    it was already (the same kind, CRM id and time: nothing changes)."""
    with log.writing():
        return log.add_outcomes([outcome_row(o, received_at) for o in outcomes])
