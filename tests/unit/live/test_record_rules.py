"""Live standardisation (one record's plain values) gives what the batch's pandas rules give:
every standardised column and every quarantine reason, on the tiny world's records of every
source plus hand-made dirty ones."""

from __future__ import annotations

import pandas as pd
import pytest

from leadscore.identity.records import SOURCE_LAYOUT, quarantine_reasons, source_records, standardise_records
from leadscore.live.standardise import quarantine_reason, standardise_record

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


@pytest.mark.parametrize("source", list(SOURCE_LAYOUT))
def test_live_standardisation_is_the_batchs(source, tiny_world, std_rules):
    raw = _worlds(tiny_world)[source]
    batch = standardise_records(source_records(source, raw), std_rules)
    reasons = quarantine_reasons(batch)
    live = [standardise_record(source, row, std_rules) for row in raw.to_dict("records")]
    assert len(live) == len(batch) > 0
    for column in batch.columns:
        expected = [_plain(value) for value in batch[column]]
        got = [_plain(row[column]) for row in live]
        differ = [(i, e, g) for i, (e, g) in enumerate(zip(expected, got, strict=True)) if e != g]
        assert not differ, f"{source}.{column}: {differ[:5]}"
    assert [quarantine_reason(row) for row in live] == [_plain(reason) for reason in reasons]


def test_the_dirty_rows_exercise_each_rule(std_rules):
    """The hand-made rows reach every branch the comparison relies on (so that it compares)."""
    rows = [standardise_record("form_fills", row, std_rules) for row in DIRTY_FORMS.to_dict("records")]
    assert rows[0]["email"] == "jsmith@gmail.com" and rows[0]["first_name_std"] == "william"
    assert rows[0]["phone"] == "+8613800138000" and rows[0]["company_name_std"] == "acme china"
    assert rows[1]["field_issue"] == 'email not an address: bad@; phone not a phone number: 12'
    assert quarantine_reason(rows[1]) is not None and quarantine_reason(rows[8]) == "missing timestamp"
    people = [standardise_record("event_registrations", row, std_rules)
              for row in DIRTY_PEOPLE.to_dict("records")]
    assert [(p["first_name"], p["last_name"]) for p in people[:3]] == [
        ("John", "SMITH"), ("Wei", "Zhang"), (None, "Madonna")]
    assert people[5]["name_key"] == "daniel su"  # a nickname in the surname's place, mapped
