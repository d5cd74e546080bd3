"""The segment language: JSON and YAML, groups, and shape errors that say where."""

from __future__ import annotations

import json

import pytest

from leadscore.segments.dsl import (
    MAX_CONDITIONS,
    AnyGroup,
    EventCondition,
    NotGroup,
    SegmentError,
    examples,
    load_segment,
    parse_segment,
)

YAML = """
name: mixed
where:
  any:
    - {kind: event, event_type: email_open, window: {last_days: 7},
       where: [{property: subject, op: contains, value: Product A}]}
    - not: {kind: attribute, field: company.employees, op: ">=", value: 1000}
"""


def test_json_and_yaml_give_the_same_segment():
    from_yaml = load_segment(YAML)
    from_json = load_segment(json.dumps(from_yaml.to_data()))
    assert from_json == from_yaml
    assert isinstance(from_yaml.where, AnyGroup)
    first, second = from_yaml.where.any
    assert isinstance(first, EventCondition) and first.window.last_days == 7
    assert isinstance(second, NotGroup) and second.not_.value == 1000


def test_saved_form_round_trips():
    segment = load_segment(YAML)
    assert parse_segment(segment.to_data()).to_data() == segment.to_data()
    assert segment.to_data()["where"]["any"][1] == {
        "not": {"kind": "attribute", "field": "company.employees", "op": ">=", "value": 1000}}


def test_shipped_examples_parse():
    shipped = examples()
    assert set(shipped) == {"seed", "ten_conditions"}
    assert len(shipped["seed"].where.any) == 3


@pytest.mark.parametrize("where, expected", [
    ({"kind": "sql"}, "`kind`: attribute, tag, event or score; got {'kind': 'sql'}"),
    ({"all": [], "any": []}, "a node is a group"),
    ({"kind": "attribute", "field": "company.industry", "op": "in", "value": "software"},
     "`in` needs a list of values"),
    ({"kind": "attribute", "field": "company.industry", "op": "=", "value": ["a"]}, "`=` needs one value"),
    ({"kind": "attribute", "field": "company.industry", "op": "is_set", "value": "a"}, "takes no value"),
    ({"kind": "attribute", "field": "company.industry", "op": "like", "value": "a"}, "'contains'"),
    ({"kind": "attribute", "field": "company.industry", "op": "=", "value": True}, "value: must be text"),
    ({"kind": "event", "event_type": "purchase", "window": {"last_days": 7, "from": "2026-01-01"}},
     "window: give either `last_days` or `from` / `to` dates"),
    ({"kind": "event", "event_type": "purchase", "window": {"from": "2026-02-01", "to": "2026-01-01"}},
     "is after `to`"),
    ({"kind": "event", "event_type": "purchase", "min_count": 0}, "min_count"),
    ({"kind": "event", "event_type": "purchase", "window": {"last_days": 36_526}}, "at most 36525 days"),
    ({"kind": "attribute", "field": "company.employees", "op": ">", "value": float("nan")}, "must be finite"),
    ({"kind": "attribute", "field": "company.employees", "op": "in", "value": [float("inf")]},
     "must be finite"),
    ({"kind": "tag", "tags": []}, "tags"),
    ({"kind": "event", "event_type": "purchase", "where": [{"property": "product", "op": "=", "value": "A",
                                                            "extra": 1}]}, "extra"),
])
def test_shape_errors_say_what_and_where(where, expected):
    with pytest.raises(SegmentError, match="where") as error:
        parse_segment({"where": where})
    assert expected in str(error.value)


def test_not_an_object_is_an_error():
    with pytest.raises(SegmentError, match="a segment is an object"):
        parse_segment(["where"])
    with pytest.raises(SegmentError, match="not valid JSON or YAML"):
        load_segment("where: [unclosed")


def test_a_segment_has_a_size_limit():
    many = [{"kind": "tag", "tags": ["x"]}] * (MAX_CONDITIONS + 1)
    with pytest.raises(SegmentError, match="too large"):
        parse_segment({"where": {"all": many}})


def test_as_of_without_zone_is_utc():
    segment = parse_segment({"as_of": "2026-10-01T00:00:00", "where": {"all": []}})
    assert segment.as_of.utcoffset().total_seconds() == 0


@pytest.mark.parametrize("where", [
    {"kind": "attribute", "field": "person.pid", "op": "=", "value": "P1"},
    {"not": {"kind": "tag", "tags": ["hand_raiser"]}},
])
def test_a_condition_alone_or_under_not_is_written_as_read_without_a_serializer_warning(where):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pydantic warns when its union's discriminator finds no tag
        data = parse_segment({"name": "one condition", "where": where}).to_data()
    assert parse_segment(data).to_data() == data and data["where"].keys() == where.keys()
