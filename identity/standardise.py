"""Standardise identifiers so that exact comparison means something.

Each function takes a pandas Series of raw values and returns a Series of
standardised values (missing stays missing). Phone parsing, the slow step,
runs once per distinct raw value.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import phonenumbers

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$")
_NON_WORD_RE = re.compile(r"[^\w\s&]+")
_SPACES_RE = re.compile(r"\s+")


@dataclass(frozen=True)
class StandardiseRules:
    """The data behind standardisation, read from config/identity.yaml."""

    default_phone_region: str = "CN"
    free_mail_domains: frozenset[str] = frozenset()
    legal_suffixes: frozenset[str] = frozenset()
    regional_qualifiers: frozenset[str] = frozenset()
    nicknames: dict[str, str] = field(default_factory=dict)
    email_domain_aliases: dict[str, str] = field(default_factory=dict)
    email_dotless_domains: frozenset[str] = frozenset()

    @classmethod
    def from_config(cls, raw: dict) -> StandardiseRules:
        return cls(
            default_phone_region=raw.get("default_phone_region", "CN"),
            free_mail_domains=frozenset(raw.get("free_mail_domains", [])),
            legal_suffixes=frozenset(raw.get("legal_suffixes", [])),
            regional_qualifiers=frozenset(raw.get("regional_qualifiers", [])),
            nicknames=dict(raw.get("nicknames", {})),
            email_domain_aliases=dict(raw.get("email_domain_aliases", {})),
            email_dotless_domains=frozenset(raw.get("email_dotless_domains", [])),
        )


def blank_to_na(values: pd.Series) -> pd.Series:
    values = values.astype("string").str.strip()
    return values.mask(values == "")


def email(values: pd.Series, rules: StandardiseRules | None = None) -> pd.Series:
    """Trim and lower-case; anything not shaped like an address is missing. With rules, provider
    variants become one address: '+tag' dropped, domain aliases mapped (googlemail.com ->
    gmail.com), dots ignored where the provider ignores them (j.smith@gmail = jsmith@gmail)."""
    cleaned = blank_to_na(values).str.lower().str.replace(r"\s+", "", regex=True)
    cleaned = cleaned.where(cleaned.str.match(_EMAIL_RE).fillna(False).astype(bool))
    if rules is None:
        return cleaned
    local, domain = cleaned.str.split("@").str[0], cleaned.str.split("@").str[-1]
    local = local.str.replace(r"\+.*$", "", regex=True)
    domain = domain.replace(rules.email_domain_aliases)
    local = local.where(~domain.isin(rules.email_dotless_domains), local.str.replace(".", "", regex=False))
    return (local + "@" + domain).where(cleaned.notna())


def email_domain(emails: pd.Series) -> pd.Series:
    return emails.str.split("@").str[-1]


def work_domain(emails: pd.Series, rules: StandardiseRules) -> pd.Series:
    """The employer's domain of an address, or missing for free-mail providers."""
    domains = email_domain(emails)
    return domains.mask(domains.isin(rules.free_mail_domains))


def _parse_phone(raw: str, region: str) -> str | None:
    digits = re.sub(r"[^\d+]", "", raw)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    try:
        number = phonenumbers.parse(digits, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone(values: pd.Series, rules: StandardiseRules) -> pd.Series:
    """E.164 via the `phonenumbers` library; unparseable numbers become missing."""
    cleaned = blank_to_na(values)
    distinct = cleaned.dropna().unique()
    parsed = {raw: _parse_phone(raw, rules.default_phone_region) for raw in distinct}
    return cleaned.map(parsed).astype("string")


def _ascii_fold(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def name_token(values: pd.Series, rules: StandardiseRules | None = None) -> pd.Series:
    """Lower-case, accent-free; nicknames mapped to their canonical given name."""
    cleaned = blank_to_na(values).dropna().map(_ascii_fold).str.lower()
    cleaned = cleaned.str.replace(r"[^a-z\s'-]", "", regex=True).str.strip()
    if rules is not None:
        cleaned = canonical_given(cleaned, rules)
    return cleaned.reindex(values.index).astype("string").mask(lambda s: s == "")


def canonical_given(tokens: pd.Series, rules: StandardiseRules) -> pd.Series:
    """Standardised name tokens with each nickname replaced by its canonical given name
    ('tim' -> 'timothy'); any other token unchanged."""
    return tokens.map(rules.nicknames).fillna(tokens).astype(tokens.dtype)


def split_full_name(values: pd.Series) -> pd.DataFrame:
    """'SMITH, John' -> (John, SMITH); 'John Smith' -> (John, Smith)."""
    cleaned = blank_to_na(values)
    comma = cleaned.str.contains(",", regex=False).fillna(False).astype(bool)
    parts = cleaned.str.replace(",", " ", regex=False).str.split()
    first = parts.str[0].where(~comma, parts.str[-1])
    last = parts.str[-1].where(~comma, parts.str[0])
    single = parts.str.len() == 1
    first = first.mask(single.fillna(False).astype(bool))
    return pd.DataFrame({"first_name": first, "last_name": last}, index=values.index)


def name_key(first: pd.Series, last: pd.Series, rules: StandardiseRules | None = None) -> pd.Series:
    """Order-free key of a standardised name ('zhang wei' == 'Wei Zhang'); missing unless both parts.

    With rules, a nickname is mapped in either part: the key is order-free, and a name written
    surname first ('Su Dan') puts the given name where the surname goes, so it must give the
    key of 'Dan Su' (whose given name `name_token` mapped). The shared-identifier guard counts
    these keys, so a person whose forms say 'Tim' and 'Timothy' stays one name."""
    if rules is not None:
        first, last = canonical_given(first, rules), canonical_given(last, rules)
    both = first.notna() & last.notna()
    key = np.where(
        first.fillna("") <= last.fillna(""),
        first.fillna("") + " " + last.fillna(""),
        last.fillna("") + " " + first.fillna(""),
    )
    return pd.Series(key, index=first.index, dtype="string").where(both)


def company_name(values: pd.Series, rules: StandardiseRules) -> pd.Series:
    """Lower-case words without punctuation or legal suffixes ('Acme China Co., Ltd.' -> 'acme china')."""
    cleaned = blank_to_na(values).dropna().map(_ascii_fold).str.lower()
    cleaned = cleaned.str.replace(_NON_WORD_RE, " ", regex=True)
    cleaned = cleaned.map(lambda text: _drop_words(text, rules.legal_suffixes))
    return cleaned.reindex(values.index).astype("string").mask(lambda s: s == "")


_CONNECTIVES = frozenset({"of", "and", "&", "for", "the", "de"})


def _strip_trailing_regions(text: str, regions: frozenset[str]) -> str:
    """'acme east china' -> 'acme'; 'bank of china' stays whole (a region that names the firm)."""
    words = text.split()
    keep = len(words)
    while keep > 1 and words[keep - 1] in regions:
        keep -= 1
    if keep < len(words) and words[keep - 1] in _CONNECTIVES:
        return text
    return " ".join(words[:keep])


def group_name(company_names: pd.Series, rules: StandardiseRules) -> pd.Series:
    """The group a subsidiary belongs to: trailing regional qualifiers dropped
    ('acme east china' -> 'acme'), never the first word, never after 'of' ('bank of china')."""
    stripped = company_names.dropna().map(
        lambda text: _strip_trailing_regions(text, rules.regional_qualifiers))
    return stripped.reindex(company_names.index).astype("string")


def _drop_words(text: str, words: frozenset[str]) -> str:
    return " ".join(word for word in _SPACES_RE.split(text.strip()) if word and word not in words)


def website_domain(values: pd.Series) -> pd.Series:
    """'https://www.Acme.com/about' -> 'acme.com'."""
    cleaned = blank_to_na(values).str.lower()
    cleaned = cleaned.str.replace(r"^[a-z]+://", "", regex=True).str.replace(r"^www\.", "", regex=True)
    return cleaned.str.split("/").str[0].mask(lambda s: s == "")
