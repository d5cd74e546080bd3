"""Ingest: the batch's quarantine, incremental identity, idempotency, the event log."""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from datetime import UTC, datetime, timedelta

import duckdb
import pandas as pd
import pytest

from leadscore.identity.link import mint_id
from leadscore.identity.resolve import previous_ids, resolve, resolve_records
from leadscore.live.identity import BatchIdentities, Known, RecordIds
from leadscore.live.ingest import Ingested, Ingestor
from leadscore.live.log import compacted
from leadscore.live.sources import SOURCES, TIME_COLUMN

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _records(source: str, rows: list[dict]):
    return [SOURCES[source].model_validate(row) for row in rows]


def _raw_records(source: str, frame: pd.DataFrame):
    rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
    return _records(source, rows)


@pytest.fixture
def ingestor(live_settings, exact_rules):
    return Ingestor(live_settings, rules=exact_rules)


@pytest.fixture
def known_person(live_settings):
    """(pid, email, name) of a person of the batch with one unshared email and a full name."""
    with duckdb.connect(str(live_settings.middle_db), read_only=True) as con:
        pid, email, first, last = con.execute("""
            SELECT p.pid, p.email, p.first_name, p.last_name FROM person p
            WHERE p.email IS NOT NULL AND p.first_name IS NOT NULL AND p.last_name IS NOT NULL
              AND 'email:' || p.email NOT IN (SELECT key FROM shared_identifier)
            ORDER BY p.pid LIMIT 1""").fetchone()
    return pid, email, first, last


def _form(fid: str, email: str | None, first: str, last: str, cookie: str | None = None) -> dict:
    return {"form_fill_id": fid, "submitted_at": "2026-11-20T10:00:00Z", "form_type": "contact_sales",
            "email": email, "first_name": first, "last_name": last, "cookie_id": cookie}


def _session(sid: str, cookie: str) -> dict:
    return {"session_id": sid, "cookie_id": cookie, "started_at": "2026-11-20T09:00:00Z",
            "landing_url": "https://example.com/pricing", "pageviews": 3, "duration_s": 120}


def test_a_known_email_joins_its_person(ingestor, known_person):
    pid, email, first, last = known_person
    records = _records("form_fills", [_form("LF1", email.upper(), first, last)])
    done = ingestor.ingest("form_fills", records, NOW)
    assert done.accepted == [{"source_record_id": "LF1", "pid": pid}]
    assert done.touched == [pid]
    interactions = ingestor.log.interactions(pids=[pid])
    assert interactions["event_type"].tolist() == ["contact_sales"]


def test_a_new_person_gets_the_pid_the_batch_would_mint(ingestor):
    done = ingestor.ingest("form_fills", _records("form_fills", [
        _form("LF2", "New.Person@Example-Live.com ", "Nova", "Person")]), NOW)
    expected = mint_id("P", pd.Series(["email:new.person@example-live.com"])).iloc[0]
    assert done.accepted[0]["pid"] == expected
    again = ingestor.ingest("form_fills", _records("form_fills", [
        _form("LF3", "new.person@example-live.com", "Nova", "Person")]), NOW)
    assert again.accepted[0]["pid"] == expected  # learnt live, found by the next call


def test_a_cookie_then_a_form_fill_binds_the_cookies_history(ingestor):
    session = {"session_id": "LS1", "cookie_id": "cookie-live-1", "started_at": "2026-11-19T09:00:00Z",
               "landing_url": "https://vendor.example/pricing", "pageviews": 3, "duration_s": 60}
    anonymous = ingestor.ingest("web_sessions", _records("web_sessions", [session]), NOW)
    assert anonymous.accepted == [{"source_record_id": "LS1", "pid": None}]
    form = ingestor.ingest("form_fills", _records("form_fills", [
        _form("LF4", "cookie.owner@example-live.com", "Cora", "Owner", cookie="cookie-live-1")]), NOW)
    pid = form.accepted[0]["pid"]
    assert pid is not None and form.bound_cookies == {pid: ["cookie-live-1"]}
    history = ingestor.log.interactions(pids=[pid]).sort_values("event_time")
    assert history["event_type"].tolist() == ["web_visit", "contact_sales"]
    records = ingestor.log.records("kept").set_index("source_record_id")
    assert records.loc["LS1", "pid"] == pid  # the session is the person's, as in the batch


def test_a_cookie_names_its_person_once_a_form_fill_binds_it_and_nobody_when_shared(ingestor):
    """What /personalize reads: an anonymous cookie names nobody; bound by a form fill, its
    person at once; filled in by a second person too (a shared computer), nobody again."""
    ingestor.ingest("web_sessions", _records("web_sessions", [_session("LS9", "cookie-web-9")]), NOW)
    assert ingestor.person_of_cookie("cookie-web-9") is None
    assert ingestor.person_of_cookie("cookie-never-seen") is None
    form = ingestor.ingest("form_fills", _records("form_fills", [
        _form("LF9", "web.visitor@example-live.com", "Wendy", "Visitor", cookie="cookie-web-9")]), NOW)
    assert ingestor.person_of_cookie("cookie-web-9") == form.accepted[0]["pid"] is not None
    ingestor.ingest("form_fills", _records("form_fills", [
        _form("LF10", "other.user@example-live.com", "Oscar", "Other", cookie="cookie-web-9")]), NOW)
    assert ingestor.person_of_cookie("cookie-web-9") is None


def test_a_cookie_keeps_naming_its_person_through_a_nickname(ingestor):
    """"Tim Wright" then "Timothy Wright" on one cookie is one name, as in the batch: the
    cookie is no shared computer, and a later session joins the person."""
    form = ingestor.ingest("form_fills", _records("form_fills", [
        _form("LF11", "tim.wright@example-live.com", "Tim", "Wright", cookie="cookie-tim")]), NOW)
    pid = form.accepted[0]["pid"]
    ingestor.ingest("form_fills", _records("form_fills", [
        _form("LF12", "timothy.wright@example-live.com", "Timothy", "Wright", cookie="cookie-tim")]), NOW)
    assert ingestor.person_of_cookie("cookie-tim") == pid is not None
    session = ingestor.ingest("web_sessions", _records("web_sessions", [_session("LS12", "cookie-tim")]), NOW)
    assert session.accepted[0]["pid"] == pid


def test_a_batch_anonymous_cookie_is_bound_by_a_live_form_fill(ingestor, live_settings):
    with duckdb.connect(str(live_settings.middle_db), read_only=True) as con:
        cookie = con.execute("SELECT cookie_id FROM interaction WHERE pid IS NULL AND cookie_id IS NOT NULL "
                             "LIMIT 1").fetchone()[0]
    form = ingestor.ingest("form_fills", _records("form_fills", [
        _form("LF5", "anon.revealed@example-live.com", "Ann", "Revealed", cookie=cookie)]), NOW)
    pid = form.accepted[0]["pid"]
    assert form.bound_cookies == {pid: [cookie]}


def test_a_shared_inbox_is_not_evidence(ingestor, known_person):
    pid, email, first, last = known_person
    done = ingestor.ingest("form_fills", _records("form_fills", [
        _form("LF6", email, "Zebulon", "Stranger")]), NOW)
    assert done.accepted[0]["pid"] not in (pid, None)


def test_resending_changes_nothing(ingestor, known_person):
    pid, email, first, last = known_person
    records = _records("form_fills", [_form("LF7", email, first, last), _form("LF8", None, "x", "y")])
    first_call = ingestor.ingest("form_fills", records, NOW)
    before_counts = ingestor.log.counts()
    second = ingestor.ingest("form_fills", records + records[:1], NOW)
    assert sorted(second.duplicates) == ["LF7", "LF7", "LF8"]
    assert second.accepted == [] and second.quarantined == []
    # a re-sent record names the person it was stored with (a replay that stopped mid-tick
    # posts the CRM's outcome of a re-sent opportunity by it); a quarantined one names nobody
    assert second.duplicate_pids == {"LF7": first_call.accepted[0]["pid"]}
    assert ingestor.log.counts() == before_counts == {"kept": 1, "quarantined": 1}
    assert first_call.quarantined[0]["source_record_id"] == "LF8"
    assert "no usable identifier" in first_call.quarantined[0]["reason"]


def test_live_pids_match_a_batch_rerun_on_the_grown_data(ingestor, tiny_world, exact_rules):
    """Records after the cutoff, ingested one source call at a time in time order, get the
    PIDs a batch rerun over all records gives (stable IDs from the first run)."""
    sources, earlier, later = tiny_world
    stream = pd.concat([frame.assign(_source=name, _at=frame[TIME_COLUMN[name]])
                        for name, frame in later.items() if len(frame)], ignore_index=True)
    stream = stream.sort_values("_at", kind="stable")
    for (_, source), chunk in stream.groupby([stream["_at"].dt.floor("7D"), "_source"], sort=True):
        frame = chunk[list(SOURCES[source].model_fields)]
        ingestor.ingest(source, _raw_records(source, frame), NOW)
    first = resolve_records(earlier, exact_rules)
    rerun = resolve_records(sources, exact_rules, previous_ids(first))["records"]
    batch = rerun.set_index(rerun["source"] + ":" + rerun["source_record_id"])["pid"]
    live = ingestor.log.records("kept")
    live = live.set_index(live["source"] + ":" + live["source_record_id"])["pid"]
    people = live.notna() & batch.reindex(live.index).notna()
    agree = (live[people] == batch.reindex(live.index)[people]).mean()
    anonymous = (live.isna() == batch.reindex(live.index).isna()).mean()
    assert len(live) > 500
    assert agree > 0.97, f"live PIDs agree with the batch on {agree:.3f} of records"
    assert anonymous > 0.97, f"anonymous or not as in the batch for {anonymous:.3f} of records"


def test_the_batch_compacts_the_log_and_keeps_the_live_pids(ingestor, live_settings, tiny_world,
                                                            exact_rules):
    """`identity resolve` reads the event log beside the raw sources: the live records are in
    the middle layer with the PIDs they got live, and readers add no log row twice."""
    _, _, later = tiny_world
    forms = later["form_fills"].head(40)
    ingestor.ingest("form_fills", _raw_records("form_fills", forms[list(SOURCES["form_fills"].model_fields)]),
                    NOW)
    log = ingestor.log
    live_interactions = log.interactions(everyone=True)
    resolve(live_settings.raw_dir, live_settings.middle_db, exact_rules, log.for_batch())
    with duckdb.connect(str(live_settings.middle_db), read_only=True) as con:
        mapped = con.execute("SELECT source_record_id, pid FROM id_map WHERE source = 'form_fills'").df()
        lids = {row[0] for row in con.execute("SELECT lid FROM interaction").fetchall()}
        after = compacted(con, log.id)
    batch_pid = mapped.set_index("source_record_id")["pid"]
    live = log.records("kept").set_index("source_record_id")["pid"]
    assert len(live) > 30
    assert (batch_pid.reindex(live.index) == live).all()
    assert set(live_interactions["lid"]) <= lids
    assert log.interactions(everyone=True, after=after).empty


def test_an_email_domain_names_a_company_only_as_the_batch_would(ingestor, live_settings, tiny_world):
    """A work address's domain gives the company the batch's rule gives (a domain on the accounts
    of two companies names neither), so a record cannot move a person to a stranger company."""
    _, earlier, _ = tiny_world
    from leadscore.identity.companies import domain_to_cid, standardise_accounts

    accounts = standardise_accounts(earlier["crm_accounts"], ingestor.rules.standardise)
    nodes = pd.Series(ingestor.batch.company_nodes)
    assert ingestor.batch.domains == domain_to_cid(accounts, nodes).to_dict()


def test_a_record_the_batch_holds_is_a_duplicate_and_its_person_is_brought_up_to_date(
        ingestor, tiny_world):
    _, earlier, _ = tiny_world
    forms = earlier["form_fills"].dropna(subset=["email"]).head(3)
    records = _raw_records("form_fills", forms[list(SOURCES["form_fills"].model_fields)])
    again = ingestor.ingest("form_fills", records, NOW)
    assert sorted(again.duplicates) == sorted(forms["form_fill_id"]) and again.accepted == []
    assert again.touched and not again.people  # re-scored, nothing new stored
    assert set(again.duplicate_pids) == set(forms["form_fill_id"])  # each with the batch's person
    assert ingestor.log.counts() == {}


def test_after_the_batch_took_the_log_in_its_own_knowledge_wins(ingestor, live_settings, exact_rules):
    """Live-learnt identifiers and person rows the batch holds are superseded by the batch's."""
    done = ingestor.ingest("form_fills", _records("form_fills", [
        _form("LF9", "later.merged@example-live.com", "Lee", "Later")]), NOW)
    pid = done.accepted[0]["pid"]
    log = ingestor.log
    assert log.known(["email:later.merged@example-live.com"])
    resolve(live_settings.raw_dir, live_settings.middle_db, exact_rules, log.for_batch())
    assert ingestor.batch.held_by(log.id) == 0  # the old batch's, while the new one loads behind
    ingestor.wait_for_reload()
    held = ingestor.batch.held_by(log.id)  # reloaded: the middle layer was replaced
    assert held > 0
    assert log.known(["email:later.merged@example-live.com"], held) == {}
    assert log.people([pid], held) == {}
    assert ingestor.batch.keys["email:later.merged@example-live.com"].pid == pid  # the batch kept it


def test_calls_taken_together_are_answered_each_as_if_alone(ingestor, known_person):
    """A group of calls (live/group_commit.py) is one transaction, but each call's answer is
    its own: a record sent by two calls counts for the first and is the second's duplicate,
    whose person the second call still names (its answer carries that person's score)."""
    pid, email, first, last = known_person
    new = _form("FF-G2", "ann.lee@example.org", "Ann", "Lee")
    earlier = {**_form("FF-G4", "bo.chen@example.org", "Bo", "Chen"), "submitted_at": "2026-11-19T08:00:00Z"}
    account = {"account_id": "A-GROUP-1", "account_name": "Grouped Ltd", "created_at": "2026-11-19T08:00:00Z"}
    calls = [("form_fills", _records("form_fills", [_form("FF-G1", email, first, last), new])),
             ("web_sessions", _records("web_sessions", [_session("WS-G1", "ck-group")])),
             ("form_fills", _records("form_fills", [new, _form("FF-G3", None, "", "")])),
             ("crm_accounts", _records("crm_accounts", [account])),
             ("form_fills", _records("form_fills", [earlier]))]  # sorted first among the forms
    forms, sessions, again, accounts, later = ingestor.ingest_calls(calls, NOW)
    assert [(a["source_record_id"], a["pid"] == pid) for a in forms.accepted] == [("FF-G1", True),
                                                                                  ("FF-G2", False)]
    new_pid = forms.accepted[1]["pid"]
    assert set(forms.touched) == {pid, new_pid}
    assert [a["source_record_id"] for a in sessions.accepted] == ["WS-G1"] and not sessions.touched
    assert again.duplicates == ["FF-G2"] and not again.accepted
    assert [q["source_record_id"] for q in again.quarantined] == ["FF-G3"]
    assert again.touched == [new_pid]
    assert accounts.accepted == [{"source_record_id": "A-GROUP-1", "pid": None}]
    assert [a["source_record_id"] for a in later.accepted] == ["FF-G4"]
    later_pid = later.accepted[0]["pid"]
    assert later_pid not in (pid, new_pid, None) and later.touched == [later_pid]
    assert ingestor.log.counts() == {"kept": 5, "quarantined": 1}


def test_a_record_from_the_future_is_quarantined_with_its_reason(ingestor):
    """2150 for 2015: stored as kept, it would count in every feature once the clock got there."""
    soon = {**_form("FF-SOON", "soon@example.org", "Sam", "Soon"), "submitted_at": "2026-12-01T20:00:00Z"}
    typo = {**_form("FF-2150", "typo@example.org", "Tia", "Typo"), "submitted_at": "2150-12-01T10:00:00Z"}
    done = ingestor.ingest("form_fills", _records("form_fills", [soon, typo]), NOW)
    assert [a["source_record_id"] for a in done.accepted] == ["FF-SOON"]  # within live.max_ahead_hours
    assert [q["source_record_id"] for q in done.quarantined] == ["FF-2150"]
    reason = done.quarantined[0]["reason"]
    assert "2150-12-01" in reason and "max_ahead_hours" in reason
    stored = ingestor.log.records().set_index("source_record_id")
    assert stored.loc["FF-2150", "status"] == "quarantined"
    assert ingestor.log.interactions(everyone=True)["source_record_id"].tolist() == ["FF-SOON"]


def test_a_record_dated_ahead_of_the_clock_makes_its_person_due_once_the_clock_reaches_it(ingestor):
    """An update counts what happened before its instant: the person of a record dated 20 hours
    ahead is due again once the clock has passed it, even if nothing else of theirs arrives."""
    soon = {**_form("FF-LATER", "later@example.org", "Lea", "Later"), "submitted_at": "2026-12-01T20:00:00Z"}
    at = datetime(2026, 12, 1, 20, tzinfo=UTC)
    pid = ingestor.ingest("form_fills", _records("form_fills", [soon]), NOW).accepted[0]["pid"]
    log = ingestor.log
    assert [p for p, _ in log.due(10)] == [pid]
    log.updated(log.due(10), at=NOW)  # the update at NOW: the form did not count yet
    assert log.release_due(at) == 0 and not log.due(10)  # an update at `at` would not count it either
    assert log.release_due(at + timedelta(microseconds=1)) == 1
    assert log.release_due(at + timedelta(seconds=1)) == 0  # marked already: nothing written again
    log.updated(log.due(10), at=at + timedelta(seconds=1))  # this one counted it
    assert log.release_due(at + timedelta(days=1)) == 0 and not log.due(10)


def test_a_release_that_races_an_update_in_flight_is_made_again(ingestor):
    """An update took the person's mark before the clock passed the record; the release meanwhile
    finds the mark still there, and the update clears it: the record was not counted, so the
    person is released again at the next look."""
    soon = {**_form("FF-RACE", "race@example.org", "Rae", "Race"), "submitted_at": "2026-12-01T20:00:00Z"}
    at = datetime(2026, 12, 1, 20, tzinfo=UTC)
    pid = ingestor.ingest("form_fills", _records("form_fills", [soon]), NOW).accepted[0]["pid"]
    log = ingestor.log
    in_flight = log.due(10)  # an update computing at NOW reads the mark ...
    assert log.release_due(at + timedelta(minutes=1)) == 0  # ... the clock passes the record ...
    log.updated(in_flight, at=NOW)  # ... and the update clears the mark it took
    assert not log.due(10)
    assert log.release_due(at + timedelta(minutes=1)) == 1 and [p for p, _ in log.due(10)] == [pid]


def test_a_busy_worker_s_ingest_releases_and_a_person_set_aside_is_not_released(ingestor):
    log = ingestor.log
    later = {**_form("FF-LATER-2", "later2@example.org", "Lou", "Later"),
             "submitted_at": "2026-12-01T21:00:00Z"}
    other = ingestor.ingest("form_fills", _records("form_fills", [later]), NOW).accepted[0]["pid"]
    log.updated(log.due(10), at=NOW)
    unrelated = {**_form("FF-NOW", "now@example.org", "Noa", "Now"), "submitted_at": "2026-12-01T21:30:00Z"}
    newcomer = ingestor.ingest("form_fills", _records("form_fills", [unrelated]),
                               datetime(2026, 12, 1, 21, 30, tzinfo=UTC)).accepted[0]["pid"]
    assert {p for p, _ in log.due(10)} == {other, newcomer}
    # an update that failed for `other` alone sets them aside until their next record
    log.updated([mark for mark in log.due(10) if mark[0] == other])
    assert log.release_due(datetime(2026, 12, 2, tzinfo=UTC)) == 0
    assert [p for p, _ in log.due(10)] == [newcomer]


def _pids(records: pd.DataFrame) -> pd.Series:
    """Records' PIDs by 'source:source_record_id'."""
    return records.set_index(records["source"] + ":" + records["source_record_id"])["pid"]


def test_records_arriving_out_of_time_order_fold_into_the_batchs_person_rows(ingestor, tiny_world,
                                                                              exact_rules):
    """Sources and workers race, so a person's older record may arrive after a newer one: the
    rows folded live still take the company and title of the latest record as the batch does
    (newest week first here, a source at a time), the features' other person columns too."""
    sources, earlier, later = tiny_world
    stream = pd.concat([frame.assign(_source=name, _at=frame[TIME_COLUMN[name]])
                        for name, frame in later.items() if len(frame)], ignore_index=True)
    for (_, source), chunk in sorted(stream.groupby([stream["_at"].dt.floor("7D"), "_source"]),
                                     key=lambda item: item[0], reverse=True):
        ingestor.ingest(source, _raw_records(source, chunk[list(SOURCES[source].model_fields)]), NOW)
    first = resolve_records(earlier, exact_rules)
    rerun = resolve_records(sources, exact_rules, previous_ids(first))
    live = _pids(ingestor.log.records("kept").dropna(subset=["pid"]))
    batch, before = _pids(rerun["records"]), _pids(first["records"])
    differ = live != batch.reindex(live.index).fillna("")
    now = batch.reindex(before.index)
    regrouped = before != now.fillna("")  # the rerun moved older records
    alike = set(live) - set(live[differ]) - set(before[regrouped]) - set(now[regrouped])
    columns = ["cid", "seniority", "department", "identified_at", "company_known_at", "title_known_at"]
    folded = pd.DataFrame(ingestor.log.people(alike).values())[["pid", *columns]]
    for column in columns[3:]:
        folded[column] = pd.to_datetime(folded[column], utc=True, format="ISO8601")
    both = folded.merge(rerun["person"][["pid", *columns]], on="pid", suffixes=("", "_batch"))
    text = both.astype("string").fillna("")
    differ = {column: int((text[column] != text[f"{column}_batch"]).sum()) for column in columns}
    assert len(both) == len(folded) > 100
    assert not any(differ.values()), f"of {len(both)} people, these many differ from the batch: {differ}"


def test_the_people_of_new_records_are_marked_due_and_a_later_mark_outlives_an_earlier_update(
        ingestor, known_person):
    pid, email, first, last = known_person
    log = ingestor.log
    ingestor.ingest("form_fills", _records("form_fills", [_form("LD1", email, first, last)]), NOW)
    newcomer = ingestor.ingest("form_fills", _records("form_fills", [
        _form("LD2", "due.person@example-live.com", "Dua", "Person")]), NOW).accepted[0]["pid"]
    due = log.due(10)
    assert [person for person, _ in due] == [pid, newcomer]  # the longest waiting first
    assert log.due(1) == due[:1]
    ingestor.ingest("form_fills", _records("form_fills", [_form("LD3", email, first, last)]), NOW)
    log.updated(due)  # an update that read before LD3 was stored
    assert [person for person, _ in log.due(10)] == [pid]  # LD3's person stays due
    ingestor.ingest("form_fills", _records("form_fills", [_form("LD3", email, first, last)]), NOW)
    log.updated(log.due(10))
    assert log.due(10) == []  # a re-sent record marks nobody: its person was marked when it came


def test_an_ingests_small_queries_run_on_one_duckdb_thread(ingestor):
    """A worker's DuckDB pool of a thread per core costs CPU on a group's small queries."""
    assert ingestor.duckdb.execute("SELECT current_setting('threads')").fetchone()[0] == 1


def test_the_batchs_record_ids_are_found_as_its_id_map_holds_them():
    con = duckdb.connect()
    con.execute("CREATE TABLE id_map AS SELECT * FROM (VALUES ('web_sessions', 'S2', NULL), "
                "('web_sessions', 'S10', 'P1'), ('web_sessions', 'Sé', 'P2'), ('form_fills', 'S2', 'P3'), "
                "('form_fills', NULL, 'P4')) AS t(source, source_record_id, pid)")
    ids = RecordIds.read(con, "id_map")
    assert ids.stored("web_sessions", ["S10", "S2", "Sé", "S1", "S100", "Sè", "S0", "T9", "S10", "S2\0"]) == {
        "S10": "P1", "S2": None, "Sé": "P2"}  # an id longer than any held, or beyond either end: none
    assert ids.stored("form_fills", ["S2", "S10"]) == {"S2": "P3"}
    assert ids.stored("orders", ["S2"]) == {} and ids.stored("web_sessions", []) == {}


def test_the_service_hears_when_a_new_batchs_identities_are_loaded(live_settings, exact_rules):
    reloads: list[int] = []
    ingestor = Ingestor(live_settings, rules=exact_rules, reloaded=lambda: reloads.append(1))
    first = ingestor.batch
    assert ingestor.batch is first and reloads == []  # the same batch: not loaded again
    stamp = live_settings.middle_db.stat().st_mtime_ns + 1_000_000_000
    os.utime(live_settings.middle_db, ns=(stamp, stamp))  # a batch replaced the middle layer
    ingestor.batch  # noqa: B018 - the lookup that starts the reload
    ingestor.wait_for_reload()
    assert ingestor.batch is not first and reloads == [1]
    assert ingestor.batch is not first and reloads == [1]


def _replace_middle_layer(settings, seconds: int = 1) -> None:
    """What a batch's rewrite of the middle layer looks like to a worker: a new stamp."""
    stamp = settings.middle_db.stat().st_mtime_ns + seconds * 1_000_000_000
    os.utime(settings.middle_db, ns=(stamp, stamp))


class SlowLoads:
    """A stand-in for loading a batch (seconds on the default world): each load waits for
    `release`, then gives the next of `batches`; counts the loads and how many ran at once."""

    def __init__(self, batches: list[BatchIdentities]) -> None:
        self.batches, self.release = batches, threading.Event()
        self.started, self.running, self.most_at_once = 0, 0, 0
        self._lock = threading.Lock()

    def __call__(self) -> BatchIdentities:
        with self._lock:
            self.started += 1
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        self.release.wait(10)
        with self._lock:
            self.running -= 1
        return self.batches.pop(0)


def _moved(batch: BatchIdentities, cookie: str, pid: str) -> BatchIdentities:
    """The batch as a later run would have it: `cookie` bound to `pid`."""
    return dataclasses.replace(batch, keys={**batch.keys, f"cookie_id:{cookie}": Known(pid, frozenset())})


def test_a_lookup_while_a_new_batch_loads_answers_at_once_from_the_old_one(ingestor, live_settings,
                                                                           monkeypatch):
    """A page view's cookie lookup (promised in 10 ms) never waits for the seconds a batch's
    identities take to load: the old ones answer until the new ones are swapped in, and one
    load runs at a time, however many lookups come meanwhile."""
    old = ingestor.batch
    loads = SlowLoads([_moved(old, "ck-moved", "P-NEW")])
    monkeypatch.setattr(ingestor, "_load_batch", loads)
    _replace_middle_layer(live_settings)
    started = time.monotonic()
    first = ingestor.person_of_cookie("ck-moved")  # the lookup that sees the new file first
    assert first is None and time.monotonic() - started < 1  # the old batch's, at once
    answers: list[str | None] = []
    lookups = [threading.Thread(target=lambda: answers.append(ingestor.person_of_cookie("ck-moved")))
               for _ in range(4)]
    for lookup in lookups:
        lookup.start()
    for lookup in lookups:
        lookup.join(5)
    assert answers == [None] * 4 and ingestor.batch is old and loads.started == 1  # still loading
    loads.release.set()
    ingestor.wait_for_reload(10)
    assert ingestor.person_of_cookie("ck-moved") == "P-NEW"  # the new batch's, once loaded
    assert loads.started == 1 and loads.most_at_once == 1


def test_an_ingest_waits_for_a_new_batch_loading_instead_of_binding_by_the_old_one(
        ingestor, live_settings, monkeypatch, known_person):
    """The feature update behind an ingest reads the new middle layer at once: the ingest must
    not give a PID the new batch merged away, so it waits where a cookie lookup does not."""
    old = ingestor.batch
    loads = SlowLoads([_moved(old, "ck-moved", "P-NEW")])
    monkeypatch.setattr(ingestor, "_load_batch", loads)
    _replace_middle_layer(live_settings)
    assert ingestor.person_of_cookie("ck-moved") is None  # the lookup that starts the load
    _, email, first, last = known_person
    done: list[Ingested] = []
    call = threading.Thread(target=lambda: done.append(ingestor.ingest(
        "form_fills", _records("form_fills", [_form("LF-WAIT", email, first, last)]), NOW)))
    call.start()
    call.join(0.5)
    assert not done and loads.started == 1  # waiting for the load, not binding by the old batch
    loads.release.set()
    call.join(10)
    assert done and done[0].accepted and ingestor.batch is not old


def test_a_batch_landing_during_a_load_is_loaded_after_it(ingestor, live_settings, monkeypatch):
    old = ingestor.batch
    loads = SlowLoads([_moved(old, "ck-moved", "P-FIRST"), _moved(old, "ck-moved", "P-SECOND")])
    monkeypatch.setattr(ingestor, "_load_batch", loads)
    _replace_middle_layer(live_settings)
    assert ingestor.person_of_cookie("ck-moved") is None
    _replace_middle_layer(live_settings, seconds=2)  # another batch, while the first loads
    assert ingestor.person_of_cookie("ck-moved") is None and loads.started == 1
    loads.release.set()
    ingestor.wait_for_reload(10)
    loads.release = threading.Event()
    assert ingestor.person_of_cookie("ck-moved") == "P-FIRST"  # and the next load starts
    loads.release.set()
    ingestor.wait_for_reload(10)
    assert ingestor.person_of_cookie("ck-moved") == "P-SECOND" and loads.started == 2


def test_a_failed_load_keeps_the_old_batch_until_the_file_changes_again(ingestor, live_settings,
                                                                       monkeypatch, caplog):
    old = ingestor.batch
    tries = []

    def broken() -> BatchIdentities:
        tries.append(1)
        raise duckdb.IOException("the file is not a DuckDB file")

    monkeypatch.setattr(ingestor, "_load_batch", broken)
    _replace_middle_layer(live_settings)
    for _ in range(3):
        assert ingestor.batch is old
        ingestor.wait_for_reload(10)
    assert tries == [1] and "still serving the previous ones" in caplog.text
    monkeypatch.setattr(ingestor, "_load_batch", lambda: _moved(old, "ck-moved", "P-NEW"))
    _replace_middle_layer(live_settings, seconds=2)
    ingestor.batch  # noqa: B018 - the lookup that starts the reload
    ingestor.wait_for_reload(10)
    assert ingestor.person_of_cookie("ck-moved") == "P-NEW"


def test_a_record_stored_before_the_id_rule_stays_readable_by_the_batch(ingestor):
    """An id with a control character is a 422 now; one the log took in before that rule is
    still read back (the batch's compaction, the accounts' reload), not refused again."""
    ingestor.ingest("web_sessions", _records("web_sessions", [_session("WS-OLD", "ck-old")]), NOW)
    log = ingestor.log
    with log.writing():
        log.con.execute("UPDATE record SET source_record_id = 'WS-OLD\tTAB', "
                        "payload = replace(payload, 'WS-OLD', 'WS-OLD\\tTAB') "
                        "WHERE source_record_id = 'WS-OLD'")
    with pytest.raises(ValueError, match="control characters"):
        _records("web_sessions", [_session("WS-NEW\t", "ck-new")])
    sessions = log.for_batch().sources["web_sessions"]
    assert sessions["session_id"].tolist() == ["WS-OLD\tTAB"]


def test_a_record_dated_ahead_stored_during_a_failing_update_survives_the_set_aside(ingestor):
    """An update of the person fails (set aside) while a record of theirs dated ahead is stored:
    its mark was renewed, so its row stays, and the person is released once its time passes."""
    first = {**_form("FF-SA-1", "aside@example.org", "Ada", "Aside"), "submitted_at": "2026-11-30T10:00:00Z"}
    pid = ingestor.ingest("form_fills", _records("form_fills", [first]), NOW).accepted[0]["pid"]
    log = ingestor.log
    failing = log.due(10)  # the update that will fail takes the mark ...
    ahead = {**_form("FF-SA-2", "aside@example.org", "Ada", "Aside"), "submitted_at": "2026-12-01T02:00:00Z"}
    ingestor.ingest("form_fills", _records("form_fills", [ahead]), NOW)  # ... a record dated ahead ...
    log.updated(failing)  # ... and the person is set aside: the renewed mark stays
    assert [p for p, _ in log.due(10)] == [pid]
    log.updated(log.due(10), at=NOW + timedelta(minutes=1))  # the next update, before the record
    later = datetime(2026, 12, 1, 3, tzinfo=UTC)
    assert log.release_due(later) == 1 and [p for p, _ in log.due(10)] == [pid]


def test_an_anonymous_visit_dated_ahead_becomes_due_later_for_the_person_who_binds_its_cookie(ingestor):
    """The visit is dated an hour ahead and nobody's yet; a form fill binds its cookie before
    that hour: once the clock passes the visit, its new owner is due."""
    session = {"session_id": "LS-AHEAD", "cookie_id": "cookie-ahead", "started_at": "2026-12-01T01:00:00Z",
               "landing_url": "https://vendor.example/pricing", "pageviews": 2, "duration_s": 30}
    ingestor.ingest("web_sessions", _records("web_sessions", [session]), NOW)
    form = ingestor.ingest("form_fills", _records("form_fills", [
        _form("LF-AHEAD", "ahead.owner@example-live.com", "Abe", "Owner", cookie="cookie-ahead")]),
        NOW + timedelta(minutes=5))
    pid = form.accepted[0]["pid"]
    log = ingestor.log
    log.updated(log.due(10), at=NOW + timedelta(minutes=5))  # before the visit: not counted
    assert log.release_due(datetime(2026, 12, 1, 0, 59, tzinfo=UTC)) == 0
    assert log.release_due(datetime(2026, 12, 1, 1, 1, tzinfo=UTC)) == 1
    assert [p for p, _ in log.due(10)] == [pid]
