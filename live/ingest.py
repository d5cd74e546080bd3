"""Ingest: raw records of a source system into the event log, with the batch's rules.

For each call, or several taken together (live/group_commit.py), in one event-log
transaction (see live/log.py for why):
1. records already stored (same source and source id) are answered as duplicates and
   change nothing;
2. the rest are standardised and quarantined exactly as the batch does it
   (identity/records.py), the reason kept with the raw record;
3. each kept record gets its person by incremental identity (live/identity.py) and its
   company by the batch's rule; the touched people's rows are folded with it;
4. behaviour records become interactions by the middle layer's own SQL
   (identity/middle.py), and everything is appended and committed before the answer, with
   the touched people marked due for a feature update (live/log.py `due_update`).
What follows (features, scores, pushes: live/online.py) reads the committed log, behind
the answer.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import duckdb
import pandas as pd

from leadscore.config import Settings
from leadscore.identity.companies import standardise_accounts
from leadscore.identity.middle import INTERACTION_SOURCES, interaction_sql
from leadscore.identity.records import SOURCE_LAYOUT
from leadscore.identity.resolve import IdentityRules, rules_from_settings
from leadscore.live.identity import BatchIdentities, Decision, LiveIdentity, person_named_by
from leadscore.live.log import EVENT_LOG, EventLog
from leadscore.live.sources import ID_COLUMN, TIME_COLUMN, SourceRecord, frame_of, stored_frame
from leadscore.live.standardise import standardise_records

logger = logging.getLogger(__name__)


@dataclass
class Ingested:
    """What one call did: per record its fate, and what the next steps need."""

    source: str
    accepted: list[dict] = field(default_factory=list)     # {source_record_id, pid}
    duplicates: list[str] = field(default_factory=list)
    quarantined: list[dict] = field(default_factory=list)  # {source_record_id, reason}
    people: dict[str, dict] = field(default_factory=dict)  # touched pid -> person row
    bound_cookies: dict[str, list[str]] = field(default_factory=dict)  # pid -> cookies bound now
    duplicate_pids: dict[str, str] = field(default_factory=dict)  # a duplicate's id -> its person, if any

    @property
    def touched(self) -> list[str]:
        """The people this call's records name: those its new records touched (marked due for
        a feature update) and those of re-sent records."""
        return list(dict.fromkeys([*self.people, *self.duplicate_pids.values()]))


def _json_rows(frame: pd.DataFrame) -> list[str]:
    return frame.to_json(orient="records", lines=True, date_format="iso", date_unit="us").splitlines()


class Ingestor:
    """The live write path of one worker process (thread-safe: a log connection per thread)."""

    def __init__(self, settings: Settings, rules: IdentityRules | None = None,
                 batch: BatchIdentities | None = None,
                 reloaded: Callable[[], object] | None = None) -> None:
        """`reloaded`: called once the identities of a new batch are loaded (the service
        keeps them out of the collector's full passes, as what it loaded at start)."""
        self.settings = settings
        self.rules = rules or rules_from_settings(settings)
        self._reloaded = reloaded
        self._local = threading.local()
        self._reloading = threading.Lock()  # guards the two below
        self._loader: threading.Thread | None = None  # the reload running, if one is
        self._wanted = self._stamp()  # the stamp the last load read (read first: a later batch shows)
        self._batch = batch or self._load_batch()  # the first load blocks: there is nothing to serve yet

    def _load_batch(self) -> BatchIdentities:
        """The batch's identities, with its CRM accounts (raw, and those ingested since) for the
        company of an email domain."""
        path = self.settings.raw_dir / "crm_accounts.parquet"
        accounts = pd.read_parquet(path) if path.is_file() else None
        if accounts is not None:
            live = self.log.records("kept")
            live = live[live["source"] == "crm_accounts"]
            if len(live):
                extra = stored_frame("crm_accounts", live["payload"])
                accounts = pd.concat([accounts, extra.astype(accounts.dtypes.to_dict(), errors="ignore")],
                                     ignore_index=True)
            accounts = standardise_accounts(accounts, self.rules.standardise)
        return BatchIdentities.load(self.settings.middle_db, accounts)

    @property
    def batch(self) -> BatchIdentities:
        """What the last batch resolved. When the batch has replaced the middle layer, the
        identities loaded before are still given while a thread loads the new ones and swaps
        them in: a load takes seconds, and a page view's cookie lookup (promised in 10 ms) may
        not wait for it. The old snapshot is a consistent view of identities: the event log
        keeps every row after its mark, so it is the state just before the file changed."""
        if self._stamp() != self._wanted:
            self._start_reload()
        return self._batch

    def current_batch(self) -> BatchIdentities:
        """What the last batch resolved, waiting for a reload in flight: an ingest binds records
        to PIDs and the feature update behind it reads the new middle layer at once, so it
        must not give a PID the new batch merged away (it waited for the reload before)."""
        self.batch  # noqa: B018 - starts the reload when the file changed
        self.wait_for_reload()
        return self._batch

    def _stamp(self) -> int:
        return self.settings.middle_db.stat().st_mtime_ns

    def _start_reload(self) -> None:
        """Start loading the new batch on a thread, unless one is loading already (one at a
        time: each holds the whole batch in memory); a file changed again meanwhile is loaded
        after it, at the next lookup."""
        with self._reloading:
            stamp = self._stamp()
            if stamp == self._wanted or (self._loader is not None and self._loader.is_alive()):
                return
            self._wanted = stamp
            self._loader = threading.Thread(target=self._reload, name="batch-reload", daemon=True)
            self._loader.start()

    def _reload(self) -> None:
        """Load the batch and swap it in (one assignment: a reader holds one snapshot or the
        other). A failed load keeps the old one, and is tried again once the file changes."""
        try:
            batch = self._load_batch()
        except Exception:  # noqa: BLE001 - a background thread: said in the log, the old batch served
            logger.exception("the new batch's identities failed to load; still serving the previous ones")
            return
        self._batch = batch
        if self._reloaded:
            self._reloaded()

    def wait_for_reload(self, timeout_s: float | None = None) -> None:
        """Wait until the reload a lookup started has swapped the new batch in (or failed): for
        a caller that must see the new batch before it goes on, as the tests do."""
        with self._reloading:
            loader = self._loader
        if loader is not None:
            loader.join(timeout_s)

    def person_of_cookie(self, cookie_id: str) -> str | None:
        """The person a web cookie names now (a form fill bound it, in the batch or since)."""
        return person_named_by(self.batch, self.log, f"cookie_id:{cookie_id}",
                               self.rules.shared_identifier_max_names)

    @property
    def log(self) -> EventLog:
        if not hasattr(self._local, "log"):
            self._local.log = EventLog(self.settings.live_dir / EVENT_LOG,
                                       self.settings.live.busy_timeout_s)
        return self._local.log

    def ingest(self, source: str, records: list[SourceRecord], received_at: datetime) -> Ingested:
        """One call's records (see `ingest_calls`)."""
        return self.ingest_calls([(source, records)], received_at)[0]

    def ingest_calls(self, calls: list[tuple[str, list[SourceRecord]]],
                     received_at: datetime) -> list[Ingested]:
        """Several calls' records in one event-log transaction, what each call did in its order.

        The calls of one source are taken together, as one frame (a call costs more than a
        record: standardising, identity and the interaction SQL run once per source), the
        sources in the order of their first call; a record sent by two of them counts for the
        first and is a duplicate for the later one. (So within a group, a source's records
        come before those of a source whose first call came later, whatever the calls' order.)"""
        results = [Ingested(source) for source, _ in calls]
        by_source: dict[str, list[int]] = {}
        for i, (source, _) in enumerate(calls):
            by_source.setdefault(source, []).append(i)
        batch = self.current_batch()  # one snapshot for the whole group
        frames = {source: self._frame(source, [(i, calls[i][1]) for i in indexes])
                  for source, indexes in by_source.items()}
        in_batch = {source: batch.stored(source, list(frame[ID_COLUMN[source]].astype("string")))
                    for source, frame in frames.items()}  # sent again after the batch took them in
        standardised = self._standardise_group(frames, in_batch)
        with self.log.writing() as log:
            for source, frame in frames.items():
                self._ingest_source(log, batch, source, frame, in_batch[source], standardised.get(source, {}),
                                    received_at, results)
            # (with the people whose record dated ahead the clock has passed: a worker always
            # ingesting has no idle look at the queue)
            log.mark_due([*(pid for result in results for pid in result.people), *log.released(received_at)])
        return results

    def _standardise_group(self, frames: dict[str, pd.DataFrame],
                           in_batch: dict[str, dict[str, str | None]]) -> dict[str, dict[int, dict]]:
        """Per person-bearing source, per row of its frame that may be new (not sent twice in the
        group, not held by the batch), the batch's standardised record (live/standardise.py):
        every source of the group in one pass, before the event log's lock is taken. (A row
        another worker stores meanwhile is standardised for nothing; the rules are the same
        for a record alone or among others.)"""
        candidates = {}
        for source, frame in frames.items():
            if source in SOURCE_LAYOUT:
                ids = frame[ID_COLUMN[source]].astype("string")
                candidate = frame[~(ids.duplicated() | ids.isin(list(in_batch[source]))).to_numpy()]
                if len(candidate):
                    candidates[source] = candidate
        records = standardise_records(self.duckdb, {source: frame.drop(columns="_call")
                                                    for source, frame in candidates.items()},
                                      self.rules.standardise)
        return {source: dict(zip(frame.index, records[source], strict=True))
                for source, frame in candidates.items()}

    @staticmethod
    def _frame(source: str, calls: list[tuple[int, list[SourceRecord]]]) -> pd.DataFrame:
        """The records of one source's calls as one raw frame, with `_call` (the call's index)."""
        return frame_of(source, [record for _, records in calls for record in records]).assign(
            _call=[i for i, records in calls for _ in records])

    def _ingest_source(self, log: EventLog, batch: BatchIdentities, source: str, frame: pd.DataFrame,
                       in_batch: dict[str, str | None], standardised: dict[int, dict], received_at: datetime,
                       results: list[Ingested]) -> None:
        """`standardised`: the records of the frame's rows that may be new, by row (a superset
        of those found new here)."""
        ids = frame[ID_COLUMN[source]].astype("string")
        stored = {**in_batch, **log.already_stored(source, ids.drop_duplicates())}
        repeated = ids.duplicated() | ids.isin(list(stored))
        fresh = frame[~repeated.to_numpy()]
        records = [standardised[row] for row in fresh.index] if source in SOURCE_LAYOUT else []
        fresh = fresh.reset_index(drop=True)
        appended = {} if fresh.empty else self._append(
            log, batch, source, fresh.drop(columns="_call"), fresh["_call"], records, received_at, results)
        for i, call in zip(ids[repeated], frame["_call"][repeated], strict=True):
            results[call].duplicates.append(i)
            pid = stored.get(i) or appended.get(i)  # stored before, or by an earlier call of the group
            if pid:
                results[call].duplicate_pids[i] = pid

    def _standardise(self, raw: pd.DataFrame, standardised: list[dict],
                     received_at: datetime) -> tuple[list[dict], list[tuple[int, str]]]:
        """(the standardised records kept, with `_row`: their row of `raw`; (row, reason) of the
        others): `standardised`, the batch's rules on `raw`'s rows (`_standardise_group`), then
        the live path's own: a record dated after the clock's now plus
        `live.max_ahead_hours` is a source system's wrong clock or a typo (2150 for 2015), and
        stored as a fact it would count in every feature once the clock reached it."""
        latest = received_at + timedelta(hours=self.settings.live.max_ahead_hours)
        kept, ruled, ahead = [], [], []
        for row, given in zip(raw.index, standardised, strict=True):
            record = {name: value for name, value in given.items() if name not in ("_row", "reason")}
            reason = given["reason"]
            record["_row"] = row
            if reason is not None:
                ruled.append((row, reason))
            elif record["seen_at"] > latest:
                ahead.append((row, f"dated {record['seen_at']}, later than the clock allows "
                                   f"({latest.isoformat()}: live.max_ahead_hours)"))
            else:
                kept.append(record)
        return kept, ruled + ahead

    def _append(self, log: EventLog, batch: BatchIdentities, source: str, raw: pd.DataFrame,
                calls: pd.Series, standardised: list[dict], received_at: datetime,
                results: list[Ingested]) -> dict[str, str | None]:
        """Append new records (`calls`: each record's call, by `raw`'s index; `standardised`: the
        batch's record of each row, none for the CRM accounts); their PIDs by id."""
        received = received_at.isoformat()
        if source == "crm_accounts":
            cids = [batch.company_nodes.get(f"account:{i}") for i in raw["account_id"]]
            log.add_records(_rows(source, raw, received, pids=None, cids=cids, rules=None))
            for i, call in zip(raw["account_id"], calls, strict=True):
                results[call].accepted.append({"source_record_id": i, "pid": None})
            return {}
        dicts, quarantine = self._standardise(raw, standardised, received_at)
        kept = sorted(dicts, key=lambda record: record["seen_at"])  # stable: ties keep their order
        identity = LiveIdentity(batch, log, self.rules.shared_identifier_max_names,
                                self.rules.titles)
        decisions: list[Decision] = []
        for record in kept:
            record["cid"] = batch.record_cid(record)
            decisions.append(identity.decide(record))
        people = identity.fold_people(kept, decisions)
        index = [record["_row"] for record in kept]
        pids = [d.pid for d in decisions]
        cids = [people[d.pid].get("cid") if d.pid else r["cid"] for d, r in zip(decisions, kept, strict=True)]
        kept_raw = raw.loc[index]
        log.add_records(_rows(source, kept_raw, received, pids, cids,
                              [d.rule for d in decisions]))
        bad = raw.loc[[row for row, _ in quarantine]]
        log.add_records(_rows(source, bad, received, None, None, None,
                              reasons=[reason for _, reason in quarantine]))
        if source in INTERACTION_SOURCES:
            log.add_interactions(self._interactions(source, kept_raw, kept, pids, cids))
        log.learn(identity.learnt())
        log.save_people(people)
        log.mark_due_later((d.pid, r["seen_at"]) for d, r in zip(decisions, kept, strict=True)
                           if d.pid and r["seen_at"] >= received_at)
        for decision, record, call in zip(decisions, kept, calls[index], strict=True):
            result = results[call]
            result.accepted.append({"source_record_id": record["source_record_id"], "pid": decision.pid})
            if decision.pid:  # cookies are bound to a person only (identity.Decision)
                result.people[decision.pid] = people[decision.pid]
                for cookie in decision.bound_cookies:
                    log.bind_cookie(cookie, decision.pid, people[decision.pid].get("cid"), received_at)
                    result.bound_cookies.setdefault(decision.pid, []).append(cookie)
        for row, reason in quarantine:
            results[calls[row]].quarantined.append(
                {"source_record_id": str(raw.at[row, ID_COLUMN[source]]), "reason": reason})
        return {r["source_record_id"]: d.pid for r, d in zip(kept, decisions, strict=True)}

    @property
    def duckdb(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB of this thread, to run the middle layer's SQL on a few records,
        on one thread: DuckDB's pool of a thread per core, in each of a service's workers on
        few cores, spent 10-15% more CPU on a group's small queries than one thread alone."""
        if not hasattr(self._local, "duckdb"):
            self._local.duckdb = duckdb.connect(config={"threads": 1})
        return self._local.duckdb

    def _interactions(self, source: str, raw: pd.DataFrame, kept: list[dict], pids: list[str | None],
                      cids: list[str | None]) -> pd.DataFrame:
        """The kept records' interactions, by the middle layer's SQL."""
        record_map = pd.DataFrame({
            "source": source, **{name: pd.array(values, dtype="string") for name, values in (
                ("source_record_id", [r["source_record_id"] for r in kept]), ("pid", pids), ("cid", cids),
                ("cookie_id", [r["cookie_id"] for r in kept]))}})
        con = self.duckdb
        con.register(f"raw_{source}", raw)
        con.register("record_map", record_map)
        try:
            return con.execute(interaction_sql([source], with_record_id=True)).df()
        finally:
            con.unregister(f"raw_{source}")
            con.unregister("record_map")


def _rows(source: str, raw: pd.DataFrame, received: str, pids: list[str | None] | None,
          cids: list[str | None] | None, rules: list[str] | None,
          reasons: list[str] | None = None) -> list[dict]:
    """Event-log rows of raw records (kept, or quarantined with their reasons), the lists in
    `raw`'s order."""
    if raw.empty:
        return []  # (its JSON lines would be one empty line)
    missing = [None] * len(raw)
    return [{"source": source, "source_record_id": str(source_id), "received_at": received,
             "seen_at": None if pd.isna(seen) else seen.isoformat(),
             "status": "quarantined" if reasons is not None else "kept", "reason": reason,
             "pid": pid, "cid": cid, "rule": rule, "payload": payload}
            for source_id, seen, payload, pid, cid, rule, reason in zip(
                raw[ID_COLUMN[source]], raw[TIME_COLUMN[source]], _json_rows(raw), pids or missing,
                cids or missing, rules or missing, reasons or missing, strict=True)]
