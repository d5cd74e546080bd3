"""A tiny middle layer resolved by the real batch, and an ingestor over it."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pandas as pd
import pytest

from leadscore.config import WorldSettings
from leadscore.identity.records import SOURCE_LAYOUT
from leadscore.identity.resolve import id_map, resolve_records, rules_from_settings, write_middle_layer
from leadscore.synth import generate_world

TIMES = {name: layout[1] for name, layout in SOURCE_LAYOUT.items()} | {"crm_accounts": "created_at"}


def before(sources: dict[str, pd.DataFrame], cutoff: pd.Timestamp) -> dict[str, pd.DataFrame]:
    return {name: frame[frame[TIMES[name]] < cutoff] for name, frame in sources.items()}


def after(sources: dict[str, pd.DataFrame], cutoff: pd.Timestamp) -> dict[str, pd.DataFrame]:
    return {name: frame[frame[TIMES[name]] >= cutoff] for name, frame in sources.items()}


@pytest.fixture(scope="package")
def exact_rules(settings):
    """The project's identity rules without the probabilistic pass (it stays in the batch)."""
    return dataclasses.replace(rules_from_settings(settings), fuzzy_config=None)


@pytest.fixture(scope="package")
def tiny_world():
    """(all sources, the batch's part before a cutoff, the part after it)."""
    sources = generate_world(WorldSettings(scale=0.02, seed=5)).sources
    cutoff = sources["form_fills"]["submitted_at"].quantile(0.8)
    return sources, before(sources, cutoff), after(sources, cutoff)


@pytest.fixture(scope="package")
def batch_data_dir(settings, tmp_path_factory, tiny_world, exact_rules) -> Path:
    """A data dir whose raw sources and middle layer hold the tiny world before the cutoff:
    resolved once (a second or two), copied by each test that asks for it."""
    _, batch, _ = tiny_world
    resolved = resolve_records(batch, exact_rules)
    local = settings.with_data_dir(tmp_path_factory.mktemp("live-batch") / "data")
    local.raw_dir.mkdir(parents=True)
    for name, frame in batch.items():
        frame.to_parquet(local.raw_dir / f"{name}.parquet")
    write_middle_layer(local.middle_db, batch, resolved, id_map(resolved), exact_rules.event_types)
    return local.data_dir


@pytest.fixture
def live_settings(settings, tmp_path, batch_data_dir):
    """Settings whose raw sources and middle layer hold the tiny world before the cutoff: a
    copy of its own (tests ingest into it and rerun the batch on it), its files new, as if
    just written (the ingestor watches the middle layer's modification time)."""
    shutil.copytree(batch_data_dir, tmp_path / "data", copy_function=shutil.copy)
    return settings.with_data_dir(tmp_path / "data")
