"""What a segment may name: fields, event types and their properties, tags, score fields.

The vocabulary is read from the loaded world (`world.py`): person and company columns,
the event types of config/event_types.yaml with the properties their events carry, the
tags of the latest feature build, the tiers of config/tiers.yaml. It is the closed
whitelist of the compiler: each name maps to a SQL expression built from quoted
identifiers when the world was loaded, so no name a user sends ever becomes SQL text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from leadscore.conditions import FieldType

OPS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "text": ("=", "!=", "in", "not_in", "contains", "starts_with", "is_set", "is_not_set"),
    "number": ("=", "!=", ">", ">=", "<", "<=", "in", "not_in", "is_set", "is_not_set"),
    "time": (">", ">=", "<", "<=", "is_set", "is_not_set"),
}
SCORE_FIELDS: dict[str, FieldType] = {"tier": "text", "score": "number", "probability": "number",
                                      "fit_score": "number", "interest_score": "number",
                                      "fit": "number", "interest": "number"}


@dataclass(frozen=True)
class FieldSpec:
    sql: str  # the expression, e.g. `c."industry"`
    type: FieldType
    values: tuple = ()  # the values seen, when they are few: choices for the page's pickers

    def describe(self) -> dict:
        return {"type": self.type, "ops": list(OPS_BY_TYPE[self.type]),
                **({"values": list(self.values)} if self.values else {})}


@dataclass(frozen=True)
class EventSpec:
    description: str
    properties: dict[str, FieldSpec] = field(default_factory=dict)


@dataclass(frozen=True)
class Vocabulary:
    """`tagged` / `scored`: whether the tags and scores exist yet (else their conditions fail
    with a message saying which command makes them)."""

    attributes: dict[str, FieldSpec]
    events: dict[str, EventSpec]
    tags: dict[str, str]  # tag -> label
    scores: dict[str, FieldSpec]
    tagged: bool
    scored: bool

    def describe(self) -> dict:
        """The vocabulary as JSON, for API clients and the builder page."""
        return {
            "attributes": {name: spec.describe() for name, spec in self.attributes.items()},
            "events": {name: {"description": spec.description,
                              "properties": {p: s.describe() for p, s in spec.properties.items()}}
                       for name, spec in self.events.items()},
            "tags": self.tags,
            "scores": {name: spec.describe() for name, spec in self.scores.items()},
            "tagged": self.tagged,
            "scored": self.scored,
        }
