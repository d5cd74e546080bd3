"""Reading a portrait: the middle layer (DuckDB), the tags and the score history (Parquet).

`PortraitReader` is built once at service start; every call opens the middle layer
(DuckDB) read-only and closes it again, so the pipeline can rewrite the file between
requests. Tags and score history are Parquet files, cached in memory and reloaded when
the file changes (size or modification time).

Decisions:

- **Account owner**: the company's `owner_rep_id` when the person has a company with an
  owner, else the person's own `owner_rep_id` (`PortraitReader.owner`).
- **"Now"** is the clock's (leadscore/clock.py): the wall clock in production; on the demo
  world a clock that starts at the world's end and moves on (a replay sets its speed).
- **Live events**: records ingested since the last batch (the event log, live/log.py) are
  in the timeline and the counts at once, beside the middle layer's; so are the anonymous
  visits of a cookie a live form fill bound to the person, and the scores served (the
  score log) beside the batch's history.
- **Engaged** means any interaction except the passive ones (`passive_event_types` in
  config/features.yaml: `email_send`, something we did to the person).
- **Timeline**: every interaction of the person, passive ones included (marked), newest first.
- **Opportunities**: the person's own and those of their company (the account), newest first.
- **Outcomes**: what the CRM sent back about the person (POST /outcomes, in the event log):
  opportunities opened, staged, won or lost, and what sales did with their MQLs, newest first,
  each as it was sent (the batch's `opportunities` above are not folded with them).
- **Colleagues**: other people of the same company with engagement in the 90 days before
  "now", most engaged first; people at the other companies of the same group apart
  (`group_colleagues`); at most `max_colleagues` each. Their contacts are **always
  masked**: a reveal is granted and audited for the portrait's person only. A sales rep
  (`visible_to`) is listed only the people of the accounts they own (each colleague's owner
  decided as `owner`'s): a group's sister company belongs to another rep as often as not.
  The companies' engaged-people counts stay whole: numbers, no one named. So do the
  account's opportunities: those of another rep's person are left out.
- **PII**: the person's email and phone are masked unless `reveal_pii=True`, and so is any
  email address inside an event's properties (tracking links often carry the recipient's).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from leadscore.access.masking import mask_emails_in, mask_record
from leadscore.clock import Clock, open_clock
from leadscore.config import Settings, load_yaml
from leadscore.live.log import EVENT_LOG, EventLog, compacted
from leadscore.live.score_log import ScoreLog
from leadscore.serving.portrait.errors import PortraitUnavailable, UnknownPerson
from leadscore.serving.portrait.schemas import (
    Colleague,
    CompanyProfile,
    CrmOutcome,
    Engagement,
    GroupProfile,
    Opportunity,
    PersonProfile,
    Portrait,
    ScorePoint,
    Tag,
    TimelineEvent,
)
from leadscore.serving.portrait.wording import describe_event, describe_outcome
from leadscore.serving.schemas import ScoreResponse

DEFAULT_PASSIVE = ("email_send",)
RECENT_DAYS = 90
OPEN_ATTEMPTS = 4  # the pipeline may hold the write lock for a moment
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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

_ANONYMOUS_VISITS_SQL = """
SELECT lid, epoch_us(event_time) AS event_us, event_type, channel, source, properties
FROM interaction WHERE pid IS NULL AND list_contains($cookies, cookie_id)
"""

# Engaged people of the person's company and of the other companies of its group.
_ENGAGED_SQL = """
WITH scope AS (
    SELECT cid, name, owner_rep_id FROM company WHERE cid = $cid OR ($eid IS NOT NULL AND eid = $eid)
), engaged AS (
    SELECT i.pid, count(*) AS n, max(i.event_time) AS last_at,
           arg_max(i.event_type, i.event_time) AS last_type
    FROM interaction i
    WHERE i.event_time > $since AND i.event_time <= $now AND NOT list_contains($passive, i.event_type)
      AND i.pid IN (SELECT pid FROM person WHERE cid IN (SELECT cid FROM scope))
    GROUP BY i.pid
)
SELECT p.pid, p.name, p.title, p.seniority, p.department, p.email, p.phone, p.cid, s.name AS company_name,
       coalesce(s.owner_rep_id, p.owner_rep_id) AS owner_rep_id, e.n, e.last_at, e.last_type
FROM engaged e JOIN person p ON p.pid = e.pid JOIN scope s ON s.cid = p.cid
ORDER BY e.n DESC, e.last_at DESC, p.pid
"""

_GROUP_SQL = """
SELECT cid, name, domain, industry, employees, funding_stage, annual_revenue_usd, owner_rep_id
FROM company WHERE eid = $eid AND cid <> $cid ORDER BY name, cid
"""

_OPPORTUNITY_SQL = """
SELECT o.opportunity_id, o.pid, p.name AS contact_name, o.opportunity_created_at, o.stage, o.won_at,
       o.closed_at, o.amount_usd, coalesce(pc.owner_rep_id, p.owner_rep_id) AS owner_rep_id
FROM outcome o LEFT JOIN person p ON p.pid = o.pid LEFT JOIN company pc ON pc.cid = p.cid
WHERE o.pid = $pid OR ($cid IS NOT NULL AND o.cid = $cid)
ORDER BY o.opportunity_created_at DESC NULLS LAST, o.opportunity_id
"""


def query_rows(con: duckdb.DuckDBPyConnection, sql: str, params: dict) -> list[dict]:
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

    def __init__(self, settings: Settings, max_colleagues: int = 20, clock: Clock | None = None):
        self.settings = settings
        self.clock = clock or open_clock(settings)
        self.score_log = ScoreLog(settings.live_dir / "scores", settings.live.busy_timeout_s)
        self._local = threading.local()
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

    def middle(self):
        """The middle layer for one read, as the portrait's (read-only, detached after): for the
        account page (serving/account/reader.py)."""
        return self._middle()

    @property
    def live(self) -> EventLog:
        """This thread's connection to the event log."""
        if not hasattr(self._local, "log"):
            self._local.log = EventLog(self.settings.live_dir / EVENT_LOG, self.settings.live.busy_timeout_s)
        return self._local.log

    def owner(self, pid: str) -> str | None:
        """The account owner of `pid`: the company's rep, else the person's. UnknownPerson if none."""
        owners = self.owners([pid])
        if pid not in owners:
            raise UnknownPerson(pid)
        return owners[pid]

    def owners(self, pids: list[str]) -> dict[str, str | None]:
        """The account owner (`owner`) of each of `pids` the middle layer holds, in one read."""
        with self._middle() as con:
            return dict(con.execute(
                "SELECT p.pid, coalesce(c.owner_rep_id, p.owner_rep_id) FROM person p "
                "LEFT JOIN company c ON c.cid = p.cid WHERE list_contains($pids, p.pid)",
                {"pids": pids}).fetchall())

    def known(self, pids: list[str]) -> set[str]:
        """Those of `pids` that are people: of the middle layer, or minted live since."""
        with self._middle() as con:
            found = {row[0] for row in con.execute("SELECT pid FROM person WHERE list_contains($pids, pid)",
                                                   {"pids": pids}).fetchall()}
        return found | set(self.live.people(set(pids) - found))

    def portrait(self, pid: str, score: ScoreResponse | None = None, reveal_pii: bool = False,
                 visible_to: str | None = None) -> Portrait:
        """The whole portrait of `pid`; PII masked unless `reveal_pii`. UnknownPerson if none.
        With `visible_to` (a sales rep's employee id) the colleagues listed are only people of
        that rep's accounts."""
        with self._middle() as con:
            read = self._read(con, pid)
        row = read.person
        timeline = _timeline(read.events, set(self.passive), reveal_pii)
        same, elsewhere = _colleagues(_visible(read.engaged, visible_to), pid, row["c_cid"])
        people_at = Counter(e["cid"] for e in read.engaged)
        return Portrait(
            pid=pid, generated_at=datetime.now(UTC), world_now=read.now, owner_rep_id=row["owner_rep_id"],
            pii="full" if reveal_pii else "masked", person=_person(row, reveal_pii),
            company=_company(row, people_at), group=_group(row, read.group, people_at),
            tags=[Tag(**t) for t in self.tags.rows(pid)],
            engagement=_engagement(timeline, read.now), timeline=timeline,
            opportunities=[_opportunity(o, pid) for o in _visible(read.opportunities, visible_to)],
            outcomes=self._outcomes(pid),
            score_history=[_score_point(h) for h in self.history.rows(pid) if h.get("scored_at") is not None]
            + [_served_point(h) for h in self.score_log.read([pid], shadow=False).to_dict("records")],
            current_score=score,
            colleagues=same[:self.max_colleagues], colleagues_total=len(same),
            group_colleagues=elsewhere[:self.max_colleagues], group_colleagues_total=len(elsewhere),
            mql_threshold=self.mql_threshold,
        )

    def _read(self, con: duckdb.DuckDBPyConnection, pid: str) -> _MiddleRows:
        rows = query_rows(con, _PERSON_SQL, {"pid": pid})
        if not rows:
            raise UnknownPerson(pid)
        row = rows[0]
        now = self.clock.now()
        # epoch microseconds: no time zone conversion per row; sorted here, cheaper than in SQL
        events = sorted(con.execute(_TIMELINE_SQL, {"pid": pid}).fetchall() + self._live_events(con, pid),
                        key=lambda e: (e[1], e[0] or ""), reverse=True)
        cid, eid = row["c_cid"], row["eid"]
        engaged: list[dict] = []
        group: list[dict] = []
        if cid is not None and now is not None:
            since = now - timedelta(days=RECENT_DAYS)
            engaged = query_rows(con, _ENGAGED_SQL, {"cid": cid, "eid": eid, "now": now, "since": since,
                                                "passive": self.passive})
        if eid is not None:
            group = query_rows(con, _GROUP_SQL, {"eid": eid, "cid": cid})
        opportunities = query_rows(con, _OPPORTUNITY_SQL, {"pid": pid, "cid": row["cid"]})
        return _MiddleRows(row, now, events, engaged, group, opportunities)


    def _outcomes(self, pid: str) -> list[CrmOutcome]:
        """What the CRM sent back about the person (the event log's outcomes), newest first."""
        rows = self.live.outcomes(pids=[pid]).iloc[::-1]
        rows = rows.astype(object).where(rows.notna(), None)
        return [CrmOutcome(**{k: v for k, v in row.items() if k in CrmOutcome.model_fields},
                           description=describe_outcome(row)) for row in rows.to_dict("records")]

    def _live_events(self, con: duckdb.DuckDBPyConnection, pid: str) -> list[tuple]:
        """The person's interactions in the event log, and the middle layer's anonymous visits
        of cookies bound to the person live, as _TIMELINE_SQL rows."""
        live = self.live.interactions(pids=[pid], after=compacted(con, self.live.id))
        bound = self.live.known_cookies_of(pid, compacted(con, self.live.id, "record"))
        cookies = [key.split(":", 1)[1] for key in bound]
        rows = [(r.lid, int(r.event_time.value // 1000), r.event_type, r.channel, r.source, r.properties)
                for r in live.itertuples()]
        if cookies:
            rows += con.execute(_ANONYMOUS_VISITS_SQL, {"cookies": cookies}).fetchall()
        return rows


# --------------------------------------------------------------------------- assembly


@dataclass(frozen=True)
class _MiddleRows:
    """What one portrait reads from the middle layer."""

    person: dict  # the person, their company and its group (_PERSON_SQL)
    now: datetime | None  # the world's latest interaction
    events: list[tuple]  # the person's interactions, newest first (_TIMELINE_SQL)
    engaged: list[dict]  # engaged people of the company and its group (_ENGAGED_SQL)
    group: list[dict]  # the group's other companies (_GROUP_SQL)
    opportunities: list[dict]  # the person's and the account's (_OPPORTUNITY_SQL)


def _person(row: dict, reveal_pii: bool) -> PersonProfile:
    person_fields = set(PersonProfile.model_fields) - {"pii_masked"}
    person = mask_record({k: v for k, v in row.items() if k in person_fields}, full=reveal_pii)
    person["name"] = person.get("name") or None
    return PersonProfile(**person, pii_masked=not reveal_pii)


def _company(row: dict, people_at: Counter[str]) -> CompanyProfile | None:
    if row["c_cid"] is None:
        return None
    return CompanyProfile(
        cid=row["c_cid"], name=row["c_name"], domain=row["domain"], industry=row["industry"],
        employees=row["employees"], funding_stage=row["funding_stage"],
        annual_revenue_usd=row["annual_revenue_usd"], owner_rep_id=row["c_owner"],
        engaged_people_90d=people_at[row["c_cid"]])


def _group(row: dict, companies: list[dict], people_at: Counter[str]) -> GroupProfile | None:
    """The company's group, its other companies most engaged first."""
    if row["eid"] is None:
        return None
    others = [CompanyProfile(**c, engaged_people_90d=people_at[c["cid"]]) for c in companies]
    others.sort(key=lambda c: -c.engaged_people_90d)
    return GroupProfile(eid=row["eid"], name=row["e_name"] or row["group_name"], companies=others)


def _timeline(events: list[tuple], passive: set[str], reveal_pii: bool) -> list[TimelineEvent]:
    timeline = []
    for lid, event_us, event_type, channel, source, properties in events:
        props = _parse(properties) if reveal_pii else mask_emails_in(_parse(properties))
        text, detail = describe_event(event_type, props)
        timeline.append(TimelineEvent(
            lid=lid, event_time=EPOCH + timedelta(microseconds=event_us), event_type=event_type,
            channel=channel, source=source, description=text, detail=detail,
            passive=event_type in passive, properties=props))
    return timeline


def _opportunity(row: dict, pid: str) -> Opportunity:
    return Opportunity(
        opportunity_id=row["opportunity_id"], pid=row["pid"], contact_name=row["contact_name"] or None,
        this_person=row["pid"] == pid, created_at=row["opportunity_created_at"], stage=row["stage"],
        won_at=row["won_at"], closed_at=row["closed_at"], amount_usd=row["amount_usd"])


def _colleagues(engaged: list[dict], pid: str, cid: str | None) -> tuple[list[Colleague], list[Colleague]]:
    """The engaged people other than `pid`: (at the company `cid`, at the group's other companies)."""
    mates = [colleague_of(e) for e in engaged if e["pid"] != pid]
    return [c for c in mates if c.cid == cid], [c for c in mates if c.cid != cid]


def _visible(rows: list[dict], rep: str | None) -> list[dict]:
    """The rows that name no one or a person of an account `rep` owns; all when no rep is named.
    (A company without an owner leaves each of its people to their own rep.)"""
    return rows if rep is None else [r for r in rows if r["pid"] is None or r["owner_rep_id"] == rep]


def colleague_of(e: dict) -> Colleague:
    masked = mask_record({"email": e["email"], "phone": e["phone"]})
    return Colleague(pid=e["pid"], name=e["name"] or None, title=e["title"], seniority=e["seniority"],
                     department=e["department"], email=masked["email"], phone=masked["phone"],
                     cid=e["cid"], company_name=e["company_name"], events_90d=e["n"],
                     last_event_at=e["last_at"], last_event_type=e["last_type"])


def _parse(properties: str | None) -> dict:
    if not properties:
        return {}
    try:
        parsed = json.loads(properties)
    except (TypeError, ValueError):
        return {"raw": properties}
    return parsed if isinstance(parsed, dict) else {"value": parsed}


def _score_point(row: dict) -> ScorePoint:
    point: dict[str, Any] = {k: None if isinstance(v, float) and v != v else v  # NaN: not told
             for k, v in row.items() if k in ScorePoint.model_fields}
    if point.get("model_version") is not None:
        point["model_version"] = str(point["model_version"])
    if point["scored_at"].tzinfo is None:  # the contract says UTC; a naive column is read as UTC
        point["scored_at"] = point["scored_at"].replace(tzinfo=UTC)
    return ScorePoint(**point)


def _served_point(row: dict) -> ScorePoint:
    """A score the service served (the score log), with its axes where they were logged."""
    logged = _parse(row["reasons"])
    return ScorePoint(scored_at=row["at"].to_pydatetime(), probability=row["probability"],
                      score=row["score"], tier=row["tier"], model_version=str(row["model_version"]),
                      fit=logged.get("fit"), interest=logged.get("interest"))


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
