"""The Feast store from leadscore's side: apply, materialise, read.

`apply` runs Feast's own CLI (`feast apply`) on the repo, as Feast teaches;
reads and materialisation use the Python SDK. LEADSCORE_DATA_DIR tells the
repo where this world's files live.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
from feast import FeatureStore

from leadscore.config import DATA_DIR_ENV_VAR, SETTINGS_ENV_VAR, Settings

log = logging.getLogger(__name__)

FEATURE_SERVICE = "lead_scoring_v1"
ENTITY_KEY = "pid"


def feast_env(settings: Settings, settings_file: Path | None = None) -> dict[str, str]:
    """Environment under which the repo's yaml and definitions find this world's files."""
    env = {DATA_DIR_ENV_VAR: str(settings.data_dir)}
    if settings_file is not None:
        env[SETTINGS_ENV_VAR] = str(settings_file)
    return env


def apply(settings: Settings, settings_file: Path | None = None) -> None:
    """`feast apply` on the feature repo (registers entities, views, the feature service)."""
    (settings.data_dir / "feast").mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **feast_env(settings, settings_file)}
    feast_cli = Path(sys.executable).parent / "feast"
    result = subprocess.run([str(feast_cli), "apply"], cwd=settings.feature_repo, env=env,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"feast apply failed:\n{result.stdout}\n{result.stderr}")
    log.info("feast apply: %s", result.stdout.strip().replace("\n", "; "))


def open_store(settings: Settings) -> FeatureStore:
    """The SDK handle on this world's store (sets LEADSCORE_DATA_DIR for the yaml)."""
    os.environ[DATA_DIR_ENV_VAR] = str(settings.data_dir)
    return FeatureStore(repo_path=str(settings.feature_repo))


def materialize(store: FeatureStore, start: datetime, as_of: datetime) -> None:
    """Load the newest row per person between `start` and `as_of` (inclusive) into the online
    store. A full range rather than Feast's incremental mode: a rebuild rewrites past rows
    (new people, corrected attributes), and incremental mode would skip them."""
    store.materialize(start_date=start - timedelta(seconds=1), end_date=as_of + timedelta(seconds=1))


def feature_refs(store: FeatureStore) -> list[str]:
    """'view:feature' of every feature in the feature service, in a stable order."""
    service = store.get_feature_service(FEATURE_SERVICE)
    return [f"{projection.name}:{feature.name}"
            for projection in service.feature_view_projections for feature in projection.features]


def historical_features(store: FeatureStore, entity_df: pd.DataFrame) -> pd.DataFrame:
    """Point-in-time join: entity_df (pid, event_timestamp, ...) plus every service feature."""
    service = store.get_feature_service(FEATURE_SERVICE)
    return store.get_historical_features(entity_df=entity_df, features=service).to_df()


def online_features(store: FeatureStore, pids: list[str]) -> pd.DataFrame:
    """Online values for PIDs, one row each, plus `known` (False when the store has no row)."""
    service = store.get_feature_service(FEATURE_SERVICE)
    response = store.get_online_features(
        features=service, entity_rows=[{ENTITY_KEY: pid} for pid in pids]).to_df()
    feature_columns = [c for c in response.columns if c != ENTITY_KEY]
    return response.assign(known=response[feature_columns].notna().any(axis=1))
