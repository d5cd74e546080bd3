"""Why two raw records were, or were not, resolved to one person.

Reads the middle layer's `record` and `shared_identifier` tables. Two records
are one person when a chain of exact identifiers joins them; an identifier seen
with too many different names (a shared inbox, a switchboard) is not evidence.
The answer names the identifiers the two share, which of them count, and the
shortest chain of records that joins them; for people joined by the
probabilistic pass, each comparison's level and match weight.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path

import duckdb
import pandas as pd

from leadscore.identity.link import IDENTIFIER_KINDS, NAME_AT_EMPLOYER

SHOWN_FIELDS = ["pid", "cid", "rule", *IDENTIFIER_KINDS, "name_key", "company_name_std"]


def parse_record_key(key: str) -> tuple[str, str]:
    source, sep, record_id = key.partition(":")
    if not sep or not record_id:
        raise ValueError(f"record {key!r} must be written SOURCE:RECORD_ID, e.g. form_fills:FF0000990")
    return source, record_id


def _record(con: duckdb.DuckDBPyConnection, key: str) -> pd.Series:
    source, record_id = parse_record_key(key)
    rows = con.execute("SELECT * FROM record WHERE source = ? AND source_record_id = ?",
                       [source, record_id]).df()
    if rows.empty:
        quarantined = con.execute("SELECT reason FROM quarantine WHERE source = ? AND "
                                  "source_record_id = ?", [source, record_id]).fetchone()
        if quarantined:
            raise LookupError(f"{key} was quarantined: {quarantined[0]}")
        raise LookupError(f"no record {key} in the middle layer (sources: see `id_map`)")
    return rows.iloc[0]


def _keys(record: pd.Series) -> dict[str, str]:
    return {f"{kind}:{record[kind]}": kind for kind in IDENTIFIER_KINDS if pd.notna(record[kind])}


def _chain(con: duckdb.DuckDBPyConnection, pid: str, start: str, goal: str,
           shared: set[str]) -> list[str]:
    """Shortest path record -identifier- record ... between two records of one PID."""
    members = con.execute("SELECT * FROM record WHERE pid = ?", [pid]).df()
    members["key"] = members["source"] + ":" + members["source_record_id"]
    by_identifier: dict[str, list[str]] = {}
    record_keys = {row["key"]: [k for k in _keys(row) if k not in shared]
                   for _, row in members.iterrows()}
    for record_key, identifiers in record_keys.items():
        for identifier in identifiers:
            by_identifier.setdefault(identifier, []).append(record_key)
    previous: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue and goal not in previous:
        node = queue.popleft()
        neighbours = record_keys.get(node) if node in record_keys else by_identifier.get(node, [])
        for nxt in neighbours or []:
            if nxt not in previous:
                previous[nxt] = node
                queue.append(nxt)
    path: list[str] = []
    step = goal if goal in previous else None
    while step is not None:
        path.append(step)
        step = previous[step]
    return path[::-1]


def explain(middle_db: Path, a: str, b: str) -> dict:
    """A verdict, the two records' standardised fields, shared identifiers and the chain."""
    with duckdb.connect(str(middle_db), read_only=True) as con:
        left, right = _record(con, a), _record(con, b)
        shared_table = con.execute("SELECT key, names FROM shared_identifier").df()
        guarded = dict(zip(shared_table["key"], shared_table["names"], strict=True))
        common = sorted(set(_keys(left)) & set(_keys(right)))
        same = pd.notna(left["pid"]) and left["pid"] == right["pid"]
        chain = _chain(con, left["pid"], a, b, set(guarded)) if same else []
        comparisons = (con.execute("SELECT comparison, level, match_weight FROM fuzzy_link "
                                   "WHERE pid = ? ORDER BY pid_a, pid_b, comparison",
                                   [left["pid"]]).df() if same and not chain else pd.DataFrame())
    evidence = [k for k in common if k not in guarded]
    if same and not chain and NAME_AT_EMPLOYER in (left["rule"], right["rule"]):
        verdict = (f"linked: one person {left['pid']}, the one person of this name at this employer "
                   f"with an address or phone of their own (rule {left['rule']}/{right['rule']}; the "
                   f"profile model alone: probability {min(left['probability'], right['probability']):.3f})")
    elif same and not chain:
        verdict = (f"linked: one person {left['pid']} by the probabilistic profile match "
                   f"(rule {left['rule']}/{right['rule']}, probability "
                   f"{min(left['probability'], right['probability']):.3f})")
    elif same:
        verdict = (f"linked: one person {left['pid']} "
                   + (f"(share {', '.join(evidence)})" if evidence else "(through other records)"))
    elif common:
        verdict = "not linked: what they share is used by several different people"
    else:
        verdict = "not linked: no exact identifier in common"
    return {
        "verdict": verdict, "same_person": bool(same),
        "records": {a: _fields(left), b: _fields(right)},
        "shared_identifiers": [{"identifier": k, "used_as_evidence": k not in guarded,
                                "distinct_names": int(guarded.get(k, 1))} for k in common],
        "chain": chain,
        "comparisons": comparisons.to_dict(orient="records"),
        "probability": float(min(left["probability"], right["probability"])) if same else 0.0,
    }


def _fields(record: pd.Series) -> dict[str, str | None]:
    return {field: (None if pd.isna(record[field]) else str(record[field])) for field in SHOWN_FIELDS}
