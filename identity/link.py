"""Deterministic linking: records that share an exact identifier are one person.

Records and identifier values form a bipartite graph; its connected components
are the clusters. Identifiers shared by several different people (info@
inboxes, switchboard phones, a family computer's cookie) would chain strangers
together, so an identifier seen with more distinct names than allowed is kept
as an attribute but not used as evidence.

The graph is built and labelled in SQL (identity/components.py), on DuckDB or on Spark
(identity/engine.py); `node_components` below labels the small graphs of the
probabilistic pass in process.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from leadscore.identity.components import component_table
from leadscore.identity.engine import DuckDBSql, IdentitySql

# Identifier kinds in the order used to name the rule that linked a record.
IDENTIFIER_KINDS = ["contact_id", "user_id", "email", "phone", "cookie_id"]
ANONYMOUS_SOURCES = frozenset({"web_sessions"})
# The rule of records joined by the second pass as a bare cluster at an unambiguous name and
# employer (identity/fuzzy.py), beside 'fuzzy' for the profile model's merges.
NAME_AT_EMPLOYER = "name_at_employer"


_RECORD_COLUMNS = ["source", "source_record_id", "name_key", *IDENTIFIER_KINDS]
ANCHOR_PRIORITY = {"email": 0, "phone": 1, "contact_id": 2, "user_id": 3, "cookie_id": 4}


def _edges_sql() -> str:
    """(record, key, kind, kind_rank, anchor_rank) for every identifier a record carries;
    key = 'kind:value'; kind_rank orders the rule names, anchor_rank the PID anchors."""
    return " UNION ALL ".join(
        f"SELECT record, '{kind}:' || {kind} AS key, '{kind}' AS kind, {rank} AS kind_rank, "
        f"{ANCHOR_PRIORITY[kind]} AS anchor_rank FROM identity_record WHERE {kind} IS NOT NULL"
        for rank, kind in enumerate(IDENTIFIER_KINDS))


# Keys seen with more than $max_names distinct full names: kept as attributes, not evidence.
_SHARED_SQL = """
    SELECT e.key, count(DISTINCT r.name_key) AS names
    FROM identifier_edge e JOIN identity_record r ON r.record = e.record
    WHERE r.name_key IS NOT NULL
    GROUP BY e.key HAVING count(DISTINCT r.name_key) > $max_names"""

_EVIDENCE_SQL = """
    SELECT e.record, e.key, e.kind, e.kind_rank, e.anchor_rank
    FROM identifier_edge e LEFT JOIN shared_identifier s ON s.key = e.key
    WHERE s.key IS NULL"""

# The record-identifier graph: a record is node '#<record>', linked to its evidence keys
# and to itself (a record without evidence is a component of its own).
_GRAPH_SQL = """
    SELECT '#' || CAST(record AS VARCHAR) AS a, key AS b FROM identifier_evidence
    UNION ALL SELECT '#' || CAST(record AS VARCHAR), '#' || CAST(record AS VARCHAR) FROM identity_record"""

_ANONYMOUS_SQL = ", ".join(f"'{source}'" for source in sorted(ANONYMOUS_SOURCES))

# Per record: its PID, minted from its cluster's anchor (the smallest email, else phone, else
# other identifier, else record key; missing for anonymous web-only clusters); the rule: the
# first identifier kind through which it joins another record, else 'singleton'.
_PEOPLE_SQL = f"""
    WITH cluster AS (
        SELECT r.record, r.source, r.source_record_id, l.label AS cluster
        FROM identity_record r JOIN component_label l ON l.node = '#' || CAST(r.record AS VARCHAR)),
    key_anchor AS (
        SELECT c.cluster, substr(min(CAST(e.anchor_rank AS VARCHAR) || e.key), 2) AS anchor
        FROM identifier_evidence e JOIN cluster c ON c.record = e.record GROUP BY c.cluster),
    person AS (
        SELECT c.cluster, 'P' || upper(substr(sha1(coalesce(min(k.anchor),
               min(c.source || ':' || c.source_record_id))), 1, 10)) AS pid
        FROM cluster c LEFT JOIN key_anchor k ON k.cluster = c.cluster
        GROUP BY c.cluster HAVING bool_or(c.source NOT IN ({_ANONYMOUS_SQL}))),
    linking AS (
        SELECT key FROM identifier_evidence GROUP BY key HAVING count(*) > 1),
    rule AS (
        SELECT e.record, substr(min(CAST(e.kind_rank AS VARCHAR) || e.kind), 2) AS rule
        FROM identifier_evidence e JOIN linking k ON k.key = e.key GROUP BY e.record),
    shared_use AS (
        SELECT DISTINCT e.record FROM identifier_edge e JOIN shared_identifier s ON s.key = e.key)
    SELECT c.record, p.pid,
           CASE WHEN p.pid IS NULL THEN 'anonymous_cookie' ELSE coalesce(r.rule, 'singleton') END AS rule,
           CASE WHEN p.pid IS NOT NULL THEN CAST(1 AS DOUBLE) END AS probability,
           u.record IS NOT NULL AS uses_shared_identifier
    FROM cluster c
    LEFT JOIN person p ON p.cluster = c.cluster
    LEFT JOIN rule r ON r.record = c.record
    LEFT JOIN shared_use u ON u.record = c.record
    ORDER BY c.record"""


def link_people(records: pd.DataFrame, max_names: int, sql: IdentitySql) -> None:
    """Tables `identifier_edge`, `shared_identifier(key, names)`, `identifier_evidence` and
    `component_label` of `records` on the engine, ready for `_PEOPLE_SQL`."""
    sql.put("identity_record", records.reindex(columns=_RECORD_COLUMNS).astype("string")
            .assign(record=records.index.to_numpy().astype("int64")))
    sql.create("identifier_edge", _edges_sql())
    sql.create("shared_identifier", _SHARED_SQL, {"max_names": max_names})
    sql.create("identifier_evidence", _EVIDENCE_SQL)
    sql.create("record_graph", _GRAPH_SQL)
    component_table(sql, "record_graph")


def shared_identifier_table(sql: IdentitySql) -> pd.DataFrame:
    """(key, names): the identifiers `resolve_people` held back as shared, by key."""
    shared = sql.fetch("SELECT key, names FROM shared_identifier ORDER BY key")
    return shared.astype({"key": "string", "names": "int64"})


def label_components(left: np.ndarray, right: np.ndarray, n_nodes: int) -> np.ndarray:
    """Connected component of each of `n_nodes` nodes, given undirected edges left[i]-right[i]."""
    graph = coo_matrix((np.ones(len(left), dtype=np.int8), (left, right)), shape=(n_nodes, n_nodes))
    return connected_components(graph, directed=False)[1]


def node_components(left: pd.Series, right: pd.Series) -> pd.Series:
    """Component label of every node of an undirected edge list left[i]-right[i] of any
    hashable node keys, indexed by node."""
    codes, uniques = pd.factorize(pd.concat([left, right], ignore_index=True))
    half = len(left)
    return pd.Series(label_components(codes[:half], codes[half:], len(uniques)), index=uniques)


def mint_id(prefix: str, anchors: pd.Series) -> pd.Series:
    """A short stable id from an anchor string: the same anchor always gives the same id."""
    return anchors.map(lambda anchor: prefix + hashlib.sha1(anchor.encode()).hexdigest()[:10].upper())


def resolve_people(records: pd.DataFrame, max_names: int, sql: IdentitySql | None = None) -> pd.DataFrame:
    """Per record (indexed like `records`): pid (missing for anonymous web-only clusters),
    rule, probability, uses_shared_identifier; on `sql`'s engine (DuckDB in memory if none),
    whose `shared_identifier` table then holds the identifiers held back."""
    sql = sql or DuckDBSql()
    link_people(records, max_names, sql)
    people = sql.fetch(_PEOPLE_SQL).set_index("record").reindex(records.index)
    return pd.DataFrame({
        "pid": people["pid"].astype("string"),
        "rule": people["rule"].astype("string"),
        "probability": people["probability"].astype("float64"),
        "uses_shared_identifier": people["uses_shared_identifier"].astype(bool),
    }, index=records.index)
