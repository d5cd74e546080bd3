"""Reasons in good English: a count of none reads as an absence, one of a thing in the
singular, a recency under a day as such, and a change in points never as '-0.0'."""

import pytest

from leadscore.features.catalog import COMMITTEE_FEATURES, FIT_FEATURES, phrase, settings_catalog
from leadscore.serving.portrait.charts import signed


@pytest.fixture(scope="module")
def specs(settings):
    every = [*settings_catalog(settings).specs(), *COMMITTEE_FEATURES, *FIT_FEATURES]
    return {spec.name: spec for spec in every}


@pytest.mark.parametrize(("feature", "value", "words"), [
    ("contact_sales_30d", 0, "has not asked sales to get in touch in the last 30 days"),
    ("contact_sales_30d", 1, "asked sales to get in touch once in the last 30 days"),
    ("contact_sales_30d", 2.0, "asked sales to get in touch 2 times in the last 30 days"),
    ("web_visit_7d", 0.0, "no website visits in the last 7 days"),
    ("email_open_30d", 1, "opened 1 marketing email in the last 30 days"),
    ("events_30d", 1, "had 1 touch on any channel in the last 30 days"),
    ("events_30d", 1001, "had 1,001 touches on any channel in the last 30 days"),
    ("days_since_last_web_visit", 1.2, "last web visit 1 day ago"),
    ("days_since_last_web_visit", 0.3, "last web visit less than a day ago"),
    ("days_since_last_web_visit", 11.0, "last web visit 11 days ago"),
    ("committee_engaged_30d", 1, "1 person engaged in the last 30 days"),
    ("committee_engaged_30d", 0, "no people engaged in the last 30 days"),
    ("committee_contact_sales_30d", 0, "no requests to talk to sales in the last 30 days"),
    ("committee_departments_engaged_90d", 1, "engaged people from 1 department (last 90 days)"),
    ("group_companies", 1, "part of a group of 1 company"),
])
def test_counts_read_as_a_rep_would_say_them(specs, feature, value, words):
    assert phrase(specs[feature], value) == words


def test_a_change_that_rounds_to_nothing_has_no_sign():
    assert [signed(-0.04), signed(0.04), signed(-0.3, 0), signed(-0.06), signed(2.25)] == \
        ["0.0", "0.0", "0", "-0.1", "+2.2"]
