"""Turn each raw source into uniform identity records, or quarantine them.

Every raw row of a person-bearing source becomes one record with the same
columns (standardised identifiers, names, company evidence, time), so that
linking treats all sources alike. Rows that cannot be resolved at all go to
quarantine with a reason: records in = records kept + records quarantined.
"""

from __future__ import annotations

import pandas as pd

from leadscore.identity import standardise as std
from leadscore.identity.standardise import StandardiseRules

RECORD_COLUMNS = [
    "source", "source_record_id", "first_name", "last_name", "email", "phone", "cookie_id",
    "contact_id", "user_id", "account_id", "company_name", "title", "owner_rep_id", "seen_at",
]
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


def source_records(name: str, raw: pd.DataFrame) -> pd.DataFrame:
    """One source's rows in the shared record layout (identifiers not yet standardised)."""
    id_column, time_column, renames = SOURCE_LAYOUT[name]
    frame = raw.rename(columns=renames)
    if "full_name" in frame.columns:
        frame = frame.join(std.split_full_name(frame["full_name"]))
    frame = frame.assign(
        source=name,
        source_record_id=raw[id_column].astype("string"),
        seen_at=raw[time_column],
    )
    if name == "crm_contacts":
        frame = frame.assign(contact_id=raw["contact_id"])
    if name != "user_accounts":
        frame = frame.drop(columns=["user_id"], errors="ignore")
    return frame.reindex(columns=RECORD_COLUMNS)


def standardise_records(records: pd.DataFrame, rules: StandardiseRules) -> pd.DataFrame:
    """Standardised identifiers, names and company names, plus the derived keys."""
    first = std.name_token(records["first_name"], rules)
    last = std.name_token(records["last_name"])
    email = std.email(records["email"], rules)
    phone = std.phone(records["phone"], rules)
    company = std.company_name(records["company_name"], rules)
    return records.assign(
        email=email,
        phone=phone,
        field_issue=field_issues(records, email, phone),
        first_name_std=first,
        last_name_std=last,
        name_key=std.name_key(first, last, rules),
        work_domain=std.work_domain(email, rules),
        company_name_std=company,
        cookie_id=std.blank_to_na(records["cookie_id"]),
        contact_id=std.blank_to_na(records["contact_id"]),
        user_id=std.blank_to_na(records["user_id"]),
        account_id=std.blank_to_na(records["account_id"]),
    )


def field_issues(raw: pd.DataFrame, email: pd.Series, phone: pd.Series) -> pd.Series:
    """Why a given email or phone was not usable ('email not an address: "x@"'), else missing.

    The record is kept on its other identifiers; the reason is kept too, so that nothing
    is dropped silently."""
    issues = pd.Series(pd.NA, index=raw.index, dtype="string")
    for name, kept, reason in (("email", email, "not an address"), ("phone", phone, "not a phone number")):
        given = std.blank_to_na(raw[name])
        lost = given.notna() & kept.isna()
        text = f"{name} {reason}: " + given.where(lost).str.slice(0, 60)
        issues = issues.mask(lost & issues.isna(), text).mask(lost & issues.notna(), issues + "; " + text)
    return issues


def quarantine_reasons(records: pd.DataFrame) -> pd.Series:
    """Why each record cannot be resolved (missing where it can)."""
    no_identifier = records[PERSON_IDENTIFIERS].isna().all(axis=1)
    reasons = pd.Series(pd.NA, index=records.index, dtype="string")
    reasons = reasons.mask(no_identifier, "no usable identifier (email, phone, cookie, contact or user id)")
    return reasons.mask(records["seen_at"].isna(), "missing timestamp")


def split_quarantine(
    records: pd.DataFrame, raw_rows: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(kept records, quarantine rows with the raw row as JSON)."""
    reasons = quarantine_reasons(records)
    bad = reasons.notna()
    quarantine = pd.DataFrame(
        {
            "source": records.loc[bad, "source"],
            "source_record_id": records.loc[bad, "source_record_id"],
            "reason": reasons[bad],
            "raw": raw_rows.loc[bad].astype("string").to_json(orient="records", lines=True)
            .splitlines() if bad.any() else [],
        }
    )
    return records.loc[~bad], quarantine.reindex(columns=QUARANTINE_COLUMNS)


def all_records(
    sources: dict[str, pd.DataFrame], rules: StandardiseRules
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every person-bearing raw row as a standardised record, and the quarantine."""
    kept, quarantined = [], []
    for name in SOURCE_LAYOUT:
        raw = sources[name].reset_index(drop=True)
        records = standardise_records(source_records(name, raw), rules)
        good, bad = split_quarantine(records, raw)
        kept.append(good)
        quarantined.append(bad)
    return (
        pd.concat(kept, ignore_index=True),
        pd.concat(quarantined, ignore_index=True),
    )
