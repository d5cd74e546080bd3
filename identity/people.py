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
"""

from __future__ import annotations

import re

import pandas as pd

# Records the person did not author: mail we sent, and anonymous browsing.
PASSIVE_SOURCES = ["email_activity", "web_sessions"]
KNOWN_AT_FIELDS = {"email": "email", "phone": "phone", "title": "title", "company": "cid"}
SOURCE_TRUST = ["crm_contacts", "user_accounts", "form_fills", "event_registrations",
                "orders", "opportunities", "email_activity", "web_sessions"]


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


def _ordered(records: pd.DataFrame) -> pd.DataFrame:
    trust = records["source"].map(SOURCE_TRUST.index)
    return records.assign(_trust=trust).sort_values(["_trust", "seen_at"], ascending=[True, False])


def person_table(records: pd.DataFrame, title_rules: dict) -> pd.DataFrame:
    """One row per PID from its resolved records (columns pid, cid added by the resolver)."""
    people = records.dropna(subset=["pid"])
    trusted = _ordered(people).groupby("pid")
    recent = people.sort_values("seen_at", ascending=False).groupby("pid")
    work = _ordered(people[people["work_domain"].notna()]).groupby("pid")["email"].first()
    table = trusted[["first_name", "last_name", "email", "phone", "owner_rep_id"]].first()
    table["email"] = work.reindex(table.index).fillna(table["email"])
    table["title"] = recent["title"].first()
    active = people[~people["source"].isin(PASSIVE_SOURCES)]
    table["cid"] = active.sort_values("seen_at", ascending=False).groupby("pid")["cid"].first()
    table["cid"] = table["cid"].fillna(recent["cid"].first())
    with_account = people.loc[people["source"] == "user_accounts", "pid"].unique()
    table["uid"] = table.index.to_series().where(table.index.isin(with_account))
    table["first_seen"] = people.groupby("pid")["seen_at"].min()
    identified = people[people["source"] != "web_sessions"]
    table["identified_at"] = identified.groupby("pid")["seen_at"].min()
    for name, column in KNOWN_AT_FIELDS.items():
        table[f"{name}_known_at"] = people.dropna(subset=[column]).groupby("pid")["seen_at"].min()
    table["last_seen"] = people.groupby("pid")["seen_at"].max()
    table["records"] = people.groupby("pid").size()
    table["seniority"] = classify_titles(table["title"], title_rules["seniority"], "level")
    table["department"] = classify_titles(table["title"], title_rules["department"], "name")
    table["name"] = (table["first_name"].fillna("") + " " + table["last_name"].fillna("")).str.strip()
    return table.reset_index()
