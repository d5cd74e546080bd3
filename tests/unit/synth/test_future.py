"""The world goes on past its end: the batch world, its future, and the future as a stream."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from leadscore.config import WorldSettings
from leadscore.synth import (
    World,
    future_records,
    generate_world,
    read_future,
    world_end,
    write_world,
)
from leadscore.synth.future import split_at
from leadscore.synth.tables import SOURCE_IDS, SOURCE_TIMES

FUTURE_DAYS = 30
BEHAVIOUR_SOURCES = ["crm_contacts", "web_sessions", "form_fills", "event_registrations",
                     "email_activity", "opportunities", "orders", "user_accounts"]
# the small world of conftest (seed 11, scale 0.03) as drawn before the world had a future
# (email and the sessions of its clicks as drawn since the email frequency effect)
ROWS_WITHOUT_FUTURE = {"crm_accounts": 58, "crm_contacts": 348, "web_sessions": 15574,
                       "form_fills": 1154, "event_registrations": 574, "email_activity": 12142,
                       "opportunities": 126, "orders": 231, "user_accounts": 178}


@pytest.fixture(scope="module")
def later(small: WorldSettings) -> WorldSettings:
    return small.model_copy(update={"future_days": FUTURE_DAYS})


@pytest.fixture(scope="module")
def moving(later: WorldSettings) -> World:
    return generate_world(later)


@pytest.fixture(scope="module")
def end(later: WorldSettings) -> pd.Timestamp:
    return world_end(later)


def ids(frame: pd.DataFrame, source: str) -> set[str]:
    return set(frame[SOURCE_IDS[source][0]])


def test_the_world_ends_at_midnight_after_its_end_date(later: WorldSettings):
    assert world_end(later) == pd.Timestamp("2026-11-01", tz="UTC")


def test_batch_and_future_are_disjoint_and_together_the_whole_drawn_world(moving: World):
    records = moving.truth["records"]
    for source in SOURCE_IDS:
        mine = records[records["source"] == source]
        batch, future = ids(moving.sources[source], source), ids(moving.future[source], source)
        assert batch == set(mine.loc[~mine["future"], "source_record_id"]), source
        assert future == set(mine.loc[mine["future"], "source_record_id"]), source
        assert not batch & future
        assert len(batch) + len(future) == len(mine)


def test_the_batch_ends_where_the_future_begins(moving: World, end: pd.Timestamp):
    for source, column in SOURCE_TIMES.items():
        assert (moving.sources[source][column] < end).all(), source
        times = moving.future[source][column]
        assert (times >= end).all() and (times < end + pd.Timedelta(days=FUTURE_DAYS)).all()
        assert times.is_monotonic_increasing, source


def test_no_batch_row_knows_what_is_decided_after_the_end(moving: World, end: pd.Timestamp):
    opps = moving.sources["opportunities"]
    assert (opps["closed_at"].dropna() < end).all()
    assert opps["stage"].eq("open").eq(opps["closed_at"].isna()).all()
    regs = moving.sources["event_registrations"]
    assert not regs.loc[regs["event_date"] >= end, "attended"].any()
    assert (regs["event_date"] >= end).any()  # registered before the end for an event after it
    contacts = moving.sources["crm_contacts"]
    assert contacts["account_id"].dropna().isin(moving.sources["crm_accounts"]["account_id"]).all()
    assert opps["contact_id"].dropna().isin(contacts["contact_id"]).all()


def test_a_split_keeps_later_decisions_out_of_each_row():
    """Batch rows are as known at the end, future rows as known when they are sent."""
    end = pd.Timestamp("2026-11-01", tz="UTC")

    def at(day: str) -> pd.Timestamp:
        return pd.Timestamp(day, tz="UTC")

    sources = {
        "crm_accounts": pd.DataFrame({"account_id": ["A1", "A2"],
                                      "created_at": [at("2026-01-05"), at("2026-11-10")]}),
        "crm_contacts": pd.DataFrame({"contact_id": ["C1", "C2"], "account_id": ["A2", "A2"],
                                      "created_at": [at("2026-10-01"), at("2026-11-12")]}),
        "opportunities": pd.DataFrame({
            "opportunity_id": ["OP1", "OP2", "OP3"], "account_id": ["A1", "A1", "A1"],
            "contact_id": ["C1", None, None],
            "created_at": [at("2026-09-01"), at("2026-10-01"), at("2026-11-20")],
            "stage": ["won", "lost", "won"],
            "closed_at": [at("2026-10-15"), at("2026-11-03"), at("2026-11-25")]}),
        "event_registrations": pd.DataFrame({
            "registration_id": ["R1", "R2", "R3"],
            "event_date": [at("2026-10-20"), at("2026-11-05"), at("2026-11-20")],
            "registered_at": [at("2026-10-10"), at("2026-10-30"), at("2026-11-15")],
            "attended": [True, True, True]}),
    }
    batch, future = split_at(sources, end)
    assert list(batch["opportunities"]["stage"]) == ["won", "open"]
    assert batch["opportunities"]["closed_at"].isna().tolist() == [False, True]
    assert list(future["opportunities"]["stage"]) == ["open"]
    assert future["opportunities"]["closed_at"].isna().all()
    assert list(batch["event_registrations"]["attended"]) == [True, False]
    assert list(future["event_registrations"]["attended"]) == [False]
    assert list(batch["crm_contacts"]["account_id"]) == [None]
    assert list(future["crm_contacts"]["account_id"]) == ["A2"]
    assert list(future["crm_accounts"]["account_id"]) == ["A2"]


def test_the_future_continues_every_behaviour_source(moving: World, end: pd.Timestamp):
    for source in BEHAVIOUR_SOURCES:
        assert len(moving.future[source]) > 0, source
    last_days = end - pd.Timedelta(days=FUTURE_DAYS)
    for source in ("web_sessions", "form_fills"):  # at the pace of the window's last days
        before = (moving.sources[source][SOURCE_TIMES[source]] >= last_days).sum()
        assert len(moving.future[source]) == pytest.approx(before, rel=0.3), source


def test_known_cookies_fill_new_forms_in_the_future(moving: World):
    seen = set(moving.sources["web_sessions"]["cookie_id"])
    forms = moving.future["form_fills"]
    assert forms["cookie_id"].isin(seen).sum() >= 0.5 * forms["cookie_id"].notna().sum() > 0


def test_future_opportunities_open_at_companies_of_the_batch(moving: World):
    records = moving.truth["records"]
    company = records.set_index(["source", "source_record_id"])["company_key"]
    opps = moving.future["opportunities"]
    known = set(records.loc[~records["future"], "company_key"].dropna())
    at = company.loc[[("opportunities", i) for i in opps["opportunity_id"]]]
    assert at.isin(known).all()
    assert opps["account_id"].isin(moving.sources["crm_accounts"]["account_id"]).any()
    assert opps["stage"].eq("open").all() and opps["closed_at"].isna().all()  # as sent


def test_future_records_stream_in_time_order_as_json(moving: World, end: pd.Timestamp):
    stream = list(future_records(moving.future, end, end + pd.Timedelta(days=FUTURE_DAYS)))
    assert len(stream) == sum(len(frame) for frame in moving.future.values())
    times = [record[SOURCE_TIMES[source]] for source, record in stream]
    assert all(t.endswith("Z") for t in times)
    assert times == sorted(times)
    assert {source for source, _ in stream} >= set(BEHAVIOUR_SOURCES)
    json.dumps(stream, allow_nan=False)


def test_future_records_round_trip_the_values(moving: World, end: pd.Timestamp):
    stream = future_records(moving.future, end, end + pd.Timedelta(days=FUTURE_DAYS))
    sent: dict[str, list[dict]] = {}
    for source, record in stream:
        sent.setdefault(source, []).append(record)
    for source, frame in moving.future.items():
        back = pd.DataFrame(sent.get(source, []), columns=frame.columns)
        for column in frame.columns:
            if isinstance(frame[column].dtype, pd.DatetimeTZDtype):
                back[column] = pd.to_datetime(back[column], utc=True).astype(frame[column].dtype)
            else:
                back[column] = back[column].astype(frame[column].dtype)
        pd.testing.assert_frame_equal(back, frame, obj=source)


def test_future_records_keep_to_their_window(moving: World, end: pd.Timestamp):
    day = pd.Timedelta(days=1)
    second_day = list(future_records(moving.future, end + day, end + 2 * day))
    assert second_day
    for source, record in second_day:
        at = pd.Timestamp(record[SOURCE_TIMES[source]])
        assert end + day <= at < end + 2 * day


def test_no_future_days_no_future_and_the_world_as_before(world: World):
    assert all(frame.empty for frame in world.future.values())
    assert set(world.future) == set(SOURCE_IDS)
    assert not world.truth["records"]["future"].any()
    assert {name: len(frame) for name, frame in world.sources.items()} == ROWS_WITHOUT_FUTURE


def test_the_future_reads_back_as_written(moving: World, tmp_path: Path):
    write_world(moving, tmp_path / "raw", tmp_path / "truth", tmp_path / "future")
    back = read_future(tmp_path / "future")
    assert back.keys() == moving.future.keys()
    for name, frame in moving.future.items():
        pd.testing.assert_frame_equal(back[name], frame, obj=name)


def test_reading_a_missing_future_says_how_to_make_one(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="leadscore synth"):
        read_future(tmp_path / "future")


def test_same_seed_same_future(moving: World, later: WorldSettings):
    again = generate_world(later)
    for name, frame in moving.future.items():
        pd.testing.assert_frame_equal(again.future[name], frame, obj=name)
