"""Incremental identity: a new record joins the person its exact identifiers point to.

The batch (identity/) links records by connected components over exact identifiers, then
a probabilistic pass. Live, one record at a time, the same exact rules apply against
the current graph: what the middle layer knows (`BatchIdentities`, loaded once per
worker) plus what the event log learnt since (`EventLog.known`):
- an identifier is evidence unless it was seen with more distinct names than
  `identity.shared_identifier_max_names` (a shared inbox, a switchboard, a family
  computer), counting the batch's names, the live ones and this record's;
- a record whose evidence points to a person joins that person (if it points to two, the
  first kind in `IDENTIFIER_KINDS` order wins until the next batch merges them);
- else an anonymous web session stays anonymous, and any other record is a new person
  whose PID is minted by the batch's rule (`mint_id` of its best anchor), so the batch
  mints the same PID for a person seen only live;
- a form fill that carries a known anonymous cookie binds the cookie's history to the
  person, as the batch's connected components would.
The probabilistic pass stays in the batch; when a later batch merges or splits, its
stable-ID audit says so and the online store follows at the next materialisation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from leadscore.identity.companies import domain_to_cid
from leadscore.identity.link import ANCHOR_PRIORITY, ANONYMOUS_SOURCES, IDENTIFIER_KINDS, mint_id
from leadscore.identity.people import KNOWN_AT_FIELDS, PASSIVE_SOURCES, classify_title, title_patterns
from leadscore.live.log import EventLog, Known

PERSON_FIELDS = ["first_name", "last_name", "email", "phone", "owner_rep_id"]


# Per person, where the batch's company came from (identity/people.py's rule): whether a record
# the person authored gave one (cid_active), and the time of the latest such record, else of
# the latest record of any source that gave one (cid_seen). A record's own company is its
# account, else its company name, else its email domain (companies.record_cids; the middle
# layer's `record.cid` is the person's company, not the record's own).
_COMPANY_EVIDENCE_SQL = f"""
    WITH own AS (
        SELECT r.pid, r.seen_at, r.source NOT IN ({", ".join(f"'{s}'" for s in PASSIVE_SOURCES)}) AS active
        FROM middle.record r
        LEFT JOIN middle.company_node a ON a.node = 'account:' || r.account_id
        LEFT JOIN middle.company_node n ON n.node = 'name:' || r.company_name_std
        LEFT JOIN domain_cid d ON d.work_domain = r.work_domain
        WHERE r.pid IS NOT NULL AND coalesce(a.cid, n.cid, d.cid) IS NOT NULL)
    SELECT pid, bool_or(active) AS cid_active,
           coalesce(max(seen_at) FILTER (WHERE active), max(seen_at)) AS cid_seen
    FROM own GROUP BY pid"""


def _company_evidence(con: duckdb.DuckDBPyConnection, domains: dict[str, str]) -> pd.DataFrame:
    """pid, cid_active, cid_seen (`_COMPANY_EVIDENCE_SQL`) from the attached middle layer."""
    with con.cursor() as cur:
        cur.register("domain_cid", pd.DataFrame({"work_domain": list(domains), "cid": list(domains.values())},
                                                dtype="string"))
        return cur.execute(_COMPANY_EVIDENCE_SQL).df()


def _read_batch(con: duckdb.DuckDBPyConnection, kinds: str) -> tuple:
    """From the attached middle layer: identifier keys with their person and names, shared
    keys, company nodes, company owners, person rows and the live watermark."""
    with con.cursor() as cur:
        cur.execute("USE middle")
        rows = cur.execute(f"""
            SELECT key, any_value(pid) FILTER (WHERE pid IS NOT NULL),
                   list(DISTINCT name_key) FILTER (WHERE name_key IS NOT NULL)
            FROM ({kinds}) GROUP BY key""").fetchall()
        shared = {row[0] for row in cur.execute("SELECT key FROM shared_identifier").fetchall()}
        nodes = dict(cur.execute("SELECT node, cid FROM company_node").fetchall())
        owners = dict(cur.execute(
            "SELECT cid, owner_rep_id FROM company WHERE owner_rep_id IS NOT NULL").fetchall())
        people = cur.execute("SELECT * FROM person").df()
        try:
            held = cur.execute("SELECT log, record FROM live_watermark").fetchone() or ("", 0)
        except duckdb.Error:  # a layer from before the live path
            held = ("", 0)
    return rows, shared, nodes, owners, people, held


@dataclass(frozen=True, eq=False)
class RecordIds:
    """The batch's id_map as lookups: per source, its record ids sorted, as fixed-width UTF-8
    bytes in NumPy (a few bytes each: the default world's million ids and PIDs take some 20 MB), and
    each one's PID (empty: none). A call's ids are found by binary search; a query of an
    in-memory copy in DuckDB scanned the source's rows, 5-8 ms a source in each ingest group."""

    ids: dict[str, np.ndarray]
    pids: dict[str, np.ndarray]

    @classmethod
    def read(cls, con: duckdb.DuckDBPyConnection, table: str = "middle.id_map") -> RecordIds:
        ids, pids = {}, {}
        for source, frame in con.execute(f"SELECT source, source_record_id, pid FROM {table} "
                                         "WHERE source_record_id IS NOT NULL").df().groupby("source"):
            held = _utf8(frame["source_record_id"])
            order = np.argsort(held, kind="stable")
            ids[source], pids[source] = held[order], _utf8(frame["pid"].fillna(""))[order]
        return cls(ids, pids)

    def stored(self, source: str, ids: list[str]) -> dict[str, str | None]:
        """Those of `ids` the batch holds for `source`, with their PID (None: none)."""
        held = self.ids.get(source)
        if held is None or not ids:
            return {}
        # (longer than the widest: none is held; NumPy's bytes drop a trailing NUL: "X\0" is not "X")
        wanted = [i for i in ids if len(i.encode()) <= held.itemsize and not i.endswith("\0")]
        asked = _utf8(wanted).astype(held.dtype)
        at = np.minimum(np.searchsorted(held, asked), len(held) - 1)
        found = held[at] == asked
        return {i: pid.decode() or None for i, pid in zip(np.asarray(wanted, dtype=object)[found],
                                                          self.pids[source][at[found]], strict=True)}


def _utf8(texts) -> np.ndarray:
    """Texts as fixed-width UTF-8 bytes (NumPy's `S`: compared and sorted byte by byte)."""
    return np.array([text.encode() for text in texts], dtype=bytes)


@dataclass(frozen=True)
class BatchIdentities:
    """What the last batch resolved, as lookups: identifier key -> (pid, names), shared keys,
    company nodes and domains -> CID, and the person rows (about 1 s and 100 MB per worker
    on the default world, so that each record costs dictionary lookups, not queries)."""

    person_columns: tuple[str, ...]
    person_rows: dict[str, dict]
    keys: dict[str, Known]
    shared: frozenset[str]
    company_nodes: dict[str, str]
    domains: dict[str, str]
    owners: dict[str, str]  # cid -> owner_rep_id
    records: RecordIds = field(repr=False, compare=False)  # the batch's id_map
    held: tuple[str, int] = ("", 0)  # (event log id, its last record row this batch holds)

    def held_by(self, log_id: str) -> int:
        """The last record row of that log the batch holds (its later knowledge is the log's)."""
        return self.held[1] if self.held[0] == log_id else 0

    @classmethod
    def load(cls, middle_db: Path, accounts: pd.DataFrame | None = None) -> BatchIdentities:
        """`accounts`: the CRM accounts the batch read, standardised (`companies.standardise_accounts`):
        a domain names a company only if no other company's account has it, as in the batch."""
        kinds = " UNION ALL ".join(
            f"SELECT '{kind}:' || {kind} AS key, pid, name_key FROM record WHERE {kind} IS NOT NULL"
            for kind in IDENTIFIER_KINDS)
        con = duckdb.connect()  # in memory; the file is attached only while reading
        try:
            con.execute("SET TimeZone = 'UTC'")  # times as UTC text: the fold compares them as text
            con.execute(f"ATTACH '{middle_db}' AS middle (READ_ONLY)")
            rows, shared, nodes, owners, people, held = _read_batch(con, kinds)
            domains = {} if accounts is None else domain_to_cid(accounts, pd.Series(nodes)).to_dict()
            people = people.merge(_company_evidence(con, domains), on="pid", how="left")
            ids = RecordIds.read(con)
        finally:
            con.close()  # the file with it
        keys = {key: Known(pid, frozenset(names or ())) for key, pid, names in rows}
        person_rows = {row["pid"]: row for row in people.to_dict("records")}
        return cls(tuple(people.columns), person_rows, keys, frozenset(shared), nodes,
                   domains, owners, ids,
                   (str(held[0]), int(held[1])))

    def people(self, pids: list[str]) -> dict[str, dict]:
        return {pid: _plain(self.person_rows[pid]) for pid in pids if pid in self.person_rows}

    def stored(self, source: str, ids: list[str]) -> dict[str, str | None]:
        """Which of these records the batch already holds, with their person: a record sent
        again after the batch took it in is a duplicate too."""
        return self.records.stored(source, ids)

    def record_cid(self, record: dict) -> str | None:
        """The record's company, by the batch's rule: account, else named company, else domain."""
        for node in (f"account:{record.get('account_id')}" if _given(record.get("account_id")) else None,
                     f"name:{record.get('company_name_std')}"
                     if _given(record.get("company_name_std")) else None):
            if node is not None and node in self.company_nodes:
                return self.company_nodes[node]
        domain = record.get("work_domain")
        return self.domains.get(domain) if domain is not None and _given(domain) else None


def _newer_company(row: dict, active: bool, seen: str) -> bool:
    """Whether a record's company (from an `active` source, seen at `seen`) replaces the
    row's, by the batch's rule: the latest company from a record the person authored, else
    the latest from any record. (A row without `cid_active` has its company from an active
    source: the usual case, and the safe one: mail kept going to a mover's old address.)"""
    if not row.get("cid"):
        return True
    return (active, seen) >= (row.get("cid_active") is not False, row.get("cid_seen") or "")


@dataclass
class Decision:
    """Where one record went: its person (None: anonymous), the rule, and the cookies
    whose anonymous history it bound to the person."""

    pid: str | None
    rule: str
    bound_cookies: list[str] = field(default_factory=list)


def _given(value) -> bool:
    return value is not None and value is not pd.NA and not (isinstance(value, float) and math.isnan(value))


def _plain(row: dict) -> dict:
    """A person row with JSON-ready values (timestamps as ISO text, missing as None)."""
    out: dict[str, object] = {}
    for key, value in row.items():
        if not _given(value) or value is pd.NaT:
            out[key] = None
        elif isinstance(value, (pd.Timestamp, datetime)):
            out[key] = pd.Timestamp(value).isoformat()
        elif hasattr(value, "item"):
            out[key] = value.item()
        else:
            out[key] = value
    return out


def record_keys(record: dict) -> list[tuple[str, str]]:
    """(kind, 'kind:value') of every identifier the record carries, in IDENTIFIER_KINDS order."""
    return [(kind, f"{kind}:{record[kind]}") for kind in IDENTIFIER_KINDS if _given(record.get(kind))]


def knowledge(batch: BatchIdentities, log: EventLog, keys: list[str],
              learnt: dict[str, Known] | None = None) -> dict[str, Known]:
    """What the batch, the event log since it, and `learnt` (this transaction's, not yet in the
    log) know of each key, merged: names united, a live pid before the batch's."""
    learnt = learnt or {}
    live = log.known([key for key in keys if key not in learnt], batch.held_by(log.id))
    live.update({key: learnt[key] for key in keys if key in learnt})
    out = {}
    for key in keys:
        old, new = batch.keys.get(key), live.get(key)
        if old is None and new is None:
            continue
        pid = (new.pid if new and new.pid else None) or (old.pid if old else None)
        out[key] = Known(pid, (old.names if old else frozenset()) | (new.names if new else frozenset()))
    return out


def person_named_by(batch: BatchIdentities, log: EventLog, key: str, max_names: int) -> str | None:
    """The person an identifier names now, or None: unknown, bound to nobody yet (an anonymous
    cookie), or no evidence of anyone (a shared inbox or computer, by the guards of `decide`)."""
    known = knowledge(batch, log, [key]).get(key)
    if known is None or key in batch.shared or len(known.names) > max_names:
        return None
    return known.pid


class LiveIdentity:
    """Decides PIDs for standardised records, within one event-log write transaction."""

    def __init__(self, batch: BatchIdentities, log: EventLog, max_names: int,
                 title_rules: dict) -> None:
        self.batch = batch
        self.log = log
        self.max_names = max_names
        self.seniority = title_patterns(title_rules["seniority"], "level")
        self.department = title_patterns(title_rules["department"], "name")
        self._learnt: dict[str, Known] = {}

    def knowledge(self, keys: list[str]) -> dict[str, Known]:
        """Batch and live knowledge of each key merged (names united, a live pid first)."""
        return knowledge(self.batch, self.log, keys, self._learnt)

    def decide(self, record: dict) -> Decision:
        """The record's person; learns its identifiers (not committed until the transaction is)."""
        keys = record_keys(record)
        known = self.knowledge([key for _, key in keys])
        name = record.get("name_key") if _given(record.get("name_key")) else None
        names = {key: (known[key].names if key in known else frozenset()) | ({name} if name else set())
                 for _, key in keys}
        evidence = [(kind, key) for kind, key in keys
                    if key not in self.batch.shared and len(names[key]) <= self.max_names]
        linked = [(kind, known[key].pid) for kind, key in evidence if key in known and known[key].pid]
        if linked:
            pid, rule = linked[0][1], linked[0][0]
        elif record["source"] in ANONYMOUS_SOURCES:
            pid, rule = None, "anonymous_cookie"
        else:
            pid, rule = self._mint(record, evidence), "singleton"
        bound = [key.split(":", 1)[1] for kind, key in evidence
                 if pid and kind == "cookie_id" and key in known and known[key].pid is None]
        evidence_keys = {key for _, key in evidence}
        for _, key in keys:
            owner = pid if key in evidence_keys else (known[key].pid if key in known else None)
            self._learnt[key] = Known(owner, frozenset(names[key]))
        return Decision(pid, rule, bound)

    def _mint(self, record: dict, evidence: list[tuple[str, str]]) -> str:
        """The batch's anchor rule for a cluster of this one record: its best identifier key,
        else its record key."""
        anchors = sorted(f"{ANCHOR_PRIORITY[kind]}{key}" for kind, key in evidence)
        anchor = anchors[0][1:] if anchors else f"{record['source']}:{record['source_record_id']}"
        return mint_id("P", pd.Series([anchor])).iloc[0]

    def learnt(self) -> dict[str, Known]:
        return dict(self._learnt)

    def fold_people(self, records: list[dict], decisions: list[Decision]) -> dict[str, dict]:
        """The person rows of the touched PIDs, with these records folded in by the batch's
        survivorship rules (identified_at and <field>_known_at are first times; the
        company and title the latest a person gave)."""
        pids = list(dict.fromkeys(d.pid for d in decisions if d.pid))
        rows = self.batch.people([pid for pid in pids])
        rows.update(self.log.people(pids, self.batch.held_by(self.log.id)))
        for record, decision in zip(records, decisions, strict=True):
            if decision.pid:
                new = dict.fromkeys(self.batch.person_columns) | {"pid": decision.pid}
                rows[decision.pid] = self._fold(rows.get(decision.pid) or new, record)
        return {pid: rows[pid] for pid in pids}

    def _fold(self, row: dict, record: dict) -> dict:
        """`row` with `record` folded in. Records reach the log in any order (sources and
        workers race, and a source may send late), so whatever takes the latest record's
        value keeps that record's time beside it (`title_seen`, `cid_seen`) and compares."""
        seen = pd.Timestamp(record["seen_at"]).isoformat()
        row = dict(row)

        def first(column: str) -> None:
            row[column] = min(filter(None, [row.get(column), seen]))

        first("first_seen")
        row["last_seen"] = max(filter(None, [row.get("last_seen"), seen]))
        row["records"] = int(row.get("records") or 0) + 1
        if record["source"] != "web_sessions":
            first("identified_at")
        active = record["source"] not in PASSIVE_SOURCES
        if _given(record.get("cid")) and _newer_company(row, active, seen):
            row["cid"], row["cid_active"], row["cid_seen"] = record["cid"], active, seen
        if _given(record.get("title")) and seen >= (row.get("title_seen") or ""):
            row["title"], row["title_seen"] = record["title"], seen
        for name, column in KNOWN_AT_FIELDS.items():
            value = record.get(column)
            if _given(value):
                first(f"{name}_known_at")
        for column in PERSON_FIELDS:
            if not row.get(column) and _given(record.get(column)):
                row[column] = record[column]
        if not row.get("owner_rep_id") and row.get("cid"):
            row["owner_rep_id"] = self.batch.owners.get(row["cid"])
        if record["source"] == "user_accounts":
            row["uid"] = row["pid"]
        title = (row.get("title") or "").lower()
        row["seniority"] = classify_title(title, self.seniority) if title else None
        row["department"] = classify_title(title, self.department) if title else None
        row["name"] = f"{row.get('first_name') or ''} {row.get('last_name') or ''}".strip()
        return row
