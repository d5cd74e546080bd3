"""Pipeline and revenue attributed to campaigns: first touch, last touch, linear.

A deal's touches are the campaign touches (the middle layer's `campaign_touch`: a session or
form by its UTM link, an email click, an event registration) of its person at or before the
opportunity was created, however long before (touches of one instant in the order of
`touch_rank`: the visit, its form, a registration, an email click). Each model splits the
deal's amount:

- `first_touch`: all of it to the campaign of the earliest touch;
- `last_touch`: all of it to the campaign of the latest touch;
- `linear`: an equal share to every touch (a campaign touched twice gets two shares).

A deal without any campaign touch goes whole to `(none)`, so that under every model each
deal's amount is attributed exactly once: pipeline is every opportunity's amount, revenue
that of the won ones.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from leadscore.config import Settings
from leadscore.marketing.inputs import connect

MODELS = ("first_touch", "last_touch", "linear")
NO_CAMPAIGN = "(none)"

CREDITS_SQL = f"""
    WITH deals AS (
        SELECT opportunity_id, pid, opportunity_created_at AS created_at, won_at IS NOT NULL AS won,
               coalesce(amount_usd, 0) AS amount_usd
        FROM outcome),
    touches AS (
        SELECT d.opportunity_id, t.campaign_id,
               row_number() OVER (PARTITION BY d.opportunity_id ORDER BY t.touch_time, t.touch_rank, t.lid)
                   AS from_first,
               row_number() OVER (PARTITION BY d.opportunity_id
                                  ORDER BY t.touch_time DESC, t.touch_rank DESC, t.lid DESC) AS from_last,
               count(*) OVER (PARTITION BY d.opportunity_id) AS n
        FROM deals d JOIN campaign_touch t
          ON t.pid = d.pid AND t.touch_time <= d.created_at AND t.campaign_id IS NOT NULL),
    shares AS (
        SELECT opportunity_id, campaign_id, 'first_touch' AS model, 1.0 AS share
        FROM touches WHERE from_first = 1
        UNION ALL
        SELECT opportunity_id, campaign_id, 'last_touch', 1.0 FROM touches WHERE from_last = 1
        UNION ALL
        SELECT opportunity_id, campaign_id, 'linear', 1.0 / n FROM touches
        UNION ALL
        SELECT d.opportunity_id, '{NO_CAMPAIGN}', m.model, 1.0
        FROM deals d CROSS JOIN (SELECT unnest({list(MODELS)}) AS model) m
        WHERE d.opportunity_id NOT IN (SELECT opportunity_id FROM touches))
    SELECT s.opportunity_id, s.model, s.campaign_id, sum(s.share) AS share, any_value(d.won) AS won,
           sum(s.share) * any_value(d.amount_usd) AS pipeline_usd,
           CASE WHEN any_value(d.won) THEN sum(s.share) * any_value(d.amount_usd) ELSE 0 END AS revenue_usd
    FROM shares s JOIN deals d USING (opportunity_id)
    GROUP BY s.opportunity_id, s.model, s.campaign_id
    ORDER BY s.opportunity_id, s.model, s.campaign_id"""

BY_CAMPAIGN_SQL = """
    SELECT campaign_id, model, sum(share) AS opportunities, sum(share) FILTER (WHERE won) AS won_deals,
           sum(pipeline_usd) AS pipeline_usd, sum(revenue_usd) AS revenue_usd
    FROM deal_credit GROUP BY campaign_id, model"""


def deal_credits(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Per deal, model and campaign: the share of the deal and its pipeline and revenue."""
    return con.execute(CREDITS_SQL).df()


def attribution_by_campaign(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """One row per campaign (and `(none)`): opportunities, won deals, pipeline and revenue
    credited under each model (`<figure>_<model>` columns, 0 where none)."""
    con.register("deal_credit_df", deal_credits(con))
    con.execute("CREATE OR REPLACE TEMP TABLE deal_credit AS SELECT * FROM deal_credit_df")
    con.unregister("deal_credit_df")
    long = con.execute(BY_CAMPAIGN_SQL).df()
    wide = long.pivot(index="campaign_id", columns="model",
                      values=["opportunities", "won_deals", "pipeline_usd", "revenue_usd"])
    wide = wide.reindex(columns=pd.MultiIndex.from_product([wide.columns.levels[0], MODELS]))
    wide.columns = [f"{figure}_{model}" for figure, model in wide.columns]
    return wide.fillna(0.0).reset_index()


def attribution(settings: Settings) -> pd.DataFrame:
    """`attribution_by_campaign` of the current middle layer."""
    with connect(settings) as con:
        return attribution_by_campaign(con)
