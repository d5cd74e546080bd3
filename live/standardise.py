"""The batch's standardisation and quarantine rules on the records of one ingest group.

The batch lays out, standardises and quarantines every raw row with one SQL text on the
identity engine (identity/records.py, its rules in identity/standardise.py). Live, the same
text runs on a group's records in the worker's in-process DuckDB: the same rules by
construction, not a second copy of them (tests/unit/live/test_record_rules.py still holds
each record alone to the batch's result for it, which no rule may make depend on its
neighbours).

A group's sources go through in one pass, as the batch's do: the SQL costs about 25-30 ms of
DuckDB planning whatever the number of rows, so a group of five sources standardised source by
source paid it five times.
"""

from __future__ import annotations

from collections.abc import Mapping

import duckdb
import pandas as pd

from leadscore.identity.engine import DuckDBSql
from leadscore.identity.records import fetch_records, standardise_on
from leadscore.identity.standardise import StandardiseRules


def standardise_records(con: duckdb.DuckDBPyConnection, sources: Mapping[str, pd.DataFrame],
                        rules: StandardiseRules) -> dict[str, list[dict]]:
    """Per source of `sources` (each one's records, typed as its raw table; the person-bearing
    sources of identity/records.py's `SOURCE_LAYOUT`) and per row, in order, the record the
    batch makes of it, with None for missing, `reason` (why it is quarantined, None if it is
    kept) and `_row` (its position in its frame). The tables go once read: `con` serves the
    next group."""
    if not sources:
        return {}
    sql = DuckDBSql(con)
    try:
        standardise_on(sql, {source: raw.reset_index(drop=True) for source, raw in sources.items()}, rules)
        records = fetch_records(sql)
    finally:
        sql.drop_tables()
    rows = records.astype(object).where(records.notna(), None).to_dict("records")
    by_source: dict[str, list[dict]] = {source: [] for source in sources}
    for row in rows:  # fetched in the sources' order, each source's rows in theirs
        by_source[row["source"]].append(row)
    return by_source
