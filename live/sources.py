"""The source systems' records as the ingest API takes them: the raw schemas of the batch.

One pydantic model per source, so the OpenAPI page documents each and a malformed record
gets a 422 naming its field. Records that are well-formed but unusable (no identifier
at all) are not refused: like the batch, they are kept in quarantine with a reason.
`frame_of` turns accepted records into a frame typed exactly as `data/raw/<source>.parquet`,
so the batch's standardisation and SQL run on them unchanged.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class SourceRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")


Text = str | None


class CrmAccount(SourceRecord):
    """A CRM account (a company as sales keep it)."""

    account_id: str = Field(min_length=1, max_length=100)
    account_name: Text = None
    website: Text = None
    industry: Text = None
    employees: int | None = Field(None, ge=0)
    funding_stage: Text = None
    annual_revenue_usd: float | None = None
    owner_rep_id: Text = None
    created_at: AwareDatetime


class CrmContact(SourceRecord):
    """A CRM contact."""

    contact_id: str = Field(min_length=1, max_length=100)
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

    session_id: str = Field(min_length=1, max_length=100)
    cookie_id: Text = None
    started_at: AwareDatetime
    landing_url: Text = None
    utm_source: Text = None
    pageviews: int = Field(1, ge=0)
    duration_s: int = Field(0, ge=0)


class FormFill(SourceRecord):
    """A form submitted on the website (free text as typed), with the browser's cookie."""

    form_fill_id: str = Field(min_length=1, max_length=100)
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


class EventRegistration(SourceRecord):
    """A registration to a webinar or summit; `attended` once the event took place."""

    registration_id: str = Field(min_length=1, max_length=100)
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


class EmailActivity(SourceRecord):
    """One send, open or click of a campaign email to an address."""

    activity_id: str = Field(min_length=1, max_length=100)
    campaign_id: str
    subject: Text = None
    email_address: Text = None
    activity: str
    occurred_at: AwareDatetime
    url: Text = None


class Opportunity(SourceRecord):
    """A CRM opportunity on an account and contact."""

    opportunity_id: str = Field(min_length=1, max_length=100)
    account_id: Text = None
    contact_id: Text = None
    created_at: AwareDatetime
    stage: str = "open"
    closed_at: AwareDatetime | None = None
    amount_usd: float | None = None


class Order(SourceRecord):
    """A web-shop order."""

    order_id: str = Field(min_length=1, max_length=100)
    email: Text = None
    product: Text = None
    amount_usd: float | None = None
    ordered_at: AwareDatetime


class UserAccount(SourceRecord):
    """A product sign-up (trial or a customer's seat)."""

    user_id: str = Field(min_length=1, max_length=100)
    email: Text = None
    full_name: Text = None
    registered_at: AwareDatetime


SOURCES: dict[str, type[SourceRecord]] = {
    "crm_accounts": CrmAccount, "crm_contacts": CrmContact, "web_sessions": WebSession,
    "form_fills": FormFill, "event_registrations": EventRegistration,
    "email_activity": EmailActivity, "opportunities": Opportunity, "orders": Order,
    "user_accounts": UserAccount,
}
ID_COLUMN = {name: next(iter(model.model_fields)) for name, model in SOURCES.items()}
TIME_COLUMN = {"crm_accounts": "created_at", "crm_contacts": "created_at", "web_sessions": "started_at",
               "form_fills": "submitted_at", "event_registrations": "registered_at",
               "email_activity": "occurred_at", "opportunities": "created_at", "orders": "ordered_at",
               "user_accounts": "registered_at"}


def _dtype(annotation) -> str:
    text = str(annotation)
    if "datetime" in text.lower():
        return "datetime64[us, UTC]"
    if "bool" in text:
        return "bool"
    if "int" in text:
        return "Int64"
    if "float" in text:
        return "float64"
    return "object"


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


def record_time(source: str, record: SourceRecord) -> datetime:
    return getattr(record, TIME_COLUMN[source])
