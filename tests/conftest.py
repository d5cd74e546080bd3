"""Shared fixtures: the project's settings and config files."""

from __future__ import annotations

from pathlib import Path

import pytest

from leadscore.config import Settings, load_settings, load_yaml
from leadscore.identity.standardise import StandardiseRules

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def settings() -> Settings:
    return load_settings(PROJECT_ROOT / "config" / "leadscore.yaml")


@pytest.fixture(scope="session")
def std_rules(settings: Settings) -> StandardiseRules:
    return StandardiseRules.from_config(load_yaml(settings.config_file("identity.yaml")))
