"""Replay: the future is sent once, in time order, as the clock passes it."""

from __future__ import annotations

import time
from datetime import timedelta

import pandas as pd

from leadscore.clock import WorldClock, world_end
from leadscore.config import WorldSettings
from leadscore.live.replay import due_calls, opportunity_outcomes, replay
from leadscore.live.sources import ID_COLUMN, SOURCES, TIME_COLUMN
from leadscore.synth import generate_world


def test_records_due_together_share_a_call_per_source():
    at = pd.Timestamp("2026-11-01", tz="UTC")
    pending = [(at, "web_sessions", {"n": 1}), (at, "web_sessions", {"n": 2}), (at, "form_fills", {"n": 3}),
               (at, "web_sessions", {"n": 4})]
    calls = due_calls(pending, max_records=10)
    assert [(source, [r["n"] for r in records]) for source, records in calls] == [
        ("web_sessions", [1, 2, 4]), ("form_fills", [3])]
    assert [len(records) for _, records in due_calls(pending, max_records=2)] == [2, 1, 1]


def test_the_next_days_are_sent_once_in_time_order_and_the_clock_moves_on(settings, tmp_path):
    world = generate_world(WorldSettings(scale=0.02, seed=7, future_days=3))
    end = world_end(settings.model_copy(update={"world": WorldSettings(scale=0.02, seed=7, future_days=3)}))
    clock = WorldClock(tmp_path / "clock.json", end)
    clock.place(end, speed=0)
    sent: list[tuple[str, dict]] = []

    def send(source: str, records: list[dict]) -> dict:
        SOURCES[source].model_validate(records[0])  # what the ingest API accepts
        time.sleep(0.01)  # a service takes its time: at this speed, hours of the world
        sent.extend((source, record) for record in records)
        return {"accepted": len(records)}

    stats = replay(world.future, clock, days=2, speed=86_400 * 20, send=send, tick_s=0.01)
    times = [pd.Timestamp(record[TIME_COLUMN[source]]) for source, record in sent]
    until = end + timedelta(days=2)
    expected = sum(frame[TIME_COLUMN[name]].between(end, until, inclusive="left").sum()
                   for name, frame in world.future.items())
    assert stats.sent == len(sent) == expected > 0
    assert min(times) >= end and max(times) < until
    for source in {source for source, _ in sent}:  # each source's records in time order
        own = [pd.Timestamp(r[TIME_COLUMN[s]]) for s, r in sent if s == source]
        assert own == sorted(own)
    assert len({(source, record[ID_COLUMN[source]]) for source, record in sent}) == len(sent)
    assert clock.anchor().speed == 1.0 and clock.now() >= end + timedelta(days=2)
    assert clock.now() - until < timedelta(hours=12)  # at most a tick past the end, not the send time
    clock.advance(timedelta(hours=6))  # the world went on between the two runs
    again = replay(world.future, clock, days=0.5, speed=86_400 * 20, send=send, tick_s=0.01,
                   since=stats.world_to)
    ids = [(s, r[ID_COLUMN[s]]) for s, r in sent]
    expected_ids = {(name, row) for name, frame in world.future.items() for row in frame.loc[
        frame[TIME_COLUMN[name]].between(end, again.world_to, inclusive="left"), ID_COLUMN[name]]}
    assert len(ids) == len(set(ids)) and set(ids) == expected_ids  # carried on: no gap, nothing twice


def test_the_crm_sends_back_the_opportunities_that_found_their_person():
    records = [{"opportunity_id": "O1", "created_at": "2027-01-02T10:00:00.000000Z"},
               {"opportunity_id": "O2", "created_at": "2027-01-02T11:00:00.000000Z"}]
    answer = {"records": [{"status": "accepted", "pid": "P1"}, {"status": "quarantined", "pid": None}]}
    assert opportunity_outcomes(records, answer) == [
        {"kind": "opportunity_created", "crm_id": "O1", "pid": "P1", "at": "2027-01-02T10:00:00.000000Z"}]
