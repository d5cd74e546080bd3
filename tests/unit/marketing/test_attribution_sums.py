"""Attribution on the tiny world: every deal's amount attributed exactly once per model."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest
from marketing_tiny_world import OUTCOME, day, tiny_world

from leadscore.marketing.attribution import MODELS, NO_CAMPAIGN, attribution_by_campaign, deal_credits
from leadscore.marketing.funnel import funnel_table, prepare, roi_table
from leadscore.marketing.planning import plan_table


@pytest.mark.parametrize("model", MODELS)
def test_each_deal_is_attributed_exactly_once(model):
    credits = deal_credits(tiny_world())
    credits = credits[credits["model"] == model]
    amounts = OUTCOME.set_index("opportunity_id")["amount_usd"]
    assert credits.groupby("opportunity_id")["share"].sum().to_dict() == pytest.approx(
        dict.fromkeys(amounts.index, 1.0))
    pipeline = credits.groupby("opportunity_id")["pipeline_usd"].sum()
    assert pipeline.to_dict() == pytest.approx(amounts.to_dict())
    won = OUTCOME.loc[OUTCOME["won_at"].notna(), "amount_usd"].sum()
    assert credits["revenue_usd"].sum() == pytest.approx(won)


def test_first_last_and_linear_credit_the_right_campaigns():
    credits = deal_credits(tiny_world()).set_index(["opportunity_id", "model", "campaign_id"])["share"]
    # O1 (P1, day 15): touches CA (2), CB (4); CA on day 20 came after and does not count
    assert credits[("O1", "first_touch", "CA")] == 1 and credits[("O1", "last_touch", "CB")] == 1
    assert credits[("O1", "linear", "CA")] == pytest.approx(0.5)
    # O3 (P1, day 40): CA twice and CB once: linear gives CA two shares of three
    assert credits[("O3", "linear", "CA")] == pytest.approx(2 / 3)
    assert credits[("O3", "last_touch", "CA")] == 1


def test_a_deal_without_touches_goes_to_none():
    con = tiny_world()
    con.execute("DELETE FROM campaign_touch WHERE pid = 'P2'")
    by_campaign = attribution_by_campaign(con).set_index("campaign_id")
    for model in MODELS:
        assert by_campaign.loc[NO_CAMPAIGN, f"pipeline_usd_{model}"] == 500.0
        assert by_campaign[f"pipeline_usd_{model}"].sum() == pytest.approx(OUTCOME["amount_usd"].sum())


def test_funnel_roi_and_plan_on_the_tiny_world():
    con = tiny_world()
    prepare(con, 60)
    funnel = funnel_table(con, "campaign").set_index("campaign")
    # first touches: P1 by CA, P2 by CB, P3 by CC; P4 by none
    assert funnel.loc["CA", ["lead", "mql", "sales_accepted", "opportunity", "customer"]].tolist() == [1] * 5
    assert funnel.loc["CB", ["lead", "mql", "opportunity", "customer"]].tolist() == [1, 1, 1, 0]
    assert funnel.loc["(none)", "lead"] == 1 and funnel["lead"].sum() == 4
    roi = roi_table(con).set_index("campaign_id")
    # CA sourced both of P1's won deals (the first and the upsell)
    assert roi.loc["CA", "cost_per_won_deal"] == 50.0 and roi.loc["CB", "cost_per_lead"] == 200.0
    assert roi.loc["CA", ["invited", "registered", "attended", "engaged_share"]].tolist() == [3, 2, 1, 1.0]
    assert roi.loc["CB", "reach"] == 3  # P1, P2 and an anonymous browser
    plan = plan_table(con, "search", 2).set_index("stage")
    assert plan.loc["customer", "needed"] == 2 and plan.loc["lead", "historical"] == 1
    assert pd.isna(plan.loc["opportunity", "needed"])  # no search lead has won yet: no rate to plan from
    with pytest.raises(ValueError, match="known types: email, search, webinar"):
        plan_table(con, "radio", 1)


def test_touches_of_one_instant_go_visit_form_registration_click():
    """P2's deal O2 (day 9): at one instant an email click (CC), a registration (CA) and the visit
    (CB) that brought them, inserted in the wrong order: the visit is first, the click last; a
    microsecond earlier beats any rank."""
    con = tiny_world()
    con.execute("DELETE FROM campaign_touch WHERE pid = 'P2'")
    insert = ("INSERT INTO campaign_touch (lid, pid, event_type, campaign_id, touch_rank, touch_time) "
              "VALUES (?, 'P2', ?, ?, ?, ?)")
    at = day(5)
    for touch in (("Z1", "email_click", "CC", 3, at), ("Z2", "webinar_register", "CA", 2, at),
                  ("A3", "web_visit", "CB", 0, at)):
        con.execute(insert, touch)

    def ends() -> tuple[str, str]:
        credits = deal_credits(con).query("opportunity_id == 'O2'").set_index("model")["campaign_id"]
        return credits["first_touch"], credits["last_touch"]

    assert ends() == ("CB", "CC")
    con.execute(insert, ("Z9", "email_click", "CC", 3, at - timedelta(microseconds=1)))
    assert ends() == ("CC", "CC")
