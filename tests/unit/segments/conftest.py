"""Fixtures: the tiny hand-made world (segments_tiny_world.py) and engines over it."""

from __future__ import annotations

import pytest
from segments_tiny_world import build

from leadscore.config import Settings
from leadscore.segments.engine import SegmentEngine


@pytest.fixture(scope="module")
def engine(settings: Settings, tmp_path_factory) -> SegmentEngine:
    """An engine over the tiny world, shared by a module's tests that only read."""
    return SegmentEngine(settings.with_data_dir(build(tmp_path_factory.mktemp("world") / "data")))


@pytest.fixture
def world_settings(settings: Settings, tmp_path) -> Settings:
    """The project's config with a data dir of its own holding the tiny world."""
    return settings.with_data_dir(build(tmp_path / "data"))


@pytest.fixture
def own_engine(world_settings: Settings) -> SegmentEngine:
    """An engine over a tiny world of its own, for tests that change files or save."""
    return SegmentEngine(world_settings)


@pytest.fixture(scope="module")
def bare_engine(settings: Settings, tmp_path_factory) -> SegmentEngine:
    """An engine over the tiny world before any tags or scores were built."""
    data_dir = tmp_path_factory.mktemp("bare") / "data"
    return SegmentEngine(settings.with_data_dir(build(data_dir, tags=False, scores=False)))
