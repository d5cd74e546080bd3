"""Deterministic linking: records that share an exact identifier are one person.

Records and identifier values form a bipartite graph; its connected components
are the clusters. Identifiers shared by several different people (info@
inboxes, switchboard phones, a family computer's cookie) would chain strangers
together, so an identifier seen with more distinct names than allowed is kept
as an attribute but not used as evidence.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

# Identifier kinds in the order used to name the rule that linked a record.
IDENTIFIER_KINDS = ["contact_id", "user_id", "email", "phone", "cookie_id"]
ANONYMOUS_SOURCES = frozenset({"web_sessions"})


def identifier_edges(records: pd.DataFrame) -> pd.DataFrame:
    """(record, key, kind) for every identifier a record carries; key = 'kind:value'."""
    parts = []
    for kind in IDENTIFIER_KINDS:
        values = records[kind].dropna()
        parts.append(
            pd.DataFrame(
                {"record": values.index.to_numpy(), "key": kind + ":" + values.astype(str), "kind": kind}
            )
        )
    return pd.concat(parts, ignore_index=True)


def shared_identifiers(edges: pd.DataFrame, name_keys: pd.Series, max_names: int) -> pd.Series:
    """Keys seen with more than `max_names` distinct full names, with their name count."""
    named = edges.assign(name_key=name_keys.reindex(edges["record"]).to_numpy()).dropna(
        subset=["name_key"]
    )
    counts = named.groupby("key")["name_key"].nunique()
    return counts[counts > max_names]


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


def cluster_labels(n_records: int, edges: pd.DataFrame) -> np.ndarray:
    """Connected component of every record in the record-identifier graph."""
    codes, uniques = pd.factorize(edges["key"])
    labels = label_components(edges["record"].to_numpy(), codes + n_records, n_records + len(uniques))
    return labels[:n_records]


def link_rules(records: pd.DataFrame, edges: pd.DataFrame) -> pd.Series:
    """The first identifier kind through which each record joins another record, else 'singleton'."""
    degree = edges.groupby("key")["record"].transform("size")
    linking = edges[degree > 1]
    first_kind = (
        linking.assign(rank=linking["kind"].map(IDENTIFIER_KINDS.index))
        .sort_values("rank")
        .drop_duplicates("record")
        .set_index("record")["kind"]
    )
    return first_kind.reindex(records.index).fillna("singleton").astype("string")


def mint_id(prefix: str, anchors: pd.Series) -> pd.Series:
    """A short stable id from an anchor string: the same anchor always gives the same id."""
    return anchors.map(lambda anchor: prefix + hashlib.sha1(anchor.encode()).hexdigest()[:10].upper())


ANCHOR_PRIORITY = {"email": 0, "phone": 1, "contact_id": 2, "user_id": 3, "cookie_id": 4}


def person_anchor(records: pd.DataFrame, evidence: pd.DataFrame, clusters: pd.Series) -> pd.Series:
    """Per cluster, the value its PID is minted from: its smallest email, else phone, else
    other identifier, else record key. Evidence keys belong to one cluster only, so anchors
    are unique."""
    keyed = pd.DataFrame({
        "cluster": clusters.loc[evidence["record"]].to_numpy(),
        "anchor": evidence["kind"].map(ANCHOR_PRIORITY).astype(str).to_numpy() + evidence["key"].to_numpy(),
    })
    by_key = keyed.groupby("cluster")["anchor"].min().str[1:]
    record_key = records["source"] + ":" + records["source_record_id"]
    by_record = record_key.groupby(clusters.loc[records.index]).min()
    return by_key.reindex(by_record.index).fillna(by_record)


def resolve_people(records: pd.DataFrame, max_names: int) -> pd.DataFrame:
    """Per record: pid (missing for anonymous web-only clusters), rule, probability."""
    edges = identifier_edges(records)
    shared = shared_identifiers(edges, records["name_key"], max_names)
    evidence = edges[~edges["key"].isin(shared.index)]
    clusters = pd.Series(cluster_labels(len(records), evidence), index=records.index)
    is_person = ~records["source"].isin(ANONYMOUS_SOURCES)
    person_clusters = clusters[is_person].unique()
    anchors = person_anchor(records, evidence, clusters).loc[person_clusters]
    pid = clusters.map(mint_id("P", anchors))
    rule = link_rules(records, evidence).mask(pid.isna(), "anonymous_cookie")
    uses_shared = records.index.isin(edges.loc[edges["key"].isin(shared.index), "record"])
    return pd.DataFrame(
        {
            "pid": pid.astype("string"),
            "rule": rule,
            "probability": np.where(pid.isna(), np.nan, 1.0),
            "uses_shared_identifier": uses_shared,
        },
        index=records.index,
    )
