"""How good a set of predicted pairs or clusters is, against truth labels.

Truth is a frame of record keys and the entity each record belongs to: columns
`id, entity` for one table (dedupe), `source, id, entity` for two (link, with
source 'left' / 'right' as in identity/probabilistic.py). Pairs are frames with
`id_l, id_r`; in link mode id_l is a left-table record and id_r a right-table one.
"""

from __future__ import annotations

import logging

import pandas as pd

from leadscore.identity.probabilistic import SOURCES

logger = logging.getLogger(__name__)


def _is_link(truth: pd.DataFrame) -> bool:
    return "source" in truth.columns


def canonical_pairs(pairs: pd.DataFrame, link: bool) -> pd.DataFrame:
    """Distinct (id_l, id_r); in dedupe mode ordered so that id_l < id_r, because
    (a, b) and (b, a) are the same pair."""
    pairs = pairs[["id_l", "id_r"]]
    if not link:
        swap = pairs["id_l"] > pairs["id_r"]
        pairs = pd.DataFrame({"id_l": pairs["id_l"].where(~swap, pairs["id_r"]),
                              "id_r": pairs["id_r"].where(~swap, pairs["id_l"])})
    return pairs.drop_duplicates(ignore_index=True)


def true_pairs(truth: pd.DataFrame) -> pd.DataFrame:
    """Every pair of records of one entity (across the two tables only, in link mode)."""
    if _is_link(truth):
        left = truth[truth["source"] == SOURCES[0]]
        right = truth[truth["source"] == SOURCES[1]]
        pairs = left.merge(right, on="entity", suffixes=("_l", "_r"))
        return pairs[["id_l", "id_r"]].drop_duplicates(ignore_index=True)
    pairs = truth.merge(truth, on="entity", suffixes=("_l", "_r"))
    return pairs.loc[pairs["id_l"] < pairs["id_r"], ["id_l", "id_r"]].reset_index(drop=True)


def _overlap(predicted: pd.DataFrame, truth_pairs: pd.DataFrame) -> int:
    return len(predicted.merge(truth_pairs, on=["id_l", "id_r"]))


def pairwise_scores(predicted: pd.DataFrame, truth: pd.DataFrame) -> dict[str, float]:
    """Pairwise precision, recall and F1 (and the counts behind them) of predicted pairs."""
    link = _is_link(truth)
    predicted, actual = canonical_pairs(predicted, link), true_pairs(truth)
    hits = _overlap(predicted, actual)
    precision = hits / len(predicted) if len(predicted) else 1.0
    recall = hits / len(actual) if len(actual) else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "true_positives": hits,
            "false_positives": len(predicted) - hits, "false_negatives": len(actual) - hits}


def blocking_recall(candidate_pairs: pd.DataFrame, truth: pd.DataFrame) -> float:
    """Share of true pairs that some blocking rule compares (all candidate pairs, before
    any threshold): the ceiling on the pairwise recall of the model."""
    actual = true_pairs(truth)
    if actual.empty:
        return 1.0
    return _overlap(canonical_pairs(candidate_pairs, _is_link(truth)), actual) / len(actual)


def cluster_pairs(clusters: pd.DataFrame) -> pd.DataFrame:
    """The pairs clusters imply (every two records of a cluster), to score clusters pairwise."""
    if "source" in clusters.columns:
        left = clusters[clusters["source"] == SOURCES[0]]
        right = clusters[clusters["source"] == SOURCES[1]]
        pairs = left.merge(right, on="cluster_id", suffixes=("_l", "_r"))
        return pairs[["id_l", "id_r"]]
    pairs = clusters.merge(clusters, on="cluster_id", suffixes=("_l", "_r"))
    return pairs.loc[pairs["id_l"] < pairs["id_r"], ["id_l", "id_r"]].reset_index(drop=True)


def cluster_precision(clusters: pd.DataFrame, truth: pd.DataFrame) -> float:
    """Share of predicted clusters of two or more records that hold a single true
    entity. Singletons are left out: they cannot be over-merged."""
    keys = ["source", "id"] if _is_link(truth) else ["id"]
    labelled = clusters.merge(truth, on=keys, how="left")
    if labelled["entity"].isna().any():
        raise ValueError("some clustered records have no truth label")
    per_cluster = labelled.groupby("cluster_id")["entity"].agg(["size", "nunique"])
    multi = per_cluster[per_cluster["size"] > 1]
    return float((multi["nunique"] == 1).mean()) if len(multi) else 1.0


def _pairs(sizes: pd.Series) -> float:
    return float((sizes * (sizes - 1) / 2).sum())


def clustering_scores(predicted: pd.Series, truth: pd.Series) -> dict[str, float]:
    """Pairwise precision, recall and F1 of a clustering (item -> cluster id) against the truth
    (item -> entity), from cluster sizes: no pair is listed, so it scales to millions of items."""
    both = pd.DataFrame({"p": predicted, "t": truth}).dropna()
    true_positive = _pairs(both.groupby(["p", "t"]).size())
    predicted_pairs = _pairs(both.groupby("p").size())
    true_pairs = _pairs(both.groupby("t").size())
    precision = true_positive / predicted_pairs if predicted_pairs else 1.0
    recall = true_positive / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}
