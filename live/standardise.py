"""The batch's standardisation and quarantine rules on one record's plain values.

The batch standardises a source's whole frame with pandas string methods
(identity/records.py, identity/standardise.py): about 30 operations whose fixed cost (a few
milliseconds each) is nothing over a million rows and most of an ingest group's CPU over a
few hundred. Live, each record is standardised on its own values here, by the same rules
(the batch's regular expressions, phone parser, accent folding, suffix and region lists,
nicknames): `standardise_record` gives the row `standardise_records` gives, and
`quarantine_reason` the reason `quarantine_reasons` gives (tests/unit/live/
test_record_rules.py holds the two to each other on the tiny world's records).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import pandas as pd

from leadscore.identity import standardise as std
from leadscore.identity.records import PERSON_IDENTIFIERS, RECORD_COLUMNS, SOURCE_LAYOUT
from leadscore.identity.standardise import StandardiseRules

_WHITESPACE_RE = re.compile(r"\s+")
_PLUS_TAG_RE = re.compile(r"\+.*$")
_NOT_NAME_RE = re.compile(r"[^a-z\s'-]")
NO_IDENTIFIER = "no usable identifier (email, phone, cookie, contact or user id)"
NO_TIMESTAMP = "missing timestamp"


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (
        isinstance(value, float) and math.isnan(value))


def blank_to_na(value: object) -> str | None:
    """`std.blank_to_na` on one value: text trimmed, blank as missing."""
    if _missing(value):
        return None
    text = str(value).strip()
    return text or None


def email(value: object, rules: StandardiseRules) -> str | None:
    """`std.email` with rules on one value."""
    cleaned = blank_to_na(value)
    if cleaned is None:
        return None
    cleaned = _WHITESPACE_RE.sub("", cleaned.lower())
    if not std._EMAIL_RE.match(cleaned):
        return None
    parts = cleaned.split("@")
    local, domain = _PLUS_TAG_RE.sub("", parts[0]), parts[-1]
    domain = rules.email_domain_aliases.get(domain, domain)
    if domain in rules.email_dotless_domains:
        local = local.replace(".", "")
    return f"{local}@{domain}"


def work_domain(address: str | None, rules: StandardiseRules) -> str | None:
    """`std.work_domain`: the address's domain unless a free-mail provider's."""
    if address is None:
        return None
    domain = address.split("@")[-1]
    return None if domain in rules.free_mail_domains else domain


def phone(value: object, rules: StandardiseRules) -> str | None:
    """`std.phone` on one value (E.164, or missing)."""
    cleaned = blank_to_na(value)
    return None if cleaned is None else std._parse_phone(cleaned, rules.default_phone_region)


def name_token(value: object, nicknames: Mapping[str, str] | None = None) -> str | None:
    """`std.name_token` on one value (with the rules' nicknames when given)."""
    cleaned = blank_to_na(value)
    if cleaned is None:
        return None
    token = _NOT_NAME_RE.sub("", std._ascii_fold(cleaned).lower()).strip()
    if nicknames is not None:
        token = nicknames.get(token, token)
    return token or None


def split_full_name(value: object) -> tuple[str | None, str | None]:
    """`std.split_full_name` on one value: (first, last)."""
    cleaned = blank_to_na(value)
    if cleaned is None:
        return None, None
    parts = cleaned.replace(",", " ").split()
    if not parts:
        return None, None
    comma = "," in cleaned
    first, last = (parts[-1], parts[0]) if comma else (parts[0], parts[-1])
    return (None if len(parts) == 1 else first), last


def name_key(first: str | None, last: str | None,
             nicknames: Mapping[str, str] | None = None) -> str | None:
    """`std.name_key`: order-free, missing unless both parts; with the rules' nicknames, a
    nickname is mapped in either part (a name written surname first)."""
    if first is None or last is None:
        return None
    if nicknames is not None:
        first, last = nicknames.get(first, first), nicknames.get(last, last)
    return f"{first} {last}" if first <= last else f"{last} {first}"


def company_name(value: object, rules: StandardiseRules) -> str | None:
    """`std.company_name` on one value."""
    cleaned = blank_to_na(value)
    if cleaned is None:
        return None
    text = std._NON_WORD_RE.sub(" ", std._ascii_fold(cleaned).lower())
    return std._drop_words(text, rules.legal_suffixes) or None


def _field_issue(raw: Mapping, kept: Mapping) -> str | None:
    """`records.field_issues` of one record: why a given email or phone was not usable."""
    issues = []
    for name, reason in (("email", "not an address"), ("phone", "not a phone number")):
        given = blank_to_na(raw.get(name))
        if given is not None and kept[name] is None:
            issues.append(f"{name} {reason}: {given[:60]}")
    return "; ".join(issues) or None


def source_record(source: str, raw: Mapping) -> dict:
    """`records.source_records` of one raw record (a dict of the source's raw columns)."""
    id_column, time_column, renames = SOURCE_LAYOUT[source]
    row = {renames.get(name, name): value for name, value in raw.items()}
    if "full_name" in row:
        row["first_name"], row["last_name"] = split_full_name(row["full_name"])
    record = {column: row.get(column) for column in RECORD_COLUMNS}
    identifier = raw[id_column]
    record.update(source=source, source_record_id=None if _missing(identifier) else str(identifier),
                  seen_at=raw[time_column])
    if source != "user_accounts":
        record["user_id"] = None
    return record


def standardise_record(source: str, raw: Mapping, rules: StandardiseRules) -> dict:
    """The row `records.standardise_records(records.source_records(source, frame))` gives for
    this raw record, with None for missing."""
    record = source_record(source, raw)
    first, last = name_token(record["first_name"], rules.nicknames), name_token(record["last_name"])
    address = email(record["email"], rules)
    kept = {"email": address, "phone": phone(record["phone"], rules)}
    return record | kept | {
        "field_issue": _field_issue(record, kept),
        "first_name_std": first, "last_name_std": last, "name_key": name_key(first, last, rules.nicknames),
        "work_domain": work_domain(address, rules),
        "company_name_std": company_name(record["company_name"], rules),
        **{column: blank_to_na(record[column])
           for column in ("cookie_id", "contact_id", "user_id", "account_id")}}


def quarantine_reason(record: Mapping) -> str | None:
    """`records.quarantine_reasons` of one standardised record (None: it can be resolved)."""
    if _missing(record["seen_at"]):
        return NO_TIMESTAMP
    if all(record[kind] is None for kind in PERSON_IDENTIFIERS):
        return NO_IDENTIFIER
    return None
