"""Person tags on a few hand-made people in an in-memory DuckDB."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from leadscore.config import load_yaml
from leadscore.features.catalog import scoring_specs
from leadscore.features.tags import build_tags, tags_sql

FEATURES = pd.DataFrame({
    "pid": ["P1", "P2", "P3", "P4"],
    "company_industry": ["financial_services", "software", None, "software"],
    "company_employees_band": ["5000+", "1-49", None, "50-249"],
    "is_decision_maker": [1, 0, None, 1],
    "events_30d": [6.0, 1.0, 0.0, 10.0],
    "events_90d": [8.0, 1.0, 0.0, 10.0],
    "days_since_last_event": [2.0, 120.5, None, 1.0],
    "webinar_attend_180d": [2.0, 1.0, 0.0, 3.0],
    "contact_sales_30d": [0.0, 0.0, 0.0, 1.0],
    "purchase_180d": [1.0, 0.0, 0.0, 0.0],
})
AS_OF = "2026-03-01 00:00:00+00"
EVENTS = [  # pid, event_type, event_time, properties
    ("P1", "web_visit", "2026-02-10 10:00:00+00", '{"url": "https://x.com/product-a?utm_source=ads"}'),
    ("P1", "email_open", "2026-02-20 10:00:00+00", '{"subject": "Product A: what\'s new", "url": null}'),
    ("P1", "email_send", "2026-02-21 10:00:00+00", '{"subject": "Product A again"}'),  # passive
    ("P1", "web_visit", "2025-10-01 10:00:00+00", '{"url": "https://x.com/product-a"}'),  # too old
    ("P1", "web_visit", "2026-03-02 10:00:00+00", '{"url": "https://x.com/product-a"}'),  # after as_of
    ("P1", "web_visit", "2026-02-22 10:00:00+00", '{"url": "https://x.com/careers"}'),
    ("P2", "purchase", "2026-02-25 10:00:00+00", '{"product": "Product A"}'),  # one event only
]
MINED = {
    "window_days": 90, "min_events": 2, "fields": ["subject", "url", "product"],
    "exclude_event_types": ["email_send"],
    "topics": {"product_a": {"label": "Interested in Product A", "keywords": ["Product A", "/product-a"]},
               "careers": {"label": "Job seeker?", "keywords": ["/careers"], "min_events": 1}},
}


@pytest.fixture
def con():
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("features_df", FEATURES)
    con.execute("CREATE TABLE latest_features AS SELECT * FROM features_df")
    con.execute(f"CREATE TABLE feature_clock AS SELECT TIMESTAMPTZ '{AS_OF}' AS as_of")
    con.execute("CREATE TABLE interaction (pid VARCHAR, event_type VARCHAR, event_time TIMESTAMPTZ, "
                "properties VARCHAR)")
    con.executemany("INSERT INTO interaction VALUES (?, ?, ?::TIMESTAMPTZ, ?)", EVENTS)
    yield con
    con.close()


def _tags(con, rules: dict, tmp_path) -> pd.DataFrame:
    rows = build_tags(con, rules, tmp_path / "person_tags.parquet")
    tags = pd.read_parquet(tmp_path / "person_tags.parquet")
    assert rows == len(tags)
    return tags


def _evidence(tags: pd.DataFrame) -> dict[tuple[str, str], str]:
    return {(row.pid, row.tag): row.evidence for row in tags.itertuples()}


def test_attribute_tags_one_per_known_value(con, tmp_path):
    rules = {"attribute": [
        {"feature": "company_industry", "prefix": "industry", "label": "Industry: {value}"},
        {"feature": "company_employees_band", "prefix": "size"},
        {"feature": "is_decision_maker", "tag": "decision_maker", "label": "Decision maker"},
    ]}
    tags = _tags(con, rules, tmp_path)
    assert sorted(tags.loc[tags["pid"] == "P1", "tag"]) == ["decision_maker", "industry:financial_services",
                                                            "size:5000+"]
    assert "P3" not in set(tags["pid"])  # nothing known, no tag
    p1 = tags[tags["pid"] == "P1"].set_index("tag")
    assert p1.loc["industry:financial_services", "label"] == "Industry: financial services"
    assert p1.loc["industry:financial_services", "evidence"] == "company_industry = financial_services"
    assert p1.loc["size:5000+", "label"] == "size: 5000+"
    assert sorted(tags.loc[tags["tag"] == "decision_maker", "pid"]) == ["P1", "P4"]
    assert set(tags["kind"]) == {"attribute"}


def _top_share(share: float) -> dict:
    return {"statistical": {"top_engaged": {
        "method": "top_share", "feature": "events_90d", "share": share, "label": "Top engaged",
        "among": [{"feature": "events_90d", "op": ">", "value": 0}]}}}


def test_top_share_takes_the_top_of_the_engaged_and_says_where_the_cut_is(con, tmp_path):
    tags = _tags(con, _top_share(0.5), tmp_path)
    # P3 (0 events) is not among the engaged; of 1, 8 and 10, half is 1.5 people: only P4
    assert list(tags["pid"]) == ["P4"]
    assert tags["evidence"][0] == ("events_90d = 10, top 34% (50th percentile = 8 "
                                   "among 3 people with events_90d > 0)")
    assert tags["kind"][0] == "statistical" and tags["label"][0] == "Top engaged"


def test_top_share_leaves_ties_at_the_cut_off_out_together(con, tmp_path):
    con.execute("UPDATE latest_features SET events_90d = 10 WHERE pid = 'P1'")  # ties with P4
    assert _tags(con, _top_share(0.5), tmp_path).empty
    assert sorted(_tags(con, _top_share(0.7), tmp_path)["pid"]) == ["P1", "P4"]


def test_rising_and_dormant(con, tmp_path):
    rules = {"statistical": {
        "rising": {"method": "growth", "recent": "events_30d", "recent_days": 30, "baseline": "events_90d",
                   "baseline_days": 90, "min_recent": 3, "min_ratio": 2.0, "label": "Rising"},
        "dormant": {"method": "inactive", "feature": "days_since_last_event", "days": 90}}}
    evidence = _evidence(_tags(con, rules, tmp_path))
    assert evidence == {
        # 6 in 30 days vs 2 in the 60 before: 0.2 a day against 0.033, six times the rate
        ("P1", "rising"): "events_30d = 6 vs 2 in the 60 days before: 6.0x the earlier daily rate",
        ("P4", "rising"): "events_30d = 10 vs 0 in the 60 days before: none before: new activity",
        ("P2", "dormant"): "days_since_last_event = 120.5 (dormant after 90 days)",
    }  # P2's single recent event is below min_recent; P3 never engaged, so is not dormant


def test_rule_tags_all_and_any_with_the_conditions_that_held(con, tmp_path):
    rules = {"rule": {
        "webinar_fan": {"label": "Webinar fan", "all": [{"feature": "webinar_attend_180d", "op": ">=",
                                                         "value": 2}]},
        "hot": {"any": [{"feature": "contact_sales_30d", "op": ">=", "value": 1},
                        {"feature": "purchase_180d", "op": ">", "value": 0}],
                "all": [{"feature": "company_industry", "op": "in",
                         "value": ["software", "financial_services"]}]},
        "not_software": {"all": [{"feature": "company_industry", "op": "!=", "value": "software"}]},
    }}
    tags = _tags(con, rules, tmp_path)
    assert _evidence(tags) == {
        ("P1", "webinar_fan"): "webinar_attend_180d = 2 (needs >= 2)",
        ("P4", "webinar_fan"): "webinar_attend_180d = 3 (needs >= 2)",
        ("P1", "hot"): "company_industry = financial_services (needs one of software, financial_services); "
                       "purchase_180d = 1 (needs > 0)",
        ("P4", "hot"): "company_industry = software (needs one of software, financial_services); "
                       "contact_sales_30d = 1 (needs >= 1)",
        ("P1", "not_software"): "company_industry = financial_services (needs != software)",
    }  # a missing industry (P3) fails `!=` rather than passing it
    assert tags.set_index(["pid", "tag"]).loc[("P1", "hot"), "label"] == "hot"  # no label: the name


def test_mined_topics_count_recent_engagement_events(con, tmp_path):
    tags = _tags(con, {"mined": MINED}, tmp_path)
    assert _evidence(tags) == {
        # the email send is ours, one visit is too old and one after as_of: two events count
        ("P1", "interest:product_a"): '2 events in the last 90 days mentioning "/product-a", "product a"; '
                                      'latest: email_open "Product A: what\'s new" on 2026-02-20',
        ("P1", "interest:careers"): '1 event in the last 90 days mentioning "/careers"; '
                                    'latest: web_visit "https://x.com/careers" on 2026-02-22',
    }  # P2 bought Product A once: below min_events
    assert set(tags["kind"]) == {"mined"}
    assert set(tags["as_of"]) == {pd.Timestamp(AS_OF)}


def test_output_file_has_the_agreed_columns_and_no_temp_file_left(con, tmp_path):
    rules = {"attribute": [{"feature": "company_industry", "prefix": "industry"}], "mined": MINED}
    assert build_tags(con, rules, tmp_path / "person_tags.parquet") == 5
    schema = duckdb.sql(f"DESCRIBE SELECT * FROM '{tmp_path / 'person_tags.parquet'}'").fetchall()
    assert [(name, dtype) for name, dtype, *_ in schema] == [
        ("pid", "VARCHAR"), ("tag", "VARCHAR"), ("kind", "VARCHAR"), ("label", "VARCHAR"),
        ("evidence", "VARCHAR"), ("as_of", "TIMESTAMP WITH TIME ZONE")]
    assert [path.name for path in tmp_path.iterdir()] == ["person_tags.parquet"]


def test_unknown_feature_is_named_with_the_valid_ones(con, tmp_path):
    rules = {"rule": {"fan": {"all": [{"feature": "webinar_attend_1800d", "op": ">=", "value": 2}]}}}
    with pytest.raises(ValueError, match=r"rule tag `fan`: unknown feature `webinar_attend_1800d`; "
                                         r"valid features: company_employees_band, company_industry"):
        build_tags(con, rules, tmp_path / "person_tags.parquet")
    assert not (tmp_path / "person_tags.parquet").exists()


@pytest.mark.parametrize("op", ["=~", "LIKE", "; DROP TABLE person"])
def test_unknown_operator_is_refused(op):
    rules = {"rule": {"fan": {"all": [{"feature": "events_90d", "op": op, "value": 2}]}}}
    with pytest.raises(ValueError, match="unknown operator .*valid operators: >=, >, <=, <, ==, !=, in"):
        tags_sql(rules, {"pid": "VARCHAR", "events_90d": "DOUBLE"})


def test_injection_like_config_values_stay_values(con, tmp_path):
    sneaky = "software' OR 1=1 --"
    rules = {"rule": {"sneaky": {"label": "O'Brien's \"pick\"; DROP TABLE latest_features",
                                 "all": [{"feature": "company_industry", "op": "==", "value": sneaky}]},
                      "real": {"label": "It's software", "all": [{"feature": "company_industry", "op": "==",
                                                                   "value": "software"}]}},
             "mined": {**MINED, "topics": {"sneaky": {"keywords": ["') OR TRUE --"], "min_events": 1},
                                           "quoted": {"keywords": ["what's new"], "min_events": 1}}}}
    tags = _tags(con, rules, tmp_path)
    assert sorted(tags[["pid", "tag", "label"]].itertuples(index=False, name=None)) == [
        ("P1", "interest:quoted", "quoted"), ("P2", "real", "It's software"), ("P4", "real", "It's software")]
    assert con.execute("SELECT count(*) FROM latest_features").fetchone()[0] == 4


def test_the_shipped_config_uses_only_catalog_features(settings):
    """config/tags.yaml compiles against the feature catalog's columns (so a renamed feature
    fails here, not in the nightly build)."""
    specs = scoring_specs(settings)
    types = {"int": "BIGINT", "float": "DOUBLE", "string": "VARCHAR"}
    columns = {"pid": "VARCHAR", **{spec.name: types[spec.dtype] for spec in specs}}
    sql, params = tags_sql(load_yaml(settings.config_file("tags.yaml")), columns)
    assert sql.count("UNION ALL") > 10 and params
