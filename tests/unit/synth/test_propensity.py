"""The hidden propensity is real: fit and buying cycles drive opportunities."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from leadscore.config import WorldSettings
from leadscore.synth import World, generate_world


@pytest.fixture(scope="module")
def medium() -> World:
    """Big enough for rates to be stable (2,000 people, ~400 opportunities)."""
    return generate_world(WorldSettings(seed=5, scale=0.1))


@pytest.fixture(scope="module")
def windows(medium: World) -> pd.DataFrame:
    """One row per (person, snapshot): fit, in an active cycle then, opportunity in 90 days."""
    records = medium.truth["records"]
    opps = medium.sources["opportunities"].merge(
        records[records["source"] == "opportunities"],
        left_on="opportunity_id", right_on="source_record_id")
    people, cycles = medium.truth["people"], medium.truth["cycles"]
    start = medium.sources["web_sessions"]["started_at"].min().floor("D")
    frames = []
    for offset in range(120, 450, 28):
        snap = start + pd.Timedelta(days=offset)
        soon = opps[(opps["created_at"] >= snap)
                    & (opps["created_at"] < snap + pd.Timedelta(days=90))]
        active = cycles[(cycles["start"] <= snap) & (cycles["end"] > snap)]
        frames.append(pd.DataFrame({
            "fit": people["fit"].to_numpy(),
            "active": people["person_key"].isin(active["person_key"]).to_numpy(),
            "opportunity": people["person_key"].isin(soon["person_key"]).to_numpy(),
        }))
    return pd.concat(frames, ignore_index=True)


def test_opportunities_are_rare_on_average(windows: pd.DataFrame):
    assert 0.015 <= windows["opportunity"].mean() <= 0.07


def test_high_fit_people_in_an_active_cycle_convert_far_more(windows: pd.DataFrame):
    high = windows["fit"] > 0.75
    hot = windows.loc[high & windows["active"], "opportunity"].mean()
    rest = windows.loc[~(high & windows["active"]), "opportunity"].mean()
    assert hot >= 0.15
    assert hot >= 5 * rest


def test_fit_and_cycles_each_matter(windows: pd.DataFrame):
    high = windows["fit"] > 0.6
    rate = windows.groupby([high, windows["active"]])["opportunity"].mean()
    assert rate[(True, True)] > rate[(False, True)] > rate[(False, False)]
    assert rate[(True, True)] > rate[(True, False)] > rate[(False, False)]


def test_cycle_outcomes_follow_their_probability(medium: World):
    cycles = medium.truth["cycles"].drop_duplicates("cycle_id")
    assert cycles["opportunity"].mean() == pytest.approx(cycles["p_opportunity"].mean(), abs=0.05)
    members = medium.truth["cycles"]
    fit = members.merge(medium.truth["people"][["person_key", "fit"]], on="person_key")
    per_cycle = fit.groupby("cycle_id").agg(fit=("fit", "mean"), events=("events", "sum"),
                                            p=("p_opportunity", "first"))
    assert np.corrcoef(per_cycle["fit"], per_cycle["p"])[0, 1] > 0.3
    assert np.corrcoef(np.log1p(per_cycle["events"]), per_cycle["p"])[0, 1] > 0.3
    # the opportunity lands on one member: the most engaged one
    holders = members[members["is_opportunity_contact"]]
    assert holders["cycle_id"].is_unique
    assert set(holders["cycle_id"]) == set(members.loc[members["opportunity"], "cycle_id"])
    top = members.groupby("cycle_id")["events"].max()
    assert (holders["events"].to_numpy() == top.loc[holders["cycle_id"]].to_numpy()).all()


def test_cycles_lean_to_high_intent_actions(medium: World):
    records = medium.truth["records"]
    forms = medium.sources["form_fills"].merge(
        records[records["source"] == "form_fills"], left_on="form_fill_id",
        right_on="source_record_id")
    cycles = medium.truth["cycles"]
    spans = forms.merge(cycles[["person_key", "start", "end"]], on="person_key", how="left")
    inside = (spans["submitted_at"] >= spans["start"]) & (spans["submitted_at"] < spans["end"])
    in_cycle = set(spans.loc[inside, "form_fill_id"])
    hot = forms["form_fill_id"].isin(in_cycle)
    share = forms.groupby(hot)["form_type"].apply(lambda t: (t == "contact_sales").mean())
    assert share[True] > 3 * share[False]


def test_firmographics_shape_fit_and_cycle_rate(medium: World):
    people = medium.truth["people"].merge(medium.truth["companies"], on="company_key")
    big = people["employees"] > 1000
    assert people.loc[big, "fit"].mean() > people.loc[~big, "fit"].mean() + 0.05
    late = people["funding_stage"].isin(["series_d", "series_e_plus", "public"])
    assert people.loc[late, "fit"].mean() > people.loc[~late, "fit"].mean()
    it = people["department"].isin(["it", "engineering", "procurement"])
    assert people.loc[it, "fit"].mean() > people.loc[people["department"] == "hr", "fit"].mean()
    cycles = medium.truth["cycles"].drop_duplicates("cycle_id")
    per_company = cycles.groupby("company_key").size()
    companies = medium.truth["companies"].set_index("company_key")
    rate = per_company.reindex(companies.index, fill_value=0)
    assert rate[companies["employees"] > 1000].mean() > rate[companies["employees"] < 100].mean()
