"""Feast's offline reads in proportion to the data: a training set asked in chunks is the
one a single query gives, in the entities' order, and the offline store's DuckDB is held
to the configured memory limit."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from leadscore.config import load_settings
from leadscore.features.build import read_manifest
from leadscore.features.store import FEATURE_SERVICE, historical_features, open_store
from leadscore.training.dataset import labelled_entities, snapshot_times

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def world_settings(world):
    return load_settings(world["config_file"])


@pytest.fixture(scope="module")
def entities(world_settings) -> pd.DataFrame:
    """The tiny world's training entities, shuffled: an order Feast would not keep."""
    manifest = read_manifest(world_settings.feature_data_dir)
    times = snapshot_times(manifest["start"], manifest["as_of"], world_settings.training)
    rows = labelled_entities(world_settings.middle_db, times, world_settings.training.horizon_days)
    return rows.sample(frac=1, random_state=3, ignore_index=True)


def test_a_training_set_in_chunks_is_feasts_single_answer_in_the_entities_order(world_settings, entities):
    store = open_store(world_settings)
    chunked = historical_features(store, entities, chunk_rows=len(entities) // 7)
    assert chunked[["pid", "event_timestamp"]].equals(entities[["pid", "event_timestamp"]])
    service = store.get_feature_service(FEATURE_SERVICE)
    single = store.get_historical_features(entity_df=entities.copy(), features=service).to_df()
    key = ["event_timestamp", "pid"]
    pd.testing.assert_frame_equal(chunked.sort_values(key, ignore_index=True),
                                  single.sort_values(key, ignore_index=True))
    assert chunked["events_90d"].sum() > 0  # real activity compared


def test_the_offline_store_is_held_to_the_configured_memory_limit(world_settings):
    import ibis

    limited = world_settings.model_copy(update={"duckdb": world_settings.duckdb.model_copy(
        update={"memory_limit": "700MB"})})
    store = open_store(limited)
    setting = "SELECT current_setting('memory_limit'), current_setting('temp_directory')"
    with duckdb.connect(config={"memory_limit": "700MB"}) as reference:
        expected = reference.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    assert ibis.get_backend().raw_sql(setting).fetchone() == (
        expected, str(world_settings.data_dir / "duckdb.tmp"))
    # materialisation asks DuckDB for the latest row per entity, not every row to pandas
    assert store.config.materialization_config.pull_latest_features
