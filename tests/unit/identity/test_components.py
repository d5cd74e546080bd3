"""Connected components in SQL (identity/components.py), on DuckDB: every node of a
component gets the component's smallest node, however long the chain."""

import pandas as pd
import pytest

from leadscore.identity.components import node_labels
from leadscore.identity.engine import DuckDBSql


def test_a_long_chain_is_one_component_labelled_by_its_smallest_node():
    nodes = [f"n{i:03d}" for i in range(200)][::-1]  # the smallest node at the far end
    labels = node_labels(DuckDBSql(), pd.Series(nodes[:-1]), pd.Series(nodes[1:]))
    assert set(labels) == {"n000"}
    assert list(labels.index) == nodes  # in the order the nodes first appear


def test_separate_components_keep_separate_labels_and_a_lone_node_its_own():
    left, right = pd.Series(["b", "c", "x", "lone"]), pd.Series(["a", "b", "y", "lone"])
    labels = node_labels(DuckDBSql(), left, right)
    assert labels.to_dict() == {"b": "a", "c": "a", "x": "x", "lone": "lone", "a": "a", "y": "x"}


def test_a_graph_that_does_not_settle_in_time_is_an_error(monkeypatch):
    from leadscore.identity import components

    monkeypatch.setattr(components, "MAX_ROUNDS", 1)
    with pytest.raises(RuntimeError, match="did not settle"):
        node_labels(DuckDBSql(), pd.Series(["c", "b"]), pd.Series(["b", "a"]))
