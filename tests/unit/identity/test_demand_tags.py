"""UTM demand tags: only listed tags, unknown values reported (never kept), first and latest
touch per person, the tags reaching the person's tags and a segment."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import duckdb
import pandas as pd
import pytest

from leadscore.config import Settings, load_yaml
from leadscore.features.tags import tags_sql
from leadscore.identity.demand import DemandTags, build_demand_tables

CONFIG = {
    "tags": ["data platform", "e-commerce"],
    "ad_groups": {"partner-ecom": "e-commerce"},
    "campaigns": {"dataplat-*": "data platform", "partner-*": None, "brand-*": None},
}
TOUCHES = [  # pid, day, event type, properties
    ("P1", 1, "web_visit", {"utm_campaign": "dataplat-search-2026q1", "utm_content": "dataplat-a"}),
    ("P1", 5, "web_visit", {"utm_campaign": "partner-referral", "utm_content": "partner-ecom"}),
    ("P1", 9, "web_visit", {"utm_campaign": "brand-social-2026q1"}),  # known, deliberately untagged
    ("P2", 2, "form_submit", {"utm_campaign": "Spring_Promo"}),  # unknown: reported, not kept
    ("P2", 3, "web_visit", {"utm_campaign": "spring_promo"}),
    ("P3", 4, "web_visit", {"utm_source": "google"}),  # no campaign at all: not a touch
    (None, 6, "web_visit", {"utm_campaign": "DATAPLAT-search-2026q2"}),  # anonymous, case-insensitive
    ("P3", 7, "email_click", {"campaign_id": "CMP0001"}),
]


def tiny_interactions() -> pd.DataFrame:
    return pd.DataFrame([{
        "lid": f"L{i}", "pid": pid, "cid": None, "cookie_id": f"ck{i}", "event_type": event_type,
        "event_time": datetime(2026, 1, day, tzinfo=UTC), "properties": json.dumps(props),
    } for i, (pid, day, event_type, props) in enumerate(TOUCHES)])


def build(con: duckdb.DuckDBPyConnection, config: dict = CONFIG) -> pd.DataFrame:
    con.register("interaction_df", tiny_interactions())
    con.execute("CREATE TABLE interaction AS SELECT * FROM interaction_df")
    con.execute("CREATE TABLE campaign AS SELECT 'PC0001' AS campaign_id, "
                "'dataplat-search-2026q1' AS utm_campaign")
    return build_demand_tables(con, DemandTags.from_config(config))


def test_only_listed_tags_may_be_mapped_to():
    bad = {**CONFIG, "campaigns": {"ecom-*": "ecommerce"}}
    with pytest.raises(ValueError, match="ecommerce.*not in `tags`"):
        DemandTags.from_config(bad)


def test_an_unknown_value_is_reported_not_kept():
    with duckdb.connect() as con:
        unknown = build(con)
        tags = dict(con.execute("SELECT lid, demand_tag FROM campaign_touch").fetchall())
    assert unknown["value"].tolist() == ["spring_promo"]  # the two spellings of one value
    assert unknown["touches"].tolist() == [2] and unknown["people"].tolist() == [1]
    assert tags["L3"] is None and tags["L4"] is None  # not invented, not guessed
    assert "L5" not in tags  # utm_source alone names no campaign


def test_ad_group_wins_and_campaigns_resolve():
    with duckdb.connect() as con:
        build(con)
        rows = {lid: (campaign, tag) for lid, campaign, tag in con.execute(
            "SELECT lid, campaign_id, demand_tag FROM campaign_touch").fetchall()}
    assert rows["L0"] == ("PC0001", "data platform")
    assert rows["L1"] == (None, "e-commerce")  # the ad group's tag over the campaign's null
    assert rows["L2"] == (None, None)  # brand: known, no tag
    assert rows["L6"] == (None, "data platform")
    assert rows["L7"] == ("CMP0001", None)  # an email click names its campaign


def test_first_and_latest_touch_reach_the_person():
    with duckdb.connect() as con:
        build(con)
        people = con.execute("SELECT pid, first_tag, latest_tag FROM person_demand_tag").fetchall()
    assert people == [("P1", "data platform", "e-commerce")]


def test_without_rules_every_value_is_unknown():
    with duckdb.connect() as con:
        unknown = build(con, {})
    assert set(unknown["value"]) == {"dataplat-search-2026q1", "partner-referral", "brand-social-2026q1",
                                     "spring_promo", "dataplat-search-2026q2"}


def test_the_project_config_lists_every_tag_it_maps_to(settings: Settings):
    rules = DemandTags.from_config(load_yaml(settings.config_file("demand_tags.yaml")))
    assert {tag for _, _, tag in rules.rules if tag} <= set(rules.tags)


def test_the_demand_reaches_the_persons_tags():
    """features/tags.py's `demand` kind: the first and latest touch's tag, before the clock only."""
    rules = {"first": {"prefix": "demand_first"}, "latest": {"prefix": "demand"}}
    with duckdb.connect() as con:
        build(con)
        con.execute("CREATE TABLE latest_features AS SELECT 'P1' AS pid")
        con.execute("CREATE TABLE feature_clock AS SELECT TIMESTAMPTZ '2026-01-07' AS as_of")
        sql, params = tags_sql({"demand": rules}, {"pid": "VARCHAR"})
        tags = con.execute(sql, params).df()
    assert sorted(zip(tags["pid"], tags["tag"], tags["kind"], strict=True)) == [
        ("P1", "demand:e-commerce", "demand"), ("P1", "demand_first:data_platform", "demand")]
    assert tags.set_index("tag").loc["demand_first:data_platform", "label"] == "demand_first: data platform"

