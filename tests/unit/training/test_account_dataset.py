"""The account training set on a hand-built middle layer: labels from what came next only, and
buying-committee features from what was known before each snapshot only (no future leak)."""

from datetime import datetime, timezone

import duckdb
import pandas as pd
import pytest

from leadscore.config import load_yaml
from leadscore.features.build import FitRules, build_features
from leadscore.features.catalog import interest_catalog
from leadscore.training.accounts import labelled_accounts

UTC = timezone.utc
DAY = pd.Timestamp("2026-01-01", tz="UTC")
SNAPSHOT = pd.Timestamp("2026-03-02", tz="UTC")  # a Monday on the weekly grid
EVENTS = [
    ("P1", "web_visit", datetime(2026, 2, 10, 10, tzinfo=UTC)),
    ("P2", "whitepaper_download", datetime(2026, 2, 20, 10, tzinfo=UTC)),
    ("P4", "web_visit", datetime(2026, 2, 25, 10, tzinfo=UTC)),
    ("P4", "web_visit", datetime(2026, 3, 20, 10, tzinfo=UTC)),  # keeps the grid going past the snapshot
]
# After the snapshot: a new engaged person, and P1's title (a VP) learnt only then.
LATER = [("P3", "contact_sales", datetime(2026, 3, 4, 9, tzinfo=UTC)),
         ("P1", "webinar_attend", datetime(2026, 3, 5, 9, tzinfo=UTC))]


def _middle_layer(path, events) -> None:
    """C1 (P1..P3) opens an opportunity on 2026-04-01; C2 (P4) is known only from 2026-02-15."""
    interaction = pd.DataFrame(events, columns=["pid", "event_type", "event_time"]).assign(channel="web")
    interaction["event_time"] = interaction["event_time"].astype("datetime64[us, UTC]")
    person = pd.DataFrame({
        "pid": ["P1", "P2", "P3", "P4"], "cid": ["C1", "C1", "C1", "C2"],
        "seniority": ["vp", "individual", "manager", "director"],
        "department": ["it", "finance", "operations", "it"],
        "identified_at": [DAY] * 4, "email_known_at": [DAY] * 4, "phone_known_at": [pd.NaT] * 4,
        "title_known_at": [pd.Timestamp("2026-03-03", tz="UTC"), DAY, DAY, DAY],
        "company_known_at": [DAY, DAY, DAY, pd.Timestamp("2026-02-15", tz="UTC")],
    })
    company = pd.DataFrame({"cid": ["C1", "C2"], "eid": ["E1", "E1"], "industry": ["software"] * 2,
                            "employees": [1500, 200], "funding_stage": ["series_d"] * 2,
                            "annual_revenue_usd": [1e8, 1e7]})
    outcome = pd.DataFrame({"pid": ["P2"], "cid": ["C1"],
                            "opportunity_created_at": [pd.Timestamp("2026-04-01", tz="UTC")],
                            "won_at": pd.Series([pd.NaT], dtype="datetime64[us, UTC]"),
                            "closed_at": pd.Series([pd.NaT], dtype="datetime64[us, UTC]")})
    with duckdb.connect(str(path)) as con:
        for name, frame in {"interaction": interaction, "person": person, "company": company,
                            "outcome": outcome}.items():
            con.register(f"{name}_df", frame)
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM {name}_df")


@pytest.fixture
def committee_rows(tmp_path, settings):
    """The company_committee view built from `events` (its rows by company and time)."""
    config = load_yaml(settings.config_file("features.yaml"))
    catalog = interest_catalog(config, settings.features.windows_days)
    rules = FitRules(config["decision_maker_levels"], config["employee_bands"])

    def build(events, name: str) -> pd.DataFrame:
        db = tmp_path / f"{name}.duckdb"
        _middle_layer(db, events)
        build_features(db, tmp_path / name, catalog, rules, step_days=7)
        files = tmp_path / name / "company_committee.parquet" / "*.parquet"
        return duckdb.sql(f"SELECT * FROM read_parquet('{files}')").df().set_index(
            ["cid", "event_timestamp"]).sort_index()
    return build


def test_labels_count_what_came_next_and_a_company_appears_once_it_is_known(tmp_path):
    _middle_layer(tmp_path / "middle.duckdb", EVENTS)
    times = [datetime(2026, 1, 5, tzinfo=UTC), SNAPSHOT.to_pydatetime(), datetime(2026, 4, 6, tzinfo=UTC)]
    rows = labelled_accounts(tmp_path / "middle.duckdb", times, horizon_days=90)
    labels = {(r.cid, r.event_timestamp.date().isoformat()): r.label for r in rows.itertuples()}
    # C1's opportunity (April 1) is within 90 days of both earlier snapshots; after it opens, C1 is
    # not a prospect (an open opportunity) and leaves the set. C2 is known from February 15 only.
    assert labels == {("C1", "2026-01-05"): 1, ("C1", "2026-03-02"): 1, ("C2", "2026-03-02"): 0,
                      ("C2", "2026-04-06"): 0}
    assert labelled_accounts(tmp_path / "middle.duckdb", times, horizon_days=20)["label"].sum() == 0


def test_the_committee_at_a_snapshot_sees_only_the_past(committee_rows):
    before = committee_rows(EVENTS, "before")
    after = committee_rows(EVENTS + LATER, "after")
    at = ("C1", SNAPSHOT)
    # events after the snapshot change nothing at it
    pd.testing.assert_series_equal(before.loc[at], after.loc[at])
    assert before.loc[at, "committee_engaged_90d"] == 2
    # P1's title (VP of IT) is known only from March 3: at the snapshot, neither a decision maker
    # engaged nor a department other than P2's
    assert before.loc[at, "committee_decision_makers_engaged_90d"] == 0
    assert before.loc[at, "committee_departments_engaged_90d"] == 1
    assert before.loc[at, "group_people_engaged_90d"] == 3  # with P4 of C2, same group
    week_later = ("C1", SNAPSHOT + pd.Timedelta(days=7))
    assert after.loc[week_later, "committee_engaged_90d"] == 3
    assert after.loc[week_later, "committee_contact_sales_90d"] == 1
    assert after.loc[week_later, "committee_contact_sales_30d"] == 1
    assert pd.isna(before.loc[at, "committee_days_since_last_contact_sales"])  # asked only after the snapshot
    assert after.loc[week_later, "committee_decision_makers_engaged_90d"] == 1
    assert after.loc[week_later, "committee_departments_engaged_90d"] == 3
    assert before.loc[("C2", SNAPSHOT), "committee_engaged_90d"] == 1
