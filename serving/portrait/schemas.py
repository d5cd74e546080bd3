"""The portrait's response models: what `GET /portrait/{pid}` answers, field by field.

Every field carries a description: they are the OpenAPI page's documentation of the portrait.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from leadscore.access.masking import PII_FIELDS
from leadscore.serving.schemas import AccountScoreResponse, ScoreResponse


class PersonProfile(BaseModel):
    pid: str = Field(description="The person (One ID PID).")
    name: str | None = Field(None, description="Full name, as resolved from every source.")
    first_name: str | None = Field(None, description="Given name.")
    last_name: str | None = Field(None, description="Family name.")
    email: str | None = Field(None, description="Email; masked (j***@example.com) unless revealed.")
    phone: str | None = Field(None, description="Phone; masked (138****8000) unless revealed.")
    pii_masked: bool = Field(description="True when email and phone are masked.")
    title: str | None = Field(None, description="Job title.")
    seniority: str | None = Field(None, description="Seniority from the title (c_level .. individual).")
    department: str | None = Field(None, description="Department from the title.")
    uid: str | None = Field(None, description="User account (UID) when the person registered.")
    owner_rep_id: str | None = Field(None, description="Account owner: the company's rep, else the person's.")
    first_seen: datetime | None = Field(None, description="First record of the person (UTC).")
    last_seen: datetime | None = Field(None, description="Latest record of the person (UTC).")
    identified_at: datetime | None = Field(None, description="When the person was first identified.")
    records: int | None = Field(None, description="Source records resolved to this person.")


class CompanyProfile(BaseModel):
    cid: str = Field(description="The company (One ID CID).")
    name: str | None = Field(None, description="Company name.")
    domain: str | None = Field(None, description="Web domain.")
    industry: str | None = Field(None, description="Industry.")
    employees: int | None = Field(None, description="Employees.")
    funding_stage: str | None = Field(None, description="Funding stage (seed .. public).")
    annual_revenue_usd: float | None = Field(None, description="Annual revenue in USD.")
    owner_rep_id: str | None = Field(None, description="Sales rep owning the account.")
    engaged_people_90d: int = Field(0, description="People of the company engaged in the last 90 days.")


class GroupProfile(BaseModel):
    eid: str = Field(description="The group (One ID EID).")
    name: str | None = Field(None, description="Group name.")
    companies: list[CompanyProfile] = Field(
        default_factory=list, description="The group's other companies, most engaged first.")


class Tag(BaseModel):
    tag: str = Field(description="Tag key, e.g. interest:product_a.")
    kind: str = Field(description="attribute, rule, mined, statistical or demand (UTM demand tags).")
    label: str = Field(description="The tag in words.")
    evidence: str | None = Field(None, description="Why the person carries it.")
    as_of: datetime | None = Field(None, description="When the tags were built.")


class TimelineEvent(BaseModel):
    lid: str | None = Field(None, description="The lead (One ID LID): one per interaction.")
    event_time: datetime = Field(description="When it happened (UTC).")
    event_type: str = Field(description="From the closed vocabulary (config/event_types.yaml).")
    channel: str | None = Field(None, description="web, email, event, commerce ...")
    source: str | None = Field(None, description="Source system table.")
    description: str = Field(description="One line in words, e.g. \"visited /pricing\".")
    detail: str | None = Field(None, description="Secondary facts, e.g. pages and duration of a visit.")
    passive: bool = Field(False, description="Something we did (an email sent), not engagement.")
    properties: dict[str, Any] = Field(default_factory=dict, description="The event's parsed properties.")


class Opportunity(BaseModel):
    opportunity_id: str = Field(description="CRM opportunity.")
    pid: str | None = Field(None, description="The contact on the opportunity.")
    contact_name: str | None = Field(None, description="The contact's name.")
    this_person: bool = Field(description="True if the portrait's person is the contact.")
    created_at: datetime | None = Field(None, description="When it was opened.")
    stage: str | None = Field(None, description="open, won, lost ...")
    won_at: datetime | None = Field(None, description="When it was won.")
    closed_at: datetime | None = Field(None, description="When it was closed.")
    amount_usd: float | None = Field(None, description="Amount in USD.")


class CrmOutcome(BaseModel):
    kind: str = Field(description="opportunity_created, stage_changed, won, lost, or disposition "
                                  "(of an MQL).")
    crm_id: str = Field(description="The CRM's opportunity, or lead for a disposition.")
    at: datetime = Field(description="When it happened in the CRM (UTC).")
    description: str = Field(description="In words, e.g. \"sales rejected the MQL: no budget\".")
    stage: str | None = Field(None, description="The new stage (stage_changed, or as opened).")
    amount_usd: float | None = Field(None, description="Amount in USD, if the CRM gave it.")
    disposition: str | None = Field(None, description="accepted, rejected or recycled (to nurture).")
    reason: str | None = Field(None, description="Why sales rejected the MQL (outcomes.rejection_reasons).")


class ScorePoint(BaseModel):
    scored_at: datetime = Field(description="The feature time the score is for (UTC); the batch "
                                            "scores everyone as of several times.")
    probability: float | None = Field(None, description="Calibrated probability.")
    score: float | None = Field(None, description="0-100 score.")
    fit_score: float | None = Field(None, description="0-100: share of the rule set's fit points.")
    interest_score: float | None = Field(None, description="0-100: share of the rule set's interest points.")
    fit: float | None = Field(None, description="The score's fit axis then (0-100 score points; null "
                                                "where the model did not tell it).")
    interest: float | None = Field(None, description="The score's interest axis then.")
    tier: str | None = Field(None, description="Tier then.")
    model_version: str | None = Field(None, description="Model version that scored.")


class Colleague(BaseModel):
    pid: str = Field(description="The colleague (PID).")
    name: str | None = Field(None, description="Name.")
    title: str | None = Field(None, description="Job title.")
    seniority: str | None = Field(None, description="Seniority.")
    department: str | None = Field(None, description="Department.")
    email: str | None = Field(None, description="Email, always masked.")
    phone: str | None = Field(None, description="Phone, always masked.")
    cid: str | None = Field(None, description="Their company.")
    company_name: str | None = Field(None, description="Their company's name.")
    events_90d: int = Field(description="Engagement events in the last 90 days.")
    last_event_at: datetime | None = Field(None, description="Their latest engagement.")
    last_event_type: str | None = Field(None, description="What that was.")


class Engagement(BaseModel):
    events_30d: int = Field(description="Engagement events in the 30 days before now.")
    events_90d: int = Field(description="Engagement events in the 90 days before now.")
    events_total: int = Field(description="Engagement events ever.")
    last_engaged_at: datetime | None = Field(None, description="Latest engagement.")
    by_type_90d: dict[str, int] = Field(default_factory=dict, description="90-day counts per event type.")


class Portrait(BaseModel):
    """Everything a sales rep needs about one person, in one read."""

    pid: str = Field(description="The person (One ID PID).")
    generated_at: datetime = Field(description="When this portrait was read (UTC).")
    world_now: datetime | None = Field(None, description="Now, by the clock (the wall clock, or the "
                                                         "demo world's): recency windows end here.")
    owner_rep_id: str | None = Field(None, description="Account owner (company's rep, else person's).")
    pii: str = Field(description="\"masked\" or \"full\".")
    person: PersonProfile
    company: CompanyProfile | None = Field(None, description="The person's company, if known.")
    group: GroupProfile | None = Field(None, description="The company's group and its other companies.")
    tags: list[Tag] = Field(default_factory=list, description="Tags (person_tags), by kind.")
    engagement: Engagement
    timeline: list[TimelineEvent] = Field(default_factory=list,
                                          description="Every interaction, newest first.")
    opportunities: list[Opportunity] = Field(default_factory=list,
                                             description="The person's and the account's, newest first.")
    outcomes: list[CrmOutcome] = Field(default_factory=list, description="What the CRM sent back about "
                                       "this person (POST /outcomes): opportunities and the sales "
                                       "disposition of their MQLs, newest first.")
    score_history: list[ScorePoint] = Field(default_factory=list, description="Batch scores, oldest first, "
                                            "then the scores served since (the score log).")
    current_score: ScoreResponse | None = Field(None, description="The live score with its reasons; "
                                                                  "null without online features.")
    colleagues: list[Colleague] = Field(default_factory=list,
                                        description="Engaged people of the same company, most engaged first.")
    colleagues_total: int = Field(0, description="Engaged colleagues before the cap.")
    group_colleagues: list[Colleague] = Field(
        default_factory=list, description="Engaged people at the group's other companies.")
    group_colleagues_total: int = Field(0, description="Engaged group colleagues before the cap.")
    mql_threshold: float | None = Field(None, description="Score at which a lead goes to the CRM.")
    account_score: AccountScoreResponse | None = Field(None, description="The score of the person's company "
                                                       "(the account model), shown beside the lead's own.")

    def fields_read(self) -> list[str]:
        """What this portrait shows, for the audit log: the person's fields that carry a value
        (PII as "email:full" / "email:masked"), then each non-empty section."""
        mode = "full" if self.pii == "full" else "masked"
        fields = []
        for name, value in self.person.model_dump(exclude={"pid", "pii_masked"}).items():
            if value in (None, ""):
                continue
            fields.append(f"{name}:{mode}" if name in PII_FIELDS else name)
        sections = ["company", "group", "tags", "timeline", "opportunities", "outcomes", "score_history",
                    "current_score", "colleagues", "group_colleagues"]
        fields += [name for name in sections if getattr(self, name)]
        for name in ("colleagues", "group_colleagues"):
            people = getattr(self, name)
            fields += [f"{name}.{pii}:masked" for pii in PII_FIELDS if any(getattr(c, pii) for c in people)]
        return fields
