"""Survivorship in SQL (identity/people.py, identity/companies.py): each attribute of a person
comes from the most trusted source's latest record that has it, the company from something the
person did, ties to the earlier record; a company's from its first CRM account, else from the
name its records give most often."""

import pandas as pd

from leadscore.identity.companies import company_table
from leadscore.identity.engine import DuckDBSql
from leadscore.identity.people import person_table
from leadscore.identity.standardise import StandardiseRules

TITLES = {"seniority": [{"level": "c_level", "words": ["ceo"]}],
          "department": [{"name": "sales", "words": ["sales"]}]}


def _record(source: str, seen_at: str, **fields) -> dict:
    return {"pid": "P1", "source": source, "seen_at": pd.Timestamp(seen_at, tz="UTC"), **fields}


def _people(rows: list[dict]) -> pd.Series:
    records = pd.DataFrame(rows).reindex(columns=["pid", "source", "seen_at", "first_name", "last_name",
                                                  "email", "phone", "owner_rep_id", "work_domain",
                                                  "title", "cid"])
    table = person_table(records, TITLES, DuckDBSql())
    assert len(table) == 1
    return table.iloc[0]


def test_each_attribute_comes_from_the_most_trusted_latest_record_that_has_it():
    person = _people([
        _record("form_fills", "2025-03-01", first_name="Tim", phone="+861", title="Sales Lead",
                email="tim@gmail.com", cid="C2"),
        _record("crm_contacts", "2025-01-01", first_name="Timothy", email="tim@acme.com",
                work_domain="acme.com", title="CEO", cid="C1", owner_rep_id="R1"),
        _record("crm_contacts", "2025-02-01", first_name=None, last_name="Su"),
        _record("email_activity", "2025-04-01", email="tim@gmail.com", cid="C3"),
        _record("web_sessions", "2024-12-01"),
    ])
    assert (person["first_name"], person["last_name"], person["phone"]) == ("Timothy", "Su", "+861")
    assert person["email"] == "tim@acme.com"  # a work address before a more trusted free one
    assert person["title"] == "Sales Lead" and person["department"] == "sales"  # the latest title
    assert person["cid"] == "C2"  # the latest company of something the person did, not mail sent
    assert person["owner_rep_id"] == "R1" and pd.isna(person["uid"]) and person["records"] == 5
    assert person["first_seen"] == pd.Timestamp("2024-12-01", tz="UTC")
    assert person["identified_at"] == pd.Timestamp("2025-01-01", tz="UTC")
    assert person["phone_known_at"] == pd.Timestamp("2025-03-01", tz="UTC")
    assert person["last_seen"] == pd.Timestamp("2025-04-01", tz="UTC")
    assert person["name"] == "Timothy Su"


def test_records_seen_at_the_same_instant_yield_to_the_earlier_one():
    person = _people([_record("form_fills", "2025-03-01", first_name="Ann", title="CEO"),
                      _record("form_fills", "2025-03-01", first_name="Anna", title="Sales")])
    assert (person["first_name"], person["title"], person["seniority"]) == ("Ann", "CEO", "c_level")


def test_a_company_takes_its_first_account_else_its_records_most_frequent_name():
    accounts = pd.DataFrame({"account_id": ["A2", "A1"], "account_name": ["Acme Two", "Acme"],
                             "name_std": ["acme two", "acme"], "domain": ["acme.cn", "acme.com"],
                             "industry": ["it", "retail"], "employees": pd.array([5, 9], dtype="Int64"),
                             "funding_stage": [None, "seed"], "annual_revenue_usd": [1.0, None],
                             "owner_rep_id": ["R2", "R1"]})
    nodes = pd.Series(["C1", "C1", "C2"], index=["account:A1", "account:A2", "name:beta"])
    records = pd.DataFrame({"company_name": ["Beta Ltd", "BETA", "BETA", "Beta Ltd", "Acme"],
                            "company_name_std": ["beta", "beta", "beta", "beta", "acme"]})
    cids = pd.Series(["C2", "C2", "C2", "C2", "C1"])
    companies = company_table(accounts, records, cids, nodes, StandardiseRules(), DuckDBSql())
    assert companies["cid"].tolist() == ["C1", "C2"]
    acme, beta = companies.iloc[0], companies.iloc[1]
    assert (acme["name"], acme["domain"], acme["employees"], acme["funding_stage"]) == (
        "Acme", "acme.com", 9, "seed")
    assert (beta["name"], beta["name_std"]) == ("BETA", "beta")  # 2 to 2: the smaller name
    assert pd.isna(beta["industry"]) and beta["eid"] != acme["eid"]
