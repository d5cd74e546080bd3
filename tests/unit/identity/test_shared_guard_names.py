"""The shared-identifier guard counts names by their canonical form: one person who writes
a nickname on one form and the full name on another is one name; two people stay two."""

import pandas as pd
import pytest
import yaml

from leadscore.identity.engine import DuckDBSql
from leadscore.identity.link import resolve_people
from leadscore.identity.records import fetch_records, standardise_on
from leadscore.synth import vocab

AT = pd.Timestamp("2026-01-01", tz="UTC")


def _forms(rows: list[tuple[str, str, str, str]], std_rules) -> pd.DataFrame:
    """Standardised form fills from (id, first name, last name, cookie)."""
    raw = pd.DataFrame([{"form_fill_id": fid, "submitted_at": AT, "first_name": first, "last_name": last,
                         "cookie_id": cookie} for fid, first, last, cookie in rows])
    sql = DuckDBSql()
    standardise_on(sql, {"form_fills": raw}, std_rules)
    return fetch_records(sql).drop(columns=["_row", "reason"])


@pytest.mark.parametrize("names", [[("Tim", "Wright"), ("Timothy", "Wright")],
                                   [("Bill", "Smith"), ("SMITH", "William")],
                                   [("Dan", "Su"), ("Su", "Dan")],
                                   [("Maggie", "Moore"), ("Margaret", "Moore")]])
def test_a_cookie_carrying_one_persons_name_variants_is_evidence(names, std_rules):
    records = _forms([(f"F{i}", first, last, "k1") for i, (first, last) in enumerate(names)], std_rules)
    out = resolve_people(records, max_names=1)
    assert out["pid"].nunique() == 1
    assert not out["uses_shared_identifier"].any()


def test_a_cookie_carrying_two_peoples_names_stays_shared(std_rules):
    records = _forms([("F1", "Tim", "Wright", "k1"), ("F2", "Tom", "Wright", "k1"),
                      ("F3", "Timothy", "Wright", "k2")], std_rules)
    out = resolve_people(records, max_names=1)
    assert out["uses_shared_identifier"].iloc[:2].all()
    assert out["pid"].iloc[0] != out["pid"].iloc[1]


def test_the_nickname_table_knows_every_nickname_the_synthetic_world_writes(settings):
    """The generator's variants (synth/vocab.py) are the truth's; the configured table is a
    general one that must cover them, each nickname mapped to its full name's canonical form."""
    nicknames = yaml.safe_load(settings.config_file("identity.yaml").read_text())["nicknames"]
    missing = {nick: full for full, nick in vocab.NICKNAMES.items()
               if nicknames.get(nick.lower()) != nicknames.get(full.lower(), full.lower())}
    assert not missing


def test_no_canonical_name_is_itself_a_nickname(settings):
    """Mapping once must give the canonical form (the batch and live map each part once)."""
    nicknames = yaml.safe_load(settings.config_file("identity.yaml").read_text())["nicknames"]
    assert not set(nicknames.values()) & set(nicknames)
