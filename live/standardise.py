"""The batch's standardisation and quarantine rules on the records of one ingest group.

The batch lays out, standardises and quarantines every raw row with one SQL text on the
identity engine (identity/records.py, its rules in identity/standardise.py). Live, the same
text runs on a group's records in the worker's in-process DuckDB: the same rules by
construction, not a second copy of them (tests/unit/live/test_record_rules.py still holds
each record alone to the batch's result for it, which no rule may make depend on its
neighbours).
"""

from __future__ import annotations

import duckdb
import pandas as pd

from leadscore.identity.engine import DuckDBSql
from leadscore.identity.records import fetch_records, standardise_on
from leadscore.identity.standardise import StandardiseRules


def standardise_records(con: duckdb.DuckDBPyConnection, source: str, raw: pd.DataFrame,
                        rules: StandardiseRules) -> list[dict]:
    """Per row of `raw` (one source's records, typed as its raw table), in order, the record
    the batch makes of it, with None for missing, `reason` (why it is quarantined, None if it
    is kept) and `_row` (its position in `raw`). The tables go once read: `con` serves the
    next group."""
    sql = DuckDBSql(con)
    try:
        standardise_on(sql, {source: raw.reset_index(drop=True)}, rules)
        records = fetch_records(sql)
    finally:
        sql.drop_tables()
    return records.astype(object).where(records.notna(), None).to_dict("records")
