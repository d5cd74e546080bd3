"""The shared condition compiler on three rows in an in-memory DuckDB."""

from __future__ import annotations

from typing import ClassVar

import duckdb
import pytest

from leadscore.conditions import Query, all_of, any_of, compare, field_type, negate, quote

ROWS = [("P1", "Software", 1500), ("P2", "retail", 40), ("P3", None, None)]


@pytest.fixture
def con():
    con = duckdb.connect()
    con.execute('CREATE TABLE t (pid VARCHAR, industry VARCHAR, "odd ""name""" BIGINT)')
    con.executemany("INSERT INTO t VALUES (?, ?, ?)", ROWS)
    yield con
    con.close()


def _pids(con, predicate: str, query: Query) -> set[str]:
    return {row[0] for row in con.execute(f"SELECT pid FROM t WHERE {predicate}", query.params).fetchall()}


SIZE = quote('odd "name"')


@pytest.mark.parametrize("column, op, values, expected", [
    ("industry", "=", ["retail"], {"P2"}),
    ("industry", "!=", ["retail"], {"P1"}),  # a missing value fails a comparison
    (SIZE, ">=", [1000], {"P1"}),
    (SIZE, "<", [1000], {"P2"}),
    ("industry", "in", ["retail", "Software"], {"P1", "P2"}),
    ("industry", "not_in", ["retail"], {"P1"}),
    ("industry", "in", [], set()),
    ("industry", "not_in", [], {"P1", "P2"}),
    ("industry", "contains", ["SOFT"], {"P1"}),
    ("industry", "starts_with", ["soft"], set()),  # exact case
    ("industry", "is_set", [], {"P1", "P2"}),
    ("industry", "is_not_set", [], {"P3"}),
])
def test_each_operator_on_three_rows(con, column, op, values, expected):
    query = Query()
    assert _pids(con, compare(column, op, values, query), query) == expected


def test_not_is_the_complement_because_a_predicate_is_never_null(con):
    query = Query()
    kept = compare("industry", "=", ["retail"], query)
    assert _pids(con, negate(kept), query) == {"P1", "P3"}


def test_groups_and_their_empty_cases(con):
    query = Query()
    software, small = compare("industry", "=", ["Software"], query), compare(SIZE, "<", [100], query)
    assert _pids(con, all_of([software, small]), query) == set()
    assert _pids(con, any_of([software, small]), query) == {"P1", "P2"}
    assert (all_of([]), any_of([])) == ("TRUE", "FALSE")


def test_values_are_parameters_never_sql_text(con):
    attack = "x' OR 1=1 --"
    query = Query()
    predicate = compare("industry", "=", [attack], query)
    assert attack not in predicate and query.params == [attack]
    assert _pids(con, predicate, query) == set()


def test_an_unknown_operator_is_refused():
    with pytest.raises(ValueError, match="unknown operator `LIKE`; valid operators: =, !="):
        compare("industry", "LIKE", ["x"], Query())


class _FrontEndError(ValueError):
    pass


class _FrontEndQuery(Query):
    error: ClassVar[type[ValueError]] = _FrontEndError


def test_an_unknown_name_is_the_front_ends_error_listing_the_valid_ones():
    specs = {"industry": "VARCHAR", "employees": "BIGINT", "pid": "VARCHAR"}
    assert Query().lookup(specs, "employees", "field", "here") == "BIGINT"
    with pytest.raises(_FrontEndError, match=r"here: unknown property `industri`; "
                                             r"valid properties: employees, industry, pid"):
        _FrontEndQuery().lookup(specs, "industri", "property", "here")
    with pytest.raises(ValueError, match="valid tags: none"):
        Query().lookup({}, ["not", "a", "name"], "tag", "here")


@pytest.mark.parametrize("duckdb_type, expected", [
    ("DECIMAL(18,3)", "number"), ("bigint", "number"), ("TIMESTAMP WITH TIME ZONE", "time"),
    ("DATE", "time"), ("VARCHAR", "text"),
])
def test_field_type(duckdb_type, expected):
    assert field_type(duckdb_type) == expected
