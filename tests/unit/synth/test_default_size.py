"""The default world (the demo's) is on target and quick to make."""

from __future__ import annotations

import time

import pytest

from leadscore.config import WorldSettings
from leadscore.synth import generate_world

INTERACTION_SOURCES = ["web_sessions", "form_fills", "event_registrations", "email_activity",
                       "orders"]


@pytest.mark.slow
def test_default_world_is_fast_and_near_its_targets():
    settings = WorldSettings()
    began = time.perf_counter()
    world = generate_world(settings)
    seconds = time.perf_counter() - began
    assert seconds < 60
    total = sum(len(world.sources[name]) for name in INTERACTION_SOURCES)
    assert abs(total - settings.interactions) / settings.interactions < 0.1
    assert len(world.truth["people"]) == settings.people
    assert len(world.truth["companies"]) == settings.companies
