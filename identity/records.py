"""Turn each raw source into uniform identity records, or quarantine them.

Every raw row of a person-bearing source becomes one record with the same
columns (standardised identifiers, names, company evidence, time), so that
linking treats all sources alike. Rows that cannot be resolved at all go to
quarantine with a reason: records in = records kept + records quarantined.

The layout, the standardisation (identity/standardise.py's SQL rules) and the quarantine
reason are one SQL text, run where identity's other set-based steps run (DuckDB in process,
or Spark: identity/engine.py) over every raw row, and by the live path over a few records on
an in-process DuckDB (live/standardise.py): the records and reasons are the same by
construction. Only the phone numbers and the texts with accents leave the engine, once per
distinct value, for the two rules that need Python libraries (`std.phone_table`,
`std.fold_table`).
"""

from __future__ import annotations

from collections.abc import Collection

import pandas as pd
import pyarrow as pa

from leadscore.identity import standardise as std
from leadscore.identity.engine import DuckDBSql, IdentitySql
from leadscore.identity.standardise import StandardiseRules

RECORD_COLUMNS = [
    "source", "source_record_id", "first_name", "last_name", "email", "phone", "cookie_id",
    "contact_id", "user_id", "account_id", "company_name", "title", "owner_rep_id", "seen_at",
]
STANDARDISED_COLUMNS = ["field_issue", "first_name_std", "last_name_std", "name_key", "work_domain",
                        "company_name_std"]
QUARANTINE_COLUMNS = ["source", "source_record_id", "reason", "raw"]

# source -> (id column, time column, column renames onto RECORD_COLUMNS)
SOURCE_LAYOUT: dict[str, tuple[str, str, dict[str, str]]] = {
    "crm_contacts": ("contact_id", "created_at", {}),
    "form_fills": ("form_fill_id", "submitted_at", {"job_title": "title"}),
    "event_registrations": ("registration_id", "registered_at", {}),
    "user_accounts": ("user_id", "registered_at", {}),
    "orders": ("order_id", "ordered_at", {}),
    "email_activity": ("activity_id", "occurred_at", {"email_address": "email"}),
    "web_sessions": ("session_id", "started_at", {}),
    "opportunities": ("opportunity_id", "created_at", {}),
}
PERSON_IDENTIFIERS = ["email", "phone", "cookie_id", "contact_id", "user_id"]
NO_IDENTIFIER = "no usable identifier (email, phone, cookie, contact or user id)"
NO_TIMESTAMP = "missing timestamp"
_TEXT_COLUMNS = [column for column in RECORD_COLUMNS if column not in ("source", "seen_at")]
_BLANKED = ["cookie_id", "contact_id", "user_id", "account_id"]  # identifiers only trimmed


def _raw_columns(name: str, raw: pd.DataFrame) -> pd.DataFrame:
    """The columns of a raw source that its records read, with `_row`: the row's position."""
    id_column, time_column, renames = SOURCE_LAYOUT[name]
    read = {id_column, time_column, "full_name",
            *(column for column in raw.columns if renames.get(column, column) in _TEXT_COLUMNS)}
    return raw[[column for column in raw.columns if column in read]].assign(_row=range(len(raw)))


def _text_sql(name: str, column: str, present: dict[str, str]) -> str:
    """One record column of source `name` (`present`: record column -> raw column)."""
    if column in ("first_name", "last_name") and "full_name" in present:
        return std.full_name_part_sql(std.blank_sql(present["full_name"]), column.removesuffix("_name"))
    if column not in present or (column == "user_id" and name != "user_accounts"):
        return "CAST(NULL AS VARCHAR)"
    return f"CAST({present[column]} AS VARCHAR)"


def layout_sql(name: str, columns: Collection[str], rank: int) -> str:
    """Source `name`'s rows (table `source_<name>`) in the record layout, identifiers not yet
    standardised; `rank` orders the sources."""
    id_column, time_column, renames = SOURCE_LAYOUT[name]
    present = {renames.get(column, column): column for column in columns}
    texts = ", ".join(f"{_text_sql(name, column, present)} AS {column}" for column in _TEXT_COLUMNS
                      if column != "source_record_id")
    return (f"SELECT {std.quoted(name)} AS source, {rank} AS source_rank, _row, "
            f"CAST({id_column} AS VARCHAR) AS source_record_id, {texts}, "
            f"CAST({time_column} AS TIMESTAMPTZ) AS seen_at FROM source_{name}")


_GIVEN_SQL = ", ".join([*(f"{std.blank_sql(column)} AS {column}_given"
                          for column in ("email", "phone", "first_name", "last_name", "company_name")),
                        f"{std.email_text_sql(std.blank_sql('email'))} AS email_text"])


def _folded(column: str, alias: str) -> str:
    return f"coalesce({alias}.folded, r.{column}_given)"


def _record_column_sql(column: str, rules: StandardiseRules) -> str:
    """A record column of the standardised records, from a laid-out record `r`."""
    if column == "email":
        return std.email_sql("r.email_text", rules)
    if column == "phone":
        return "p.e164"
    return std.blank_sql(f"r.{column}") if column in _BLANKED else f"r.{column}"


def standardised_sql(rules: StandardiseRules) -> str:
    """Every laid-out record (`record_layout`) standardised, with why it cannot be resolved
    (`reason`, missing where it can), the E.164 numbers, folded texts and canonical given names
    joined from `phone_e164`, `ascii_fold` and `nickname`; `source_rank` and `_row` give the
    raw rows' order."""
    missing = " AND ".join(f"{column} IS NULL" for column in PERSON_IDENTIFIERS)
    issues = ", ".join(
        f"CASE WHEN {name}_given IS NOT NULL AND {name} IS NULL "
        f"THEN '{name} {reason}: ' || substr({name}_given, 1, 60) END"
        for name, reason in (("email", "not an address"), ("phone", "not a phone number")))
    record = ", ".join(f"{_record_column_sql(column, rules)} AS {column}" for column in RECORD_COLUMNS)
    return f"""
        WITH standardised AS (
            SELECT r.source_rank, r._row, {record}, r.email_given, r.phone_given,
                   {std.name_token_sql(_folded("first_name", "f"))} AS first_token,
                   {std.name_token_sql(_folded("last_name", "l"))} AS last_name_std,
                   {std.company_name_sql(_folded("company_name", "c"), rules)} AS company_name_std
            FROM record_layout r
            LEFT JOIN phone_e164 p ON p.raw = r.phone_given
            LEFT JOIN ascii_fold f ON f.raw = r.first_name_given
            LEFT JOIN ascii_fold l ON l.raw = r.last_name_given
            LEFT JOIN ascii_fold c ON c.raw = r.company_name_given),
        keyed AS (
            SELECT s.*, {std.canonical_given_sql("s.first_token", "f")} AS first_name_std,
                   {std.canonical_given_sql("s.first_token", "f", "twice")} AS first_key,
                   {std.canonical_given_sql("s.last_name_std", "l")} AS last_key
            FROM standardised s
            LEFT JOIN nickname f ON f.token = s.first_token
            LEFT JOIN nickname l ON l.token = s.last_name_std)
        SELECT source_rank, _row, {", ".join(RECORD_COLUMNS)},
               nullif(concat_ws('; ', {issues}), '') AS field_issue,
               first_name_std, last_name_std, {std.name_key_sql("first_key", "last_key")} AS name_key,
               {std.work_domain_sql("email", rules)} AS work_domain, company_name_std,
               CASE WHEN seen_at IS NULL THEN {std.quoted(NO_TIMESTAMP)}
                    WHEN {missing} THEN {std.quoted(NO_IDENTIFIER)} END AS reason
        FROM keyed"""


_DISTINCT_SQL = {
    "phones": "SELECT DISTINCT phone_given AS raw FROM record_layout WHERE phone_given IS NOT NULL",
    "texts": " UNION ".join(
        f"SELECT {column}_given AS raw FROM record_layout WHERE {column}_given IS NOT NULL "
        f"AND NOT ({std.is_ascii_sql(column + '_given')})"
        for column in ("first_name", "last_name", "company_name")),
}


def standardise_on(sql: IdentitySql, sources: dict[str, pd.DataFrame], rules: StandardiseRules) -> list[str]:
    """Table `std_record` on `sql`'s engine: every row of the person-bearing `sources` given
    (all of them in the batch, one live) as a standardised record with its `reason`. Each
    step's input is dropped once the next is made (the engine's memory holds two copies of
    the rows at most); returns the tables left, `std_record` last."""
    selects = []
    for rank, name in enumerate(SOURCE_LAYOUT):
        if name in sources:
            raw = _raw_columns(name, sources[name])
            sql.put(f"source_{name}", raw)
            selects.append(layout_sql(name, raw.columns, rank))
    union = " UNION ALL ".join(selects)
    sql.create("record_layout", f"SELECT *, {_GIVEN_SQL} FROM ({union}) AS laid_out")
    for name in sources:
        sql.drop(f"source_{name}")
    sql.put("phone_e164", std.phone_table(sql.fetch(_DISTINCT_SQL["phones"])["raw"], rules))
    sql.put("ascii_fold", std.fold_table(sql.fetch(_DISTINCT_SQL["texts"])["raw"]))
    sql.put("nickname", std.nickname_table(rules))
    sql.create("std_record", standardised_sql(rules))
    sql.drop("record_layout")
    return ["phone_e164", "ascii_fold", "nickname", "std_record"]


def _arrow_strings(arrow_type: pa.DataType) -> pd.StringDtype | None:
    """Text as pandas strings held in Arrow (a third of the memory of a Python object each)."""
    text = (pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)
            or pa.types.is_string_view(arrow_type))
    return pd.StringDtype("pyarrow") if text else None


def fetch_records(sql: IdentitySql, quarantined: bool | None = None) -> pd.DataFrame:
    """`std_record`'s rows in the raw rows' order (kept ones, quarantined ones or all): text as
    strings (held in Arrow), the time in UTC."""
    where = {None: "", True: "WHERE reason IS NOT NULL", False: "WHERE reason IS NULL"}[quarantined]
    columns = ["_row", *RECORD_COLUMNS, *STANDARDISED_COLUMNS, *([] if quarantined is False else ["reason"])]
    query = f"SELECT {', '.join(columns)} FROM std_record {where} ORDER BY source_rank, _row"
    records = sql.fetch_arrow(query).to_pandas(types_mapper=_arrow_strings)
    seen_at = pd.to_datetime(records["seen_at"], utc=True).astype("datetime64[us, UTC]")
    return records.assign(_row=records["_row"].astype("int64"), seen_at=seen_at)


def quarantine_rows(quarantined: pd.DataFrame, sources: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The quarantine: each record's source, id and reason, and its raw row as JSON."""
    raw = [sources[name].iloc[rows["_row"]].astype("string").to_json(orient="records", lines=True)
           .splitlines() for name, rows in quarantined.groupby("source", sort=False)]
    return pd.DataFrame({
        "source": quarantined["source"], "source_record_id": quarantined["source_record_id"],
        "reason": quarantined["reason"].astype("string"),
        "raw": [line for lines in raw for line in lines]}).reindex(columns=QUARANTINE_COLUMNS)


def all_records(
    sources: dict[str, pd.DataFrame], rules: StandardiseRules, sql: IdentitySql | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every person-bearing raw row as a standardised record, and the quarantine; standardised
    on `sql`'s engine (DuckDB in memory if none), whose tables of it are dropped once fetched."""
    sql = sql or DuckDBSql()
    by_position = {name: sources[name].reset_index(drop=True) for name in SOURCE_LAYOUT}
    tables = standardise_on(sql, by_position, rules)
    kept = fetch_records(sql, quarantined=False).drop(columns="_row")
    quarantine = quarantine_rows(fetch_records(sql, quarantined=True), sources)
    for table in tables:
        sql.drop(table)
    return kept, quarantine.reset_index(drop=True)
