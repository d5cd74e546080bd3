"""Live standardisation (the batch's SQL on an ingest group's records) gives each record what
the batch gives it among all the others: every standardised column and every quarantine
reason, on the tiny world's records of every source plus hand-made dirty ones, each record
alone, the whole source as one group and every source together (a group's sources go
through in one pass)."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from leadscore.identity.records import SOURCE_LAYOUT, all_records
from leadscore.live.standardise import standardise_records

AT = pd.Timestamp("2026-10-30 08:00", tz="UTC")

# dirt the batch's rules handle: blanks, case and spaces, '+tags' and provider aliases, local
# phone formats, accents, nicknames, "SURNAME, Given", legal suffixes, lone or empty names
DIRTY_FORMS = pd.DataFrame({
    "form_fill_id": [f"D{i}" for i in range(9)],
    "submitted_at": [AT] * 8 + [pd.NaT],
    "form_type": "contact_sales", "asset": None,
    "cookie_id": [None, "  ", " ck-1 ", None, None, None, None, None, "ck-2"],
    "first_name": ["  Bill ", "José", "", None, "ZHANG", "o'brien", "Anne-Marie", "x1", "Li"],
    "last_name": ["Smith", "Núñez", "Wei ", "Doe", "wei", None, "Lee", "Y", "Na"],
    "email": [" J.Smith+news@GoogleMail.com ", "bad@", "   ", "a b@x.co", "zhang.wei@acme.com.cn",
              "no-at-sign", "x@free.com", None, "li@x.com"],
    "phone": ["+86 138-0013-8000", "12", "0086 10 6552 9988", " ", None, "(021) 5555 0000",
              "not a phone", None, None],
    "company_name": ["Acme China Co., Ltd.", "  ", "Bank of China", "Ünïcode GmbH", None,
                     "ACME East China", "&", None, None],
    "job_title": ["CTO", None, "", "  VP Sales ", None, None, None, None, None],
})
DIRTY_PEOPLE = pd.DataFrame({
    "registration_id": ["R1", "R2", "R3", "R4", "R5", "R6"], "event_id": "E1", "event_name": "x",
    "event_kind": "webinar", "event_date": AT, "registered_at": AT, "attended": False,
    "full_name": ["SMITH, John", "Wei Zhang", "Madonna", ",", None, "Su Dan"],
    "email": [None, "w@x.com", "m@x.com", None, None, "dan.su@x.com"],
    "phone": [None, None, None, "+8613800138000", None, None],
    "company_name": None,
})


def _worlds(tiny_world) -> dict[str, pd.DataFrame]:
    sources, _, _ = tiny_world
    frames = {name: sources[name].reset_index(drop=True) for name in SOURCE_LAYOUT}
    for name, dirty in (("form_fills", DIRTY_FORMS), ("event_registrations", DIRTY_PEOPLE)):
        frames[name] = pd.concat([frames[name], _typed_like(dirty, frames[name])], ignore_index=True)
    return frames


def _typed_like(dirty: pd.DataFrame, clean: pd.DataFrame) -> pd.DataFrame:
    """`dirty` with the dtypes of `clean`'s columns it has (the rest, e.g. UTM fields, missing)."""
    types = {column: dtype for column, dtype in clean.dtypes.items() if column in dirty.columns}
    return dirty.astype(types, errors="ignore")


def _plain(value: object) -> object:
    return None if value is None or value is pd.NA or value is pd.NaT or (
        isinstance(value, float) and value != value) else value


@pytest.fixture(scope="module")
def batch(tiny_world, std_rules) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(kept records, quarantine) of every source at once, as the batch makes them."""
    return all_records(_worlds(tiny_world), std_rules)


def _batch_rows(batch: tuple[pd.DataFrame, pd.DataFrame], source: str) -> dict[str, dict]:
    """Per record id of `source`: the batch's kept record with reason None, or of a quarantined
    one its reason (the quarantine keeps the raw row, not the standardised one)."""
    kept, quarantine = batch
    rows = {row["source_record_id"]: {name: _plain(value) for name, value in row.items()} | {"reason": None}
            for row in kept[kept["source"] == source].to_dict("records")}
    return rows | {row["source_record_id"]: {"reason": row["reason"]}
                   for row in quarantine[quarantine["source"] == source].to_dict("records")}


@pytest.fixture(scope="module")
def every_source(tiny_world, std_rules) -> dict[str, list[dict]]:
    """Every source's records standardised live in one group."""
    return standardise_records(duckdb.connect(), _worlds(tiny_world), std_rules)


def _alone(con: duckdb.DuckDBPyConnection, source: str, raw: pd.DataFrame, std_rules) -> dict:
    return standardise_records(con, {source: raw}, std_rules)[source][0]


@pytest.mark.parametrize("source", list(SOURCE_LAYOUT))
def test_live_standardisation_is_the_batchs(source, tiny_world, std_rules, batch, every_source):
    raw = _worlds(tiny_world)[source]
    expected = _batch_rows(batch, source)
    con = duckdb.connect()
    group = standardise_records(con, {source: raw}, std_rules)[source]
    alone = [_alone(con, source, raw.iloc[[i]], std_rules)
             for i in [*range(0, len(raw), max(1, len(raw) // 25)), *range(len(raw) - 15, len(raw))]]
    assert len(group) == len(every_source[source]) == len(raw) == len(expected) > 0
    assert [record["_row"] for record in group] == list(range(len(raw)))
    assert [record["_row"] for record in every_source[source]] == list(range(len(raw)))
    assert {record["source"] for record in every_source[source]} == {source}
    for record in [*group, *every_source[source], *alone]:
        want = expected[record["source_record_id"]]
        differ = {column: (want[column], _plain(record[column])) for column in want
                  if want[column] != _plain(record[column])}
        assert not differ, f"{source}:{record['source_record_id']}: {differ}"


def test_the_dirty_rows_exercise_each_rule(std_rules):
    """The hand-made rows reach every branch the comparison relies on (so that it compares)."""
    con = duckdb.connect()
    rows = standardise_records(con, {"form_fills": DIRTY_FORMS}, std_rules)["form_fills"]
    assert rows[0]["email"] == "jsmith@gmail.com" and rows[0]["first_name_std"] == "william"
    assert rows[0]["phone"] == "+8613800138000" and rows[0]["company_name_std"] == "acme china"
    assert rows[1]["field_issue"] == 'email not an address: bad@; phone not a phone number: 12'
    assert rows[1]["reason"] is not None and rows[8]["reason"] == "missing timestamp"
    people = standardise_records(con, {"event_registrations": DIRTY_PEOPLE},
                                 std_rules)["event_registrations"]
    assert [(p["first_name"], p["last_name"]) for p in people[:3]] == [
        ("John", "SMITH"), ("Wei", "Zhang"), (None, "Madonna")]
    assert people[5]["name_key"] == "daniel su"  # a nickname in the surname's place, mapped

