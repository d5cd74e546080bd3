"""Connected components in SQL, the same on DuckDB and on Spark (identity/engine.py).

Iterative label propagation: every node starts with the smallest of itself and its
neighbours, then repeatedly takes the smallest label among its neighbours' and jumps to
its label's own label (pointer jumping), until no label shrinks. The label of a
component is its smallest node, so it does not depend on the engine, the order of the
rows or the number of rounds. Rounds grow with the log of a component's diameter; an
identity graph's components are shallow (a person's few identifiers), so a handful do.
"""

from __future__ import annotations

import logging

import pandas as pd

from leadscore.identity.engine import IdentitySql

log = logging.getLogger(__name__)

MAX_ROUNDS = 64  # far beyond any identity graph's need; a cap against a runaway loop

_NEIGHBOURS_SQL = """
    SELECT a AS node, b AS other FROM {edges}
    UNION SELECT b, a FROM {edges}
    UNION SELECT a, a FROM {edges}
    UNION SELECT b, b FROM {edges}"""

_FIRST_LABEL_SQL = "SELECT node, min(other) AS label FROM component_neighbour GROUP BY node"

# One round: the smallest label among the neighbours, then the label of that label.
_ROUND_SQL = """
    WITH spread AS (
        SELECT n.node, min(l.label) AS label
        FROM component_neighbour n JOIN component_label l ON l.node = n.other
        GROUP BY n.node)
    SELECT s.node, least(s.label, j.label) AS label
    FROM spread s JOIN component_label j ON j.node = s.label"""

_SHRUNK_SQL = """
    SELECT count(*) AS shrunk FROM component_next n JOIN component_label l ON l.node = n.node
    WHERE n.label < l.label"""


def component_table(sql: IdentitySql, edges: str) -> None:
    """Table `component_label(node, label)` of every node of table `edges(a, b)` (undirected,
    text nodes): `label` is the smallest node of its component."""
    sql.create("component_neighbour", _NEIGHBOURS_SQL.format(edges=edges))
    sql.create("component_label", _FIRST_LABEL_SQL)
    for rounds in range(1, MAX_ROUNDS + 1):
        sql.create("component_next", _ROUND_SQL)
        shrunk = int(sql.fetch(_SHRUNK_SQL)["shrunk"].iloc[0])
        sql.create("component_label", "SELECT node, label FROM component_next")
        if shrunk == 0:
            log.debug("components of %s: %d rounds", edges, rounds)
            return
    raise RuntimeError(f"connected components of {edges} did not settle in {MAX_ROUNDS} rounds")


def node_labels(sql: IdentitySql, left: pd.Series, right: pd.Series) -> pd.Series:
    """Component label (its smallest node) of every node of the undirected edges
    left[i]-right[i], indexed by node in the order the nodes first appear."""
    left, right = left.astype("string"), right.astype("string")
    sql.put("node_edge", pd.DataFrame({"a": left.to_numpy(), "b": right.to_numpy()}))
    component_table(sql, "node_edge")
    labels = sql.fetch("SELECT node, label FROM component_label WHERE node IS NOT NULL")
    nodes = pd.concat([left, right], ignore_index=True).dropna().drop_duplicates()
    return pd.Series(labels["label"].to_numpy(), index=labels["node"].to_numpy(),
                     dtype="string").reindex(nodes.to_numpy())
