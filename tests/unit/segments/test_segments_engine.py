"""The engine around the query: masked previews and exports, missing scores and tags,
reloading when the sources change, and the saved-segment store."""

from __future__ import annotations

import csv
import io
import json
import os
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from segments_tiny_world import AS_OF, EVERYONE, SCORES, SEED_MEMBERS, write_scores

from leadscore.clock import CLOCK_FILE, WorldClock
from leadscore.live.log import EVENT_LOG, EventLog
from leadscore.segments.dsl import SegmentError, examples

EVERYONE_SEGMENT = {"where": {"all": []}}


def test_preview_masks_email_and_phone_and_puts_the_best_score_first(engine):
    rows = engine.preview(examples()["seed"], limit=5)
    assert [row["pid"] for row in rows] == ["P1", "P2", "P6", "P4", "P7"]  # 90, 40, 30, 10, unscored
    alice = rows[0]
    assert alice["email"] == "a***@acme.com" and alice["phone"] == "138****5678"
    assert alice["company"] == "Acme Software" and alice["tier"] == "high-value"
    assert "alice@acme.com" not in str(rows)


def test_preview_limit(engine):
    assert len(engine.preview(EVERYONE_SEGMENT, limit=2)) == 2
    assert len(engine.preview(EVERYONE_SEGMENT, limit=50)) == len(EVERYONE)


def test_export_is_every_member_as_masked_csv(engine):
    text = "".join(engine.export_csv(examples()["seed"]))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {row["pid"] for row in rows} == SEED_MEMBERS
    assert all("***" in row["email"] for row in rows)
    assert "grace@cubic.net" not in text and "+12025550143" not in text


def test_export_of_a_bad_segment_fails_before_any_output(engine):
    with pytest.raises(SegmentError, match="unknown event type"):
        engine.export_csv({"where": {"kind": "event", "event_type": "nope"}})


def test_without_scores_everyone_is_unscored_and_score_conditions_say_what_to_run(bare_engine):
    result = bare_engine.count(EVERYONE_SEGMENT)
    assert result["by_tier"]["unscored"] == len(EVERYONE) == result["count"]
    assert sum(result["by_tier"].values()) == result["count"]
    with pytest.raises(SegmentError, match=r"no scores yet: run `leadscore score`"):
        bare_engine.count({"where": {"kind": "score", "field": "tier", "op": "=", "value": "high-value"}})


def test_without_tags_tag_conditions_say_what_to_run(bare_engine):
    with pytest.raises(SegmentError, match=r"no tags yet: run `leadscore features build`"):
        bare_engine.count({"where": {"kind": "tag", "tags": ["dormant"]}})
    assert bare_engine.vocabulary()["tagged"] is False


def test_the_score_axes_are_score_fields_and_a_file_without_them_reads_as_unknown(own_engine,
                                                                              world_settings):
    fit_60 = {"where": {"kind": "score", "field": "fit", "op": ">=", "value": 60}}
    def members(segment: dict) -> set[str]:
        return {row["pid"] for row in own_engine.preview(segment, limit=50)}

    assert members(fit_60) == {"P1", "P3"}  # fit 75 and 67.5; P2's is 50
    interest = {"where": {"kind": "score", "field": "interest", "op": "<", "value": 30}}
    assert members(interest) == {"P4", "P6"}  # 15 and 25; P2's is 30
    path = world_settings.scores_dir / "score_history.parquet"
    write_scores(path, SCORES, axes=False)
    os.utime(path, ns=(1, path.stat().st_mtime_ns + 1_000_000_000))
    assert own_engine.count(fit_60)["count"] == 0
    assert own_engine.count(EVERYONE_SEGMENT)["count"] == len(EVERYONE)


def test_a_new_scoring_is_picked_up_without_a_restart(own_engine, world_settings):
    high_value = {"where": {"kind": "score", "field": "tier", "op": "=", "value": "high-value"}}
    assert own_engine.count(high_value)["count"] == 1
    newer = datetime(2026, 11, 7, tzinfo=UTC)
    path = world_settings.scores_dir / "score_history.parquet"
    write_scores(path, SCORES + [("P4", newer, 0.7, 95.0, "high-value")])
    os.utime(path, ns=(1, path.stat().st_mtime_ns + 1_000_000_000))  # a new time even on coarse clocks
    assert own_engine.count(high_value)["count"] == 2


def test_refresh_reloads_on_demand(own_engine, world_settings):
    (world_settings.scores_dir / "score_history.parquet").unlink()
    own_engine.refresh()
    assert own_engine.vocabulary()["scored"] is False


def test_vocabulary_comes_from_the_data_and_config(engine):
    vocabulary = engine.vocabulary()
    assert vocabulary["events"]["purchase"]["properties"]["amount_usd"]["type"] == "number"
    assert vocabulary["events"]["purchase"]["properties"]["product"]["values"] == ["Product A", "Product B"]
    assert "url" not in vocabulary["events"]["email_open"]["properties"]  # always null there
    assert vocabulary["events"]["webinar_attend"]["properties"] == {}  # in the config, not in the data
    assert vocabulary["attributes"]["company.industry"]["values"] == ["manufacturing", "software"]
    assert "person.email" not in vocabulary["attributes"] and "person.phone" not in vocabulary["attributes"]
    assert vocabulary["scores"]["tier"]["values"] == vocabulary["tiers"]
    assert vocabulary["as_of"] == "2026-10-31T12:00:00+00:00"


def test_save_list_get(own_engine, world_settings):
    saved = own_engine.save({"name": "seed", **examples()["seed"].to_data()}, created_by="E0100")
    assert saved["id"].startswith("seg_") and saved["created_by"] == "E0100"
    assert own_engine.saved(saved["id"])["segment"] == examples()["seed"].to_data()
    assert [s["id"] for s in own_engine.store.list()] == [saved["id"]]
    files = sorted(p.name for p in (world_settings.data_dir / "segments").iterdir())
    assert files == [".lock", f"{saved['id']}.json"]  # no temporary file left behind (the lock stays)


def test_a_segment_that_does_not_compile_is_not_saved(own_engine):
    with pytest.raises(SegmentError, match="unknown event type"):
        own_engine.save({"where": {"kind": "event", "event_type": "nope"}})
    assert own_engine.store.list() == []


@pytest.mark.parametrize("segment_id", ["seg_000000000000", "../middle", "seg_../../x", ""])
def test_unknown_or_malformed_ids_are_not_found(own_engine, segment_id):
    with pytest.raises(KeyError):
        own_engine.saved(segment_id)


def test_an_ingested_interaction_counts_at_once_and_windows_follow_the_clock(own_engine, world_settings):
    """The event log's new interactions join the loaded world on the next request; "the last
    N days" counts back from the clock."""
    pricing = {"where": {"kind": "event", "event_type": "web_visit", "window": {"last_days": 7},
                         "where": [{"property": "url", "op": "contains", "value": "pricing"}]}}
    assert own_engine.count(pricing)["count"] == 0
    log = EventLog(world_settings.live_dir / EVENT_LOG)
    with log.writing():
        log.add_interactions(pd.DataFrame([{
            "lid": "LLIVE1", "pid": "P5", "cid": None, "event_type": "web_visit",
            "event_time": pd.Timestamp(AS_OF - timedelta(hours=1)), "channel": "web",
            "source": "web_sessions",
            "source_record_id": "S-LIVE-1", "cookie_id": None,
            "properties": json.dumps({"url": "https://vendor.example/pricing", "pageviews": 2})}]))
    assert own_engine.preview(pricing)[0]["pid"] == "P5"
    assert own_engine.count(pricing)["count"] == 1  # appended once, not at every request
    WorldClock(world_settings.live_dir / CLOCK_FILE, AS_OF).place(AS_OF + timedelta(days=8), speed=0)
    assert own_engine.count(pricing)["count"] == 0
