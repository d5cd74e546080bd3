"""Every raw row is kept or quarantined with a reason; unusable fields say why."""

import pandas as pd
import pytest

from leadscore.identity.records import all_records
from leadscore.identity.resolve import check_conservation

AT = pd.Timestamp("2026-01-01", tz="UTC")


def _sources() -> dict[str, pd.DataFrame]:
    forms = pd.DataFrame({
        "form_fill_id": ["F1", "F2", "F3"], "submitted_at": [AT, AT, pd.NaT],
        "email": ["a@x.com", "bad@", "c@x.com"], "phone": ["12", None, None],
        "cookie_id": [None, None, None], "first_name": ["a", "b", "c"], "last_name": ["x", "y", "z"],
        "company_name": None, "job_title": None, "form_type": "contact_sales", "asset": None})
    empty = {
        "crm_contacts": ["contact_id", "created_at", "account_id", "first_name", "last_name",
                         "email", "phone", "title", "owner_rep_id"],
        "event_registrations": ["registration_id", "registered_at", "full_name", "email", "phone",
                                "company_name"],
        "user_accounts": ["user_id", "registered_at", "email", "full_name"],
        "orders": ["order_id", "ordered_at", "email"],
        "email_activity": ["activity_id", "occurred_at", "email_address"],
        "web_sessions": ["session_id", "started_at", "cookie_id"],
        "opportunities": ["opportunity_id", "created_at", "account_id", "contact_id"],
    }
    sources = {name: pd.DataFrame(columns=columns) for name, columns in empty.items()}
    return {**sources, "form_fills": forms}


def test_rows_are_kept_or_quarantined_with_a_reason(std_rules):
    sources = _sources()
    kept, quarantine = all_records(sources, std_rules)
    assert list(kept["source_record_id"]) == ["F1"]
    reasons = quarantine.set_index("source_record_id")["reason"]
    assert "no usable identifier" in reasons["F2"]  # its only email is malformed
    assert reasons["F3"] == "missing timestamp"
    assert "phone not a phone number: 12" == kept["field_issue"].iloc[0]
    mapped = kept[["source", "source_record_id"]]
    counts = check_conservation(sources, mapped, quarantine)
    assert counts.loc["form_fills"].tolist() == [3, 1, 2]


def test_a_lost_record_stops_the_run(std_rules):
    sources = _sources()
    kept, quarantine = all_records(sources, std_rules)
    with pytest.raises(RuntimeError, match="records lost"):
        check_conservation(sources, kept.iloc[0:0], quarantine)
