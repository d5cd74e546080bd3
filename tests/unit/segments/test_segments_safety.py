"""User values never become SQL text; unknown names are errors that list the valid ones."""

from __future__ import annotations

import duckdb
import pytest
from segments_tiny_world import EVERYONE

from leadscore.segments.compile import count_sql
from leadscore.segments.dsl import SegmentError, parse_segment

ATTACK = "'; DROP TABLE person; --"


def _person_tables_intact(engine) -> None:
    """The engine's copy and the middle layer on disk both still have every person."""
    assert engine.count({"where": {"all": []}})["count"] == len(EVERYONE)
    with duckdb.connect(str(engine.settings.middle_db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM person").fetchone()[0] == len(EVERYONE)


@pytest.mark.parametrize("where", [
    {"kind": "attribute", "field": "company.industry", "op": "=", "value": ATTACK},
    {"kind": "attribute", "field": "person.title", "op": "contains", "value": ATTACK},
    {"kind": "attribute", "field": "company.industry", "op": "in", "value": ["retail", ATTACK]},
    {"kind": "event", "event_type": "email_open", "where": [{"property": "subject", "op": "contains",
                                                             "value": ATTACK}]},
    {"kind": "score", "field": "tier", "op": "=", "value": ATTACK},
])
def test_an_injection_as_a_value_is_just_a_value(engine, where):
    assert engine.count({"where": where})["count"] == 0
    sql, params = count_sql(parse_segment({"where": where}), engine.world().vocabulary,
                            engine.world().as_of)
    assert "DROP" not in sql and ATTACK in params
    _person_tables_intact(engine)


@pytest.mark.parametrize("where, named, valid", [
    ({"kind": "attribute", "field": ATTACK, "op": "=", "value": "x"}, "field", "company.industry"),
    ({"kind": "attribute", "field": "company.industry; DROP TABLE person", "op": "=", "value": "x"},
     "field", "person.seniority"),
    ({"kind": "score", "field": ATTACK, "op": "=", "value": "x"}, "score field", "tier"),
    ({"kind": "event", "event_type": ATTACK}, "event type", "email_open"),
    ({"kind": "event", "event_type": "email_open", "where": [{"property": ATTACK, "op": "=", "value": "x"}]},
     "property", "subject"),
    ({"kind": "tag", "tags": [ATTACK]}, "tag", "dormant"),
])
def test_an_injection_as_a_name_is_an_unknown_name(engine, where, named, valid):
    with pytest.raises(SegmentError) as error:
        engine.count({"where": where})
    message = str(error.value)
    assert f"unknown {named} `" in message and valid in message.split("valid")[1]
    _person_tables_intact(engine)


@pytest.mark.parametrize("where, message", [
    ({"kind": "attribute", "field": "company.industri", "op": "=", "value": "software"},
     "attribute `company.industri`: unknown field `company.industri`; "
     "valid fields: company.annual_revenue_usd"),
    ({"kind": "event", "event_type": "email_opened"},
     "unknown event type `email_opened`; valid event types: contact_sales, email_click, email_open"),
    ({"kind": "event", "event_type": "purchase", "where": [{"property": "subject", "op": "=", "value": "x"}]},
     "event `purchase` property `subject`: unknown property `subject`; "
     "valid properties: amount_usd, product"),
    ({"kind": "tag", "tags": ["dormnt"]}, "unknown tag `dormnt`; valid tags: decision_maker, dormant"),
    ({"kind": "score", "field": "rank", "op": ">", "value": 1},
     "valid score fields: fit, fit_score, interest, interest_score"),
])
def test_unknown_names_are_named_with_the_valid_ones(engine, where, message):
    with pytest.raises(SegmentError, match="unknown") as error:
        engine.count({"where": where})
    assert message in str(error.value)


def test_personal_data_is_not_a_field(engine):
    with pytest.raises(SegmentError, match="unknown field `person.email`"):
        engine.count({"where": {"kind": "attribute", "field": "person.email", "op": "=", "value": "a@b.c"}})


@pytest.mark.parametrize("where, message", [
    ({"kind": "attribute", "field": "company.employees", "op": "contains", "value": "5"},
     "`contains` does not apply to a number field; valid operators: =, !=, >"),
    ({"kind": "attribute", "field": "company.employees", "op": ">=", "value": "1000"}, "needs a number"),
    ({"kind": "attribute", "field": "company.industry", "op": "=", "value": 3}, "needs text"),
    ({"kind": "attribute", "field": "person.first_seen", "op": ">", "value": "yesterday"}, "needs a date"),
    ({"kind": "event", "event_type": "purchase", "where": [{"property": "amount_usd", "op": "starts_with",
                                                            "value": "1"}]}, "does not apply"),
])
def test_values_and_operators_must_fit_the_field(engine, where, message):
    with pytest.raises(SegmentError, match=message):
        engine.count({"where": where})
