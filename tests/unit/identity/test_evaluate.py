import pandas as pd
import pytest

from leadscore.identity import evaluate

# Records 1-3 are one person, 4 and 5 two others.
DEDUPE_TRUTH = pd.DataFrame({"id": [1, 2, 3, 4, 5], "entity": ["a", "a", "a", "b", "c"]})
LINK_TRUTH = pd.DataFrame({"source": ["left", "left", "left", "right", "right", "right"],
                           "id": [1, 2, 3, 1, 2, 3], "entity": ["a", "b", "c", "b", "a", "d"]})


def _pairs(*pairs: tuple) -> pd.DataFrame:
    return pd.DataFrame(pairs, columns=["id_l", "id_r"])


def test_pairwise_scores_on_a_hand_made_dedupe():
    predicted = _pairs((2, 1), (1, 3), (4, 5), (1, 2))  # (2, 1) and (1, 2) are one pair
    scores = evaluate.pairwise_scores(predicted, DEDUPE_TRUTH)
    assert scores["true_positives"] == 2 and scores["false_positives"] == 1
    assert scores["false_negatives"] == 1
    assert scores["precision"] == pytest.approx(2 / 3) and scores["recall"] == pytest.approx(2 / 3)
    assert scores["f1"] == pytest.approx(2 / 3)


def test_pairwise_scores_on_a_hand_made_link():
    predicted = _pairs((1, 2), (2, 1), (3, 3))  # left 3 / right 3 are different people
    scores = evaluate.pairwise_scores(predicted, LINK_TRUTH)
    assert (scores["precision"], scores["recall"]) == (pytest.approx(2 / 3), 1.0)
    assert scores["f1"] == pytest.approx(0.8)


def test_no_predictions_is_perfect_precision_and_zero_recall():
    scores = evaluate.pairwise_scores(_pairs(), DEDUPE_TRUTH)
    assert (scores["precision"], scores["recall"], scores["f1"]) == (1.0, 0.0, 0.0)


def test_blocking_recall_is_the_share_of_true_pairs_compared():
    candidates = _pairs((1, 2), (3, 2), (4, 5), (1, 5))
    assert evaluate.blocking_recall(candidates, DEDUPE_TRUTH) == pytest.approx(2 / 3)


def test_cluster_precision_counts_clusters_holding_one_entity():
    clusters = pd.DataFrame({"id": [1, 2, 3, 4, 5], "cluster_id": [1, 1, 3, 3, 5]})
    # {1, 2} is pure, {3, 4} mixes two people, {5} is a singleton and not counted
    assert evaluate.cluster_precision(clusters, DEDUPE_TRUTH) == 0.5
    assert evaluate.pairwise_scores(evaluate.cluster_pairs(clusters), DEDUPE_TRUTH)["true_positives"] == 1


def test_cluster_precision_in_link_mode():
    clusters = pd.DataFrame({"source": ["left", "right", "left", "right", "left", "right"],
                             "id": [1, 2, 2, 1, 3, 3], "cluster_id": ["x", "x", "y", "y", "z", "z"]})
    assert evaluate.cluster_precision(clusters, LINK_TRUTH) == pytest.approx(2 / 3)
    assert len(evaluate.cluster_pairs(clusters)) == 3


def test_clustering_scores_count_pairs_from_cluster_sizes():
    truth = pd.Series(["a", "a", "a", "b", "c"])
    predicted = pd.Series([1, 1, 2, 2, 3])  # splits a, merges a with b
    scores = evaluate.clustering_scores(predicted, truth)
    # predicted pairs: (0,1) true, (2,3) false; true pairs: (0,1), (0,2), (1,2)
    assert scores["precision"] == pytest.approx(0.5)
    assert scores["recall"] == pytest.approx(1 / 3)
    assert evaluate.clustering_scores(truth, truth)["f1"] == 1.0
