"""The source systems' records as the ingest API takes them: the raw schemas of the batch.

One pydantic model per source, so the OpenAPI page documents each and a malformed record
gets a 422 naming its field. Records that are well-formed but unusable (no identifier
at all) are not refused: like the batch, they are kept in quarantine with a reason.
`frame_of` turns accepted records into a frame typed exactly as `data/raw/<source>.parquet`,
so the batch's standardisation and SQL run on them unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Annotated, Literal, get_args, get_origin

import pandas as pd
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    model_validator,
)

from leadscore.identity.records import SOURCE_LAYOUT

EARLIEST, LATEST = datetime(1900, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC)
MAX_TEXT = 2000


class SourceRecord(BaseModel):
    """A record of a source system; times must be between 1900 and 2200 (a typo such as the
    year 9999 is a 422 naming the field, not a failed call)."""

    model_config = ConfigDict(extra="forbid", str_max_length=MAX_TEXT)

    @model_validator(mode="after")
    def _plausible_times(self) -> SourceRecord:
        for name, value in self:
            if isinstance(value, datetime) and not EARLIEST <= value < LATEST:
                raise ValueError(f"{name}: {value.isoformat()} is not between 1900 and 2200")
        return self


Text = Annotated[str, StringConstraints(max_length=MAX_TEXT)] | None
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


STORED = {"stored": True}  # validation context of records read back from the event log


def _printable(value: str, info: ValidationInfo) -> str:
    """A record's own id holds no ASCII control character (NUL, tab, newline...): a 422 naming
    the field, since such an id cannot be told apart from its trimmed twin in every store it
    reaches. Records read back from the event log (`stored_frame`) are not judged again: one
    stored before this rule stays readable."""
    if CONTROL.search(value) and not (info.context or {}).get("stored"):
        raise ValueError(f"an id may not hold control characters such as NUL, tab or newline: {value!r}")
    return value


RecordId = Annotated[str, StringConstraints(min_length=1, max_length=100), AfterValidator(_printable)]
Count = Annotated[int, Field(ge=0, le=2**53)]


class CrmAccount(SourceRecord):
    """A CRM account (a company as sales keep it)."""

    account_id: RecordId
    account_name: Text = None
    website: Text = None
    industry: Text = None
    employees: Count | None = None
    funding_stage: Text = None
    annual_revenue_usd: float | None = None
    owner_rep_id: Text = None
    created_at: AwareDatetime


class CrmContact(SourceRecord):
    """A CRM contact."""

    contact_id: RecordId
    account_id: Text = None
    first_name: Text = None
    last_name: Text = None
    email: Text = None
    phone: Text = None
    title: Text = None
    owner_rep_id: Text = None
    created_at: AwareDatetime


class WebSession(SourceRecord):
    """A web analytics session of a browser cookie (no personal data)."""

    session_id: RecordId
    cookie_id: Text = None
    started_at: AwareDatetime
    landing_url: Text = None
    utm_source: Text = None
    pageviews: Count = 1
    duration_s: Count = 0
    utm_medium: Text = None
    utm_campaign: Text = None
    utm_term: Text = None
    utm_content: Text = None


class FormFill(SourceRecord):
    """A form submitted on the website (free text as typed), with the browser's cookie."""

    form_fill_id: RecordId
    submitted_at: AwareDatetime
    form_type: str
    asset: Text = None
    cookie_id: Text = None
    first_name: Text = None
    last_name: Text = None
    email: Text = None
    phone: Text = None
    company_name: Text = None
    job_title: Text = None
    utm_source: Text = None
    utm_medium: Text = None
    utm_campaign: Text = None
    utm_term: Text = None
    utm_content: Text = None


class EventRegistration(SourceRecord):
    """A registration to a webinar or summit; `attended` once the event took place."""

    registration_id: RecordId
    event_id: str
    event_name: Text = None
    event_kind: str
    event_date: AwareDatetime
    registered_at: AwareDatetime
    attended: bool = False
    full_name: Text = None
    email: Text = None
    phone: Text = None
    company_name: Text = None
    questions_asked: Count | None = Field(None, description="Questions the attendee asked at the event.")
    demo_requested: bool = Field(False, description="Whether the attendee asked for a demo at the event.")


class EmailActivity(SourceRecord):
    """One send, open or click of a campaign email to an address."""

    activity_id: RecordId
    campaign_id: str
    subject: Text = None
    email_address: Text = None
    activity: Literal["send", "open", "click"]  # the vocabulary's email_send, email_open, email_click
    occurred_at: AwareDatetime
    url: Text = None


class Opportunity(SourceRecord):
    """A CRM opportunity on an account and contact."""

    opportunity_id: RecordId
    account_id: Text = None
    contact_id: Text = None
    created_at: AwareDatetime
    stage: str = "open"
    closed_at: AwareDatetime | None = None
    amount_usd: float | None = None


class Order(SourceRecord):
    """A web-shop order."""

    order_id: RecordId
    email: Text = None
    product: Text = None
    amount_usd: float | None = None
    ordered_at: AwareDatetime


class UserAccount(SourceRecord):
    """A product sign-up (trial or a customer's seat)."""

    user_id: RecordId
    email: Text = None
    full_name: Text = None
    registered_at: AwareDatetime


SOURCES: dict[str, type[SourceRecord]] = {
    "crm_accounts": CrmAccount, "crm_contacts": CrmContact, "web_sessions": WebSession,
    "form_fills": FormFill, "event_registrations": EventRegistration,
    "email_activity": EmailActivity, "opportunities": Opportunity, "orders": Order,
    "user_accounts": UserAccount,
}
# The batch's own layout of the sources (identity/records.py), and the CRM accounts.
ID_COLUMN = {name: layout[0] for name, layout in SOURCE_LAYOUT.items()} | {"crm_accounts": "account_id"}
TIME_COLUMN = {name: layout[1] for name, layout in SOURCE_LAYOUT.items()} | {"crm_accounts": "created_at"}


def _base_types(annotation) -> set[type]:
    """The plain types inside an annotation (`Annotated[int, ...] | None` -> {int, NoneType})."""
    args = get_args(annotation)
    if not args:
        return {annotation} if isinstance(annotation, type) else {type(annotation[0])} \
            if isinstance(annotation, tuple) else set()
    if get_origin(annotation) is Annotated:
        return _base_types(args[0])
    if get_origin(annotation) is Literal:
        return {type(arg) for arg in args}
    return set().union(*(_base_types(arg) for arg in args))


def _dtype(annotation) -> str:
    """The raw parquet's dtype of a field."""
    types = _base_types(annotation)
    if datetime in types or AwareDatetime in types:
        return "datetime64[us, UTC]"
    if bool in types:
        return "bool"
    if int in types:
        return "Int64"
    if float in types:
        return "float64"
    return "object"


def stored_frame(source: str, payloads: Iterable[str]) -> pd.DataFrame:
    """`frame_of` the records of one source as the event log stored them (JSON payloads)."""
    model = SOURCES[source]
    return frame_of(source, [model.model_validate_json(payload, context=STORED) for payload in payloads])


def frame_of(source: str, records: list[SourceRecord]) -> pd.DataFrame:
    """Records of one source as a frame with the raw parquet's columns and dtypes."""
    model = SOURCES[source]
    frame = pd.DataFrame([record.model_dump() for record in records], columns=list(model.model_fields))
    for column, info in model.model_fields.items():
        dtype = _dtype(info.annotation)
        if dtype.startswith("datetime"):
            frame[column] = pd.to_datetime(frame[column], utc=True).astype(dtype)
        elif dtype != "object":
            frame[column] = frame[column].astype(dtype)
    return frame

