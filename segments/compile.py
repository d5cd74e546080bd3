"""A segment compiled to one parameterised DuckDB query over the loaded world.

The query runs on the tables `world.py` loads: `person p`, `company c` (joined on cid),
`latest_score s` (joined on pid), `person_tag(pid, tag)` and `interaction(pid, event_type,
event_time, <one column per property>)`; comparisons and groups compile through the
shared condition compiler (`leadscore/conditions.py`). Two rules keep it safe:

- only identifiers from the vocabulary (built from the data, quoted) enter the SQL text;
  a name the vocabulary does not hold is a SegmentError naming it and listing the valid ones;
- every value is a numbered parameter (`$1`, `$2`, ...), never SQL text.

Every predicate is TRUE or FALSE, never NULL (missing values fail a comparison), so `NOT`
is the complement of its group. Relative windows count back from `as_of`, the frozen
world's "now" (see engine.py), and no event after `as_of` ever counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import ClassVar

from leadscore.conditions import Query, all_of, any_of, compare, negate
from leadscore.segments.dsl import (
    AllGroup,
    AnyGroup,
    AttributeCondition,
    Comparison,
    EventCondition,
    Node,
    NotGroup,
    ScoreCondition,
    Segment,
    SegmentError,
    TagCondition,
    Window,
)
from leadscore.segments.vocabulary import OPS_BY_TYPE, FieldSpec, Vocabulary

PEOPLE = ("person p LEFT JOIN company c ON c.cid = p.cid "
          "LEFT JOIN latest_score s ON s.pid = p.pid")
MEMBER_COLUMNS = {  # preview and export columns; email and phone are masked by the engine
    "pid": "p.pid", "name": "p.name", "title": "p.title", "seniority": "p.seniority",
    "department": "p.department", "email": "p.email", "phone": "p.phone",
    # the account owner, as portraits decide it: the company's rep, else the person's
    "owner_rep_id": "coalesce(c.owner_rep_id, p.owner_rep_id)", "company": "c.name", "industry": "c.industry",
    "employees": "c.employees", "tier": "s.tier", "score": "round(s.score, 1)",
    "probability": "round(s.probability, 4)",
    "demand_first": "p.demand_first", "demand_latest": "p.demand_latest",  # UTM demand tags
}
NO_SCORES = "no scores yet: run `leadscore score`"
NO_TAGS = "no tags yet: run `leadscore features build`"


@dataclass(kw_only=True)
class _Query(Query):
    vocabulary: Vocabulary
    as_of: datetime
    error: ClassVar[type[ValueError]] = SegmentError


def _typed(value: object, spec: FieldSpec, where: str) -> object:
    """A value as the field's type: a number for numbers, a UTC datetime for times."""
    if spec.type == "number":
        if not isinstance(value, int | float):
            raise SegmentError(f"{where}: needs a number, got {value!r}")
        return value
    if not isinstance(value, str):
        raise SegmentError(f"{where}: needs text, got {value!r}")
    if spec.type == "time":
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise SegmentError(f"{where}: needs a date or time (2026-10-31), got {value!r}") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return value


def _comparison(spec: FieldSpec, cond: Comparison, query: _Query, where: str) -> str:
    """One comparison on a vetted column expression, FALSE when the value is missing."""
    if cond.op not in OPS_BY_TYPE[spec.type]:
        raise SegmentError(f"{where}: `{cond.op}` does not apply to a {spec.type} field; "
                           f"valid operators: {', '.join(OPS_BY_TYPE[spec.type])}")
    return compare(spec.sql, cond.op, [_typed(value, spec, where) for value in cond.values], query)


def _attribute(cond: AttributeCondition, query: _Query) -> str:
    where = f"attribute `{cond.field}`"
    spec = query.lookup(query.vocabulary.attributes, cond.field, "field", where)
    return _comparison(spec, cond, query, where)


def _score(cond: ScoreCondition, query: _Query) -> str:
    where = f"score `{cond.field}`"
    spec = query.lookup(query.vocabulary.scores, cond.field, "score field", where)
    if not query.vocabulary.scored:
        raise SegmentError(f"{where}: {NO_SCORES}")
    return _comparison(spec, cond, query, where)


def _tag(cond: TagCondition, query: _Query) -> str:
    """Has any of the tags (`match: any`) or every one of them (`match: all`)."""
    if not query.vocabulary.tagged:
        raise SegmentError(f"tag condition: {NO_TAGS}")
    tags = sorted(set(cond.tags))
    for tag in tags:
        query.lookup(query.vocabulary.tags, tag, "tag", "tag condition")
    listed = ", ".join(query.bind(tag) for tag in tags)
    having = ""
    if cond.match == "all":
        having = f" GROUP BY pid HAVING count(DISTINCT tag) = {query.bind(len(tags))}"
    return f"p.pid IN (SELECT pid FROM person_tag WHERE tag IN ({listed}){having})"


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _window(window: Window | None, as_of: datetime) -> list[tuple[str, datetime]]:
    """Bounds on event_time: never after as_of; `last_days: N` the N days up to as_of;
    `from` / `to` whole UTC days, both included."""
    bounds = [("<=", as_of)]
    if window is None:
        return bounds
    if window.last_days is not None:
        return bounds + [(">", as_of - timedelta(days=window.last_days))]
    if window.from_:
        bounds.append((">=", _day_start(window.from_)))
    if window.to:
        bounds.append(("<", _day_start(window.to + timedelta(days=1))))
    return bounds


def _event(cond: EventCondition, query: _Query) -> str:
    """People with at least `min_count` matching events; anonymous events were never loaded."""
    where = f"event `{cond.event_type}`"
    spec = query.lookup(query.vocabulary.events, cond.event_type, "event type", where)
    tests = [f"event_type = {query.bind(cond.event_type)}"]
    tests += [f"event_time {op} {query.bind(bound)}" for op, bound in _window(cond.window, query.as_of)]
    for item in cond.where:
        place = f"{where} property `{item.property}`"
        prop = query.lookup(spec.properties, item.property, "property", place)
        tests.append(_comparison(prop, item, query, place))
    having = f" GROUP BY pid HAVING count(*) >= {query.bind(cond.min_count)}" if cond.min_count > 1 else ""
    return f"p.pid IN (SELECT pid FROM interaction WHERE {' AND '.join(tests)}{having})"


def _predicate(node: Node, query: _Query) -> str:
    if isinstance(node, AllGroup):
        return all_of([_predicate(kid, query) for kid in node.all])
    if isinstance(node, AnyGroup):
        return any_of([_predicate(kid, query) for kid in node.any])
    if isinstance(node, NotGroup):
        return negate(_predicate(node.not_, query))
    if isinstance(node, AttributeCondition):
        return _attribute(node, query)
    if isinstance(node, ScoreCondition):
        return _score(node, query)
    if isinstance(node, TagCondition):
        return _tag(node, query)
    return _event(node, query)


def where_sql(segment: Segment, vocabulary: Vocabulary, as_of: datetime) -> tuple[str, list]:
    """The segment's predicate over `PEOPLE` and its parameters."""
    query = _Query(vocabulary=vocabulary, as_of=segment.as_of or as_of)
    return _predicate(segment.where, query), query.params


AXIS_CELL = 10  # the fit x interest breakdown's cells, in score points


def count_sql(segment: Segment, vocabulary: Vocabulary, as_of: datetime) -> tuple[str, list]:
    """Rows (tier or NULL when unscored, fit cell, interest cell, members): a cell is the score
    axis's AXIS_CELL-point band (0 for 0-9.9, ...; 10 for 100, which the engine counts in 9),
    NULL where unknown."""
    predicate, params = where_sql(segment, vocabulary, as_of)
    cell = "floor(s.{} / " + str(AXIS_CELL) + ")::INT"
    return (f"SELECT s.tier, {cell.format('fit')}, {cell.format('interest')}, count(*) FROM {PEOPLE} "
            f"WHERE {predicate} GROUP BY ALL"), params


def members_sql(segment: Segment, vocabulary: Vocabulary, as_of: datetime,
                limit: int | None = None) -> tuple[str, list]:
    """The members' MEMBER_COLUMNS, best score first, then by pid (a stable order)."""
    predicate, params = where_sql(segment, vocabulary, as_of)
    columns = ", ".join(f"{sql} AS {name}" for name, sql in MEMBER_COLUMNS.items())
    sql = f"SELECT {columns} FROM {PEOPLE} WHERE {predicate} ORDER BY s.score DESC NULLS LAST, p.pid"
    if limit is not None:
        params.append(int(limit))
        sql += f" LIMIT ${len(params)}"
    return sql, params
