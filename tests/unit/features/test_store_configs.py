"""The two Feast repo configs (SQLite and Redis online stores) differ only in the online store."""

from __future__ import annotations

from pathlib import Path

import yaml

FEATURES = Path(__file__).resolve().parents[3] / "features"


def test_the_redis_config_differs_from_the_default_only_in_its_online_store_and_registry():
    default = yaml.safe_load((FEATURES / "feature_store.yaml").read_text())
    redis = yaml.safe_load((FEATURES / "feature_store.redis.yaml").read_text())
    assert redis["online_store"]["type"] == "redis" and default["online_store"]["type"] == "sqlite"
    shared = {key for key in default.keys() | redis.keys()} - {"online_store", "registry"}
    assert {key: redis.get(key) for key in shared} == {key: default.get(key) for key in shared}
