"""The marketing truth benchmark (benchmarks/marketing_truth.py): which touches some record ties to
their person, the first campaign of each deal over them, and a world without the planted
frequency effect."""

from __future__ import annotations

import pandas as pd

from leadscore.benchmarks.marketing_truth import (
    agreement,
    classify_misses,
    first_campaigns,
    lead_records,
    measure_frequency_truth,
    observable_sources,
)
from leadscore.synth.campaigns import deal_truth

T = pd.Timestamp("2026-03-01", tz="UTC")


def _world() -> tuple[dict[str, pd.DataFrame], pd.DataFrame, pd.DataFrame]:
    """Ann (A) won deal O1. Her first touch, a search session (campaign S), is on a cookie no form
    ever carried; then a social session (X) on a cookie her named form carried; a session of
    Bob's on a cookie Ann's form carried (a shared computer) and a registration without address
    or phone (webinar W) for Ann come before it too."""
    sessions = pd.DataFrame({
        "session_id": ["S1", "S2", "S3"], "cookie_id": ["never", "ann-ck", "ann-ck"],
        "started_at": [T, T + pd.Timedelta(days=2), T + pd.Timedelta(days=1)],
        "utm_campaign": ["search-q1", "social-q1", "search-q1"]})
    forms = pd.DataFrame({
        "form_fill_id": ["F1", "F2"], "cookie_id": ["ann-ck", "ann-ck"],
        "submitted_at": [T + pd.Timedelta(days=3), T + pd.Timedelta(days=4)],
        "email": ["ann@x.com", None], "phone": [None, None], "utm_campaign": [None, "social-q1"]})
    regs = pd.DataFrame({"registration_id": ["R1"], "event_id": ["W"], "email": [None], "phone": [None],
                         "registered_at": [T + pd.Timedelta(hours=1)]})
    email = pd.DataFrame({"activity_id": pd.Series(dtype=object), "campaign_id": pd.Series(dtype=object),
                          "activity": pd.Series(dtype=object),
                          "occurred_at": pd.Series(dtype="datetime64[us, UTC]")})
    opps = pd.DataFrame({"opportunity_id": ["O1"], "stage": ["won"], "created_at": [T + pd.Timedelta(days=9)],
                         "closed_at": [T + pd.Timedelta(days=40)], "amount_usd": [1000.0]})
    campaigns = pd.DataFrame({"campaign_id": ["S", "X", "W"],
                              "utm_campaign": ["search-q1", "social-q1", None]})
    records = pd.DataFrame({
        "source": ["web_sessions"] * 3 + ["form_fills"] * 2 + ["event_registrations", "opportunities"],
        "source_record_id": ["S1", "S2", "S3", "F1", "F2", "R1", "O1"],
        "person_key": ["A", "A", "B", "A", "A", "A", "A"]})
    sources = {"web_sessions": sessions, "form_fills": forms, "event_registrations": regs,
               "email_activity": email, "opportunities": opps}
    return sources, campaigns, records


def test_only_touches_a_record_ties_to_their_person_are_observable():
    sources, campaigns, records = _world()
    seen = observable_sources(sources, records)
    assert seen["web_sessions"]["session_id"].tolist() == ["S2"]  # not "never", not Bob's on Ann's cookie
    assert seen["form_fills"]["form_fill_id"].tolist() == ["F1", "F2"]  # F2 by the cookie F1 names
    assert seen["event_registrations"].empty
    raw = deal_truth(sources, campaigns, records).set_index("opportunity_id")["first_campaign_id"]
    observable = deal_truth(seen, campaigns, records).set_index("opportunity_id")["first_campaign_id"]
    assert (raw["O1"], observable["O1"]) == ("S", "X")


def test_agreement_counts_deals_and_campaigns():
    truth = pd.Series({"O1": "S", "O2": "X", "O3": None})
    found = pd.Series({"O1": "X", "O2": "X", "O3": None})
    figures = agreement(truth, found)
    assert figures["deal_agreement"] == round(2 / 3, 4) and figures["deals_differing"] == 1
    assert (figures["campaigns"], figures["campaigns_equal"], figures["abs_diff_won_deals"]) == (2, 0, 2)


def test_a_world_without_the_planted_frequency_effect_has_no_frequency_figure(settings, tmp_path):
    assert measure_frequency_truth(settings.with_data_dir(tmp_path / "old-world")) is None


def test_a_browser_named_only_at_another_employer_is_not_the_deal_leads():
    """Kev clicked a search ad (S1) while at Old, won a deal there (O1), then moved to New and
    filled a form (F1) with his New address on the same browser: the form names the browser
    as New's lead, so the search session is Old's deal's first touch only across employers."""
    sessions = pd.DataFrame({"session_id": ["S1"], "cookie_id": ["kev-ck"], "started_at": [T],
                             "utm_campaign": ["search-q1"]})
    forms = pd.DataFrame({"form_fill_id": ["F1"], "cookie_id": ["kev-ck"],
                          "submitted_at": [T + pd.Timedelta(days=90)], "email": ["kev@new.com"],
                          "phone": [None], "utm_campaign": [None]})
    regs = pd.DataFrame({"registration_id": ["R1"], "event_id": ["W"], "email": ["kev@old.com"],
                         "phone": [None], "registered_at": [T + pd.Timedelta(days=3)]})
    _, campaigns, _ = _world()
    email = _world()[0]["email_activity"]
    opps = pd.DataFrame({"opportunity_id": ["O1"], "stage": ["won"], "created_at": [T + pd.Timedelta(days=9)],
                         "closed_at": [T + pd.Timedelta(days=40)], "amount_usd": [1000.0]})
    sources = {"web_sessions": sessions, "form_fills": forms, "event_registrations": regs,
               "email_activity": email, "opportunities": opps}
    records = pd.DataFrame({"source": ["web_sessions", "form_fills", "event_registrations", "opportunities"],
                            "source_record_id": ["S1", "F1", "R1", "O1"], "person_key": ["K"] * 4,
                            "company_key": ["OLD", "NEW", "OLD", "OLD"]})
    leads = lead_records(records)
    across, _ = first_campaigns(observable_sources(sources, records), campaigns, records)
    as_lead, touches = first_campaigns(observable_sources(sources, leads), campaigns, leads)
    assert (across["O1"], as_lead["O1"]) == ("S", "W")  # the registration at Old is the lead's
    assert touches["source_record_id"].tolist() == ["R1"]


def test_each_missed_deal_is_classed_by_what_ties_its_first_touch():
    import duckdb

    first = pd.DataFrame({"source": ["web_sessions"] * 4 + ["form_fills"],
                          "source_record_id": ["S0", "S1", "S2", "S3", "F4"]},
                         index=pd.Index(["O0", "O1", "O2", "O3", "O4"], name="opportunity_id"))
    touches = first.reset_index()
    seen = touches[touches["opportunity_id"] != "O0"]  # S0: a cookie no one named
    at_employer = seen[seen["opportunity_id"] != "O1"]  # S1: named only by forms after a move
    con = duckdb.connect()
    con.register("record", pd.DataFrame({"source": ["web_sessions"] * 4 + ["form_fills"],
                                         "source_record_id": ["S0", "S1", "S2", "S3", "F4"],
                                         "pid": [None, "P9", "P9", None, "P4"]}))
    con.register("outcome", pd.DataFrame({"opportunity_id": ["O0", "O1", "O2", "O3", "O4", "O5"],
                                          "pid": ["P0", "P1", "P2", "P3", "P4", "P5"]}))
    classes = classify_misses(pd.Index(["O0", "O1", "O2", "O3", "O4", "O5"]), first, seen, at_employer, con)
    assert classes == {"unobservable": 1, "attribution": 1, "other_employer": 1, "record_anonymous": 1,
                       "person_split": 1, "truth_without_touch": 1}
