"""The person table: one row per PID, attributes chosen by survivorship.

Survivorship: CRM contacts are trusted first, then product accounts, forms and
registrations; within a source the most recent record wins. The company is the
most recent company evidence from something the person did (a form, a
registration, a CRM edit), not from emails we kept sending to an old address,
so people who moved show their new employer. Seniority and department come
from the title by keyword rules.

Time: `identified_at` is when the person first became known by an identifier
(anonymous web sessions do not count), and `<field>_known_at` when a field was
first known, so that features at time t can hide what was learnt later.

The survivorship over every record is SQL written once in DuckDB's dialect, run on the
identity engine (DuckDB in process, or Spark: identity/engine.py); ties (two records of a
person seen at the same instant) go to the earlier record. The title rules then read the one
title per person in Python, as the live path does (live/identity.py).
"""

from __future__ import annotations

import re

import pandas as pd

from leadscore.identity.engine import IdentitySql

# Records the person did not author: mail we sent, and anonymous browsing.
PASSIVE_SOURCES = ["email_activity", "web_sessions"]
KNOWN_AT_FIELDS = {"email": "email", "phone": "phone", "title": "title", "company": "cid"}
SOURCE_TRUST = ["crm_contacts", "user_accounts", "form_fills", "event_registrations",
                "orders", "opportunities", "email_activity", "web_sessions"]
PERSON_RECORD_COLUMNS = ["pid", "source", "seen_at", "first_name", "last_name", "email", "phone",
                         "owner_rep_id", "work_domain", "title", "cid"]
TIMESTAMP_COLUMNS = ["first_seen", "identified_at", *(f"{name}_known_at" for name in KNOWN_AT_FIELDS),
                     "last_seen"]


def title_patterns(rules: list[dict], label: str) -> list[tuple[str, re.Pattern]]:
    """(name, whole-word pattern) per rule, in order."""
    return [(rule[label], re.compile(r"\b(" + "|".join(map(re.escape, rule["words"])) + r")\b"))
            for rule in rules]


def classify_title(title: str, patterns: list[tuple[str, re.Pattern]]) -> str | None:
    """The first rule whose word occurs in the (lower-case) title."""
    return next((name for name, pattern in patterns if pattern.search(title)), None)


def classify_titles(titles: pd.Series, rules: list[dict], label: str) -> pd.Series:
    """First rule whose word occurs as a whole word in the title; missing if none."""
    patterns = title_patterns(rules, label)
    mapping = {title: classify_title(title, patterns) for title in titles.dropna().str.lower().unique()}
    return titles.str.lower().map(mapping).astype("string")


def _quoted(names: list[str]) -> str:
    return ", ".join(f"'{name}'" for name in names)


def _first(column: str, order: str, where: str | None = None) -> str:
    """The value of `column` on a person's first record by `order` among those that have one
    (and meet `where`)."""
    return f"arg_min({column}, {order}) FILTER (WHERE {column} IS NOT NULL{f' AND {where}' if where else ''})"


_TRUST_SQL = "CASE source " + " ".join(
    f"WHEN '{source}' THEN {rank}" for rank, source in enumerate(SOURCE_TRUST)) + " END"

# by_trust: the most trusted source first, then the most recent record; by_recency: the most
# recent record. Each attribute is the first record's that has it, in its order.
_PERSON_SQL = f"""
    WITH ranked AS (
        SELECT *,
               row_number() OVER (PARTITION BY pid ORDER BY {_TRUST_SQL}, seen_at DESC, record)
                   AS by_trust,
               row_number() OVER (PARTITION BY pid ORDER BY seen_at DESC, record) AS by_recency
        FROM person_record WHERE pid IS NOT NULL)
    SELECT pid,
           {_first("first_name", "by_trust")} AS first_name,
           {_first("last_name", "by_trust")} AS last_name,
           coalesce({_first("email", "by_trust", "work_domain IS NOT NULL")},
                    {_first("email", "by_trust")}) AS email,
           {_first("phone", "by_trust")} AS phone,
           {_first("owner_rep_id", "by_trust")} AS owner_rep_id,
           {_first("title", "by_recency")} AS title,
           coalesce({_first("cid", "by_recency", f"source NOT IN ({_quoted(PASSIVE_SOURCES)})")},
                    {_first("cid", "by_recency")}) AS cid,
           CASE WHEN bool_or(source = 'user_accounts') THEN pid END AS uid,
           min(seen_at) AS first_seen,
           min(seen_at) FILTER (WHERE source <> 'web_sessions') AS identified_at,
           {", ".join(f"min(seen_at) FILTER (WHERE {column} IS NOT NULL) AS {name}_known_at"
                      for name, column in KNOWN_AT_FIELDS.items())},
           max(seen_at) AS last_seen,
           count(*) AS records
    FROM ranked GROUP BY pid ORDER BY pid"""
STRING_COLUMNS = ["pid", "first_name", "last_name", "email", "phone", "owner_rep_id", "title", "cid", "uid"]


def person_table(records: pd.DataFrame, title_rules: dict, sql: IdentitySql) -> pd.DataFrame:
    """One row per PID from its resolved records (columns pid, cid added by the resolver), by
    survivorship on `sql`'s engine."""
    sql.put("person_record", records.reindex(columns=PERSON_RECORD_COLUMNS)
            .assign(record=records.index.to_numpy().astype("int64")))
    table = sql.fetch(_PERSON_SQL)
    table = table.astype({column: "string" for column in STRING_COLUMNS})
    # as the records' times (Spark returns them without a zone, in nanoseconds)
    table = table.assign(**{column: pd.to_datetime(table[column], utc=True).astype("datetime64[us, UTC]")
                            for column in TIMESTAMP_COLUMNS}, records=table["records"].astype("int64"))
    table["seniority"] = classify_titles(table["title"], title_rules["seniority"], "level")
    table["department"] = classify_titles(table["title"], title_rules["department"], "name")
    table["name"] = (table["first_name"].fillna("") + " " + table["last_name"].fillna("")).str.strip()
    return table
