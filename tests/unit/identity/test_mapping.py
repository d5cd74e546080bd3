import logging
from pathlib import Path

import pandas as pd
import pytest

from leadscore.identity.mapping import (
    DERIVED,
    RECORD_ID,
    ROLES,
    TableMapping,
    date_of_birth,
    load_mapping,
    soundex,
    standardise_table,
)

PROJECT_ROOT = Path(__file__).resolve().parents[3]
FEBRL_LIKE = TableMapping(
    columns={"given_name": "given", "surname": "family", "date_of_birth": "dob", "postcode": "pc",
             "exact_id": "ssn"},
    date_of_birth_format="%Y%m%d",
)


def _febrl_like() -> pd.DataFrame:
    return pd.DataFrame({
        "given": ["Bill", " Zoë ", None],
        "family": ["SMITH", "O'Neil", "Nguyen"],
        "dob": ["19560409", "19590398", ""],
        "pc": ["2119", " 3165 ", None],
        "ssn": ["180-4974", "6089216", "1"],
    })


def test_missing_column_names_the_column_and_the_table(std_rules):
    frame = _febrl_like().drop(columns=["dob"])
    with pytest.raises(ValueError, match=r"\['dob'\].*'crm_export'"):
        standardise_table(frame, FEBRL_LIKE, std_rules, "crm_export")


def test_empty_table_warns_and_gives_empty_standard_table(std_rules, caplog):
    with caplog.at_level(logging.WARNING):
        out = standardise_table(_febrl_like().iloc[:0], FEBRL_LIKE, std_rules, "empty_export")
    assert out.empty
    assert list(out.columns) == [RECORD_ID, *ROLES, *DERIVED]
    assert "empty_export" in caplog.text


def test_standardise_names_dates_codes_and_row_ids(std_rules):
    out = standardise_table(_febrl_like(), FEBRL_LIKE, std_rules)
    assert list(out[RECORD_ID]) == [0, 1, 2]
    assert list(out["given_name"].iloc[:2]) == ["william", "zoe"]  # nickname, accent
    assert out["full_name"].iloc[0] == "william smith"
    assert pd.isna(out["full_name"].iloc[2])  # one part only: no full name
    # a mistyped day is kept: it is still evidence under edit distance
    assert list(out["date_of_birth"].iloc[:2]) == ["1956-04-09", "1959-03-98"]
    assert list(out["exact_id"].iloc[:2]) == ["1804974", "6089216"]
    assert out["email"].isna().all()  # unmapped role: all missing, not an error


def test_full_name_fills_unmapped_given_name_and_surname(std_rules):
    mapping = TableMapping(columns={"full_name": "name", "email": "mail"}, record_id="key")
    frame = pd.DataFrame({"key": ["a", "b"], "name": ["SMITH, Bob", "Wei Zhang"],
                          "mail": ["Bob.Smith@Acme.com", "nope"]})
    out = standardise_table(frame, mapping, std_rules)
    assert list(out[RECORD_ID]) == ["a", "b"]
    assert list(out["given_name"]) == ["robert", "wei"]
    assert list(out["surname"]) == ["smith", "zhang"]
    assert out["email"].iloc[0] == "bob.smith@acme.com" and pd.isna(out["email"].iloc[1])


def test_duplicate_record_ids_are_refused(std_rules):
    mapping = TableMapping(columns={"surname": "name"}, record_id="key")
    with pytest.raises(ValueError, match="unique"):
        standardise_table(pd.DataFrame({"key": [1, 1], "name": ["a", "b"]}), mapping, std_rules)


@pytest.mark.parametrize(("raw", "fmt", "iso"), [
    ("1/2/1980", "%d/%m/%Y", "1980-02-01"),
    ("12 Jan 1980", "%d %b %Y", "1980-01-12"),
    ("19800112", "%Y%m%d", "1980-01-12"),
])
def test_date_formats(raw, fmt, iso):
    assert date_of_birth(pd.Series([raw]), fmt).iloc[0] == iso


def test_soundex_groups_spelling_variants():
    codes = soundex(pd.Series(["robert", "rupert", "smith", "smyth", "ashcraft", "pfister", None]))
    assert list(codes.iloc[:6]) == ["r163", "r163", "s530", "s530", "a261", "p236"]
    assert pd.isna(codes.iloc[6])


def test_unknown_role_is_refused():
    with pytest.raises(ValueError, match="unknown role"):
        TableMapping.from_config({"columns": {"nickname": "nick"}})


def test_febrl_mapping_loads(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("mapping:\n  date_of_birth_format: '%Y%m%d'\n  columns:\n    surname: surname\n")
    mapping = load_mapping(path)
    assert mapping.columns == {"surname": "surname"} and mapping.record_id is None


def test_person_profiles_mapping_standardises_a_profile_table(std_rules):
    mapping = load_mapping(PROJECT_ROOT / "config" / "mappings" / "person_profiles.yaml")
    frame = pd.DataFrame({
        "pid": ["P1", "P2"], "first_name_std": ["wei", "william"], "last_name_std": ["zhang", "smith"],
        "email": ["Wei.Zhang@Acme.cn", None], "phone": ["+86 138-0013-8000", "13800138000"],
        "company_name_std": ["acme china", None], "title": ["Head of IT", "CTO"],
    })
    out = standardise_table(frame, mapping, std_rules, "profiles")
    assert list(out["record_id"]) == ["P1", "P2"]
    assert list(out["phone"]) == ["+8613800138000", "+8613800138000"]
    assert out["email"].iloc[0] == "wei.zhang@acme.cn" and out["title"].iloc[1] == "cto"
    with pytest.raises(ValueError, match="first_name_std"):
        standardise_table(frame.drop(columns="first_name_std"), mapping, std_rules, "profiles")


def test_dates_not_in_the_mappings_format_are_said(caplog):
    import logging

    from leadscore.identity.mapping import date_of_birth

    with caplog.at_level(logging.WARNING):
        read = date_of_birth(pd.Series(["1952-03-01", "1963-11-20", None], dtype="string"), "%Y%m%d")
    assert read.isna().all()
    assert "2 of 2 values do not have the mapping's date_of_birth_format '%Y%m%d'" in caplog.text
