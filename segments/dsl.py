"""The segment language: a tree of AND / OR / NOT groups over four kinds of condition.

A segment is data, written in JSON or YAML:

```yaml
name: Product A interest
where:
  any:
    - {kind: event, event_type: email_open, window: {last_days: 7},
       where: [{property: subject, op: contains, value: Product A}]}
    - {kind: attribute, field: company.employees, op: ">=", value: 1000}
```

- groups: `{all: [...]}` (AND), `{any: [...]}` (OR), `{not: node}`. An empty group
  follows the logic of its operator: `all` of nothing is everyone, `any` of nothing is
  no one;
- `attribute`: a person or company column (`person.seniority`, `company.industry`);
- `tag`: the person has any (or all, with `match: all`) of the listed tags;
- `event`: at least `min_count` interactions of `event_type` in the `window` whose
  properties pass every filter in `where`;
- `score`: the latest scoring's `tier`, `score`, `probability`, `fit` or `interest` (the
  score's two axes, 0-100 score points: `fit >= 60`), `fit_score` or `interest_score` (the
  rule points' shares).

Operators (which apply depends on the field's type; the vocabulary lists them): `=`, `!=`,
`>`, `>=`, `<`, `<=`, `in` / `not_in` (a list), `contains` (text, ignoring case),
`starts_with` (text, exact case), `is_set` / `is_not_set` (no value). Times are ISO dates
or times, UTC unless they say otherwise.

Every condition is true or false for every person, never unknown: a person with no value
for a field fails a comparison on it (so `industry != software` leaves out people whose
industry is unknown, and `not: {industry = software}` keeps them).

This module checks the shape only; which fields, event types, properties and tags exist is
the data's business, checked when the segment is compiled (`compile.py`).
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

MAX_LIST = 1000  # values in one `in` list: a segment is a selection, not a data upload
MAX_CONDITIONS = 100
MAX_DEPTH = 12
# Bounds that keep every segment runnable: dates the clock can count from and to (as the
# live sources' times, live/sources.py), windows that stay inside them, and numbers DuckDB
# binds as 64-bit integers or finite doubles. Beyond them a count was a 500 (a date
# overflow, "integer too large"), and a saved segment failed on every export.
EARLIEST, LATEST = date(1900, 1, 1), date(2199, 12, 31)
MAX_LAST_DAYS = 36_525  # a century: a longer window is any time (leave `window` out)
MAX_COUNT = 1_000_000
MAX_INT = 2**63 - 1

Op = Literal["=", "!=", ">", ">=", "<", "<=", "in", "not_in", "contains", "starts_with", "is_set",
             "is_not_set"]
LIST_OPS = ("in", "not_in")
NO_VALUE_OPS = ("is_set", "is_not_set")
Scalar = StrictStr | StrictInt | StrictFloat
VALUE_TYPE_ERRORS = ("string_type", "int_type", "float_type", "list_type")


class SegmentError(ValueError):
    """A segment that cannot be run, with a message for the person who wrote it."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Comparison(_Model):
    """`op` and `value`, whose shape depends on the operator: a list for `in` / `not_in`,
    nothing for `is_set` / `is_not_set`, one value otherwise."""

    op: Op
    value: Scalar | Annotated[list[Scalar], Field(max_length=MAX_LIST)] | None = None

    @model_validator(mode="after")
    def _value_fits_op(self) -> Comparison:
        if self.op in NO_VALUE_OPS:
            if self.value is not None:
                raise ValueError(f"`{self.op}` takes no value")
        elif self.op in LIST_OPS:
            if not isinstance(self.value, list):
                raise ValueError(f"`{self.op}` needs a list of values, got {self.value!r}")
        elif self.value is None or isinstance(self.value, list):
            raise ValueError(f"`{self.op}` needs one value, got {self.value!r}")
        return self

    @field_validator("value")
    @classmethod
    def _bounded_numbers(cls, value: object) -> object:
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, int) and abs(item) > MAX_INT:
                raise ValueError(f"numbers are at most {MAX_INT:,} in size (64-bit integers)")
            if isinstance(item, float) and not math.isfinite(item):
                raise ValueError("numbers must be finite, not NaN or Infinity")
        return value

    @property
    def values(self) -> list:
        """The value(s) as a list (empty for `is_set` / `is_not_set`)."""
        if self.value is None:
            return []
        return list(self.value) if isinstance(self.value, list) else [self.value]


class AttributeCondition(Comparison):
    kind: Literal["attribute"]
    field: str = Field(description="`person.<column>` or `company.<column>`")


class ScoreCondition(Comparison):
    kind: Literal["score"]
    field: str = Field(description="tier, score, probability, fit, interest, fit_score or interest_score")


class TagCondition(_Model):
    kind: Literal["tag"]
    tags: list[StrictStr] = Field(min_length=1, max_length=MAX_LIST)
    match: Literal["any", "all"] = "any"


class PropertyFilter(Comparison):
    property: str


class Window(_Model):
    """`last_days: N` (the N days up to as_of), or `from` / `to` dates (UTC, both included;
    either may be left open). Events after as_of never count."""

    last_days: int | None = Field(None, ge=1)
    from_: date | None = Field(None, alias="from")
    to: date | None = None

    @field_validator("last_days")
    @classmethod
    def _at_most_a_century(cls, last_days: int | None) -> int | None:
        if last_days is not None and last_days > MAX_LAST_DAYS:
            raise ValueError(f"at most {MAX_LAST_DAYS} days (a century); for any time, leave `window` out")
        return last_days

    @field_validator("from_", "to")
    @classmethod
    def _dates_in_range(cls, day: date | None) -> date | None:
        return _in_range(day)

    @model_validator(mode="after")
    def _one_kind(self) -> Window:
        dated = self.from_ is not None or self.to is not None
        if (self.last_days is not None) == dated:
            raise ValueError("give either `last_days` or `from` / `to` dates")
        if self.from_ and self.to and self.from_ > self.to:
            raise ValueError(f"`from` ({self.from_}) is after `to` ({self.to})")
        return self


class EventCondition(_Model):
    kind: Literal["event"]
    event_type: str
    where: list[PropertyFilter] = Field(default_factory=list)
    min_count: int = Field(1, ge=1, le=MAX_COUNT)
    window: Window | None = None  # None: any time up to as_of


def _in_range(day: date | None) -> date | None:
    """The day, if the clock can count from it (a typo such as year 9999 is refused)."""
    if day is not None and not EARLIEST <= day <= LATEST:
        raise ValueError(f"{day.isoformat()} is not between {EARLIEST.isoformat()} and {LATEST.isoformat()}")
    return day


def _node_tag(node: Any) -> str | None:
    """Which kind of node: a condition's `kind`, or the key of a group."""
    if isinstance(node, dict):
        if "kind" in node:
            return node["kind"]
        keys = [key for key in ("all", "any", "not") if key in node]
        return keys[0] if len(keys) == 1 else None
    return getattr(node, "node_tag", None) or getattr(node, "kind", None)  # a group, or a condition


class AllGroup(_Model):
    all: list[Node]
    node_tag: ClassVar[str] = "all"


class AnyGroup(_Model):
    any: list[Node]
    node_tag: ClassVar[str] = "any"


class NotGroup(_Model):
    not_: Node = Field(alias="not")
    node_tag: ClassVar[str] = "not"


Condition = AttributeCondition | TagCondition | EventCondition | ScoreCondition
Node = Annotated[
    Annotated[AllGroup, Tag("all")] | Annotated[AnyGroup, Tag("any")] | Annotated[NotGroup, Tag("not")]
    | Annotated[AttributeCondition, Tag("attribute")] | Annotated[TagCondition, Tag("tag")]
    | Annotated[EventCondition, Tag("event")] | Annotated[ScoreCondition, Tag("score")],
    Discriminator(_node_tag, custom_error_type="invalid_node", custom_error_message=(
        "a node is a group {all: [...]}, {any: [...]} or {not: ...}, or a condition with "
        "`kind`: attribute, tag, event or score")),
]
for _model in (AllGroup, AnyGroup, NotGroup):
    _model.model_rebuild()


class Segment(_Model):
    """A named selection of people; `as_of` (UTC) replaces the world's latest event time as
    the "now" of relative windows."""

    name: str = Field("", max_length=200)
    description: str = Field("", max_length=2000)
    as_of: datetime | None = None
    where: Node

    @field_validator("as_of")
    @classmethod
    def _utc(cls, as_of: datetime | None) -> datetime | None:
        """A time without a zone is UTC, like every time in the middle layer."""
        return as_of.replace(tzinfo=UTC) if as_of is not None and as_of.tzinfo is None else as_of

    @field_validator("as_of")
    @classmethod
    def _as_of_in_range(cls, as_of: datetime | None) -> datetime | None:
        if as_of is not None:
            _in_range(as_of.date())
        return as_of

    @model_validator(mode="after")
    def _bounded(self) -> Segment:
        conditions, depth = _size(self.where)
        if conditions > MAX_CONDITIONS or depth > MAX_DEPTH:
            raise ValueError(f"too large: {conditions} conditions nested {depth} deep "
                             f"(at most {MAX_CONDITIONS} conditions, {MAX_DEPTH} levels)")
        return self

    def to_data(self) -> dict:
        """The segment as JSON-ready data, in the same form it is written."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_defaults=True)


def children(node: Node) -> list[Node]:
    if isinstance(node, AllGroup):
        return node.all
    if isinstance(node, AnyGroup):
        return node.any
    if isinstance(node, NotGroup):
        return [node.not_]
    return []


def _size(node: Node) -> tuple[int, int]:
    """(conditions, depth) of a tree."""
    if not isinstance(node, AllGroup | AnyGroup | NotGroup):
        return 1, 1
    sizes = [_size(kid) for kid in children(node)]
    return sum(s[0] for s in sizes), 1 + max((s[1] for s in sizes), default=0)


def _describe(error: ValidationError) -> str:
    """Pydantic's errors, one per place: `where.any.0.event.window: give either ...`. A bad
    `value` is one message, not one per type it could have been."""
    lines: dict[str, str] = {}
    for item in error.errors():
        loc = [str(part) for part in item["loc"]]
        message = item["msg"].removeprefix("Value error, ")
        if "value" in loc and item["type"] in VALUE_TYPE_ERRORS:
            loc, message = loc[:loc.index("value") + 1], "must be text, a number or a list of them"
        elif item["type"] == "invalid_node":
            message += f"; got {item['input']!r:.100}"
        where = ".".join(loc) or "segment"
        lines.setdefault(where if len(where) <= 120 else "…" + where[-100:], message)
    return "; ".join(f"{where}: {message}" for where, message in lines.items())


def parse_segment(data: Any) -> Segment:
    """A Segment from parsed JSON / YAML data, or SegmentError saying what is wrong where."""
    if isinstance(data, Segment):
        return data
    if not isinstance(data, dict):
        raise SegmentError(f"a segment is an object with `where` (and optional `name`), got {data!r:.80}")
    try:
        return Segment.model_validate(data)
    except ValidationError as error:
        raise SegmentError(_describe(error)) from None


def load_segment(source: str | Path) -> Segment:
    """A segment from a JSON or YAML file (a Path) or text (a str); JSON is valid YAML."""
    text = source.read_text() if isinstance(source, Path) else source
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise SegmentError(f"not valid JSON or YAML: {error}") from None
    return parse_segment(data)


TEMPLATES = Path(__file__).resolve().parent / "templates"


def examples() -> dict[str, Segment]:
    """The example segments shipped with the builder (`templates/example_<name>.yaml`): the
    seed's example (`seed`) and the benchmark's ten conditions (`ten_conditions`)."""
    return {path.stem.removeprefix("example_"): load_segment(path)
            for path in sorted(TEMPLATES.glob("example_*.yaml"))}
