"""The sales portrait of one person: profile, company, group, timeline, scores, colleagues.

`PortraitReader` is built once at service start; every call opens the middle layer
(DuckDB) read-only and closes it again, so the pipeline can rewrite the file between
requests. Tags and score history are Parquet files, cached in memory and reloaded when
the file changes (size or modification time).

Decisions:

- **Account owner**: the company's `owner_rep_id` when the person has a company with an
  owner, else the person's own `owner_rep_id` (`PortraitReader.owner`).
- **"Now"** is the world's latest interaction (max `event_time`), not the wall clock, so
  the recency windows mean the same on a replayed or synthetic world.
- **Engaged** means any interaction except the passive ones (`passive_event_types` in
  config/features.yaml: `email_send`, something we did to the person).
- **Timeline**: every interaction of the person, passive ones included (marked), newest first.
- **Opportunities**: the person's own and those of their company (the account), newest first.
- **Colleagues**: other people of the same company with engagement in the 90 days before
  "now", most engaged first; people at the other companies of the same group apart
  (`group_colleagues`); at most `max_colleagues` each. Their contacts are **always
  masked**: a reveal is granted and audited for the portrait's person only.
- **PII**: the person's email and phone are masked unless `reveal_pii=True`, and so is any
  email address inside an event's properties (tracking links often carry the recipient's).
- **Waterfall**: the response carries the strongest few reasons, so the chart starts at
  the final log-odds minus the shown reasons ("baseline and all other factors", which also
  holds the calibration's shift) and ends at logit(probability): the axis then reads as
  the calibrated chance. Rule models chart points from zero.
"""

from __future__ import annotations

import itertools
import json
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import duckdb
import jinja2
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import BaseModel, Field

from leadscore.config import Settings, load_yaml
from leadscore.serving.masking import PII_FIELDS, mask_emails_in, mask_record
from leadscore.serving.schemas import ScoreResponse

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
DEFAULT_PASSIVE = ("email_send",)
RECENT_DAYS = 90
OPEN_ATTEMPTS = 4  # the pipeline may hold the write lock for a moment
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class UnknownPerson(KeyError):
    """No person with this PID in the middle layer (the service answers 404)."""

    def __init__(self, pid: str):
        super().__init__(pid)
        self.pid = pid

    def __str__(self) -> str:
        return f"unknown pid {self.pid!r}: no such person in the middle layer"


class PortraitUnavailable(RuntimeError):
    """The middle layer cannot be read right now (missing, or locked by a writer): 503."""


# --------------------------------------------------------------------------- models


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
    kind: str = Field(description="attribute, rule, mined or statistical.")
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


class ScorePoint(BaseModel):
    scored_at: datetime = Field(description="The feature time the score is for (UTC); the batch "
                                            "scores everyone as of several times.")
    probability: float | None = Field(None, description="Calibrated probability.")
    score: float | None = Field(None, description="0-100 score.")
    fit_score: float | None = Field(None, description="0-100 fit.")
    interest_score: float | None = Field(None, description="0-100 interest.")
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
    world_now: datetime | None = Field(None, description="The latest interaction of the world: "
                                                         "recency windows end here.")
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
    score_history: list[ScorePoint] = Field(default_factory=list, description="Batch scores, oldest first.")
    current_score: ScoreResponse | None = Field(None, description="The live score with its reasons; "
                                                                  "null without online features.")
    colleagues: list[Colleague] = Field(default_factory=list,
                                        description="Engaged people of the same company, most engaged first.")
    colleagues_total: int = Field(0, description="Engaged colleagues before the cap.")
    group_colleagues: list[Colleague] = Field(
        default_factory=list, description="Engaged people at the group's other companies.")
    group_colleagues_total: int = Field(0, description="Engaged group colleagues before the cap.")
    mql_threshold: float | None = Field(None, description="Score at which a lead goes to the CRM.")

    def fields_read(self) -> list[str]:
        """What this portrait shows, for the audit log: the person's fields that carry a value
        (PII as "email:full" / "email:masked"), then each non-empty section."""
        mode = "full" if self.pii == "full" else "masked"
        fields = []
        for name, value in self.person.model_dump(exclude={"pid", "pii_masked"}).items():
            if value in (None, ""):
                continue
            fields.append(f"{name}:{mode}" if name in PII_FIELDS else name)
        sections = ["company", "group", "tags", "timeline", "opportunities", "score_history",
                    "current_score", "colleagues", "group_colleagues"]
        fields += [name for name in sections if getattr(self, name)]
        for name in ("colleagues", "group_colleagues"):
            people = getattr(self, name)
            fields += [f"{name}.{pii}:masked" for pii in PII_FIELDS if any(getattr(c, pii) for c in people)]
        return fields


# --------------------------------------------------------------------------- descriptions


def _quote(text: object) -> str:
    return f"'{text}'" if text else ""


def _page(url: str | None) -> str:
    if not url:
        return "the website"
    parts = urlparse(url)
    path = parts.path.rstrip("/")
    return path if path else f"the home page ({parts.netloc})" if parts.netloc else url


def _money(value: object) -> str:
    try:
        return f"${float(value):,.0f}"  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ""


def _form(p: dict) -> str:
    kind = (p.get("form_type") or "web").replace("_", " ")
    asset = p.get("asset")
    return f"submitted a {kind} form" + (f" for '{asset}'" if asset else "")


def _visit_detail(p: dict) -> str | None:
    bits = []
    if p.get("pageviews"):
        bits.append(f"{p['pageviews']} page{'s' if p['pageviews'] != 1 else ''}")
    if p.get("duration_s"):
        seconds = int(p["duration_s"])
        bits.append(f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s")
    if p.get("utm_source"):
        bits.append(f"via {p['utm_source']}")
    return " · ".join(bits) or None


_DESCRIBE: dict[str, Callable[[dict], str]] = {
    "web_visit": lambda p: f"visited {_page(p.get('url'))}",
    "email_send": lambda p: f"was sent email {_quote(p.get('subject'))}".rstrip(),
    "email_open": lambda p: f"opened email {_quote(p.get('subject'))}".rstrip(),
    "email_click": lambda p: f"clicked {_page(p.get('url'))} in email {_quote(p.get('subject'))}".rstrip(),
    "whitepaper_download": lambda p: f"downloaded {_quote(p.get('asset')) or 'a whitepaper'}",
    "contact_sales": lambda p: "asked sales to get in touch" + (f" ({p['asset']})" if p.get("asset") else ""),
    "form_submit": _form,
    "webinar_register": lambda p: f"registered for {_quote(p.get('event_name')) or 'a webinar'}",
    "webinar_attend": lambda p: f"attended {_quote(p.get('event_name')) or 'a webinar'}",
    "event_register": lambda p: f"registered for {_quote(p.get('event_name')) or 'an event'}",
    "event_attend": lambda p: f"attended {_quote(p.get('event_name')) or 'an event'}",
    "purchase": lambda p: f"bought {p.get('product') or 'a product'}"
                          + (f" ({_money(p.get('amount_usd'))})" if p.get("amount_usd") else ""),
}


def describe_event(event_type: str, properties: dict) -> tuple[str, str | None]:
    """(one line in words, secondary detail) for an interaction."""
    describe = _DESCRIBE.get(event_type)
    text = describe(properties) if describe else event_type.replace("_", " ")
    detail = _visit_detail(properties) if event_type == "web_visit" else None
    if event_type == "email_click" and properties.get("url"):
        detail = urlparse(properties["url"]).netloc or None
    return text, detail


def _parse(properties: str | None) -> dict:
    if not properties:
        return {}
    try:
        parsed = json.loads(properties)
    except (TypeError, ValueError):
        return {"raw": properties}
    return parsed if isinstance(parsed, dict) else {"value": parsed}


# --------------------------------------------------------------------------- parquet caches


class _ParquetByPid:
    """A Parquet file keyed by pid, held in memory as an Arrow table sorted by pid (compact: the
    default world's tags take ~20 MB), reloaded when the file changes (size or mtime)."""

    def __init__(self, path: Path, sort_by: str | None = None):
        self.path = path
        self.sort_by = sort_by
        self._lock = threading.Lock()
        self._key: tuple[int, int] | None = None
        self._table: pa.Table | None = None
        self._runs: dict[str, tuple[int, int]] = {}

    def _load(self) -> None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._key, self._table, self._runs = None, None, {}
            return
        key = (stat.st_mtime_ns, stat.st_size)
        if key == self._key:
            return
        table = pq.read_table(self.path)
        order = [("pid", "ascending")]
        if self.sort_by and self.sort_by in table.column_names:
            order.append((self.sort_by, "ascending"))
        table = table.sort_by(order)
        counts = pc.value_counts(table.column("pid")).to_pylist()  # first-seen order: the runs
        runs, offset = {}, 0
        for item in counts:
            runs[item["values"]] = (offset, item["counts"])
            offset += item["counts"]
        self._table, self._runs, self._key = table, runs, key

    def rows(self, pid: str) -> list[dict]:
        with self._lock:
            self._load()
            table, run = self._table, self._runs.get(pid)
        if table is None or run is None:
            return []
        return table.slice(*run).to_pylist()


# --------------------------------------------------------------------------- reader


_PERSON_SQL = """
SELECT p.pid, p.name, p.first_name, p.last_name, p.email, p.phone, p.title, p.seniority, p.department,
       p.uid, coalesce(c.owner_rep_id, p.owner_rep_id) AS owner_rep_id, p.first_seen, p.last_seen,
       p.identified_at, p.records, p.cid,
       c.cid AS c_cid, c.name AS c_name, c.domain, c.industry, c.employees, c.funding_stage,
       c.annual_revenue_usd, c.owner_rep_id AS c_owner, c.eid, e.name AS e_name, c.group_name
FROM person p LEFT JOIN company c ON c.cid = p.cid LEFT JOIN entity e ON e.eid = c.eid
WHERE p.pid = $pid
"""

_TIMELINE_SQL = """
SELECT lid, epoch_us(event_time) AS event_us, event_type, channel, source, properties
FROM interaction WHERE pid = $pid
"""

# Engaged people of the person's company and of the other companies of its group.
_ENGAGED_SQL = """
WITH scope AS (
    SELECT cid, name FROM company WHERE cid = $cid OR ($eid IS NOT NULL AND eid = $eid)
), engaged AS (
    SELECT i.pid, count(*) AS n, max(i.event_time) AS last_at,
           arg_max(i.event_type, i.event_time) AS last_type
    FROM interaction i
    WHERE i.event_time > $since AND i.event_time <= $now AND NOT list_contains($passive, i.event_type)
      AND i.pid IN (SELECT pid FROM person WHERE cid IN (SELECT cid FROM scope))
    GROUP BY i.pid
)
SELECT p.pid, p.name, p.title, p.seniority, p.department, p.email, p.phone, p.cid, s.name AS company_name,
       e.n, e.last_at, e.last_type
FROM engaged e JOIN person p ON p.pid = e.pid JOIN scope s ON s.cid = p.cid
ORDER BY e.n DESC, e.last_at DESC, p.pid
"""

_GROUP_SQL = """
SELECT cid, name, domain, industry, employees, funding_stage, annual_revenue_usd, owner_rep_id
FROM company WHERE eid = $eid AND cid <> $cid ORDER BY name, cid
"""

_OPPORTUNITY_SQL = """
SELECT o.opportunity_id, o.pid, p.name AS contact_name, o.opportunity_created_at, o.stage, o.won_at,
       o.closed_at, o.amount_usd
FROM outcome o LEFT JOIN person p ON p.pid = o.pid
WHERE o.pid = $pid OR ($cid IS NOT NULL AND o.cid = $cid)
ORDER BY o.opportunity_created_at DESC NULLS LAST, o.opportunity_id
"""


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: dict) -> list[dict]:
    cursor = con.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [{name: _utc(value) for name, value in zip(names, row, strict=True)} for row in cursor.fetchall()]


def _utc(value: Any) -> Any:
    """DuckDB hands TIMESTAMPTZ back in the process's time zone; portraits speak UTC."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC)
    return value


def _passive_types(settings: Settings) -> list[str]:
    path = settings.config_file("features.yaml")
    if not path.is_file():
        return list(DEFAULT_PASSIVE)
    return list(load_yaml(path).get("passive_event_types", DEFAULT_PASSIVE))


class PortraitReader:
    """Reads portraits from the middle layer, the tags and the score history. Thread-safe."""

    def __init__(self, settings: Settings, max_colleagues: int = 20):
        self.settings = settings
        self.db_path = settings.middle_db
        self.max_colleagues = max_colleagues
        self.passive = _passive_types(settings)
        self.mql_threshold = settings.serving.webhook.mql_threshold
        self.tags = _ParquetByPid(settings.feature_data_dir / "person_tags.parquet")
        self.history = _ParquetByPid(settings.scores_dir / "score_history.parquet", sort_by="scored_at")
        self._instance = duckdb.connect(":memory:")  # holds no file: the middle layer is attached per read
        self._aliases = itertools.count()

    @contextmanager
    def _middle(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The middle layer, attached read-only for one request and detached after it.

        A fresh `duckdb.connect` costs ~12 ms (a new database instance); attaching the file
        to the reader's own in-memory instance costs ~1 ms and, once detached, leaves no lock
        on the file, so the pipeline can write it between requests."""
        if not self.db_path.is_file():
            raise PortraitUnavailable(f"middle layer not found: {self.db_path} (run `leadscore pipeline`)")
        cursor = self._instance.cursor()
        alias = f"middle_{next(self._aliases)}"
        path = str(self.db_path).replace("'", "''")
        delay = 0.05
        for attempt in range(OPEN_ATTEMPTS):
            try:
                cursor.execute(f"ATTACH '{path}' AS {alias} (READ_ONLY)")
                break
            except duckdb.IOException as error:
                if attempt == OPEN_ATTEMPTS - 1:
                    cursor.close()
                    raise PortraitUnavailable(f"middle layer busy: {error}") from error
                time.sleep(delay)
                delay *= 2
        try:
            cursor.execute(f"USE {alias}")
            yield cursor
        finally:
            try:
                cursor.execute("USE memory")
                cursor.execute(f"DETACH {alias}")
            finally:
                cursor.close()

    def owner(self, pid: str) -> str | None:
        """The account owner of `pid`: the company's rep, else the person's. UnknownPerson if none."""
        with self._middle() as con:
            row = con.execute(
                "SELECT coalesce(c.owner_rep_id, p.owner_rep_id) FROM person p "
                "LEFT JOIN company c ON c.cid = p.cid WHERE p.pid = $pid", {"pid": pid}).fetchone()
        if row is None:
            raise UnknownPerson(pid)
        return row[0]

    def portrait(self, pid: str, score: ScoreResponse | None = None, reveal_pii: bool = False) -> Portrait:
        """The whole portrait of `pid`; PII masked unless `reveal_pii`. UnknownPerson if none."""
        with self._middle() as con:
            rows = _rows(con, _PERSON_SQL, {"pid": pid})
            if not rows:
                raise UnknownPerson(pid)
            row = rows[0]
            now = _utc(con.execute("SELECT max(event_time) FROM interaction").fetchone()[0])
            # epoch microseconds: no time zone conversion per row; sorted here, cheaper than in SQL
            events = sorted(con.execute(_TIMELINE_SQL, {"pid": pid}).fetchall(),
                            key=lambda e: (e[1], e[0] or ""), reverse=True)
            cid, eid = row["c_cid"], row["eid"]
            engaged: list[dict] = []
            group_rows: list[dict] = []
            if cid is not None and now is not None:
                since = now - timedelta(days=RECENT_DAYS)
                engaged = _rows(con, _ENGAGED_SQL, {"cid": cid, "eid": eid, "now": now, "since": since,
                                                    "passive": self.passive})
            if eid is not None:
                group_rows = _rows(con, _GROUP_SQL, {"eid": eid, "cid": cid})
            opportunities = _rows(con, _OPPORTUNITY_SQL, {"pid": pid, "cid": row["cid"]})
        return self._assemble(pid, row, now, events, engaged, group_rows, opportunities, score, reveal_pii)

    def _assemble(self, pid: str, row: dict, now: datetime | None, events: list[tuple], engaged: list[dict],
                  group_rows: list[dict], opportunities: list[dict], score: ScoreResponse | None,
                  reveal_pii: bool) -> Portrait:
        person_fields = set(PersonProfile.model_fields) - {"pii_masked"}
        person = mask_record({k: v for k, v in row.items() if k in person_fields}, full=reveal_pii)
        person["name"] = person.get("name") or None

        people_at: dict[str, int] = {}
        for e in engaged:
            people_at[e["cid"]] = people_at.get(e["cid"], 0) + 1
        company = group = None
        if row["c_cid"] is not None:
            company = CompanyProfile(
                cid=row["c_cid"], name=row["c_name"], domain=row["domain"], industry=row["industry"],
                employees=row["employees"], funding_stage=row["funding_stage"],
                annual_revenue_usd=row["annual_revenue_usd"], owner_rep_id=row["c_owner"],
                engaged_people_90d=people_at.get(row["c_cid"], 0))
        if row["eid"] is not None:
            others = [CompanyProfile(**g, engaged_people_90d=people_at.get(g["cid"], 0)) for g in group_rows]
            others.sort(key=lambda c: -c.engaged_people_90d)
            group = GroupProfile(eid=row["eid"], name=row["e_name"] or row["group_name"], companies=others)

        passive = set(self.passive)
        timeline = []
        for lid, event_us, event_type, channel, source, properties in events:
            props = _parse(properties) if reveal_pii else mask_emails_in(_parse(properties))
            text, detail = describe_event(event_type, props)
            timeline.append(TimelineEvent(
                lid=lid, event_time=EPOCH + timedelta(microseconds=event_us), event_type=event_type,
                channel=channel, source=source, description=text, detail=detail,
                passive=event_type in passive, properties=props))

        mates = [self._colleague(e) for e in engaged if e["pid"] != pid]
        same = [c for c in mates if c.cid == row["c_cid"]]
        elsewhere = [c for c in mates if c.cid != row["c_cid"]]

        return Portrait(
            pid=pid, generated_at=datetime.now(UTC), world_now=now, owner_rep_id=row["owner_rep_id"],
            pii="full" if reveal_pii else "masked",
            person=PersonProfile(**person, pii_masked=not reveal_pii),
            company=company, group=group,
            tags=[Tag(**t) for t in self.tags.rows(pid)],
            engagement=_engagement(timeline, now),
            timeline=timeline,
            opportunities=[Opportunity(
                opportunity_id=o["opportunity_id"], pid=o["pid"], contact_name=o["contact_name"] or None,
                this_person=o["pid"] == pid,
                created_at=o["opportunity_created_at"], stage=o["stage"], won_at=o["won_at"],
                closed_at=o["closed_at"], amount_usd=o["amount_usd"]) for o in opportunities],
            score_history=[_score_point(h) for h in self.history.rows(pid) if h.get("scored_at") is not None],
            current_score=score,
            colleagues=same[:self.max_colleagues], colleagues_total=len(same),
            group_colleagues=elsewhere[:self.max_colleagues], group_colleagues_total=len(elsewhere),
            mql_threshold=self.mql_threshold,
        )

    @staticmethod
    def _colleague(e: dict) -> Colleague:
        masked = mask_record({"email": e["email"], "phone": e["phone"]})
        return Colleague(pid=e["pid"], name=e["name"] or None, title=e["title"], seniority=e["seniority"],
                         department=e["department"], email=masked["email"], phone=masked["phone"],
                         cid=e["cid"], company_name=e["company_name"], events_90d=e["n"],
                         last_event_at=e["last_at"], last_event_type=e["last_type"])


def _score_point(row: dict) -> ScorePoint:
    point = {k: v for k, v in row.items() if k in ScorePoint.model_fields}
    if point.get("model_version") is not None:
        point["model_version"] = str(point["model_version"])
    if point["scored_at"].tzinfo is None:  # the contract says UTC; a naive column is read as UTC
        point["scored_at"] = point["scored_at"].replace(tzinfo=UTC)
    return ScorePoint(**point)


def _engagement(timeline: list[TimelineEvent], now: datetime | None) -> Engagement:
    engaged = [e for e in timeline if not e.passive]
    if now is None:
        return Engagement(events_30d=0, events_90d=0, events_total=len(engaged))
    d30, d90 = now - timedelta(days=30), now - timedelta(days=RECENT_DAYS)
    by_type: dict[str, int] = {}
    for e in engaged:
        if d90 < e.event_time <= now:
            by_type[e.event_type] = by_type.get(e.event_type, 0) + 1
    return Engagement(
        events_30d=sum(d30 < e.event_time <= now for e in engaged),
        events_90d=sum(by_type.values()), events_total=len(engaged),
        last_engaged_at=engaged[0].event_time if engaged else None,
        by_type_90d=dict(sorted(by_type.items(), key=lambda kv: -kv[1])))


# --------------------------------------------------------------------------- HTML


TIER_COLOURS = {
    "high-value": "#0b7a3e", "high-potential": "#2a9d8f", "to-nurture": "#3b6fb6",
    "to-verify": "#c47f00", "low-conversion": "#6b7280",
}
UP, DOWN = "#1a9850", "#d73027"
MAX_OPPORTUNITIES_SHOWN = 12  # the page; the JSON has them all


@dataclass
class Bar:
    label: str
    title: str
    kind: str  # base, up, down, total
    y: float
    x0: float
    x1: float
    value_text: str
    value_x: float
    anchor: str


@dataclass
class Chart:
    width: int
    height: int
    bars: list[Bar] = field(default_factory=list)
    connectors: list[tuple[float, float, float]] = field(default_factory=list)  # x, y0, y1
    ticks: list[tuple[float, str]] = field(default_factory=list)
    axis_y: float = 0
    plot: tuple[float, float] = (0, 0)
    unit: str = ""


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def _nice_step(span: float, target: int = 6) -> float:
    raw = span / target if span > 0 else 1
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def waterfall(score: ScoreResponse, width: int = 860) -> Chart:
    """The reasons as a horizontal waterfall: start, one bar per reason (up green, down red), final."""
    points = score.model_kind == "rule_baseline"
    reasons = [*score.reasons_up, *score.reasons_down]
    shown = sum(r.impact for r in reasons)
    if points:
        start, start_label = 0.0, "No points"
        end_label = f"Points from these reasons: {shown:+.0f}"
    else:
        start = _logit(score.probability) - shown
        start_label = "Baseline and all other factors"
        end_label = f"Score {score.score:.0f} · {score.probability:.1%} chance"
    label_w, value_w, row_h, top = 360, 70, 28, 8
    plot0, plot1 = label_w + 10, width - value_w
    running = [start]
    for r in reasons:
        running.append(running[-1] + r.impact)
    lo, hi = min(running), max(running)
    step = _nice_step(hi - lo or 1.0)
    lo, hi = math.floor(lo / step) * step, math.ceil(hi / step) * step
    if hi - lo < 1e-9:
        lo, hi = lo - step, hi + step

    def x(v: float) -> float:
        return round(plot0 + (v - lo) / (hi - lo) * (plot1 - plot0), 1)

    chart = Chart(width=width, height=0, plot=(plot0, plot1), unit="points" if points else "log-odds")
    fmt = "{:+.0f}" if points else "{:+.2f}"
    y = top
    start_text = "0" if points else f"{start:.2f}"
    chart.bars.append(Bar(start_label, start_label, "base", y, x(start), x(start), start_text,
                          x(start) + 8, "start"))
    for i, r in enumerate(reasons):
        y += row_h
        a, b = running[i], running[i + 1]
        kind = "up" if r.impact >= 0 else "down"
        left, right = sorted((x(a), x(b)))
        right = max(right, left + 2)
        value_x, anchor = (right + 5, "start") if kind == "up" else (left - 5, "end")
        title = f"{r.text} ({fmt.format(r.impact)} {chart.unit})"
        chart.bars.append(Bar(_truncate(r.text, 58), title, kind, y, left, right, fmt.format(r.impact),
                              value_x, anchor))
        chart.connectors.append((x(a), y - row_h + 4, y + 4))
    y += row_h
    final = running[-1]
    chart.connectors.append((x(final), y - row_h + 4, y + 4))
    chart.bars.append(Bar(end_label, end_label, "total", y, x(final), x(final),
                          f"{final:.2f}" if not points else f"{final:.0f}", x(final) + 8, "start"))
    chart.axis_y = y + row_h
    v = lo
    while v <= hi + 1e-9:
        label = f"{v:g}" if points else f"{v:g} ({1 / (1 + math.exp(-v)):.0%})"
        chart.ticks.append((x(v), label))
        v += step
    chart.height = int(chart.axis_y + 22)
    return chart


@dataclass
class HistoryChart:
    width: int
    height: int
    points: list[dict]
    polyline: str
    grid: list[tuple[float, str]]
    xlabels: list[tuple[float, str, str]]  # x, text, text-anchor
    mql_y: float | None
    plot: tuple[float, float, float, float]  # x0, x1, y0 (top), y1 (bottom)


def history_chart(history: list[ScorePoint], mql: float | None, width: int = 860,
                  height: int = 190) -> HistoryChart | None:
    """A small line chart of the score over time (0-100)."""
    scored = [h for h in history if h.score is not None]
    if not scored:
        return None
    x0, x1, y0, y1 = 40, width - 20, 12, height - 28
    t0, t1 = scored[0].scored_at.timestamp(), scored[-1].scored_at.timestamp()

    def px(t: float) -> float:
        return round((x0 + x1) / 2 if t1 == t0 else x0 + (t - t0) / (t1 - t0) * (x1 - x0), 1)

    def py(s: float) -> float:
        return round(y1 - max(0.0, min(100.0, s)) / 100 * (y1 - y0), 1)

    pts = [{"x": px(h.scored_at.timestamp()), "y": py(h.score or 0), "score": h.score, "tier": h.tier,
            "colour": TIER_COLOURS.get(h.tier or "", "#374151"),
            "title": f"{h.scored_at:%Y-%m-%d}: score {h.score:.0f}, {h.tier or '-'}"} for h in scored]
    picks = sorted({0, len(scored) - 1, len(scored) // 2})
    anchors = {0: "start", len(scored) - 1: "end"} if len(scored) > 1 else {}
    xlabels = [(pts[i]["x"], f"{scored[i].scored_at:%d %b %Y}", anchors.get(i, "middle")) for i in picks]
    return HistoryChart(
        width=width, height=height, points=pts, polyline=" ".join(f"{p['x']},{p['y']}" for p in pts),
        grid=[(py(s), str(s)) for s in (0, 25, 50, 75, 100)], xlabels=xlabels,
        mql_y=py(mql) if mql is not None else None, plot=(x0, x1, y0, y1))


def _months(timeline: list[TimelineEvent]) -> list[dict]:
    months: list[dict] = []
    for e in timeline:
        label = f"{e.event_time:%B %Y}"
        if not months or months[-1]["label"] != label:
            months.append({"label": label, "events": [], "engaged": 0})
        months[-1]["events"].append(e)
        months[-1]["engaged"] += not e.passive
    return months


def _when(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return "—"
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime(fmt)


def _number(value: float | int | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}"


def _money_short(value: float | None) -> str:
    if value is None:
        return "—"
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"${value / limit:,.1f}{suffix}"
    return f"${value:,.0f}"


def _words(value: str | None) -> str:
    return value.replace("_", " ") if value else "—"


_ENV: jinja2.Environment | None = None


def _environment() -> jinja2.Environment:
    global _ENV
    if _ENV is None:
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True,
                                 trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
        env.filters.update(when=_when, number=_number, money=_money_short, words=_words)
        _ENV = env
    return _ENV


def render_portrait_html(portrait: Portrait, viewer_employee_id: str,
                         viewed_at: datetime | None = None) -> str:
    """The portrait as one self-contained HTML page (inline CSS and SVG, no script), watermarked
    with the viewer's employee id."""
    viewed_at = viewed_at or datetime.now(UTC)
    score = portrait.current_score
    return _environment().get_template("portrait.html").render(
        p=portrait, viewer=viewer_employee_id, viewed_at=viewed_at,
        score=score, waterfall=waterfall(score) if score else None,
        history=history_chart(portrait.score_history, portrait.mql_threshold),
        months=_months(portrait.timeline),
        tier_colour=TIER_COLOURS.get(score.tier, "#374151") if score else None,
        tier_colours=TIER_COLOURS, up=UP, down=DOWN,
        tag_kinds=_tag_kinds(portrait.tags),
        opportunities=_first_opportunities(portrait.opportunities),
        open_opportunities=sum(o.stage == "open" for o in portrait.opportunities),
        watermarks=range(160 + 2 * len(portrait.timeline)),
    )


def _first_opportunities(opportunities: list[Opportunity]) -> list[Opportunity]:
    """For the page: the person's own, then the account's open ones, then the rest; newest first in each."""
    ranked = sorted(opportunities, key=lambda o: (not o.this_person, o.stage != "open"))  # stable
    return ranked[:MAX_OPPORTUNITIES_SHOWN]


def _tag_kinds(tags: list[Tag]) -> list[tuple[str, list[Tag]]]:
    order = {"rule": 0, "mined": 1, "statistical": 2, "attribute": 3}
    kinds: dict[str, list[Tag]] = {}
    for tag in tags:
        kinds.setdefault(tag.kind, []).append(tag)
    names = {"rule": "Signals", "mined": "Interests", "statistical": "Compared with others",
             "attribute": "Attributes"}
    return [(names.get(k, k), v) for k, v in sorted(kinds.items(), key=lambda kv: order.get(kv[0], 9))]
