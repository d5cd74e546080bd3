"""Reasons in good English: a count of none reads as an absence, one of a thing in the
singular, a recency as the portrait says how long ago, an unknown value in words, and a
change in points never as '-0.0'. Every feature of the catalog is phrased for a typical
value, 0, 1 and missing, and read for what a rep must never see."""

import re
from datetime import UTC, datetime, timedelta

import pytest

from leadscore.features.catalog import (
    COMMITTEE_FEATURES,
    FIT_FEATURES,
    PEOPLE_SCORES,
    SINGULARS,
    account_scoring_specs,
    family_labels,
    phrase,
    scoring_specs,
    settings_catalog,
)
from leadscore.serving.portrait.charts import signed
from leadscore.serving.portrait.render import portrait_environment
from leadscore.serving.reasons import Families


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
    ("days_since_last_web_visit", 1.2, "last visited the website 1 day ago"),
    ("days_since_last_web_visit", 1.8, "last visited the website 1 day ago"),
    ("days_since_last_web_visit", 0.3, "last visited the website 7 hours ago"),
    ("days_since_last_web_visit", 11.0, "last visited the website 11 days ago"),
    ("days_since_last_web_visit", None, "never visited the website"),
    ("days_since_last_event", 8.4, "last touch 8 days ago"),
    ("committee_days_since_last_contact_sales", float("nan"),
     "nobody at the account has asked sales to get in touch"),
    ("contact_sales_30d", None, "has not asked sales to get in touch in the last 30 days"),
    ("seniority", "c_level", "seniority: C-level"),
    ("committee_engaged_30d", 1, "1 person engaged in the last 30 days"),
    ("committee_engaged_30d", 0, "no people engaged in the last 30 days"),
    ("committee_contact_sales_30d", 0, "no requests to talk to sales in the last 30 days"),
    ("committee_departments_engaged_90d", 1, "engaged people from 1 department (last 90 days)"),
    ("group_companies", 1, "part of a group of 1 company"),
])
def test_counts_read_as_a_rep_would_say_them(specs, feature, value, words):
    assert phrase(specs[feature], value) == words


@pytest.mark.parametrize(("chance", "words"), [
    (0.41, "41% chance"), (0.9997, "over 99% chance"), (1.0, "over 99% chance"), (0.002, "under 1% chance"),
    (0.0, "0% chance")])
def test_a_chance_that_rounds_to_certainty_does_not_read_as_one(chance, words):
    assert phrase(PEOPLE_SCORES, chance) == f"its people's scores: {words} that one of them converts"


def test_a_change_that_rounds_to_nothing_has_no_sign():
    assert [signed(-0.04), signed(0.04), signed(-0.3, 0), signed(-0.06), signed(2.25)] == \
        ["0.0", "0.0", "0", "-0.1", "+2.2"]



def test_a_recency_reads_as_the_portraits_last_touch_for_the_same_instant(specs):
    """The page's "Last touch" (the clock's now minus the last engagement) and the reason's
    (the feature's days) say the same for the same instant: whole units, rounded down, both."""
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    page_ago = portrait_environment().filters["ago"]
    for days in (7.6, 0.4, 1.0, 45.2, 400.0):
        page = page_ago(now - timedelta(days=days), now)
        assert phrase(specs["days_since_last_event"], days) == f"last touch {page}", days


# ------------------------------------------------------------ every feature of the catalog

PLURALS, SINGLES = set(SINGULARS), set(SINGULARS.values())
STOPS = {"in", "by", "at", "on", "to", "of", "from", "across", "(last"}  # where a count's noun ends
CATEGORIES = {"seniority": "c_level", "department": "it", "industry": "financial_services",
              "funding_stage": "series_e_plus", "band": "1000-4999"}


def typical(name: str, dtype: str) -> object:
    if dtype == "string":
        return next(value for key, value in CATEGORIES.items() if name.endswith(key))
    for part, value in (("rate", 0.4), ("completeness", 0.8), ("people_any", 0.35), ("trend", 1.6),
                        ("days_since", 12.4), ("revenue", 12_500_000.0)):
        if part in name:
            return value
    return 7


def _noun(text: str, after: re.Match) -> str | None:
    """The noun a count counts: the last known noun among the words after it, up to the word
    that ends it ('7 email clicks by' -> 'clicks', '1 form and downloads by' -> 'downloads')."""
    nouns = []
    for word in text[after.end():].split()[:3]:
        if word in STOPS:
            break
        nouns += [word.rstrip(";,)")] if word.rstrip(";,)") in PLURALS | SINGLES else []
        if word[-1] in ";,)":
            break
    return nouns[-1] if nouns else None


def what_a_rep_must_not_read(text: str, raw_names: set[str]) -> list[str]:
    """Raw feature names (snake_case, or humanised: 'days since last event', 'web visit 7d'),
    'unknown', a leaked 'any', a count whose noun disagrees with it."""
    found = [f"raw name {name!r}" for name in raw_names if name in text or name.replace("_", " ") in text]
    found += [f"snake_case {m[0]!r}" for m in re.finditer(r"\b[a-z]+_\w+", text)]
    found += ["'unknown'"] * ("unknown" in text) + ["'any' artefact"] * bool(
        re.search(r"\b(?:last|a|an|the|no) any\b", text))
    for count in re.finditer(r"(?<![\d.,$x-])(\d[\d,]*) ", text):
        noun = _noun(text, count)
        if noun in (PLURALS if count[1] == "1" else SINGLES):
            found.append(f"{count[1]} {noun}")
    return found


def raw_names(specs: list) -> set[str]:
    """The feature names that are no English once their underscores are spaces."""
    return {spec.name for spec in specs
            if re.search(r"\d+d$|days_since|_usd$|^committee_|^is_|_rate_|_any$", spec.name)}


def _values(name: str, dtype: str) -> list[object]:
    if dtype == "string":
        return [typical(name, dtype), None]
    return [typical(name, dtype), 0, 1, 0.0, 1.0, None, float("nan")]


def _every_service(settings) -> dict[str, list]:
    """The specs each service phrases: the lead model's, the account model's (with its start)."""
    return {"lead": scoring_specs(settings), "account": [*account_scoring_specs(), PEOPLE_SCORES]}


def test_every_feature_of_the_catalog_reads_in_sales_words(settings):
    problems = {}
    for specs in _every_service(settings).values():
        raw = raw_names(specs)
        for spec in specs:
            for value in _values(spec.name, spec.dtype):
                text = phrase(spec, value)
                if not text or what_a_rep_must_not_read(text, raw):
                    problems[(spec.name, repr(value))] = (text, what_a_rep_must_not_read(text, raw))
    assert not problems, "\n".join(f"{key}: {text!r} {why}" for key, (text, why) in problems.items())


def test_every_reason_of_a_family_reads_in_sales_words_and_says_a_thing_once(settings):
    """A family's whole reason, all its features told at once (label, then phrases), for typical
    values and for every value missing."""
    labels = family_labels(settings)
    for specs in _every_service(settings).values():
        by_name = {spec.name: spec for spec in specs}
        families = Families.of(list(by_name), by_name, labels)
        raw = raw_names(specs)
        for k, members in enumerate(families.members):
            for missing in (False, True):
                told_specs = [by_name[families.feature_names[j]] for j in members]
                phrases = [phrase(spec, None if missing else typical(spec.name, spec.dtype))
                           for spec in told_specs]
                text = families.told(k, members, phrases)["text"]
                assert not what_a_rep_must_not_read(text, raw), text
                told = text.split(": ", 1)[-1].split("; ")
                assert len(told) == len(set(told)), text
