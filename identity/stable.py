"""Stable IDs: a rerun keeps every PID and CID that still stands, and says what changed.

Survivorship rule. Each fresh cluster is matched to the IDs its items (raw
records for people, account and name nodes for companies) carried in the last
run. An old ID stays with the new cluster that holds most of its items (ties:
the smaller cluster key); a cluster that inherits several old IDs keeps the one
with most items, and the others are recorded as merged into it. Items of an old
ID that land elsewhere are recorded as split off. Clusters with no history keep
their freshly minted ID. Every merge and split goes to the `id_audit` table
with the evidence that caused it. The matching is SQL, on DuckDB or on Spark
(identity/engine.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pandas as pd

from leadscore.identity.engine import DuckDBSql, IdentitySql

log = logging.getLogger(__name__)

AUDIT_COLUMNS = ["at", "kind", "event", "id", "other_id", "items", "evidence"]


def empty_audit() -> pd.DataFrame:
    return pd.DataFrame({
        "at": pd.Series(dtype="datetime64[us, UTC]"), "kind": pd.Series(dtype="string"),
        "event": pd.Series(dtype="string"), "id": pd.Series(dtype="string"),
        "other_id": pd.Series(dtype="string"), "items": pd.Series(dtype="int64"),
        "evidence": pd.Series(dtype="string")})


@dataclass(frozen=True)
class PreviousIds:
    """The last run's IDs: record key ('source:record_id') -> PID, company node -> CID."""

    pids: pd.Series
    cids: pd.Series
    audit: pd.DataFrame

    @classmethod
    def empty(cls) -> PreviousIds:
        return cls(pd.Series(dtype="string"), pd.Series(dtype="string"), empty_audit())


def read_previous(middle_db: Path) -> PreviousIds:
    """The IDs of the middle layer about to be replaced (empty on a first run)."""
    if not middle_db.is_file():
        return PreviousIds.empty()
    with duckdb.connect(str(middle_db), read_only=True) as con:
        tables = {row[0] for row in con.execute("SHOW TABLES").fetchall()}
        if not {"id_map", "company_node"} <= tables:
            log.warning("%s predates stable IDs; minting fresh IDs", middle_db)
            return PreviousIds.empty()
        pids = con.execute("SELECT source || ':' || source_record_id, pid FROM id_map "
                           "WHERE pid IS NOT NULL").df()
        cids = con.execute("SELECT node, cid FROM company_node").df()
        audit = con.execute("SELECT * FROM id_audit").df() if "id_audit" in tables else None
    return PreviousIds(
        pids=pd.Series(pids.iloc[:, 1].to_numpy(), index=pids.iloc[:, 0].to_numpy(), dtype="string"),
        cids=pd.Series(cids["cid"].to_numpy(), index=cids["node"].to_numpy(), dtype="string"),
        audit=audit if audit is not None else empty_audit(),
    )


# (fresh, old, n): how many items of each fresh cluster carried each old ID.
_OVERLAP_SQL = """
    SELECT f.id AS fresh, p.id AS old, count(*) AS n
    FROM stable_fresh f JOIN stable_previous p ON p.item = f.item
    WHERE f.id IS NOT NULL AND p.id IS NOT NULL
    GROUP BY f.id, p.id"""

# fresh ID -> final ID: each old ID stays with the fresh cluster holding most of its items
# (ties: the smaller fresh ID); a cluster given several keeps the one with most items (ties:
# the smaller old ID); a fresh ID equal to an old one kept elsewhere gets an 'X'.
_FINAL_SQL = """
    WITH by_old AS (
        SELECT fresh, old, n, row_number() OVER (PARTITION BY old ORDER BY n DESC, fresh) AS rank
        FROM stable_overlap),
    by_fresh AS (
        SELECT fresh, old, row_number() OVER (PARTITION BY fresh ORDER BY n DESC, old) AS rank
        FROM by_old WHERE rank = 1),
    kept AS (SELECT fresh, old FROM by_fresh WHERE rank = 1),
    fresh_ids AS (SELECT DISTINCT id AS fresh FROM stable_fresh WHERE id IS NOT NULL)
    SELECT i.fresh, CASE WHEN k.old IS NOT NULL THEN k.old
                         WHEN t.old IS NOT NULL THEN i.fresh || 'X' ELSE i.fresh END AS final
    FROM fresh_ids i LEFT JOIN kept k ON k.fresh = i.fresh LEFT JOIN kept t ON t.old = i.fresh"""

# Merges (an old ID absorbed by another) and splits (items leaving an old ID that survives).
_MOVES_SQL = """
    SELECT CASE WHEN s.final IS NULL THEN 'merge' ELSE 'split' END AS event,
           o.old AS id, f.final AS other_id, o.n AS items, o.fresh
    FROM stable_overlap o JOIN stable_final f ON f.fresh = o.fresh
    LEFT JOIN (SELECT DISTINCT final FROM stable_final) s ON s.final = o.old
    WHERE f.final <> o.old
    ORDER BY o.n DESC, o.fresh, o.old"""


def _audit(moves: pd.DataFrame, kind: str, evidence: pd.Series | None) -> pd.DataFrame:
    """The audit rows of the moves, each with the evidence that holds its new cluster together."""
    if moves.empty:
        return empty_audit()
    events = pd.DataFrame({
        "at": datetime.now(timezone.utc), "kind": kind, "event": moves["event"].to_numpy(),
        "id": moves["id"].to_numpy(), "other_id": moves["other_id"].to_numpy(),
        "items": moves["items"].astype("int64").to_numpy(),
        "evidence": (moves["fresh"].map(evidence) if evidence is not None
                     else pd.Series(pd.NA, index=moves.index)).to_numpy(),
    })
    return events.reindex(columns=AUDIT_COLUMNS)


def _items(ids: pd.Series) -> pd.DataFrame:
    return pd.DataFrame({"item": ids.index.astype("string"), "id": ids.astype("string").to_numpy()})


def inherit_ids(fresh: pd.Series, previous: pd.Series, kind: str,
                evidence: pd.Series | None = None,
                sql: IdentitySql | None = None) -> tuple[pd.Series, pd.DataFrame]:
    """(fresh ID -> stable ID, audit rows). `fresh`: item -> freshly minted cluster ID;
    `previous`: item -> last run's ID; `evidence`: fresh ID -> why its items are together.
    Matched on `sql`'s engine (DuckDB in memory if none)."""
    sql = sql or DuckDBSql()
    sql.put("stable_fresh", _items(fresh))
    sql.put("stable_previous", _items(previous))
    sql.create("stable_overlap", _OVERLAP_SQL)
    sql.create("stable_final", _FINAL_SQL)
    pairs = sql.fetch("SELECT fresh, final FROM stable_final")
    final = pd.Series(pairs["final"].to_numpy(), index=pairs["fresh"].to_numpy(), dtype="string")
    audit = _audit(sql.fetch(_MOVES_SQL), kind, evidence)
    kept = final.isin(set(previous.dropna()))
    log.info("%s: %d kept from the last run, %d new, %d merges, %d splits", kind, int(kept.sum()),
             int((~kept).sum()), int((audit["event"] == "merge").sum()),
             int((audit["event"] == "split").sum()))
    return final, audit
