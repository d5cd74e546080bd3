"""A small synthetic world shared by the synth tests (generated once per session)."""

from __future__ import annotations

import pandas as pd
import pytest

from leadscore.config import WorldSettings
from leadscore.synth import World, generate_world


@pytest.fixture(scope="session")
def small() -> WorldSettings:
    return WorldSettings(seed=11, scale=0.03)


@pytest.fixture(scope="session")
def world(small: WorldSettings) -> World:
    return generate_world(small)


@pytest.fixture(scope="session")
def labelled(world: World) -> dict[str, pd.DataFrame]:
    """Each raw source with its true person_key and company_key beside every row."""
    records = world.truth["records"]
    out = {}
    for name, frame in world.sources.items():
        truth = records[records["source"] == name].set_index("source_record_id")
        ids = frame.iloc[:, 0]
        out[name] = frame.assign(
            person_key=truth["person_key"].reindex(ids).to_numpy(),
            company_key=truth["company_key"].reindex(ids).to_numpy(),
        )
    return out


@pytest.fixture(scope="session")
def people(world: World) -> pd.DataFrame:
    return world.truth["people"].set_index("person_key")
