"""Standardise identifiers so that exact comparison means something.

Each rule is written once, as a SQL expression in DuckDB's dialect built from the rules of
config/identity.yaml (the `*_sql` functions). The batch runs them over every raw row on the
identity engine (identity/records.py: DuckDB, or Spark with the same text transpiled by
sqlglot, identity/engine.py), the live path over a few records on an in-process DuckDB
(live/standardise.py), and the Series functions below over one column (`identity match`'s
mappings, the CRM accounts): the three cannot drift apart.

Two rules need what neither engine has: E.164 numbers through the `phonenumbers` library,
and accent folding through Unicode's NFKD ('Ｊｏｈｎ' -> 'John', 'ǅemal' -> 'Dzemal'; DuckDB's
`strip_accents` misses compatibility forms, Spark has nothing, and Python UDFs on Spark need
Python workers beside every executor). Those two run in Python once per distinct value
(`phone_table`, `fold_table`), and the SQL joins their results as tables `phone_e164(raw,
e164)` and `ascii_fold(raw, folded)`, as it joins the nicknames (`nickname_table`).
Whitespace is Python's (`str.isspace`, as `str.strip` and `re`'s `\\s` had it before) in every
pattern, spelt out as code points so that DuckDB's RE2 and Spark's Java regular expressions
read the same class.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import duckdb
import pandas as pd
import phonenumbers


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


def _whitespace_class() -> str:
    """Python's whitespace (every code point `str.isspace` holds, none above U+3000) as the
    inside of a regex class, in the `\\x{...}` escapes RE2 and Java both read."""
    points = [c for c in range(0x3001) if chr(c).isspace()]
    runs: list[list[int]] = []
    for point in points:
        if runs and point == runs[-1][1] + 1:
            runs[-1][1] = point
        else:
            runs.append([point, point])
    return "".join(f"\\x{{{a:X}}}" + (f"-\\x{{{b:X}}}" if b > a else "") for a, b in runs)


WS = _whitespace_class()
EMAIL_PATTERN = f"^[^@{WS}]+@[^@{WS}]+\\.[a-z]{{2,}}$"


def quoted(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _in(column: str, values: Iterable[str]) -> str:
    """`column IN (...)`, false for no values."""
    listed = ", ".join(quoted(value) for value in sorted(values))
    return f"{column} IN ({listed})" if listed else "false"


def _mapped(column: str, mapping: dict[str, str]) -> str:
    """`column` with each key of `mapping` replaced by its value (all at once, not chained)."""
    if not mapping:
        return column
    cases = " ".join(f"WHEN {quoted(key)} THEN {quoted(value)}" for key, value in sorted(mapping.items()))
    return f"CASE {column} {cases} ELSE {column} END"


def blank_sql(column: str) -> str:
    """Text trimmed of whitespace; blank as missing."""
    return f"nullif(regexp_replace(CAST({column} AS VARCHAR), '^[{WS}]+|[{WS}]+$', '', 'g'), '')"


def email_text_sql(given: str) -> str:
    """A given (blank-free) address lower-cased, every whitespace removed."""
    return f"regexp_replace(lower({given}), '[{WS}]+', '', 'g')"


def email_sql(text: str, rules: StandardiseRules | None = None) -> str:
    """Of `email_text_sql`'s text: missing unless shaped like an address. With rules, provider
    variants become one address: '+tag' dropped, domain aliases mapped (googlemail.com ->
    gmail.com), dots ignored where the provider ignores them (j.smith@gmail = jsmith@gmail)."""
    if rules is None:
        return f"CASE WHEN regexp_matches({text}, {quoted(EMAIL_PATTERN)}) THEN {text} END"
    # regexp_extract, not split_part: DuckDB 2.0 fails to bind `split_part(...) IN (...)` over a
    # column it knows to be all missing (a live group whose emails are all blank)
    local = f"regexp_replace(regexp_extract({text}, '^[^@]*', 0), '\\+.*$', '')"
    domain = _mapped(f"regexp_extract({text}, '[^@]*$', 0)", rules.email_domain_aliases)
    dotless = f"CASE WHEN {_in(domain, rules.email_dotless_domains)} THEN replace({local}, '.', '') " \
              f"ELSE {local} END"
    return f"CASE WHEN regexp_matches({text}, {quoted(EMAIL_PATTERN)}) THEN {dotless} || '@' || {domain} END"


def work_domain_sql(email: str, rules: StandardiseRules) -> str:
    """The employer's domain of a standardised address, or missing for free-mail providers."""
    domain = f"regexp_extract({email}, '[^@]*$', 0)"
    return f"CASE WHEN NOT ({_in(domain, rules.free_mail_domains)}) THEN {domain} END"


def name_token_sql(folded: str) -> str:
    """Of a given name part, accents folded: lower-case letters, spaces, apostrophes and
    hyphens; missing if none (`canonical_given_sql` then maps a given name's nickname)."""
    token = f"regexp_replace(regexp_replace(lower({folded}), '[^a-z{WS}''-]', '', 'g'), " \
            f"'^[{WS}]+|[{WS}]+$', '', 'g')"
    return f"nullif({token}, '')"


def nickname_table(rules: StandardiseRules) -> pd.DataFrame:
    """`nickname(token, canonical, twice)`: each nickname's canonical given name ('tim' ->
    'timothy'), and the mapping applied twice (a given name already mapped is mapped again in
    the name key). A table joined, not a CASE per nickname: DuckDB plans a CASE of 76 names
    in every query, about half of a live group's standardisation."""
    tokens = sorted(rules.nicknames)
    canonical = [rules.nicknames[token] for token in tokens]
    return pd.DataFrame({"token": tokens, "canonical": canonical,
                         "twice": [rules.nicknames.get(name, name) for name in canonical]}, dtype="string")


def canonical_given_sql(token: str, joined: str, column: str = "canonical") -> str:
    """A standardised name token with a nickname replaced by its canonical given name, where
    `joined` is table `nickname` joined on token (`column` twice: mapped twice over)."""
    return f"coalesce({joined}.{column}, {token})"


def full_name_part_sql(given: str, part: str) -> str:
    """'first' or 'last' of a (blank-free) full name: 'SMITH, John' -> (John, SMITH); 'John
    Smith' -> (John, Smith); a single word is a last name."""
    words = f"replace({given}, ',', ' ')"
    first_word = f"nullif(regexp_extract({words}, '^[{WS}]*([^{WS}]+)', 1), '')"
    last_word = f"nullif(regexp_extract({words}, '([^{WS}]+)[{WS}]*$', 1), '')"
    comma = f"strpos({given}, ',') > 0"
    if part == "last":
        return f"CASE WHEN {comma} THEN {first_word} ELSE {last_word} END"
    several = f"regexp_matches({words}, '[^{WS}][{WS}]+[^{WS}]')"
    return f"CASE WHEN NOT {several} THEN NULL WHEN {comma} THEN {last_word} ELSE {first_word} END"


def name_key_sql(first: str, last: str) -> str:
    """Order-free key of standardised name tokens ('zhang wei' == 'Wei Zhang'); missing unless
    both parts. With rules, give it tokens whose nicknames `canonical_given_sql` mapped in either
    part: the key is order-free, and a name written surname first ('Su Dan') puts the given
    name where the surname goes, so it must give the key of 'Dan Su' (whose given name was
    mapped). The shared-identifier guard counts these keys, so a person whose forms say 'Tim'
    and 'Timothy' stays one name."""
    return f"CASE WHEN {first} <= {last} THEN {first} || ' ' || {last} ELSE {last} || ' ' || {first} END"


def company_name_sql(folded: str, rules: StandardiseRules) -> str:
    """Of a company name, accents folded: lower-case words without punctuation or legal
    suffixes ('Acme China Co., Ltd.' -> 'acme china')."""
    words = f"regexp_replace(lower({folded}), '[^a-z0-9_{WS}&]+', ' ', 'g')"
    kept = f"lambda w: w <> '' AND NOT ({_in('w', rules.legal_suffixes)})"
    return f"nullif(array_to_string(list_filter(string_split_regex({words}, '[{WS}]+'), {kept}), ' '), '')"


def is_ascii_sql(column: str) -> str:
    """True where text holds only ASCII (accent folding leaves it as it is)."""
    return f"NOT regexp_matches({column}, '[^\\x{{0}}-\\x{{7F}}]')"


def _ascii_fold(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def fold_table(values: Iterable[str]) -> pd.DataFrame:
    """`ascii_fold(raw, folded)`: each distinct text with its accents folded."""
    raw = pd.unique(pd.Series(list(values), dtype=object).dropna())
    return pd.DataFrame({"raw": pd.array(raw, dtype="string"),
                         "folded": pd.array([_ascii_fold(text) for text in raw], dtype="string")})


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


def phone_table(values: Iterable[str], rules: StandardiseRules) -> pd.DataFrame:
    """`phone_e164(raw, e164)`: each distinct (blank-free) phone text in E.164 via the
    `phonenumbers` library; missing where it does not parse."""
    raw = pd.unique(pd.Series(list(values), dtype=object).dropna())
    return pd.DataFrame({"raw": pd.array(raw, dtype="string"), "e164": pd.array(
        [_parse_phone(text, rules.default_phone_region) for text in raw], dtype="string")})


def _on_duckdb(columns: dict[str, pd.Series], select: str,
               tables: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """`select` (reading table `v`, row number `_row`) run on an in-process DuckDB over
    `columns`, with `tables` registered by name; rows in `v`'s order."""
    index = next(iter(columns.values())).index
    frame = pd.DataFrame({name: values.astype(object).to_numpy() for name, values in columns.items()})
    with duckdb.connect() as con:
        con.register("v_df", frame.assign(_row=range(len(frame))))
        con.execute("CREATE TABLE v AS SELECT * FROM v_df")
        for name, table in (tables or {}).items():
            con.register(name, table)
        result = con.execute(f"SELECT * FROM ({select}) ORDER BY _row").df()
    return result.drop(columns="_row").astype("string").set_axis(index)


def _one(values: pd.Series, expression: str, tables: dict[str, pd.DataFrame] | None = None) -> pd.Series:
    """`expression` of column `x` for each value."""
    return _on_duckdb({"x": values}, f"SELECT _row, {expression} AS out FROM v", tables)["out"]


def _folded(values: pd.Series, rule: Callable[[str], str]) -> pd.Series:
    """`rule`'s expression of each value's blank-free text with its accents folded."""
    given = _one(values, blank_sql("x"))
    select = f"SELECT _row, {rule('coalesce(f.folded, x)')} AS out FROM v LEFT JOIN ascii_fold f ON f.raw = x"
    return _on_duckdb({"x": given}, select, {"ascii_fold": fold_table(given)})["out"]


def blank_to_na(values: pd.Series) -> pd.Series:
    return _one(values, blank_sql("x"))


def email(values: pd.Series, rules: StandardiseRules | None = None) -> pd.Series:
    """`email_sql` of each raw value."""
    return _one(values, email_sql(email_text_sql(blank_sql("x")), rules))


def work_domain(emails: pd.Series, rules: StandardiseRules) -> pd.Series:
    """`work_domain_sql` of each standardised address."""
    return _one(emails, work_domain_sql("x", rules))


def phone(values: pd.Series, rules: StandardiseRules) -> pd.Series:
    """E.164 of each raw value; unparseable numbers become missing."""
    given = _one(values, blank_sql("x"))
    return _on_duckdb({"x": given}, "SELECT _row, p.e164 AS out FROM v LEFT JOIN phone_e164 p ON p.raw = v.x",
                      {"phone_e164": phone_table(given, rules)})["out"]


def _canonical(tokens: pd.Series, rules: StandardiseRules) -> pd.Series:
    select = f"SELECT _row, {canonical_given_sql('x', 'n')} AS out FROM v LEFT JOIN nickname n ON n.token = x"
    return _on_duckdb({"x": tokens}, select, {"nickname": nickname_table(rules)})["out"]


def name_token(values: pd.Series, rules: StandardiseRules | None = None) -> pd.Series:
    """`name_token_sql` of each raw value; with rules, nicknames mapped (`canonical_given_sql`)."""
    tokens = _folded(values, name_token_sql)
    return tokens if rules is None else _canonical(tokens, rules)


def split_full_name(values: pd.Series) -> pd.DataFrame:
    """'SMITH, John' -> (John, SMITH); 'John Smith' -> (John, Smith)."""
    given = _one(values, blank_sql("x"))
    parts = _on_duckdb({"x": given}, f"SELECT _row, {full_name_part_sql('x', 'first')} AS first_name, "
                                     f"{full_name_part_sql('x', 'last')} AS last_name FROM v")
    return parts.astype(object).where(parts.notna(), None)


def name_key(first: pd.Series, last: pd.Series, rules: StandardiseRules | None = None) -> pd.Series:
    """`name_key_sql` of standardised name tokens; with rules, of their canonical given names."""
    if rules is not None:
        first, last = _canonical(first, rules), _canonical(last, rules)
    return _on_duckdb({"f": first, "l": last}, f"SELECT _row, {name_key_sql('f', 'l')} AS out FROM v")["out"]


def company_name(values: pd.Series, rules: StandardiseRules) -> pd.Series:
    """`company_name_sql` of each raw value."""
    return _folded(values, lambda folded: company_name_sql(folded, rules))


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


def website_domain(values: pd.Series) -> pd.Series:
    """'https://www.Acme.com/about' -> 'acme.com'."""
    cleaned = blank_to_na(values).str.lower()
    cleaned = cleaned.str.replace(r"^[a-z]+://", "", regex=True).str.replace(r"^www\.", "", regex=True)
    return cleaned.str.split("/").str[0].mask(lambda s: s == "")
