"""The one row of a DuckDB query that returns exactly one (an aggregate: a count, a max)."""

from __future__ import annotations

from typing import Any

import duckdb


def one_row(con: duckdb.DuckDBPyConnection, query: str, parameters: object = None) -> tuple[Any, ...]:
    """The query's row; an error that names the query when it returned none."""
    row = con.execute(query, parameters).fetchone()
    if row is None:
        raise ValueError(f"no row from the query: {query}")
    return row
