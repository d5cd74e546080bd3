"""Fixtures for the benchmark tests: the segment tests' tiny hand-made world."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from leadscore.config import Settings

TINY_WORLD = Path(__file__).resolve().parents[1] / "unit" / "segments" / "segments_tiny_world.py"


def _tiny_world() -> ModuleType:
    """The segment unit tests' world module, loaded by path (test folders are not packages)."""
    spec = importlib.util.spec_from_file_location("segments_tiny_world", TINY_WORLD)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def world_settings(settings: Settings, tmp_path) -> Settings:
    """The project's config with a data dir of its own holding the tiny world."""
    return settings.with_data_dir(_tiny_world().build(tmp_path / "data"))
