"""Exports that leave out people at their contact frequency cap: the engine and the route, on
the tiny world with the hand-built email history of tests/unit/marketing/frequency_history.py
(its over-cap person is P1, under the cap P4, interested with no cap P6)."""

from __future__ import annotations

import csv
import io

import pytest
import segments_tiny_world as tiny
from fastapi import FastAPI
from fastapi.testclient import TestClient

from leadscore.access.audit import AuditLog
from leadscore.access.auth import Caller
from leadscore.config import FrequencySettings, MarketingSettings, Settings
from leadscore.segments.api import build_router
from leadscore.segments.engine import SegmentEngine

MAILED = {"name": "mailed lately", "where": {"kind": "event", "event_type": "email_send",
                                              "window": {"last_days": 30}}}
hist = tiny.frequency_history()


@pytest.fixture
def engine(world_settings: Settings) -> SegmentEngine:
    tiny.add_frequency_history(world_settings.middle_db)
    marketing = MarketingSettings(frequency=FrequencySettings(min_sends=20))
    return SegmentEngine(world_settings.model_copy(update={"marketing": marketing}))


def _pids(chunks) -> set[str]:
    return {row["pid"] for row in csv.DictReader(io.StringIO("".join(chunks)))}


def test_the_export_leaves_out_only_those_at_their_cap(engine):
    everyone = _pids(engine.export_csv(MAILED))
    assert everyone == {"P1", "P2", "P4", "P6"}  # P2: the tiny world's one email yesterday
    assert engine.frequency_caps(MAILED)["not_interested"].cap == hist.TURN
    assert engine.over_frequency_cap(MAILED) == {"P1"}
    assert _pids(engine.export_csv(MAILED, engine.over_frequency_cap(MAILED))) == everyone - {"P1"}


def test_the_export_route_takes_the_option_and_says_how_many_it_left_out(engine, tmp_path):
    marketer = Caller(name="Marketing", role="marketer", employee_id="E0100", can=frozenset({"segments"}),
                      own_accounts_only=False, reveal_pii=False)
    app = FastAPI()
    app.include_router(build_router(engine, lambda: marketer, AuditLog(tmp_path / "audit.jsonl")))
    client = TestClient(app)
    saved = client.post("/segments", json=MAILED).json()["id"]
    capped = client.get(f"/segments/{saved}/export", params={"within_frequency_cap": "true"})
    assert capped.status_code == 200 and capped.headers["x-left-out-over-cap"] == "1"
    assert _pids([capped.text]) == {"P2", "P4", "P6"}
    whole = client.get(f"/segments/{saved}/export")
    assert whole.headers["x-left-out-over-cap"] == "0" and _pids([whole.text]) == {"P1", "P2", "P4", "P6"}
