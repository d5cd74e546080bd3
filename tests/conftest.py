"""Shared fixtures: the project's settings and config files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from leadscore.config import DATA_DIR_ENV_VAR, SETTINGS_ENV_VAR, Settings, load_settings, load_yaml
from leadscore.identity.standardise import StandardiseRules

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _cli_environment_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    """A command run in-process sets $LEADSCORE_CONFIG and $LEADSCORE_DATA_DIR for its child
    processes (leadscore/cli): undone after each test, or a later test's pipeline would
    write into the data directory that command named (the project's own data/, say)."""
    for name in (SETTINGS_ENV_VAR, DATA_DIR_ENV_VAR):
        monkeypatch.setenv(name, "")  # recorded, so that teardown restores the value before
        monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return load_settings(PROJECT_ROOT / "config" / "leadscore.yaml")


@pytest.fixture(scope="session")
def std_rules(settings: Settings) -> StandardiseRules:
    return StandardiseRules.from_config(load_yaml(settings.config_file("identity.yaml")))


HOLD_THE_RETRAIN_LOCK = """
import sys, time
from pathlib import Path
from leadscore.training.lock import exclusive
with exclusive(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(600)
"""


@pytest.fixture
def retrain_lock_holder(tmp_path):
    """Another process holding the retrain lock of data dir `tmp_path` (killed at the end)."""
    from leadscore.training.lock import LOCK_FILE

    process = subprocess.Popen([sys.executable, "-c", HOLD_THE_RETRAIN_LOCK, str(tmp_path / LOCK_FILE)],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    yield process
    process.kill()
    process.wait()


@pytest.fixture
def small_feature_store():
    """A function building a Feast store of one small person view (visits, share, title) over
    `rows` written to a Parquet source in `folder`, with the given online store config and
    project, applied: (store, view)."""
    from datetime import timedelta

    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, RepoConfig
    from feast.types import Float64, Int64, String

    def build(folder, rows, online_store, project: str = "t"):
        folder.mkdir(exist_ok=True)
        rows.to_parquet(folder / "rows.parquet")
        person = Entity(name="person", join_keys=["pid"])
        source = FileSource(path=str(folder / "rows.parquet"), timestamp_field="event_timestamp")
        view = FeatureView(name="person_view", entities=[person], ttl=timedelta(days=365), source=source,
                           schema=[Field(name="visits", dtype=Int64), Field(name="share", dtype=Float64),
                                   Field(name="title", dtype=String)])
        config = RepoConfig(project=project, provider="local", registry=str(folder / "registry.db"),
                            online_store=online_store, entity_key_serialization_version=3)
        store = FeatureStore(config=config)
        store.apply([person, view])
        return store, view

    return build


@pytest.fixture
def tricky_rows():
    """A function giving `count` rows of `small_feature_store`'s view as a full load reads
    them: ids of one to four bytes a character, nulls and NaNs, negative, signed-zero and
    tiny doubles, empty strings, instants to the microsecond."""
    import math
    from datetime import UTC, datetime, timedelta

    import pandas as pd

    start = datetime(2026, 11, 2, 8, 30, tzinfo=UTC)

    def rows(count: int) -> pd.DataFrame:
        return pd.DataFrame({
            "pid": [f"P{i}" if i % 5 else f"Pé{i}😀" for i in range(count)],
            "visits": [None if i % 13 == 0 else i % 7 - 2 for i in range(count)],
            "share": [[None, math.nan, -0.0, 1e-300, -2.5, i / 7][i % 6] for i in range(count)],
            "title": [["CTO", None, "", "Analyst", "Directeur général"][i % 5] for i in range(count)],
            "event_timestamp": pd.to_datetime([start + timedelta(seconds=i % 11, microseconds=i % 3)
                                               for i in range(count)]).astype("datetime64[us, UTC]")})

    return rows
