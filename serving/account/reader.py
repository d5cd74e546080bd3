"""Reading an account page from the middle layer, through the portrait reader's connection and
clock (serving/portrait/reader.py), so both pages count "engaged" alike: any interaction but the
passive ones in the 90 days before the clock's now. The people and their engagement are the
batch's (the middle layer); the live events of the last hours show on the portraits.

Decisions:

- **Owner**: the company's `owner_rep_id`. A company without one belongs to no rep: only roles
  that see every account (admin) open its page.
- **Committee**: each role of `buying_committee` (config/features.yaml) holds the account's
  people whose seniority and department match it (as the titles gave them); a role with none of
  them engaged is missing, which is what a rep acts on ("no decision maker engaged yet").
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel

from leadscore.config import load_yaml
from leadscore.serving.account.schemas import AccountPage, CommitteeRole
from leadscore.serving.portrait.reader import RECENT_DAYS, PortraitReader, colleague_of, query_rows
from leadscore.serving.portrait.schemas import CompanyProfile, GroupProfile
from leadscore.serving.schemas import AccountScoreResponse

MAX_PEOPLE = 100

_COMPANY_SQL = """
SELECT c.cid, c.name, c.domain, c.industry, c.employees, c.funding_stage, c.annual_revenue_usd,
       c.owner_rep_id, c.eid, coalesce(e.name, c.group_name) AS group_name
FROM company c LEFT JOIN entity e ON e.eid = c.eid WHERE c.cid = $cid
"""

# Every person of the company, with their engagement in the window (none: 0).
_PEOPLE_SQL = """
WITH engaged AS (
    SELECT i.pid, count(*) AS n, max(i.event_time) AS last_at,
           arg_max(i.event_type, i.event_time) AS last_type
    FROM interaction i
    WHERE i.event_time > $since AND i.event_time <= $now AND NOT list_contains($passive, i.event_type)
      AND i.pid IN (SELECT pid FROM person WHERE cid = $cid)
    GROUP BY i.pid
)
SELECT p.pid, p.name, p.title, p.seniority, p.department, p.email, p.phone, p.cid, c.name AS company_name,
       coalesce(e.n, 0) AS n, e.last_at, e.last_type
FROM person p JOIN company c ON c.cid = p.cid LEFT JOIN engaged e ON e.pid = p.pid
WHERE p.cid = $cid
ORDER BY n DESC, e.last_at DESC NULLS LAST, p.pid
"""

# The group's companies, with their engaged people in the window.
_GROUP_SQL = """
SELECT c.cid, c.name, c.domain, c.industry, c.employees, c.funding_stage, c.annual_revenue_usd,
       c.owner_rep_id,
       (SELECT count(DISTINCT i.pid) FROM interaction i JOIN person p ON p.pid = i.pid
        WHERE p.cid = c.cid AND i.event_time > $since AND i.event_time <= $now
          AND NOT list_contains($passive, i.event_type)) AS engaged_people_90d
FROM company c WHERE c.eid = $eid ORDER BY c.cid
"""


class UnknownAccount(KeyError):
    """No company (or group) with this id in the middle layer (the service answers 404)."""

    def __init__(self, kind: str, value: str):
        super().__init__(value)
        self.kind, self.value = kind, value

    def __str__(self) -> str:
        return f"unknown {self.kind} {self.value!r}: no such {'company' if self.kind == 'cid' else 'group'}"


class Role(BaseModel):
    """One role of the buying committee (config/features.yaml `buying_committee`)."""

    role: str
    seniority: list[str] = []
    department: list[str] = []

    def holds(self, seniority: str | None, department: str | None) -> bool:
        return ((not self.seniority or seniority in self.seniority)
                and (not self.department or department in self.department))


def committee(roles: Sequence[Role], people: list[dict]) -> list[CommitteeRole]:
    """Each role's known and engaged people (`people` most engaged first, `n` their events)."""
    result = []
    for role in roles:
        held = [p for p in people if role.holds(p["seniority"], p["department"])]
        engaged = [p["pid"] for p in held if p["n"] > 0]
        result.append(CommitteeRole(role=role.role, people=len(held), engaged=engaged, missing=not engaged))
    return result


class AccountReader:
    """Account pages and the companies of a group, from the portrait reader's middle layer."""

    def __init__(self, portraits: PortraitReader):
        self.portraits = portraits
        config = load_yaml(portraits.settings.config_file("features.yaml"))
        self.roles = [Role(**role) for role in config.get("buying_committee", [])]

    def owner(self, cid: str) -> str | None:
        """The company's rep (None: no one's). UnknownAccount if there is no such company."""
        with self.portraits.middle() as con:
            row = con.execute("SELECT owner_rep_id FROM company WHERE cid = $cid", {"cid": cid}).fetchone()
        if row is None:
            raise UnknownAccount("cid", cid)
        return row[0]

    def people_of(self, cid: str) -> list[str]:
        """The company's identified people (an anonymous cookie is not a lead), in PID order."""
        with self.portraits.middle() as con:
            return [row[0] for row in con.execute(
                "SELECT pid FROM person WHERE cid = $cid AND identified_at IS NOT NULL ORDER BY pid",
                {"cid": cid}).fetchall()]

    def companies_of(self, eid: str) -> list[str]:
        """The group's companies. UnknownAccount if it has none."""
        with self.portraits.middle() as con:
            cids = [row[0] for row in con.execute("SELECT cid FROM company WHERE eid = $eid ORDER BY cid",
                                                  {"eid": eid}).fetchall()]
        if not cids:
            raise UnknownAccount("eid", eid)
        return cids

    def page(self, cid: str, score: AccountScoreResponse | None = None) -> AccountPage:
        """The account page of `cid` (its people's contacts masked). UnknownAccount if none."""
        now = self.portraits.clock.now()
        window = {"now": now, "since": now - timedelta(days=RECENT_DAYS), "passive": self.portraits.passive}
        with self.portraits.middle() as con:
            rows = query_rows(con, _COMPANY_SQL, {"cid": cid})
            if not rows:
                raise UnknownAccount("cid", cid)
            company = rows[0]
            people = query_rows(con, _PEOPLE_SQL, {"cid": cid, **window})
            group = query_rows(con, _GROUP_SQL, {"eid": company["eid"], **window}) if company["eid"] else []
        engaged = sum(p["n"] > 0 for p in people)
        roles = committee(self.roles, people)
        profile = {k: v for k, v in company.items() if k in CompanyProfile.model_fields}
        return AccountPage(
            cid=cid, generated_at=datetime.now(UTC), world_now=now, owner_rep_id=company["owner_rep_id"],
            company=CompanyProfile(**profile, engaged_people_90d=engaged),
            group=GroupProfile(eid=company["eid"], name=company["group_name"],
                               companies=[CompanyProfile(**c) for c in group if c["cid"] != cid])
            if company["eid"] else None,
            score=score, people=[colleague_of(p) for p in people[:MAX_PEOPLE]], people_total=len(people),
            engaged_total=engaged, committee=roles, missing_roles=[r.role for r in roles if r.missing])
