"""The probabilistic matcher on Splink's Spark backend (local mode, the machine's Java)
resolves a small FEBRL4 link into the same clusters as on DuckDB."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from leadscore.benchmarks import identity as benchmark
from leadscore.identity import evaluate
from leadscore.identity import probabilistic as prob
from leadscore.identity.mapping import load_mapping, standardise_table

FEBRL_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "febrl"
N_ENTITIES = 500  # of FEBRL4's 5,000: enough to mean something, small enough for a local Spark

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(not FEBRL_DIR.is_dir(), reason=f"FEBRL data not found at {FEBRL_DIR}"),
    pytest.mark.skipif(shutil.which("java") is None, reason="Java not found: Spark needs a JVM on the PATH"),
    pytest.mark.usefixtures("tiny_tables_spark"),
]


@pytest.fixture(scope="module")
def febrl4_subset(settings, std_rules) -> tuple[list[pd.DataFrame], pd.DataFrame]:
    """(the two standardised tables, the truth) for FEBRL4's first N_ENTITIES people."""
    mapping = load_mapping(settings.config_file("mappings/febrl.yaml"))
    tables, truth = [], []
    for name, source in zip(["dataset4a.csv", "dataset4b.csv"], prob.SOURCES, strict=True):
        frame, entity = benchmark.read_febrl(FEBRL_DIR / name)
        keep = (entity < N_ENTITIES).to_numpy()
        table = standardise_table(frame[keep].reset_index(drop=True), mapping, std_rules, name)
        tables.append(table)
        truth.append(pd.DataFrame({"source": source, "id": table["record_id"],
                                   "entity": entity[keep].to_numpy()}))
    return tables, pd.concat(truth, ignore_index=True)


@pytest.fixture(scope="module")
def model(settings) -> prob.ModelConfig:
    config = prob.load_model_config(settings.config_file("mappings/febrl.yaml"))
    # On this small world every u chunk runs (no level reaches min_count_per_level), so one
    # chunk estimates the same u from the same sample; on Spark each chunk costs seconds, as
    # does each of the 8 shuffle partitions of tables this small (one holds them), and a
    # u sample of 1e5 pairs is most of the 1000 x 1000 there are. Both backends share it all.
    spark = {**config.backends["spark"], "spark_session": {**config.backends["spark"]["spark_session"],
                                                           "shuffle_partitions": 1}}
    return replace(config, backends={**config.backends, "spark": spark},
                   training=replace(config.training, u_num_chunks=1, u_max_pairs=1e5))


def _partition(clusters: pd.DataFrame) -> set[frozenset]:
    members = zip(clusters["source"], clusters["id"], strict=True)
    return {frozenset(group) for group in pd.Series(list(members)).groupby(clusters["cluster_id"].to_numpy())
            .agg(list)}


def test_spark_and_duckdb_give_the_same_clusters(febrl4_subset, model):
    tables, truth = febrl4_subset
    _, duckdb_clusters, _ = prob.resolve(tables, model.on_backend("duckdb"))
    spark_pairs, spark_clusters, _ = prob.resolve(tables, model.on_backend("spark"))

    assert len(spark_clusters) == sum(map(len, tables))
    assert _partition(spark_clusters) == _partition(duckdb_clusters)
    assert evaluate.pairwise_scores(spark_pairs, truth)["f1"] >= 0.99
