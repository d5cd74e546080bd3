"""Conditions to parameterised DuckDB SQL: the one compiler under the tag rules
(`features/tags.py`) and the segment language (`segments/compile.py`).

A condition is a vetted column expression, an operator and its values. It compiles to a
predicate that is TRUE or FALSE, never NULL (a missing value fails a comparison), so that
`NOT` is the complement of its group. Two rules keep the SQL safe:

- only identifiers the front end looked up in its own whitelist (`Query.lookup`) and
  quoted (`quote`) enter the SQL text;
- every value is a numbered parameter (`$1`, `$2`, ...), never SQL text.

It lives beside the settings in the base package rather than in `features/`: the segments
compile conditions on people, companies, scores and events, not on features, and the
compiler knows neither stage. Each front end keeps its own spelling (`==` in the tag rules,
`=` in segments), its own checks of values and its own error type.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal, TypeVar

FieldType = Literal["text", "number", "time"]
NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                 "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", "DECIMAL", "REAL")
COMPARE = {"=": "=", "!=": "<>", ">": ">", ">=": ">=", "<": "<", "<=": "<="}
OPERATORS = (*COMPARE, "in", "not_in", "contains", "starts_with", "is_set", "is_not_set")

Spec = TypeVar("Spec")


def field_type(duckdb_type: str) -> FieldType:
    """How a DuckDB column type compares: as a number, a time or text."""
    base = duckdb_type.split("(")[0].upper()
    if base in NUMERIC_TYPES:
        return "number"
    if base.startswith(("TIMESTAMP", "DATE")):
        return "time"
    return "text"


def quote(identifier: str) -> str:
    """A SQL identifier, quoted, for names that come from the data (never from a request)."""
    return '"' + identifier.replace('"', '""') + '"'


@dataclass
class Query:
    """The bound parameters of one query. `error` is the front end's error type, raised
    for a name its whitelist does not hold."""

    params: list = field(default_factory=list)
    error: ClassVar[type[ValueError]] = ValueError

    def bind(self, value: object) -> str:
        """A value as a numbered parameter, never as SQL text."""
        self.params.append(value)
        return f"${len(self.params)}"

    def lookup(self, specs: Mapping[str, Spec], name: object, what: str, where: str) -> Spec:
        """The whitelist's entry for `name`, or an error naming it and listing the valid ones."""
        if not isinstance(name, str) or name not in specs:
            plural = what[:-1] + "ies" if what.endswith("y") else what + "s"
            valid = ", ".join(sorted(specs)) or "none"
            raise self.error(f"{where}: unknown {what} `{name}`; valid {plural}: {valid}")
        return specs[name]


def compare(column: str, op: str, values: Sequence[object], query: Query) -> str:
    """`column op values` as a predicate, FALSE when the value is missing. `values` is a list
    for `in` / `not_in`, empty for `is_set` / `is_not_set`, one value otherwise."""
    if op not in OPERATORS:
        raise ValueError(f"unknown operator `{op}`; valid operators: {', '.join(OPERATORS)}")
    if op in ("is_set", "is_not_set"):
        return f"({column} IS {'NOT ' if op == 'is_set' else ''}NULL)"
    bound = [query.bind(value) for value in values]
    if op in ("in", "not_in"):
        if not bound:  # one of nothing: no one; none of nothing: anyone with a value
            return "FALSE" if op == "in" else f"({column} IS NOT NULL)"
        test = f"{column} {'NOT ' if op == 'not_in' else ''}IN ({', '.join(bound)})"
    elif op == "contains":
        test = f"contains(lower({column}), lower({bound[0]}))"
    elif op == "starts_with":
        test = f"starts_with({column}, {bound[0]})"
    else:
        test = f"{column} {COMPARE[op]} {bound[0]}"
    return f"coalesce({test}, FALSE)"


def all_of(predicates: Sequence[str]) -> str:
    """Every predicate holds; all of nothing is everyone."""
    return "(" + " AND ".join(predicates) + ")" if predicates else "TRUE"


def any_of(predicates: Sequence[str]) -> str:
    """At least one predicate holds; any of nothing is no one."""
    return "(" + " OR ".join(predicates) + ")" if predicates else "FALSE"


def negate(predicate: str) -> str:
    return f"(NOT {predicate})"
