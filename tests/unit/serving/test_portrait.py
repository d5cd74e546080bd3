"""The sales portrait on a tiny hand-made world: data assembly, masking, ownership, HTML page."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from pydantic import TypeAdapter

from leadscore.config import Settings
from leadscore.live.outcomes import Outcome, append_outcomes
from leadscore.live.score_log import ScoreLog
from leadscore.scoring.spec import TierTable
from leadscore.serving.portrait.charts import axes_chart, waterfall
from leadscore.serving.portrait.errors import PortraitUnavailable, UnknownPerson
from leadscore.serving.portrait.reader import PortraitReader
from leadscore.serving.portrait.render import portrait_environment, render_portrait_html
from leadscore.serving.portrait.schemas import Portrait
from leadscore.serving.portrait.wording import describe_event
from leadscore.serving.schemas import Reason, Routing, ScoreResponse

NOW = datetime(2026, 10, 31, 12, 0, tzinfo=UTC)
EVIL = "<script>alert('x')</script>"
COLOURS = {"high-value": "#0b7a3e", "high-potential": "#2a9d8f", "to-nurture": "#3b6fb6",
           "to-verify": "#c47f00", "low-conversion": "#6b7280"}  # as config/tiers.yaml


def _ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


COMPANIES = [  # cid, name, owner, eid
    ("C1", "Acme", "R1", "E1"),
    ("C2", "Acme East", "R2", "E1"),
    ("C3", "Lonely Ltd", None, "E2"),
]
PEOPLE = [  # pid, first, last, email, phone, owner, title, cid
    ("P1", "Jane", "Doe", "jane.doe@acme.com", "+8613812348000", "R9", "VP Data", "C1"),
    ("P2", "Bob", "Lee", "bob.lee@acme.com", "13900001111", "R9", "Engineer", "C1"),
    ("P3", "Old", "Timer", "old@acme.com", None, None, "Analyst", "C1"),
    ("P4", "Eve", "East", "eve@acme-east.com", None, None, "CTO", "C2"),
    ("P5", "Sol", "O", "sol@lonely.com", None, "R5", None, "C3"),
    ("P6", "No", "Company", "nc@gmail.com", None, "R6", None, None),
    ("P7", "Mail", "Only", "mail@acme.com", None, None, "Intern", "C1"),
    ("P8", "Ann", "Busy", "ann@acme.com", None, None, "Director", "C1"),
    ("P9", "Nobody", "Owns", "n@lonely.com", None, None, None, "C3"),
]


def _prop(**kwargs: object) -> str:
    return json.dumps(kwargs)


# lid, pid, days ago, event type, channel, properties
EVENTS = [
    ("L01", "P1", 1, "web_visit", "web", _prop(url="https://www.ourproduct.com/pricing", pageviews=3,
                                               duration_s=125, utm_source="google")),
    ("L02", "P1", 2, "email_open", "email", _prop(campaign_id="C9", subject=EVIL, url=None)),
    ("L03", "P1", 2.5, "email_send", "email", _prop(campaign_id="C9", subject=EVIL, url=None)),
    ("L04", "P1", 40, "whitepaper_download", "web", _prop(form_type="whitepaper_download",
                                                          asset="Buyer's guide")),
    ("L05", "P1", 120, "webinar_attend", "event", _prop(event_id="EV1", event_name="Webinar: Deep dive")),
    ("L06", "P1", 300, "purchase", "commerce", _prop(product="Product A", amount_usd=85300.0)),
    ("L07", "P1", 0.5, "contact_sales", "web", "not json {"),
    ("L10", "P2", 3, "web_visit", "web", _prop(url="https://www.ourproduct.com/", pageviews=1)),
    ("L11", "P2", 10, "email_click", "email", _prop(subject="News", url="https://www.ourproduct.com/blog/x?u=1")),
    ("L20", "P3", 200, "web_visit", "web", _prop(url="https://www.ourproduct.com/docs")),
    ("L30", "P4", 5, "event_attend", "event", _prop(event_name="Data Summit")),
    ("L40", "P7", 1, "email_send", "email", _prop(subject="News")),
    ("L50", "P8", 1, "web_visit", "web", _prop(url="https://www.ourproduct.com/a")),
    ("L51", "P8", 2, "web_visit", "web", _prop(url="https://www.ourproduct.com/b")),
    ("L52", "P8", 3, "web_visit", "web", _prop(url="https://www.ourproduct.com/c")),
    ("L60", "P5", 0, "web_visit", "web", _prop(url="https://www.ourproduct.com/")),  # the world's now
]


def _build_world(data: Path) -> None:
    data.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(data / "middle.duckdb"))
    con.execute("CREATE TABLE entity (eid VARCHAR, name VARCHAR)")
    con.executemany("INSERT INTO entity VALUES (?, ?)", [("E1", "Acme Group"), ("E2", "Lonely")])
    con.execute("""CREATE TABLE company (cid VARCHAR, name VARCHAR, domain VARCHAR, industry VARCHAR,
        employees BIGINT, funding_stage VARCHAR, annual_revenue_usd DOUBLE, owner_rep_id VARCHAR,
        eid VARCHAR, group_name VARCHAR)""")
    con.executemany(
        "INSERT INTO company VALUES (?, ?, 'acme.com', 'software', 1200, 'series_c', 5e7, ?, ?, 'acme')",
        COMPANIES)
    con.execute("""CREATE TABLE person (pid VARCHAR, first_name VARCHAR, last_name VARCHAR, name VARCHAR,
        email VARCHAR, phone VARCHAR, owner_rep_id VARCHAR, title VARCHAR, cid VARCHAR, uid VARCHAR,
        seniority VARCHAR, department VARCHAR, first_seen TIMESTAMPTZ, last_seen TIMESTAMPTZ,
        identified_at TIMESTAMPTZ, records BIGINT)""")
    con.executemany(
        "INSERT INTO person VALUES (?, ?, ?, ? || ' ' || ?, ?, ?, ?, ?, ?, NULL, 'vp', 'it', ?, ?, ?, 4)",
        [(pid, first, last, first, last, email, phone, owner, title, cid, _ago(400), _ago(1), _ago(390))
         for pid, first, last, email, phone, owner, title, cid in PEOPLE])
    con.execute("""CREATE TABLE interaction (lid VARCHAR, pid VARCHAR, cid VARCHAR, event_type VARCHAR,
        event_time TIMESTAMPTZ, channel VARCHAR, source VARCHAR, cookie_id VARCHAR, properties VARCHAR)""")
    cids = {p[0]: p[7] for p in PEOPLE}
    con.executemany("INSERT INTO interaction VALUES (?, ?, ?, ?, ?, ?, 'test', NULL, ?)",
                    [(lid, pid, cids[pid], kind, _ago(days), channel, props)
                     for lid, pid, days, kind, channel, props in EVENTS])
    con.execute("""CREATE TABLE outcome (opportunity_id VARCHAR, pid VARCHAR, cid VARCHAR,
        opportunity_created_at TIMESTAMPTZ, stage VARCHAR, won_at TIMESTAMPTZ, closed_at TIMESTAMPTZ,
        amount_usd DOUBLE)""")
    con.executemany("INSERT INTO outcome VALUES (?, ?, ?, ?, ?, NULL, NULL, ?)", [
        ("OP1", "P1", "C1", _ago(250), "open", 10000.0),
        ("OP2", "P2", "C1", _ago(100), "lost", 20000.0),
        ("OP3", "P4", "C2", _ago(50), "open", 30000.0),
        ("OP4", "P9", "C3", _ago(20), "open", 5000.0),  # Lonely Ltd has no owner: P9 is not R5's
        ("OP5", None, "C3", _ago(30), "open", 7000.0),  # the account's, with no contact
    ])
    con.close()
    (data / "features").mkdir()
    pd.DataFrame({
        "pid": ["P1", "P1", "P2"], "tag": ["decision_maker", "interest:pricing", "x"],
        "kind": ["rule", "mined", "attribute"],
        "label": ["Decision maker", "Interested in pricing", "X"],
        "evidence": ["seniority = vp", "2 events", "-"],
        "as_of": pd.Timestamp(NOW),
    }).to_parquet(data / "features" / "person_tags.parquet")


def _write_history(data: Path) -> None:
    (data / "scores").mkdir(exist_ok=True)
    pd.DataFrame({  # deliberately not in time order
        "pid": ["P1", "P2", "P1", "P1"],
        "scored_at": pd.to_datetime([_ago(28), _ago(5), _ago(0), _ago(56)], utc=True),
        "probability": [0.05, 0.01, 0.12, 0.03], "score": [50.0, 30.0, 62.0, 44.0],
        "fit_score": [60.0] * 4, "interest_score": [40.0] * 4,
        "tier": ["to-nurture", "low-conversion", "high-potential", "to-nurture"],
        "model_version": [6] * 4,  # an integer column: read as the string "6"
    }).to_parquet(data / "scores" / "score_history.parquet")


@pytest.fixture()
def world(tmp_path: Path, settings: Settings) -> Settings:
    _build_world(tmp_path)
    _write_history(tmp_path)
    return settings.with_data_dir(tmp_path)


@pytest.fixture()
def reader(world: Settings) -> PortraitReader:
    return PortraitReader(world)


def _score(kind: str = "lightgbm") -> ScoreResponse:
    return ScoreResponse(
        pid="P1", probability=0.12, score=62.0, fit_score=70.0, interest_score=55.0, tier="high-potential",
        routing=Routing(action="route_to_sales", channel="crm", description="contact by sales within a week"),
        reasons_up=[
            Reason(feature="contact_sales_30d", text="asked sales to get in touch 1 times", impact=0.9),
            Reason(feature="web_visit_30d", text="visited the website 2 times", impact=0.4),
            Reason(feature="seniority", text=f"seniority: {EVIL}", impact=0.2)],
        reasons_down=[
            Reason(feature="days_since_last_purchase", text="last purchase 300 days ago", impact=-0.3),
            Reason(feature="company_employees", text="works at a company with 1200", impact=-0.1)],
        model_version="6", model_kind=kind, horizon_days=90)


# --------------------------------------------------------------------------- data


def test_pii_masked_by_default(reader: PortraitReader) -> None:
    portrait = reader.portrait("P1", None, reveal_pii=False)
    assert portrait.person.email == "j***@acme.com"
    assert portrait.person.phone == "138****8000"
    assert portrait.person.pii_masked and portrait.pii == "masked"
    dumped = portrait.model_dump_json()
    assert "jane.doe@acme.com" not in dumped and "13812348000" not in dumped
    assert "bob.lee@acme.com" not in dumped  # colleagues too


def test_pii_full_when_revealed(reader: PortraitReader) -> None:
    portrait = reader.portrait("P1", None, reveal_pii=True)
    assert portrait.person.email == "jane.doe@acme.com"
    assert portrait.person.phone == "+8613812348000"
    assert not portrait.person.pii_masked and portrait.pii == "full"
    bob = next(c for c in portrait.colleagues if c.pid == "P2")
    assert bob.email == "b***@acme.com"  # a reveal is for the portrait's person only


def test_owner_is_the_company_owner_when_there_is_one(reader: PortraitReader) -> None:
    assert reader.owner("P1") == "R1"  # the person's own R9 loses to the company's R1
    assert reader.portrait("P1").owner_rep_id == "R1"


def test_owner_falls_back_to_the_person(reader: PortraitReader) -> None:
    assert reader.owner("P5") == "R5"  # company without an owner
    assert reader.owner("P6") == "R6"  # no company at all
    assert reader.owner("P9") is None  # neither the company nor the person has an owner


def test_owners_of_many_people_in_one_read(reader: PortraitReader) -> None:
    """The daily digest's owners: each known person's, as `owner` gives it; nobody for an unknown."""
    assert reader.owners(["P1", "P5", "P9", "NOPE"]) == {"P1": "R1", "P5": "R5", "P9": None}
    assert reader.owners([]) == {}


def test_unknown_pid(reader: PortraitReader) -> None:
    with pytest.raises(UnknownPerson) as error:
        reader.owner("NOPE")
    assert isinstance(error.value, KeyError) and "NOPE" in str(error.value)
    with pytest.raises(UnknownPerson):
        reader.portrait("NOPE", None, reveal_pii=False)


def test_known_people_are_the_middle_layers_and_those_minted_live(reader: PortraitReader) -> None:
    with reader.live.writing():  # as an ingest mints a person: their record, then their row
        reader.live.add_records([{"source": "form_fills", "source_record_id": "F1", "received_at": "x",
                                  "seen_at": None, "status": "kept", "reason": None, "pid": "PLIVE",
                                  "cid": None, "rule": "email", "payload": "{}"}])
        reader.live.save_people({"PLIVE": {"pid": "PLIVE"}})
    assert reader.known(["P1", "PLIVE", "NOPE"]) == {"P1", "PLIVE"}


def test_missing_middle_layer_is_unavailable(tmp_path: Path, settings: Settings) -> None:
    with pytest.raises(PortraitUnavailable):
        PortraitReader(settings.with_data_dir(tmp_path / "nothing")).owner("P1")


def test_middle_layer_not_held_after_a_read(reader: PortraitReader, world: Settings) -> None:
    reader.portrait("P1")
    reader.owner("P1")
    writer = duckdb.connect(str(world.middle_db))  # fails if the reader still held the file
    writer.execute("UPDATE company SET owner_rep_id = 'R7' WHERE cid = 'C1'")
    writer.close()
    assert reader.owner("P1") == "R7"


def test_timeline_complete_newest_first_and_described(reader: PortraitReader) -> None:
    timeline = reader.portrait("P1").timeline
    assert [e.lid for e in timeline] == ["L07", "L01", "L02", "L03", "L04", "L05", "L06"]
    times = [e.event_time for e in timeline]
    assert times == sorted(times, reverse=True) and all(t.tzinfo is not None for t in times)
    by_lid = {e.lid: e for e in timeline}
    assert by_lid["L01"].description == "visited /pricing"
    assert by_lid["L01"].properties["pageviews"] == 3
    assert by_lid["L01"].detail == "3 pages · 2 min 5 s · via google"
    assert by_lid["L02"].description == f"opened email '{EVIL}'"
    assert by_lid["L03"].passive and not by_lid["L02"].passive
    assert by_lid["L06"].description == "bought Product A ($85,300)"
    assert by_lid["L07"].properties == {"raw": "not json {"}  # bad JSON kept, not fatal


def test_engagement_counts_exclude_passive_events(reader: PortraitReader) -> None:
    engagement = reader.portrait("P1").engagement
    assert engagement.events_30d == 3  # L07, L01, L02 (L03 is an email we sent)
    assert engagement.events_90d == 4  # + L04
    assert engagement.events_total == 6
    assert engagement.by_type_90d == {"contact_sales": 1, "web_visit": 1, "email_open": 1,
                                      "whitepaper_download": 1}


def test_colleagues_same_company_engaged_most_first(reader: PortraitReader) -> None:
    portrait = reader.portrait("P1")
    assert [c.pid for c in portrait.colleagues] == ["P8", "P2"]  # 3 events, then 2
    assert portrait.colleagues_total == 2
    assert all(c.cid == "C1" and c.company_name == "Acme" for c in portrait.colleagues)
    # not the person, not P3 (last seen 200 days ago), not P7 (only an email sent to them)
    assert {"P1", "P3", "P7"}.isdisjoint(c.pid for c in portrait.colleagues)
    assert portrait.colleagues[0].events_90d == 3 and portrait.colleagues[0].title == "Director"
    assert portrait.colleagues[1].phone == "139****1111"
    assert [c.pid for c in portrait.group_colleagues] == ["P4"]
    assert portrait.group_colleagues[0].company_name == "Acme East"


def test_a_reps_portrait_names_no_one_of_another_reps_account(reader: PortraitReader) -> None:
    portrait = reader.portrait("P1", visible_to="R1")  # P4 works at Acme East, R2's account
    assert [c.pid for c in portrait.colleagues] == ["P8", "P2"]
    assert portrait.group_colleagues == [] and portrait.group_colleagues_total == 0
    assert "P4" not in portrait.model_dump_json() and "Eve" not in portrait.model_dump_json()
    east = portrait.group.companies[0]
    assert east.name == "Acme East" and east.engaged_people_90d == 1  # a number, no one named
    assert [c.pid for c in reader.portrait("P1").group_colleagues] == ["P4"]  # every account


def test_a_reps_portrait_shows_no_opportunity_of_another_reps_person(reader: PortraitReader) -> None:
    assert [o.opportunity_id for o in reader.portrait("P5", visible_to="R5").opportunities] == ["OP5"]
    assert [o.opportunity_id for o in reader.portrait("P5").opportunities] == ["OP4", "OP5"]


def test_colleagues_capped(world: Settings) -> None:
    portrait = PortraitReader(world, max_colleagues=1).portrait("P1")
    assert [c.pid for c in portrait.colleagues] == ["P8"] and portrait.colleagues_total == 2


def test_company_group_tags_and_opportunities(reader: PortraitReader) -> None:
    portrait = reader.portrait("P1")
    assert portrait.company is not None and portrait.company.name == "Acme"
    assert portrait.company.engaged_people_90d == 3  # P1, P2, P8
    assert portrait.group is not None and portrait.group.name == "Acme Group"
    assert [c.cid for c in portrait.group.companies] == ["C2"]
    assert portrait.group.companies[0].engaged_people_90d == 1
    assert {t.tag for t in portrait.tags} == {"decision_maker", "interest:pricing"}
    opportunities = [(o.opportunity_id, o.this_person) for o in portrait.opportunities]
    assert opportunities == [("OP2", False), ("OP1", True)]  # the account's too, newest first


def test_person_without_company(reader: PortraitReader) -> None:
    portrait = reader.portrait("P6")
    assert portrait.company is None and portrait.group is None
    assert portrait.colleagues == [] and portrait.timeline == []


def test_score_history_oldest_first(reader: PortraitReader) -> None:
    history = reader.portrait("P1").score_history
    assert [h.score for h in history] == [44.0, 50.0, 62.0]
    assert [h.tier for h in history] == ["to-nurture", "to-nurture", "high-potential"]
    assert history[0].model_version == "6" and history[0].scored_at.tzinfo is not None
    assert [h.scored_at for h in history] == sorted(h.scored_at for h in history)


def test_score_history_missing_file_is_empty(world: Settings) -> None:
    (world.scores_dir / "score_history.parquet").unlink()
    assert PortraitReader(world).portrait("P1").score_history == []


def test_score_history_reloaded_when_the_file_changes(reader: PortraitReader, world: Settings) -> None:
    assert len(reader.portrait("P2").score_history) == 1
    (world.scores_dir / "score_history.parquet").unlink()
    assert reader.portrait("P2").score_history == []


def test_current_score_passed_through(reader: PortraitReader) -> None:
    assert reader.portrait("P1", _score()).current_score.score == 62.0
    assert reader.portrait("P1", None).current_score is None


def test_fields_read_markers(reader: PortraitReader) -> None:
    masked = reader.portrait("P1", _score(), reveal_pii=False).fields_read()
    assert "email:masked" in masked and "phone:masked" in masked and "email:full" not in masked
    assert {"name", "title", "company", "group", "tags", "timeline", "opportunities", "score_history",
            "current_score", "colleagues", "colleagues.email:masked"} <= set(masked)
    full = reader.portrait("P1", None, reveal_pii=True).fields_read()
    assert "email:full" in full and "phone:full" in full and "email:masked" not in full
    assert "current_score" not in full
    lonely = reader.portrait("P6").fields_read()  # no phone, no company: not read
    assert "phone:masked" not in lonely and "company" not in lonely and "timeline" not in lonely


def test_portrait_json_schema_is_described() -> None:
    schema = Portrait.model_json_schema()
    assert "description" in schema["$defs"]["TimelineEvent"]["properties"]["description"]
    assert "masked" in schema["$defs"]["PersonProfile"]["properties"]["email"]["description"]


@pytest.mark.parametrize(("kind", "props", "text"), [
    ("email_click", {"subject": "News", "url": "https://x.com/blog/a?u=1"},
     "clicked /blog/a in email 'News'"),
    ("web_visit", {"url": "https://www.ourproduct.com/"}, "visited the home page (www.ourproduct.com)"),
    ("form_submit", {"form_type": "newsletter_signup", "asset": None}, "submitted a newsletter signup form"),
    ("event_attend", {"event_name": "Data Summit"}, "attended 'Data Summit'"),
    ("something_new", {}, "something new"),
])
def test_describe_event(kind: str, props: dict, text: str) -> None:
    assert describe_event(kind, props)[0] == text


# --------------------------------------------------------------------------- HTML


def test_html_escapes_injected_content(reader: PortraitReader) -> None:
    html = render_portrait_html(reader.portrait("P1", _score()), "E0042", COLOURS)
    assert EVIL not in html and "<script" not in html.lower()
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html


def test_html_watermark_and_viewer(reader: PortraitReader) -> None:
    viewed = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
    html = render_portrait_html(reader.portrait("P1", _score()), "E0042", COLOURS, viewed_at=viewed)
    assert "Viewed by <strong>E0042</strong> at 2026-11-02 09:30:00 UTC" in html
    watermark = re.search(r'<div class="watermark"[^>]*>(.*?)</div>', html, re.S)
    assert watermark is not None and watermark.group(1).count("<span>E0042</span>") >= 50
    assert re.search(r"\.watermark \{[^}]*pointer-events: none", html)
    assert "@media print" in html


def test_html_masked_values_shown_full_values_not(reader: PortraitReader) -> None:
    html = render_portrait_html(reader.portrait("P1", _score(), reveal_pii=False), "E0042", COLOURS)
    assert "j***@acme.com" in html and "138****8000" in html
    assert "jane.doe@acme.com" not in html and "13812348000" not in html
    assert "Personal data is masked" in html
    revealed = render_portrait_html(reader.portrait("P1", _score(), reveal_pii=True), "E0042", COLOURS)
    assert "jane.doe@acme.com" in revealed and "Personal data is masked" not in revealed


def test_html_is_self_contained(reader: PortraitReader) -> None:
    html = render_portrait_html(reader.portrait("P1", _score()), "E0042", COLOURS)
    assert not re.search(r"\b(src|href)\s*=", html)
    assert "@import" not in html and "url(" not in html
    assert "<svg" in html and "<style>" in html


def test_waterfall_one_bar_per_reason(reader: PortraitReader) -> None:
    score = _score()
    html = render_portrait_html(reader.portrait("P1", score), "E0042", COLOURS)
    assert html.count('class="bar reason up"') == 3
    assert html.count('class="bar reason down"') == 2
    assert 'class="marker base"' in html and 'class="marker total"' in html
    assert "asked sales to get in touch 1 times" in html and "Score 62 · 12.0% chance" in html


def test_waterfall_walks_from_base_to_final_log_odds() -> None:
    score = _score()
    chart = waterfall(score)
    bars = [b for b in chart.bars if b.kind in ("up", "down")]
    assert [b.kind for b in bars] == ["up", "up", "up", "down", "down"]
    assert [b.value_text for b in bars] == ["+0.90", "+0.40", "+0.20", "-0.30", "-0.10"]
    final = next(b for b in chart.bars if b.kind == "total")
    base = next(b for b in chart.bars if b.kind == "base")
    assert float(final.value_text) == pytest.approx(-1.99, abs=0.01)  # logit(0.12)
    assert float(base.value_text) == pytest.approx(-1.99 - 1.1, abs=0.01)  # minus the shown reasons
    assert base.x0 < final.x0  # the reasons push up overall: the final marker lies right of the start
    assert bars[3].x1 <= bars[2].x1  # a down bar ends where the previous bar ended (walks left)


def test_waterfall_in_score_points_walks_from_the_average_lead_to_the_score() -> None:
    """Where the model gives points: the axis is the 0-100 score, the walk starts at the
    average lead, every bar is named in words, and what is not listed closes the gap."""
    score = _score()
    points = [10.4, 4.6, 2.3, -3.5, -1.2]
    reasons = [reason.model_copy(update={"points": p, "label": f"behaviour {i}"})
               for i, (reason, p) in enumerate(zip([*score.reasons_up, *score.reasons_down], points,
                                                   strict=True))]
    score = score.model_copy(update={"average_score": 45.0, "reasons_up": reasons[:3],
                                     "reasons_down": reasons[3:]})
    chart = waterfall(score)
    assert chart.unit == "score points"
    base = next(b for b in chart.bars if b.kind == "base")
    total = next(b for b in chart.bars if b.kind == "total")
    assert (base.label, base.value_text) == ("The average lead", "45") and total.value_text == "62"
    steps = [b for b in chart.bars if b.kind in ("up", "down")]
    assert [b.label for b in steps] == [f"behaviour {i}" for i in range(5)] + ["everything else"]
    # the last bar closes the gap: 62 - 45 - 12.6
    assert [b.value_text for b in steps] == ["+10.4", "+4.6", "+2.3", "-3.5", "-1.2", "+4.4"]
    assert steps[-1].x1 == pytest.approx(total.x0, abs=0.2)  # the walk ends at the score
    assert all(label.replace(".", "").isdigit() for _, label in chart.ticks)  # score points, no log-odds


def test_the_waterfall_of_a_lead_in_an_opportunity_ends_without_a_chance() -> None:
    """Outside the model's population, the chance is no forecast: the walk's end does not tell it."""
    score = _score()
    total = next(b for b in waterfall(score).bars if b.kind == "total")
    assert f"{score.probability:.1%} chance" in total.label
    opened = {"opportunity_id": "O1", "opened_at": "2026-09-18T00:00:00+00:00", "stage": "open",
              "pid": score.pid, "open_opportunities": 1}
    total = next(b for b in waterfall(score.model_copy(update={"in_opportunity": opened})).bars
                 if b.kind == "total")
    assert "chance" not in total.label and "not a forecast" in total.label


def test_a_reason_too_small_to_show_goes_with_everything_else_never_a_red_zero() -> None:
    """A -0.01 point reason would be a red bar labelled '0.0': it joins the 'everything else'
    bar, and the walk still ends at the score. So in log-odds: a -0.004 reason joins the start."""
    score = _score()
    up, tiny = (r.model_copy(update={"points": p, "label": label})
                for r, p, label in ((score.reasons_up[0], 12.0, "talking to sales"),
                                    (score.reasons_down[0], -0.01, "purchases")))
    small = score.model_copy(update={"average_score": 45.0, "reasons_up": [up], "reasons_down": [tiny]})
    steps = [b for b in waterfall(small).bars if b.kind in ("up", "down")]
    assert [(b.label, b.value_text) for b in steps] == [("talking to sales", "+12.0"),
                                                        ("everything else", "+5.0")]
    tiny = score.reasons_down[0].model_copy(update={"impact": -0.004})
    logodds = score.model_copy(update={"reasons_down": [tiny]})
    chart = waterfall(logodds)
    assert [b.value_text for b in chart.bars if b.kind in ("up", "down")] == ["+0.90", "+0.40", "+0.20"]
    assert all(float(b.value_text) != 0 for b in chart.bars if b.kind in ("up", "down"))


def test_a_capped_score_says_the_cap_closes_the_walk() -> None:
    score = _score()
    reasons = [r.model_copy(update={"points": 30.0}) for r in score.reasons_up]
    capped = score.model_copy(update={"score": 100.0, "average_score": 40.0, "reasons_up": reasons,
                                      "reasons_down": []})
    last = [b for b in waterfall(capped).bars if b.kind in ("up", "down")][-1]
    assert last.label == "everything else and the 0-100 cap" and last.value_text == "-30.0"


def test_a_long_reason_is_wrapped_on_its_row_never_cut() -> None:
    long = ("company: works at a company with 36,000 employees; company industry: software; company "
            "funding stage: series_e_plus; revenue grew 12% against the quarter before")
    score = _score()
    score = score.model_copy(update={"average_score": 40.0, "reasons_up": [
        score.reasons_up[0].model_copy(update={"text": long, "label": "company", "points": 22.0})],
        "reasons_down": []})
    chart = waterfall(score)
    bar = next(b for b in chart.bars if b.kind == "up")
    assert " ".join(bar.lines) == long and len(bar.lines) >= 2
    following = chart.bars[chart.bars.index(bar) + 1]
    assert following.y >= bar.y + len(bar.lines) * 14  # the next row starts below its last line


TIERS = TierTable.model_validate({
    "tiers": [{"name": "high-value", "colour": "#0b7a3e", "when": {"score_min": 70, "fit_score_min": 50}},
              {"name": "high-potential", "colour": "#2a9d8f", "when": {"score_min": 60}},
              {"name": "low-conversion", "colour": "#6b7280", "when": {}}],
    "routing": {name: {"action": "a", "channel": "c", "description": "d"}
                for name in ("high-value", "high-potential", "low-conversion")}})


def _on_axes(fit: float, interest: float, average: float = 40.0) -> ScoreResponse:
    return _score().model_copy(update={"fit": fit, "interest": interest, "average_score": average,
                                       "score": fit + interest - average})


def test_the_fit_interest_chart_puts_the_lead_at_its_scores_and_the_tiers_on_diagonals() -> None:
    chart = axes_chart(_on_axes(60.0, 45.0), [], TIERS)
    x0, x1, y0, y1 = chart.plot
    assert chart.marker["x"] == pytest.approx(x0 + 0.60 * (x1 - x0), abs=0.1)
    assert chart.marker["y"] == pytest.approx(y1 - 0.45 * (y1 - y0), abs=0.1)
    assert [label for *_, label in chart.lines] == ["score 70", "score 60"]
    for xa, ya, xb, yb, label in chart.lines:  # along a line, fit + interest = threshold + average
        level = float(label.split()[1]) + 40
        for x, y in ((xa, ya), (xb, yb)):
            assert 100 * (x - x0) / (x1 - x0) + 100 * (y1 - y) / (y1 - y0) == pytest.approx(level, abs=0.2)
    assert [r.label.split(" ")[0] for r in chart.regions] == ["high-value", "high-potential",
                                                              "low-conversion"]
    assert "fit share is at least 50%" in chart.regions[0].label
    assert axes_chart(_score(), [], TIERS) is None  # a model that does not split its score


def test_the_path_runs_through_the_history_that_has_axes_to_the_lead_now(reader: PortraitReader,
                                                                          world: Settings) -> None:
    log = ScoreLog(world.live_dir / "scores")
    served = _on_axes(50.0, 42.0).model_dump() | {"pid": "P1"}
    log.append([served, _score().model_dump() | {"pid": "P1"}], NOW, "score")  # the second: no axes
    history = reader.portrait("P1").score_history
    assert [(h.fit, h.interest) for h in history[-2:]] == [(50.0, 42.0), (None, None)]
    chart = axes_chart(_on_axes(61.0, 47.0), history, TIERS)
    assert len(chart.past) == 1 and chart.path.endswith(f"{chart.marker['x']},{chart.marker['y']}")
    html = render_portrait_html(reader.portrait("P1", _on_axes(61.0, 47.0)), "E0042", COLOURS, tiers=TIERS)
    assert 'class="lead-marker"' in html and 'data-fit="61.0"' in html
    assert "fit 61 + interest 47 − the average lead's 40 = <b>68</b>" in re.sub(r"\s+", " ", html)


def test_rule_model_waterfall_in_points() -> None:
    chart = waterfall(_score("rule_baseline"))
    assert chart.unit == "points"
    assert next(b for b in chart.bars if b.kind == "base").value_text == "0"


def test_html_score_history_and_no_score(reader: PortraitReader) -> None:
    html = render_portrait_html(reader.portrait("P1", _score()), "E0042", COLOURS)
    assert html.count('<circle class="point"') == 3
    bare = render_portrait_html(reader.portrait("P6", None), "E0042", COLOURS)
    assert "No current score" in bare and 'class="bar reason' not in bare
    assert "No score history yet" in bare


def test_tier_colours_come_from_the_model_versions_tier_table(reader: PortraitReader) -> None:
    html = render_portrait_html(reader.portrait("P1", _score()), "E0042", {"high-potential": "#123456"})
    assert 'class="tier" style="background: #123456"' in html
    assert "#2a9d8f" not in html  # no colour but the table's


# --------------------------------------------------------------------------- outcomes from the CRM


def _crm_outcomes(reader: PortraitReader) -> None:
    outcomes = TypeAdapter(list[Outcome]).validate_python([
        {"kind": "opportunity_created", "crm_id": "OPP-9", "pid": "P1", "at": _ago(3), "amount_usd": 5000},
        {"kind": "won", "crm_id": "OPP-9", "pid": "P1", "at": _ago(1), "amount_usd": 7500},
        {"kind": "disposition", "crm_id": "LEAD-1", "pid": "P1", "at": _ago(5), "disposition": "rejected",
         "reason": "no_budget"},
        {"kind": "disposition", "crm_id": "LEAD-2", "pid": "P2", "at": _ago(2), "disposition": "accepted"},
    ])
    append_outcomes(reader.live, outcomes, NOW)


def test_the_persons_outcomes_newest_first_in_words(reader: PortraitReader) -> None:
    _crm_outcomes(reader)
    portrait = reader.portrait("P1")
    assert [(o.kind, o.crm_id, o.description) for o in portrait.outcomes] == [
        ("won", "OPP-9", "opportunity OPP-9 won ($7,500)"),
        ("opportunity_created", "OPP-9", "opportunity OPP-9 opened ($5,000)"),
        ("disposition", "LEAD-1", "sales rejected the MQL: no budget")]
    assert portrait.outcomes[0].at == _ago(1) and portrait.outcomes[2].reason == "no_budget"
    assert "outcomes" in portrait.fields_read()
    assert reader.portrait("P3").outcomes == [] and "outcomes" not in reader.portrait("P3").fields_read()


def test_html_shows_the_outcomes(reader: PortraitReader) -> None:
    _crm_outcomes(reader)
    page = render_portrait_html(reader.portrait("P1"), "R1", COLOURS)
    section = page[page.index('id="outcomes"'):page.index('id="timeline"')]
    assert "sales rejected the MQL: no budget" in section and "1 day ago" in section
    assert "Nothing back from the CRM" in render_portrait_html(reader.portrait("P3"), "R1", COLOURS)


def test_a_page_writes_a_category_as_the_reasons_do() -> None:
    words = portrait_environment().filters["words"]
    assert [words("series_e_plus"), words("it"), words("financial_services"), words(None)] == \
        ["series E or later", "IT", "financial services", "—"]
