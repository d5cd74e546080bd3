"""Describe any table of people with a YAML column mapping, and standardise it.

A mapping names which source column plays which role (given name, surname,
date of birth, address parts, email, phone, exact identifier...). Standardising
turns any mapped table into the same set of columns, so that one probabilistic
model (identity/probabilistic.py) can match a CRM export, a web-form dump or
FEBRL alike. Roles a table does not have are simply missing (all-NA) columns:
the model then learns nothing from them instead of failing.
"""

from __future__ import annotations

import difflib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from leadscore.identity import standardise as std
from leadscore.identity.standardise import StandardiseRules

logger = logging.getLogger(__name__)

# Every role a person table can map, in the order of the standardised output.
ROLES = (
    "given_name", "surname", "full_name", "date_of_birth", "street_number", "address_1",
    "address_2", "locality", "region", "postcode", "email", "phone", "company", "title", "exact_id",
    "gender", "occupation", "birth_place",
)
# Columns derived from the roles, for blocking (phonetic codes, order-free name keys).
DERIVED = ("given_name_sdx", "surname_sdx", "name_key", "name_sdx_key")
RECORD_ID = "record_id"
_DATE_PARTS = {"%Y": r"(?P<y>\d{4})", "%m": r"(?P<m>\d{1,2})", "%d": r"(?P<d>\d{1,2})"}
_SOUNDEX_CODES = dict.fromkeys("bfpv", "1") | dict.fromkeys("cgjkqsxz", "2") | dict.fromkeys(
    "dt", "3") | {"l": "4", "m": "5", "n": "5", "r": "6"}


@dataclass(frozen=True)
class TableMapping:
    """Which source column plays which role; `record_id=None` numbers the rows 0..n-1."""

    columns: dict[str, str]
    record_id: str | None = None
    date_of_birth_format: str = "%Y-%m-%d"

    @classmethod
    def from_config(cls, raw: dict[str, Any]) -> TableMapping:
        unknown = sorted(set(raw.get("columns", {})) - set(ROLES))
        if unknown:
            raise ValueError(f"unknown role(s) in the mapping's columns: {_with_suggestions(unknown)}. "
                             f"The roles are: {', '.join(ROLES)}. Leave out a column no role fits.")
        return cls(
            columns={role: col for role, col in raw.get("columns", {}).items() if col},
            record_id=raw.get("record_id"),
            date_of_birth_format=raw.get("date_of_birth_format", "%Y-%m-%d"),
        )


def _with_suggestions(unknown: list[str]) -> str:
    """'gendre (did you mean gender?), hobby': each unknown role with its nearest known one."""
    def one(role: str) -> str:
        close = difflib.get_close_matches(role, ROLES, n=1)
        return f"{role} (did you mean {close[0]}?)" if close else role
    return ", ".join(map(one, unknown))


def load_mapping(path: Path) -> TableMapping:
    """Read the `mapping:` section of a mapping file (the I/O edge of this module)."""
    raw = yaml.safe_load(Path(path).read_text())
    return TableMapping.from_config(raw.get("mapping", raw))


def check_columns(frame: pd.DataFrame, mapping: TableMapping, table_name: str) -> None:
    """Fail early, naming the column and the table, rather than deep inside SQL."""
    wanted = list(mapping.columns.values()) + ([mapping.record_id] if mapping.record_id else [])
    missing = [col for col in wanted if col not in frame.columns]
    if missing:
        raise ValueError(
            f"column(s) {missing} named in the mapping are missing from table '{table_name}' "
            f"(it has {list(frame.columns)})"
        )


def free_text(values: pd.Series) -> pd.Series:
    """Lower-case, accent-free words and digits with single spaces; punctuation dropped."""
    cleaned = std.blank_to_na(values).str.normalize("NFKD").str.encode("ascii", "ignore").str.decode("ascii")
    cleaned = cleaned.str.lower().str.replace(r"[^\w\s]", " ", regex=True)
    cleaned = cleaned.str.replace(r"\s+", " ", regex=True).str.strip()
    return cleaned.astype("string").mask(lambda s: s == "")


def compact_code(values: pd.Series) -> pd.Series:
    """Postcodes and identifiers: 'sw1a 1aa' == 'SW1A-1AA' -> 'SW1A1AA'."""
    cleaned = std.blank_to_na(values).str.upper().str.replace(r"[\s\-./]", "", regex=True)
    return cleaned.mask(lambda s: s == "")


def _date_regex(fmt: str) -> re.Pattern[str] | None:
    """A regex for formats made only of %Y/%m/%d and literal separators, else None."""
    parts = re.split(r"(%.)", fmt)
    if any(part.startswith("%") and part not in _DATE_PARTS for part in parts):
        return None
    return re.compile("^" + "".join(_DATE_PARTS.get(part, re.escape(part)) for part in parts) + "$")


def date_of_birth(values: pd.Series, fmt: str) -> pd.Series:
    """ISO 'YYYY-MM-DD' text. Values shaped like the format but not a real date
    ('1959-03-98') are kept: a mistyped digit is still evidence under edit distance."""
    cleaned = std.blank_to_na(values)
    pattern = _date_regex(fmt)
    if pattern is None:
        parsed = pd.to_datetime(cleaned, format=fmt, errors="coerce")
        return parsed.dt.strftime("%Y-%m-%d").astype("string")
    parts = cleaned.str.extract(pattern)
    iso = (parts["y"] + "-" + parts["m"].str.zfill(2) + "-" + parts["d"].str.zfill(2)).astype("string")
    given, read = int(cleaned.notna().sum()), int(iso.notna().sum())
    if given and read < given / 2:  # the copied mapping's format, not the table's
        example = cleaned.dropna().iloc[0]
        logger.warning("date_of_birth: %d of %d values do not have the mapping's date_of_birth_format %r "
                       "(e.g. %r) and are left empty: set the format of the table's dates",
                       given - read, given, fmt, example)
    return iso


def _soundex_one(word: str) -> str | None:
    letters = "".join(ch for ch in word if ch.isalpha())
    if not letters:
        return None
    code, last = letters[0], _SOUNDEX_CODES.get(letters[0], "")
    for ch in letters[1:]:
        digit = _SOUNDEX_CODES.get(ch, "")
        if digit and digit != last:
            code += digit
        if ch not in "hw":  # h and w do not separate equal codes; vowels do
            last = digit
    return (code + "000")[:4]


def soundex(values: pd.Series) -> pd.Series:
    """American Soundex of standardised names ('smith' == 'smyth' -> 's530'): a
    blocking key that survives most typos. Computed once per distinct value."""
    distinct = values.dropna().unique()
    codes = {value: _soundex_one(value) for value in distinct}
    return values.map(codes).astype("string")


def _role(frame: pd.DataFrame, mapping: TableMapping, role: str) -> pd.Series:
    column = mapping.columns.get(role)
    if column is None:
        return pd.Series(pd.NA, index=frame.index, dtype="string")
    return frame[column]


def _names(frame: pd.DataFrame, mapping: TableMapping, rules: StandardiseRules) -> pd.DataFrame:
    """Given name (nicknames mapped) and surname; a full name fills in what is not mapped."""
    given, surname = _role(frame, mapping, "given_name"), _role(frame, mapping, "surname")
    if "full_name" in mapping.columns:
        split = std.split_full_name(frame[mapping.columns["full_name"]])
        given = given.astype("string").fillna(split["first_name"])
        surname = surname.astype("string").fillna(split["last_name"])
    given, surname = std.name_token(given, rules), std.name_token(surname)
    return pd.DataFrame({
        "given_name": given,
        "surname": surname,
        "full_name": (given + " " + surname).astype("string"),  # missing unless both parts
    })


def _record_ids(frame: pd.DataFrame, mapping: TableMapping, table_name: str) -> pd.Series:
    if mapping.record_id is None:
        return pd.Series(np.arange(len(frame)), index=frame.index)
    ids = frame[mapping.record_id]
    if ids.isna().any() or ids.duplicated().any():
        raise ValueError(f"record id column '{mapping.record_id}' of table '{table_name}' "
                         "must be unique and never missing")
    return ids


def _derived(table: pd.DataFrame) -> pd.DataFrame:
    given_sdx, surname_sdx = soundex(table["given_name"]), soundex(table["surname"])
    return table.assign(
        given_name_sdx=given_sdx,
        surname_sdx=surname_sdx,
        name_key=std.name_key(table["given_name"], table["surname"]),
        name_sdx_key=std.name_key(given_sdx, surname_sdx),
    )


def empty_standard_table() -> pd.DataFrame:
    return pd.DataFrame({col: pd.Series(dtype="string") for col in (RECORD_ID, *ROLES, *DERIVED)})


def standardise_table(
    frame: pd.DataFrame, mapping: TableMapping, rules: StandardiseRules, table_name: str = "table"
) -> pd.DataFrame:
    """One row per source row with the columns `record_id`, every role in ROLES and
    the DERIVED blocking keys, all standardised; unmapped roles are all missing."""
    check_columns(frame, mapping, table_name)
    if frame.empty:
        logger.warning("table '%s' is empty: nothing to standardise", table_name)
        return empty_standard_table()
    table = pd.DataFrame({RECORD_ID: _record_ids(frame, mapping, table_name)}, index=frame.index)
    table = table.join(_names(frame, mapping, rules))
    raw = {role: _role(frame, mapping, role) for role in ROLES}
    table["date_of_birth"] = date_of_birth(raw["date_of_birth"], mapping.date_of_birth_format)
    for text_role in ("street_number", "address_1", "address_2", "locality", "region", "title",
                      "gender", "occupation", "birth_place"):
        table[text_role] = free_text(raw[text_role])
    table["postcode"], table["exact_id"] = compact_code(raw["postcode"]), compact_code(raw["exact_id"])
    table["email"], table["phone"] = std.email(raw["email"], rules), std.phone(raw["phone"], rules)
    table["company"] = std.company_name(raw["company"], rules)
    return _derived(table[[RECORD_ID, *ROLES]]).reset_index(drop=True)
