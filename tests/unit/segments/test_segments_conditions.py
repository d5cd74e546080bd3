"""Every condition kind, groups, NOT and windows, on the tiny hand-checked world."""

from __future__ import annotations

import pytest
from segments_tiny_world import AS_OF, EVERYONE, SEED_MEMBERS, SITE

from leadscore.segments.dsl import examples


def members(engine, where, **extra) -> set[str]:
    """The members' pids, after checking the count agrees with the member list."""
    segment = {"where": where, **extra}
    pids = {row["pid"] for row in engine.preview(segment, limit=100)}
    assert engine.count(segment)["count"] == len(pids)
    return pids


def attribute(field, op, value=None):
    return {"kind": "attribute", "field": field, "op": op, **({} if value is None else {"value": value})}


def event(event_type, *filters, **options):
    return {"kind": "event", "event_type": event_type, "where": list(filters), **options}


def prop(name, op, value):
    return {"property": name, "op": op, "value": value}


def test_seed_example_members_as_checked_by_hand(engine):
    assert members(engine, examples()["seed"].to_data()["where"]) == SEED_MEMBERS


def test_seed_example_count_and_tiers(engine):
    result = engine.count(examples()["seed"])
    assert result["count"] == 5
    assert result["by_tier"] == {"high-value": 1, "high-potential": 0, "to-verify": 1, "to-nurture": 1,
                                 "low-conversion": 1, "unscored": 1}
    assert result["as_of"] == AS_OF.isoformat()
    assert result["sql_ms"] >= 0


@pytest.mark.parametrize("where, expected", [
    (attribute("company.industry", "in", ["software", "manufacturing"]), {"P1", "P2", "P3", "P5"}),
    (attribute("company.industry", "not_in", ["software"]), {"P2", "P5"}),
    (attribute("company.employees", ">=", 1000), {"P1", "P3"}),
    (attribute("company.employees", "<", 1000), {"P2", "P5"}),
    (attribute("person.seniority", "=", "director"), {"P1"}),
    (attribute("person.seniority", "!=", "director"), {"P2", "P3", "P5", "P7"}),
    (attribute("person.owner_rep_id", "in", ["R003"]), {"P4", "P7"}),
    (attribute("person.title", "contains", "director"), {"P1"}),
    (attribute("company.domain", "starts_with", "acme"), {"P1", "P3"}),
    (attribute("person.seniority", "is_not_set"), {"P4", "P6"}),
    (attribute("company.cid", "is_set"), EVERYONE - {"P6"}),
    (attribute("person.first_seen", ">=", "2026-06-01"), {"P2", "P4", "P7"}),
])
def test_attribute_conditions(engine, where, expected):
    assert members(engine, where) == expected


@pytest.mark.parametrize("where, expected", [
    ({"kind": "tag", "tags": ["dormant"]}, {"P3", "P5"}),
    ({"kind": "tag", "tags": ["dormant", "industry:software"]}, {"P1", "P3", "P5"}),
    ({"kind": "tag", "tags": ["dormant", "decision_maker"], "match": "all"}, {"P3"}),
])
def test_tag_conditions(engine, where, expected):
    assert members(engine, where) == expected


@pytest.mark.parametrize("where, expected", [
    (event("email_open", window={"last_days": 7}), {"P1", "P5", "P7"}),
    (event("email_open", prop("subject", "contains", "product a"), window={"last_days": 7}), {"P1", "P7"}),
    (event("email_open", prop("subject", "contains", "Product A")), {"P1", "P2", "P7"}),  # any time
    (event("web_visit", prop("url", "in", [f"{SITE}/pricing"]), min_count=2), {"P1"}),
    (event("web_visit", prop("url", "in", [f"{SITE}/pricing"]), window={"last_days": 30}), {"P2"}),
    (event("web_visit", prop("pageviews", ">=", 2)), {"P2", "P5"}),
    (event("web_visit", prop("url", "starts_with", f"{SITE}/c")), {"P3", "P6"}),
    (event("purchase", prop("product", "=", "Product A"), window={"last_days": 7}), {"P4"}),
    (event("purchase", prop("amount_usd", ">", 15000)), {"P3", "P4"}),
    (event("event_attend", prop("event_id", "=", "EV0017")), {"P7"}),
    (event("whitepaper_download", window={"from": "2026-09-01", "to": "2026-09-30"}), {"P3"}),
    (event("whitepaper_download", window={"from": "2026-09-15", "to": "2026-09-15"}), {"P3"}),
    (event("whitepaper_download", window={"to": "2026-09-14"}), set()),
    (event("whitepaper_download", window={"from": "2026-09-16"}), set()),
    (event("webinar_attend"), set()),  # a known event type nobody did
])
def test_event_conditions(engine, where, expected):
    assert members(engine, where) == expected


def test_window_includes_an_event_at_as_of_and_nothing_after(engine):
    visit = event("web_visit", prop("url", "=", f"{SITE}/careers"), window={"last_days": 1})
    assert members(engine, visit) == {"P3"}
    assert members(engine, visit, as_of="2026-10-31T11:59:00+00:00") == set()


def test_as_of_moves_relative_windows(engine):
    purchase = event("purchase", prop("product", "=", "Product A"), window={"last_days": 7})
    as_of = "2026-10-25T00:00:00Z"
    assert members(engine, purchase, as_of=as_of) == {"P5"}  # P4 bought later that day
    assert engine.count({"where": purchase, "as_of": as_of})["as_of"] == "2026-10-25T00:00:00+00:00"


def test_anonymous_events_never_make_a_member(engine):
    recent_pricing = event("web_visit", prop("url", "=", f"{SITE}/pricing"), window={"last_days": 2})
    assert members(engine, recent_pricing) == set()


def test_email_send_is_not_an_open(engine):
    assert "P2" not in members(engine, event("email_open", window={"last_days": 2}))
    assert "P2" in members(engine, event("email_send", window={"last_days": 2}))


@pytest.mark.parametrize("where, expected", [
    ({"kind": "score", "field": "tier", "op": "in", "value": ["high-value", "high-potential"]}, {"P1", "P3"}),
    ({"kind": "score", "field": "tier", "op": "=", "value": "low-conversion"}, {"P4"}),  # P1's is older
    ({"kind": "score", "field": "score", "op": ">=", "value": 40}, {"P1", "P2", "P3"}),
    ({"kind": "score", "field": "probability", "op": "<", "value": 0.05}, {"P4", "P6"}),
    ({"kind": "score", "field": "tier", "op": "is_not_set"}, {"P5", "P7"}),
])
def test_score_conditions_use_the_latest_scoring(engine, where, expected):
    assert members(engine, where) == expected


def test_not_is_the_complement(engine):
    seed = examples()["seed"].to_data()["where"]
    assert members(engine, {"not": seed}) == EVERYONE - SEED_MEMBERS
    assert members(engine, {"not": {"not": seed}}) == SEED_MEMBERS


def test_not_keeps_people_whose_value_is_unknown(engine):
    software = attribute("company.industry", "=", "software")
    assert members(engine, {"not": software}) == EVERYONE - {"P1", "P3"}  # P4, P6, P7 have no industry


def test_all_and_any_nest(engine):
    where = {"all": [attribute("company.industry", "=", "software"),
                     {"any": [{"kind": "tag", "tags": ["dormant"]},
                              event("email_open", window={"last_days": 7})]}]}
    assert members(engine, where) == {"P1", "P3"}


@pytest.mark.parametrize("where, expected", [
    ({"all": []}, EVERYONE),
    ({"any": []}, set()),
    ({"not": {"all": []}}, set()),
    ({"not": {"any": []}}, EVERYONE),
    ({"any": [{"all": []}, attribute("person.pid", "=", "nobody")]}, EVERYONE),
    ({"all": [{"any": []}, {"all": []}]}, set()),
])
def test_empty_groups(engine, where, expected):
    assert members(engine, where) == expected


def test_empty_in_list_selects_no_one(engine):
    assert members(engine, attribute("company.industry", "in", [])) == set()
    assert members(engine, {"not": attribute("company.industry", "in", [])}) == EVERYONE
    assert members(engine, attribute("company.industry", "not_in", [])) == {"P1", "P2", "P3", "P5"}
