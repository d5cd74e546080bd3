"""The account page's response models: what `GET /account/{cid}` answers."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from leadscore.access.masking import PII_FIELDS
from leadscore.serving.portrait.schemas import Colleague, CompanyProfile, GroupProfile
from leadscore.serving.schemas import AccountScoreResponse


class CommitteeRole(BaseModel):
    role: str = Field(description="A role of the buying committee (config/features.yaml "
                                  "`buying_committee`).")
    people: int = Field(description="People of the account known in this role.")
    engaged: list[str] = Field(description="Those of them engaged in the last 90 days (PIDs), most "
                                           "engaged first.")
    missing: bool = Field(description="True when no one in the role engaged in the last 90 days.")


class AccountPage(BaseModel):
    cid: str = Field(description="The company (One ID CID).")
    generated_at: datetime = Field(description="When this page was read (UTC).")
    world_now: datetime | None = Field(None, description="The clock's now: what the 90 days count back "
                                                         "from.")
    owner_rep_id: str | None = Field(None, description="The sales rep owning the account.")
    company: CompanyProfile = Field(description="The company, with its engaged people in 90 days.")
    group: GroupProfile | None = Field(None, description="Its group (EID) and the group's other companies.")
    score: AccountScoreResponse | None = Field(
        None, description="The account's score with its reasons; null without an account model or online "
                          "features.")
    people: list[Colleague] = Field(description="The account's people, engaged first (most engaged first), "
                                                "contacts always masked; at most 100.")
    people_total: int = Field(description="People of the account before the cap.")
    engaged_total: int = Field(description="People engaged in the last 90 days.")
    committee: list[CommitteeRole] = Field(description="Each role of the buying committee: known, engaged, "
                                                       "missing.")
    missing_roles: list[str] = Field(description="The roles with no one engaged yet, in the config's order.")

    def fields_read(self) -> list[str]:
        """What the page shows, for the audit log: each non-empty section, people's PII as masked."""
        sections = ["company", "group", "score", "people", "committee"]
        fields = [name for name in sections if getattr(self, name)]
        return fields + [f"people.{pii}:masked" for pii in PII_FIELDS
                         if any(getattr(person, pii) for person in self.people)]
