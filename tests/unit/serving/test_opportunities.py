"""Leads and accounts already in an open opportunity (serving/opportunities.py): outside the
models' population, which /score says (`in_opportunity`, routed `in_opportunity`), which the MQL
webhook does not push (served or batch), on the portrait's hand-made world (test_portrait.py)."""

from __future__ import annotations

import functools
from datetime import timedelta
from types import SimpleNamespace

import pandas as pd
import pytest
from pydantic import TypeAdapter
from test_portrait import COLOURS, NOW, _ago, _build_world, _score
from toy_model import make_scorer

from leadscore.clock import CLOCK_FILE, WorldClock
from leadscore.config import Settings, WebhookSettings
from leadscore.features.store import OnlineRows
from leadscore.live.log import EVENT_LOG
from leadscore.live.outcomes import Outcome, append_outcomes
from leadscore.serving import service as module
from leadscore.serving.account.reader import AccountReader
from leadscore.serving.account.render import render_account_html
from leadscore.serving.batch import mql_candidates
from leadscore.serving.opportunities import IN_OPPORTUNITY, OpenOpportunities, first_opened, open_at
from leadscore.serving.portrait.reader import PortraitReader
from leadscore.serving.portrait.render import render_portrait_html
from leadscore.serving.schemas import AccountScoreResponse, ScoreResponse
from leadscore.serving.service import Served
from leadscore.serving.webhook import MqlPusher


@pytest.fixture()
def world(tmp_path, settings: Settings) -> Settings:
    _build_world(tmp_path)
    return settings.with_data_dir(tmp_path)


@pytest.fixture()
def reader(world: Settings) -> PortraitReader:
    return PortraitReader(world)


def opportunities_of(reader: PortraitReader) -> OpenOpportunities:
    found = OpenOpportunities(reader.middle, lambda: reader.live, lambda: NOW)
    found.refresh()
    return found


def test_people_are_in_their_own_open_opportunity_companies_in_any_of_theirs(reader):
    found = opportunities_of(reader)
    p1 = found.of_person("P1")
    told = [p1[key] for key in ("opportunity_id", "stage", "pid", "open_opportunities")]
    assert told == ["OP1", "open", "P1", 1]
    assert pd.Timestamp(p1["opened_at"]) == _ago(250)
    assert found.of_person("P2") is None  # their opportunity was lost
    assert found.of_person("P3") is None  # a colleague's opportunity leaves a lead a lead (as in training)
    assert found.of_person("P4")["opportunity_id"] == "OP3"
    c3 = found.of_company("C3")  # its contact's (20 days) and the account's own (30 days): the first opened
    assert (c3["opportunity_id"], c3["pid"], c3["open_opportunities"]) == ("OP5", None, 2)
    assert found.of_company("C1")["opportunity_id"] == "OP1"
    assert found.counts() == {"people": 3, "companies": 3}


def test_the_crms_outcomes_open_and_close_opportunities(reader):
    append_outcomes(reader.live, TypeAdapter(list[Outcome]).validate_python([
        {"kind": "opportunity_created", "crm_id": "OPP-7", "pid": "P5", "at": _ago(2), "stage": "Discovery"},
        {"kind": "lost", "crm_id": "OP1", "pid": "P1", "at": _ago(1)}]), NOW)
    found = opportunities_of(reader)
    assert found.of_person("P5")["stage"] == "Discovery"  # the CRM's stage; its company is its contact's
    assert found.of_company("C3")["open_opportunities"] == 3
    assert found.of_person("P1") is None and found.of_company("C1") is None  # the CRM's word wins


def test_open_means_opened_by_now_and_not_closed_by_now():
    frame = pd.DataFrame({
        "opportunity_id": ["A", "B", "C", "D", "E"], "pid": ["P1", "P2", "P3", "P4", "P5"], "cid": None,
        "opportunity_created_at": [_ago(5), NOW + timedelta(days=1), _ago(9), _ago(9), _ago(9)],
        "stage": ["open", "open", "lost", "won", "open"],
        "closed_at": [None, None, _ago(1), None, NOW + timedelta(hours=1)]})
    assert open_at(frame, NOW)["opportunity_id"].tolist() == ["E", "A"]  # opened first first


def test_a_group_is_in_an_opportunity_from_its_companies_first_opened():
    a = {"opportunity_id": "O2", "opened_at": "2026-05-01T00:00:00+00:00", "stage": "open", "pid": None,
         "open_opportunities": 2}
    b = {**a, "opportunity_id": "O1", "opened_at": "2026-04-01T00:00:00+00:00", "open_opportunities": 1}
    assert first_opened([None, a, b]) == {**b, "open_opportunities": 3}
    assert first_opened([None, None]) is None


class Features:
    """The online store stood in: every PID known, with the toy model's rows."""

    def __init__(self, rows: pd.DataFrame):
        self.rows = rows

    def read_rows(self, pids: list[str], written=None) -> OnlineRows:
        picked = self.rows.head(len(pids))
        columns = {name: picked[name].astype(object).where(picked[name].notna(), None).tolist()
                   for name in picked.columns}
        return OnlineRows(pids, columns, [True] * len(pids), [NOW] * len(pids))


@pytest.fixture(scope="module")
def toy():
    return make_scorer("lightgbm")


def stand_in(reader: PortraitReader, toy, tmp_path, url: str | None = "http://crm.test/mql"):
    scorer, rows = toy
    logged: list[dict] = []
    service = SimpleNamespace(scorer=scorer, _shadow_scorer=lambda: None, features=Features(rows),
                              opportunities=opportunities_of(reader),
                              pusher=MqlPusher(WebhookSettings(url=url, mql_threshold=0), tmp_path / "hook"),
                              score_log=SimpleNamespace(append_each=lambda scores, *_: logged.extend(scores)),
                              shadows=None, logged=logged)
    service._read_online = functools.partial(module.LeadScoring.inner._read_online, service)
    return service


def test_score_says_a_lead_is_in_an_opportunity_routes_it_there_and_keeps_the_models_reading(
        reader, toy, tmp_path):
    service = stand_in(reader, toy, tmp_path)
    results, errors, _ = module.LeadScoring.inner._scores(service, [module.ScoreRequest(pid="P1"),
                                                                    module.ScoreRequest(pid="P2")])
    p1, p2 = (ScoreResponse.model_validate(record) for _, record in results)
    assert p1.in_opportunity.opportunity_id == "OP1" and p1.in_opportunity.opened_at == _ago(250)
    assert p1.routing.model_dump() == IN_OPPORTUNITY
    assert p2.in_opportunity is None and p2.routing.model_dump() == service.scorer.routing[p2.tier]
    own = service.scorer.score_records(["P1", "P2"], service.features.read_rows(["P1", "P2"]).columns)
    assert [p1.probability, p2.probability] == [record["probability"] for record in own]  # still scored


def test_no_mql_is_pushed_for_a_lead_in_an_opportunity_until_it_closes(reader, toy, tmp_path):
    service = stand_in(reader, toy, tmp_path)  # threshold 0: every lead scored crosses it
    record = module.LeadScoring.inner._record_served
    scored, _, _ = module.LeadScoring.inner._scores(service, [module.ScoreRequest(pid=pid)
                                                              for pid in ("P1", "P2", "P4")])
    record(service, [Served([r for _, r in scored], "score", NOW, None)])
    assert [m["pid"] for m in service.pusher.messages()] == ["P2"]
    assert len(service.logged) == 3  # every score is logged, the one in an opportunity too
    append_outcomes(reader.live, TypeAdapter(list[Outcome]).validate_python([
        {"kind": "lost", "crm_id": "OP1", "pid": "P1", "at": _ago(1)}]), NOW)
    service.opportunities.refresh()
    scored, _, _ = module.LeadScoring.inner._scores(service, [module.ScoreRequest(pid="P1")])
    record(service, [Served([r for _, r in scored], "score", NOW, None)])
    assert [m["pid"] for m in service.pusher.messages()] == ["P2", "P1"]  # a lead again: pushed now
    service.pusher.close()


def test_the_batch_pushes_no_mql_for_people_in_an_opportunity_at_the_scoring_time(world, reader):
    latest = pd.DataFrame({"pid": ["P1", "P2", "P4", "P5"], "scored_at": pd.Timestamp(NOW), "score": 90.0})
    assert [r["pid"] for r in mql_candidates(world, latest)] == ["P2", "P5"]
    append_outcomes(reader.live, TypeAdapter(list[Outcome]).validate_python([  # the CRM's, in the event log
        {"kind": "opportunity_created", "crm_id": "OPP-7", "pid": "P5", "at": _ago(2)}]), NOW)
    assert (world.live_dir / EVENT_LOG).is_file()
    assert [r["pid"] for r in mql_candidates(world, latest)] == ["P2"]
    earlier = latest.assign(scored_at=pd.Timestamp(_ago(300)))  # before OP1 was opened
    assert "P1" in [r["pid"] for r in mql_candidates(world, earlier)]  # no clock yet: at the scoring time
    WorldClock(world.live_dir / CLOCK_FILE, NOW).place(NOW, speed=0)  # the clock runs: a push goes out now
    assert "P1" not in [r["pid"] for r in mql_candidates(world, earlier)]


def test_the_answers_document_in_opportunity():
    for schema in (ScoreResponse, AccountScoreResponse):
        field = schema.model_json_schema()["properties"]["in_opportunity"]
        assert "not a forecast" in field["description"] and "no MQL is pushed" in field["description"]


def _account_score(in_opportunity: dict | None) -> AccountScoreResponse:
    return AccountScoreResponse(
        cid="C1", eid=None, probability=0.973, score=100.0, tier="hot-account", tier_colour="#b42318",
        routing=IN_OPPORTUNITY if in_opportunity else {"action": "route_to_sales", "channel": "crm",
                                                       "description": "work the account now"},
        in_opportunity=in_opportunity, reasons_up=[], reasons_down=[], reasons_of="C1", model_version="3",
        model_kind="stacked", horizon_days=90)


def test_the_portrait_says_in_an_opportunity_since_in_place_of_the_chance(reader):
    found = opportunities_of(reader)
    score = ScoreResponse.model_validate({**_score().model_dump(), "in_opportunity": found.of_person("P1"),
                                          "routing": IN_OPPORTUNITY})
    portrait = reader.portrait("P1", score)
    portrait.account_score = _account_score(found.of_company("C1"))
    page = render_portrait_html(portrait, "E0042", COLOURS)
    assert "In an opportunity since" in page and "chance of an opportunity within" not in page
    assert _ago(250).strftime("%d %b %Y") in page and "not a forecast" in page
    assert "Account</a> <b>in an opportunity since" in page and "% in 90 days" not in page
    plain = render_portrait_html(reader.portrait("P1", _score()), "E0042", COLOURS)
    assert "In an opportunity since" not in plain and "chance of an opportunity within" in plain


def test_the_account_page_says_in_an_opportunity_since_in_place_of_the_chance(reader):
    found = opportunities_of(reader)
    pages = AccountReader(reader)
    busy = render_account_html(pages.page("C1", _account_score(found.of_company("C1"))), "E0042")
    assert "In an opportunity since" in busy and "chance\n      the account opens" not in busy
    assert "opens an opportunity within" not in busy and "not a forecast" in busy
    quiet = render_account_html(pages.page("C1", _account_score(None).model_copy(update={"score": 96.0})),
                                "E0042")
    assert "In an opportunity since" not in quiet and "opens an opportunity within 90 days" in quiet


def test_a_refresh_that_cannot_read_keeps_what_was_known(reader, world):
    found = opportunities_of(reader)
    world.middle_db.rename(world.middle_db.with_suffix(".moved"))  # a pipeline rewriting it
    found.refresh_or_keep()
    assert found.of_person("P1")["opportunity_id"] == "OP1" and "middle layer not found" in found.last_error


def test_a_refresh_reads_again_only_when_an_outcome_came_or_the_clock_passes_an_opening(reader, world):
    clock = [NOW]
    found = OpenOpportunities(reader.middle, lambda: reader.live, lambda: clock[0], middle_db=world.middle_db)
    reads = []
    found.middle = lambda: (reads.append(1), reader.middle())[1]
    found.refresh()
    found.refresh()
    assert len(reads) == 1 and found.of_person("P5") is None  # nothing changed: not read again
    later = NOW + timedelta(hours=1)  # the CRM dates it an hour ahead
    append_outcomes(reader.live, TypeAdapter(list[Outcome]).validate_python([
        {"kind": "opportunity_created", "crm_id": "OPP-8", "pid": "P5", "at": later}]), NOW)
    found.refresh()
    assert len(reads) == 2 and found.of_person("P5") is None  # read again; not open yet
    clock[0] = NOW + timedelta(hours=2)
    found.refresh()
    assert len(reads) == 2 and found.of_person("P5")["opportunity_id"] == "OPP-8"  # open now, no read
