"""The contract other stages code against: tables, columns, dtypes, ids, volumes."""

from __future__ import annotations

import pandas as pd
import pytest

from leadscore.config import WorldSettings
from leadscore.identity.middle import PLAN_COLUMNS
from leadscore.synth import World, generate_world

SOURCE_COLUMNS = {
    "crm_accounts": ["account_id", "account_name", "website", "industry", "employees",
                     "funding_stage", "annual_revenue_usd", "owner_rep_id", "created_at"],
    "crm_contacts": ["contact_id", "account_id", "first_name", "last_name", "email", "phone",
                     "title", "owner_rep_id", "created_at"],
    "web_sessions": ["session_id", "cookie_id", "started_at", "landing_url", "utm_source",
                     "pageviews", "duration_s", "utm_medium", "utm_campaign", "utm_term", "utm_content"],
    "form_fills": ["form_fill_id", "submitted_at", "form_type", "asset", "cookie_id",
                   "first_name", "last_name", "email", "phone", "company_name", "job_title",
                   "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"],
    "event_registrations": ["registration_id", "event_id", "event_name", "event_kind",
                            "event_date", "registered_at", "attended", "full_name", "email",
                            "phone", "company_name", "questions_asked", "demo_requested"],
    "email_activity": ["activity_id", "campaign_id", "subject", "email_address", "activity",
                       "occurred_at", "url"],
    "opportunities": ["opportunity_id", "account_id", "contact_id", "created_at", "stage",
                      "closed_at", "amount_usd"],
    "orders": ["order_id", "email", "product", "amount_usd", "ordered_at"],
    "user_accounts": ["user_id", "email", "full_name", "registered_at"],
}
TRUTH_COLUMNS = {
    "groups": ["group_key", "name", "industry"],
    "companies": ["company_key", "group_key", "name", "domain", "region", "industry",
                  "employees", "funding_stage", "annual_revenue_usd", "owner_rep_id"],
    "people": ["person_key", "company_key", "previous_company_key", "moved_at", "first_name",
               "last_name", "title", "seniority", "department", "owner_rep_id", "work_email",
               "personal_email", "phone", "fit", "engagement"],
    "cycles": ["cycle_id", "company_key", "person_key", "start", "end", "intensity",
               "p_opportunity", "opportunity"],
    "records": ["source", "source_record_id", "person_key", "company_key", "future"],
}
INTERACTION_SOURCES = ["web_sessions", "form_fills", "event_registrations", "email_activity",
                       "orders"]


def test_sources_have_exactly_the_agreed_columns(world: World):
    assert {name: list(frame.columns) for name, frame in world.sources.items()} == SOURCE_COLUMNS


def test_truth_tables_carry_the_agreed_columns(world: World):
    for name, columns in TRUTH_COLUMNS.items():
        missing = set(columns) - set(world.truth[name].columns)
        assert not missing, f"{name} lacks {missing}"


def test_every_timestamp_is_microseconds_utc(world: World):
    tables = {**world.sources, **world.truth, **world.plans}
    stamps = {f"{t}.{c}": str(f[c].dtype) for t, f in tables.items() for c in f.columns
              if pd.api.types.is_datetime64_any_dtype(f[c])}
    assert len(stamps) >= 15
    assert set(stamps.values()) == {"datetime64[us, UTC]"}, stamps


def test_ids_are_unique_strings(world: World):
    for name, frame in world.sources.items():
        ids = frame.iloc[:, 0]
        assert ids.map(type).eq(str).all(), name
        assert ids.is_unique, name
    for name, key in (("groups", "group_key"), ("companies", "company_key"),
                      ("people", "person_key")):
        assert world.truth[name][key].is_unique


def test_value_types(world: World):
    s = world.sources
    assert str(s["crm_accounts"]["employees"].dtype) == "Int64"
    assert s["crm_accounts"]["employees"].isna().any()
    assert s["event_registrations"]["attended"].dtype == bool
    assert set(s["email_activity"]["activity"]) == {"send", "open", "click"}
    assert set(s["opportunities"]["stage"]) == {"open", "won", "lost"}
    assert set(s["form_fills"]["form_type"]) == {
        "whitepaper_download", "contact_sales", "webinar_signup", "newsletter_signup"}
    assert set(s["event_registrations"]["event_kind"]) == {"webinar", "summit"}
    assert set(s["orders"]["product"]) <= {"Product A", "Product B", "Product C"}
    assert set(world.truth["companies"]["funding_stage"]) <= {
        "seed", "series_a", "series_b", "series_c", "series_d", "series_e_plus", "public"}
    assert world.truth["people"]["fit"].between(0, 1).all()
    assert s["crm_accounts"]["owner_rep_id"].str.fullmatch(r"R\d{3}").all()


def test_interaction_volume_matches_the_settings(world: World, small: WorldSettings):
    total = sum(len(world.sources[name]) for name in INTERACTION_SOURCES)
    target = small.scaled(small.interactions)
    assert abs(total - target) / target < 0.1


def test_entity_volumes_and_shares(world: World, small: WorldSettings):
    truth, records = world.truth, world.truth["records"]
    assert len(truth["groups"]) == small.scaled(small.groups)
    assert len(truth["companies"]) == small.scaled(small.companies)
    assert len(truth["people"]) == small.scaled(small.people)
    assert truth["companies"].groupby("group_key").size().min() >= 1
    with_account = records.loc[records["source"] == "crm_accounts", "company_key"].nunique()
    assert 0.8 <= with_account / len(truth["companies"]) <= 0.97
    with_contact = records.loc[records["source"] == "crm_contacts", "person_key"].nunique()
    assert 0.45 <= with_contact / len(truth["people"]) <= 0.65
    anonymous = records.loc[records["source"] == "web_sessions", "person_key"].isna().mean()
    assert anonymous == pytest.approx(0.2, abs=0.03)
    assert truth["people"]["personal_email"].notna().mean() == pytest.approx(0.5, abs=0.08)
    assert truth["people"]["previous_company_key"].notna().mean() == pytest.approx(0.05, abs=0.03)
    users = records.loc[records["source"] == "user_accounts", "person_key"].nunique()
    assert 0 < users < 0.5 * len(truth["people"])


def test_same_seed_same_world_other_seed_other_world(world: World, small: WorldSettings):
    again = generate_world(small)
    for part in ("sources", "truth"):
        mine, theirs = getattr(world, part), getattr(again, part)
        assert mine.keys() == theirs.keys()
        for name in mine:
            pd.testing.assert_frame_equal(mine[name], theirs[name], obj=name)
    other = generate_world(small.model_copy(update={"seed": small.seed + 1}))
    assert not other.truth["people"]["first_name"].equals(world.truth["people"]["first_name"])
    assert len(other.sources["web_sessions"]) != len(world.sources["web_sessions"])


def test_plans_have_the_columns_identity_reads(world: World):
    assert {name: list(frame.columns) for name, frame in world.plans.items()} == {
        name: list(columns) for name, columns in PLAN_COLUMNS.items()}
