"""Who is in an open opportunity now: the leads and accounts the propensity models do not forecast.

The lead and account models learn from people and companies with **no open opportunity** at
the snapshot (training/dataset.py, `label_sql`): someone already in an opportunity cannot open
a first one, so the models never saw them. Scoring them is the model applied outside its
population; the service still does it (a data scientist compares), and says so:

- `/score` (a person, a company, a group) answers `in_opportunity`: the open opportunity opened
  first (its id, when it was opened, its stage, its contact) and how many are open; null when
  none is. Its `routing` is then `IN_OPPORTUNITY` (sales already work it in the CRM), not the
  tier's; the probability, score and tier stay the model's reading, not a forecast.
- No MQL crossing is pushed for a lead in an opportunity (serving/service.py, serving/batch.py):
  it is not a lead for sales to pick up. Its scores are kept out of the webhook's lead states
  altogether, so once the opportunity closes (lost, or won: with `training.exclude_customers`
  false, the default, a customer's people are leads for the next deal, as the models learn them)
  a lead still above the threshold is pushed then, as any lead crossing it for the first time
  (unless it was pushed before: once).
- The portrait and the account page say "In an opportunity since ..." where they showed the
  chance.

Decisions:

- **Open** at the clock's now: opened at or before now, not closed (won or lost) by now.
- **Sources**: the middle layer's `outcome` table (the batch), and the outcomes the CRM sent
  since (POST /outcomes, the event log), folded per opportunity as retraining folds them
  (live/labels.py); where both know an opportunity, the CRM's latest word wins, as in training.
  A CRM opportunity's company is its contact's (the middle layer's person).
- **A person** is in an opportunity when one of their own is open (the lead model's rule: a
  colleague's opportunity does not take a person out of the lead population). **A company**
  when any opportunity of it is open, its people's or the account's own (the account model's
  rule). **A group** (EID) when all of its companies are; otherwise its chance, tier and
  reasons come from its companies with none open, each company flagged in its `companies`.
- **Fresh enough**: checked every `serving.opportunities_refresh_s` seconds in a daemon thread,
  and at once after this worker stored the CRM's outcomes; read again only when the middle layer
  or the CRM's outcomes changed (most checks are a file's stat and a count), worked out again
  when one opens or closes by the clock. A look-up is a dictionary read (a /score's budget is
  well under a millisecond). Another worker sees the CRM's outcome at its next check.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas loads with the first refresh: the service module stays light to import
    import pandas as pd

    from leadscore.live.log import EventLog

log = logging.getLogger(__name__)

# What happens to a lead or an account in an open opportunity, in place of its tier's routing.
IN_OPPORTUNITY = {"action": "in_opportunity", "channel": "crm",
                  "description": "already in an open opportunity: sales work it there; not routed or "
                                 "pushed as a new lead"}
COLUMNS = ["opportunity_id", "pid", "cid", "opportunity_created_at", "stage", "closed_at"]

_BATCH_SQL = "SELECT opportunity_id, pid, cid, opportunity_created_at, stage, closed_at FROM outcome"
_COMPANY_OF_SQL = "SELECT pid, cid FROM person WHERE list_contains($pids, pid)"


def all_opportunities(con, live: pd.DataFrame | None) -> pd.DataFrame:
    """Every opportunity (COLUMNS): the middle layer's (`con`), and the CRM's `live` outcomes
    (EventLog.outcomes) folded per opportunity in place of a batch row of the same id."""
    import pandas as pd

    from leadscore.live.labels import fold_opportunities

    batch = con.execute(_BATCH_SQL).df()
    crm = fold_opportunities(live) if live is not None and len(live) else pd.DataFrame()
    if crm.empty:
        return batch[COLUMNS]
    pids = crm["pid"].dropna().unique().tolist()
    company = dict(con.execute(_COMPANY_OF_SQL, {"pids": pids}).fetchall()) if pids else {}
    crm = crm.assign(cid=crm["pid"].map(company))
    kept = batch[~batch["opportunity_id"].isin(crm["opportunity_id"])]
    return pd.concat([kept[COLUMNS], crm[COLUMNS]], ignore_index=True)


def open_at(opportunities: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """The opportunities open at `now` (opened by then, not closed by then; one won or lost
    without a closing time is closed), opened first first."""
    import pandas as pd

    from leadscore.live.labels import CLOSED

    opened = pd.to_datetime(opportunities["opportunity_created_at"], utc=True)
    closed = pd.to_datetime(opportunities["closed_at"], utc=True)
    at = pd.Timestamp(now)
    unclosed = closed.isna() & ~opportunities["stage"].isin(CLOSED)
    still = (opened <= at) & (unclosed | (closed > at))
    return (opportunities[still].assign(opportunity_created_at=opened[still])
            .sort_values(["opportunity_created_at", "opportunity_id"], ignore_index=True))


def next_change(opportunities: pd.DataFrame, now: datetime) -> pd.Timestamp | None:
    """The first instant after `now` at which an opportunity opens or closes (None: none does):
    until then the open ones stay the same."""
    import pandas as pd

    times = pd.concat([pd.to_datetime(opportunities[column], utc=True)
                       for column in ("opportunity_created_at", "closed_at")])
    later = times[times > pd.Timestamp(now)]
    return None if later.empty else later.min()


def sources_key(middle_db: Path, events: EventLog | None) -> tuple:
    """What changes when an opportunity may have: the middle layer's file (the pipeline replaces
    it) and the CRM's outcomes in the event log (appended)."""
    stat = middle_db.stat()
    live = events.con.execute("SELECT count(*), max(rowid) FROM outcome WHERE kind <> 'disposition'"
                              ).fetchone() if events else None
    return stat.st_mtime_ns, stat.st_size, live


def first_open_by(open_now: pd.DataFrame, key: str) -> dict[str, dict]:
    """Each `key` (pid or cid) with an open opportunity -> its `in_opportunity` record: the one
    opened first, and how many are open."""
    rows = open_now[open_now[key].notna()]
    counts = rows.groupby(key).size()
    return {row[key]: in_opportunity_record(row, int(counts[row[key]]))
            for row in rows.drop_duplicates(key).to_dict("records")}


def in_opportunity_record(row: dict, count: int) -> dict:
    """The `in_opportunity` of an answer (serving/schemas.py `InOpportunity`), JSON-ready."""
    contact = row["pid"] if isinstance(row["pid"], str) else None
    return {"opportunity_id": str(row["opportunity_id"]),
            "opened_at": row["opportunity_created_at"].isoformat(), "stage": row["stage"] or "open",
            "pid": contact, "open_opportunities": count}


def marked(record: dict, status: dict | None) -> dict:
    """A score record with its `in_opportunity` (None: none open), and, in one, the routing
    `IN_OPPORTUNITY` in place of its tier's."""
    if status is None:
        return {**record, "in_opportunity": None}
    return {**record, "in_opportunity": status, "routing": IN_OPPORTUNITY}


def first_opened(statuses: Iterable[dict | None]) -> dict | None:
    """Of several companies' `in_opportunity` (a group's), the one opened first, counting all
    their open opportunities; None when none is."""
    known = [status for status in statuses if status is not None]
    if not known:
        return None
    first = min(known, key=lambda status: (status["opened_at"], status["opportunity_id"]))
    return {**first, "open_opportunities": sum(status["open_opportunities"] for status in known)}


def not_in_opportunity(scores: Iterable[dict]) -> list[dict]:
    """The score records with a pid and no open opportunity: those the MQL webhook may push."""
    return [score for score in scores if score.get("pid") is not None and not score.get("in_opportunity")]


def people_in_opportunity(middle_db: Path, event_log: Path, at: datetime) -> set[str]:
    """The people with an open opportunity at `at`, from the middle layer and the CRM's outcomes
    in the event log (when there is one): whom the batch's MQL pushes leave out."""
    import duckdb

    from leadscore.live.log import EventLog

    live = None
    if event_log.is_file():
        events = EventLog(event_log)
        try:
            live = events.outcomes()
        finally:
            events.close()
    with duckdb.connect(str(middle_db), read_only=True) as con:
        opportunities = all_opportunities(con, live)
    return set(open_at(opportunities, at)["pid"].dropna())


class OpenOpportunities:
    """Who is in an open opportunity at the clock's now, kept in memory (see the module's
    decisions). `middle()` opens the middle layer for one read, `live()` is the event log (None:
    none yet), `now()` the clock's. With `middle_db` (the middle layer's file) a refresh reads the
    sources again only when they changed (`sources_key`), and works out the open ones again only
    then or when one opens or closes by the clock (`next_change`): most refreshes cost a stat and
    a count."""

    def __init__(self, middle: Callable[[], AbstractContextManager], live: Callable[[], EventLog | None],
                 now: Callable[[], datetime], refresh_s: float = 5.0, middle_db: Path | None = None):
        self.middle, self.live, self.now, self.refresh_s = middle, live, now, refresh_s
        self.middle_db = middle_db
        self._key: tuple | None = None  # the sources' state last read
        self._all: pd.DataFrame | None = None  # every opportunity, as last read
        self._until: pd.Timestamp | None = None  # when the open ones next change by the clock
        self._people: dict[str, dict] = {}
        self._companies: dict[str, dict] = {}
        self.refreshed_at: datetime | None = None
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one refresh at a time (the thread's, an outcome's)
        self._thread = threading.Thread(target=self._watch, name="open-opportunities", daemon=True)

    def start(self) -> OpenOpportunities:
        self.refresh_or_keep()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        while not self._stop.wait(self.refresh_s):
            self.refresh_or_keep()

    def refresh(self) -> None:
        """Read every opportunity again (if the sources changed) and keep those open now."""
        with self._lock:
            events, now = self.live(), self.now()
            key = None if self.middle_db is None else sources_key(self.middle_db, events)
            if key is not None and key == self._key and (self._until is None or now < self._until):
                self.refreshed_at = now
                return
            if key is None or key != self._key:
                live = events.outcomes() if events is not None else None
                with self.middle() as con:
                    self._all = all_opportunities(con, live)
            open_now = open_at(self._all, now)
            self._people, self._companies = first_open_by(open_now, "pid"), first_open_by(open_now, "cid")
            self._key, self._until, self.refreshed_at = key, next_change(self._all, now), now

    def refresh_or_keep(self) -> None:
        """`refresh`, keeping what was known when the sources cannot be read now (a pipeline
        rewriting the middle layer): a missed refresh is made at the next."""
        try:
            self.refresh()
            self.last_error = None
        except Exception as error:  # noqa: BLE001 - a stale list beats no scores
            if str(error) != self.last_error:  # said once, not every few seconds
                log.warning("could not read the open opportunities (%s); keeping those read at %s",
                            error, self.refreshed_at)
            self.last_error = str(error)

    def of_person(self, pid: str | None) -> dict | None:
        """The person's `in_opportunity` (their own open opportunity opened first), or None."""
        return None if pid is None else self._people.get(pid)

    def of_company(self, cid: str | None) -> dict | None:
        """The company's `in_opportunity` (any open opportunity of the account), or None."""
        return None if cid is None else self._companies.get(cid)

    def counts(self) -> dict[str, int]:
        """People and companies in an open opportunity now."""
        return {"people": len(self._people), "companies": len(self._companies)}
