"""Stable IDs: a rerun keeps every PID and CID that still stands, and says what changed.

Survivorship rule. Each fresh cluster is matched to the IDs its items (raw
records for people, account and name nodes for companies) carried in the last
run. An old ID stays with the new cluster that holds most of its items (ties:
the smaller cluster key); a cluster that inherits several old IDs keeps the one
with most items, and the others are recorded as merged into it. Items of an old
ID that land elsewhere are recorded as split off. Clusters with no history keep
their freshly minted ID. Every merge and split goes to the `id_audit` table
with the evidence that caused it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pandas as pd

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


def _overlap(fresh: pd.Series, previous: pd.Series) -> pd.DataFrame:
    """(fresh, old, n): how many items of each fresh cluster carried each old ID."""
    old = previous.reindex(fresh.index)
    pairs = pd.DataFrame({"fresh": fresh.to_numpy(), "old": old.to_numpy()}).dropna()
    counts = pairs.groupby(["fresh", "old"]).size().rename("n").reset_index()
    return counts.sort_values(["n", "fresh", "old"], ascending=[False, True, True])


def _assign(overlap: pd.DataFrame, fresh_ids: pd.Index) -> pd.Series:
    """fresh ID -> final ID: an inherited old ID where one survives, else the fresh one."""
    kept = overlap.drop_duplicates("old").drop_duplicates("fresh")
    final = pd.Series(fresh_ids, index=fresh_ids, dtype="string")
    final.loc[kept["fresh"].to_numpy()] = kept["old"].to_numpy()
    taken = set(kept["old"])
    clash = ~final.index.isin(kept["fresh"]) & final.isin(taken)
    final[clash] = final[clash] + "X"  # a fresh ID equal to an inherited one elsewhere
    return final


def _audit(overlap: pd.DataFrame, final: pd.Series, kind: str,
           evidence: pd.Series | None) -> pd.DataFrame:
    """Merges (an old ID absorbed by another) and splits (items leaving an old ID)."""
    survivor = final.reindex(overlap["fresh"]).to_numpy()
    moved = overlap.assign(final=survivor)[lambda f: f["final"] != f["old"]]
    surviving_ids = set(final)
    if moved.empty:
        return empty_audit()
    events = pd.DataFrame({
        "at": datetime.now(timezone.utc), "kind": kind,
        "event": ["split" if old in surviving_ids else "merge" for old in moved["old"]],
        "id": moved["old"].to_numpy(), "other_id": moved["final"].to_numpy(),
        "items": moved["n"].to_numpy(),
        "evidence": (moved["fresh"].map(evidence) if evidence is not None
                     else pd.Series(pd.NA, index=moved.index)).to_numpy(),
    })
    return events.reindex(columns=AUDIT_COLUMNS)


def inherit_ids(fresh: pd.Series, previous: pd.Series, kind: str,
                evidence: pd.Series | None = None) -> tuple[pd.Series, pd.DataFrame]:
    """(fresh ID -> stable ID, audit rows). `fresh`: item -> freshly minted cluster ID;
    `previous`: item -> last run's ID; `evidence`: fresh ID -> why its items are together."""
    fresh_ids = pd.Index(fresh.dropna().unique())
    overlap = _overlap(fresh.dropna(), previous)
    final = _assign(overlap, fresh_ids)
    audit = _audit(overlap, final, kind, evidence)
    log.info("%s: %d kept from the last run, %d new, %d merges, %d splits", kind,
             int(final.isin(set(previous)).sum()), int((~final.isin(set(previous))).sum()),
             int((audit["event"] == "merge").sum()), int((audit["event"] == "split").sum()))
    return final, audit
