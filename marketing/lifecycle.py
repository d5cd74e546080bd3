"""Lifecycle stages: where each person stands on the way to customer, and since when.

A person enters a stage at a time, with the evidence that put them there:

| stage | entered when |
|---|---|
| `anonymous_visitor` | their first web session, if it came before we knew who they were |
| `known_lead` | they were first identified (a form, a registration, a CRM contact, ...) |
| `mql` | their score crossed `serving.webhook.mql_threshold` (the push); again after a fall |
| `sales_accepted` | sales accepted the pushed MQL (a disposition); else their opportunity's creation |
| `nurture` | sales rejected or recycled the MQL: back to nurture, until the next stage |
| `opportunity` | an opportunity was created for them |
| `customer` | their first deal was won |
| `renewal_upsell` | a later deal was won |

(That first session is the person's `first_seen`: identity/people.py makes it their first
record and `identified_at` their first that is not an anonymous web session, so a `first_seen`
before `identified_at` is a web session, and the lifecycle need not scan every interaction.)

The history is every entry, never one overwritten current stage: a lead recycled to nurture
and promoted again shows `mql`, `nurture`, `mql`, ... in order. `build_lifecycle` writes it
beside the middle layer (`data/marketing/lifecycle_stage.parquet`) and keeps the entries of
earlier builds that today's data no longer show (a score log rotated away).
"""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb
import pandas as pd

from leadscore.config import Settings
from leadscore.marketing.inputs import connect

log = logging.getLogger(__name__)

STAGES = ("anonymous_visitor", "known_lead", "mql", "sales_accepted", "nurture", "opportunity",
          "customer", "renewal_upsell")
HISTORY_COLUMNS = ["pid", "stage", "entered_at", "evidence"]
HISTORY_FILE = "lifecycle_stage.parquet"

HISTORY_SQL = """
    SELECT DISTINCT * FROM (
    WITH known AS (SELECT pid, coalesce(identified_at, first_seen) AS since, first_seen FROM person),
    crossings AS (
        SELECT pid, scored_at, score,
               lag(score) OVER (PARTITION BY pid ORDER BY scored_at) AS before
        FROM scores),
    won AS (
        SELECT pid, opportunity_id, won_at,
               row_number() OVER (PARTITION BY pid ORDER BY won_at, opportunity_id) AS n
        FROM outcome WHERE won_at IS NOT NULL AND pid IS NOT NULL),
    accepted AS (SELECT pid, "at" FROM dispositions WHERE disposition = 'accepted')
    SELECT pid, 'anonymous_visitor' AS stage, first_seen AS entered_at, 'first web visit' AS evidence
    FROM known WHERE first_seen < since
    UNION ALL
    SELECT pid, 'known_lead', since, 'identified' FROM known WHERE since IS NOT NULL
    UNION ALL
    SELECT pid, 'mql', scored_at, 'score ' || round(score)::INT || ' crossed ' || $threshold
    FROM crossings WHERE score >= $threshold AND (before IS NULL OR before < $threshold)
    UNION ALL
    SELECT pid, CASE WHEN disposition = 'accepted' THEN 'sales_accepted' ELSE 'nurture' END, "at",
           'sales ' || disposition
    FROM dispositions
    UNION ALL
    SELECT o.pid, 'sales_accepted', o.opportunity_created_at, 'opportunity ' || o.opportunity_id
    FROM outcome o
    WHERE o.pid IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM accepted a WHERE a.pid = o.pid AND a."at" <= o.opportunity_created_at)
      AND o.opportunity_created_at = (SELECT min(x.opportunity_created_at) FROM outcome x WHERE x.pid = o.pid)
    UNION ALL
    SELECT pid, 'opportunity', opportunity_created_at, 'opportunity ' || opportunity_id
    FROM outcome WHERE pid IS NOT NULL
    UNION ALL
    SELECT pid, CASE WHEN n = 1 THEN 'customer' ELSE 'renewal_upsell' END, won_at, 'won ' || opportunity_id
    FROM won)"""


def stage_history(con: duckdb.DuckDBPyConnection, mql_threshold: float) -> pd.DataFrame:
    """Every stage entry of every person (HISTORY_COLUMNS), in time order per person; the
    connection holds `person`, `outcome`, `scores` and `dispositions`."""
    return order_history(con.execute(HISTORY_SQL, {"threshold": mql_threshold}).df())


def order_history(history: pd.DataFrame) -> pd.DataFrame:
    """Per person by time; at one instant in the stages' order (an opportunity is accepted first)."""
    rank = history["stage"].map({s: i for i, s in enumerate(STAGES)})
    return (history.assign(_rank=rank).sort_values(["pid", "entered_at", "_rank"], kind="stable")
            .drop(columns="_rank").reset_index(drop=True)[HISTORY_COLUMNS])


def current_stages(history: pd.DataFrame) -> pd.DataFrame:
    """Each person's latest stage and when they entered it."""
    return history.groupby("pid", sort=True).tail(1).reset_index(drop=True)


def keep_earlier(history: pd.DataFrame, previous: pd.DataFrame) -> pd.DataFrame:
    """Today's history plus the entries of an earlier build it no longer shows."""
    if previous.empty:
        return history
    merged = pd.concat([history, previous[HISTORY_COLUMNS]], ignore_index=True)
    return order_history(merged.drop_duplicates(["pid", "stage", "entered_at"]))


def history_path(settings: Settings) -> Path:
    return settings.data_dir / "marketing" / HISTORY_FILE


def lifecycle(settings: Settings) -> pd.DataFrame:
    """The stage history of everyone, from the middle layer, the scores and the dispositions."""
    with connect(settings) as con:
        return stage_history(con, settings.serving.webhook.mql_threshold)


def build_lifecycle(settings: Settings) -> pd.DataFrame:
    """Compute the history, keep what earlier builds held, write it (atomically); return it."""
    path = history_path(settings)
    previous = pd.read_parquet(path) if path.is_file() else pd.DataFrame(columns=HISTORY_COLUMNS)
    history = keep_earlier(lifecycle(settings), previous)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    history.to_parquet(tmp, index=False)
    tmp.replace(path)
    log.info("lifecycle: %d stage entries of %d people", len(history), history["pid"].nunique())
    return history
