"""Pipeline and revenue attributed to campaigns: first touch, last touch, linear.

A deal's touches are the campaign touches (the middle layer's `campaign_touch`: a session or
form by its UTM link, an email click, an event registration) of its person at or before the
opportunity was created, however long before. Touches are ordered by time, touches of one
instant by `touch_rank` (the visit, its form, a registration, an email click), and touches of
one instant and rank (none in the synthetic world) by a fixed hash of their LID, so that the
order is total and the same on every run (`TOUCH_ORDER`). Each model splits the deal's amount:

- `first_touch`: all of it to the campaign of the earliest touch;
- `last_touch`: all of it to the campaign of the latest touch;
- `linear`: an equal share to every touch (a campaign touched twice gets two shares).

A deal without any campaign touch goes whole to `(none)`, so that under every model each
deal's amount is attributed exactly once: pipeline is every opportunity's amount, revenue
that of the won ones.

Everything is aggregates in DuckDB (no window, no round trip through pandas): the deals'
touches are read once, and the first, the last and the count per campaign come from one
grouping each.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from leadscore.config import Settings
from leadscore.marketing.inputs import connect

MODELS = ("first_touch", "last_touch", "linear")
NO_CAMPAIGN = "(none)"
FIGURES = ("opportunities", "won_deals", "pipeline_usd", "revenue_usd")

# One HUGEINT per touch, in the touch order above: time (microseconds) and rank in the high 64
# bits, the LID's hash in the low ones. A number compares far faster than a (time, rank, lid)
# struct in arg_min / arg_max, the most expensive step of the funnel at scale.
TOUCH_ORDER = "(((epoch_us(touch_time) * 16 + touch_rank)::HUGEINT << 64) + hash(lid)::HUGEINT)"

CREDITS_SQL = f"""
    WITH deals AS (
        SELECT opportunity_id, pid, opportunity_created_at AS created_at, won_at IS NOT NULL AS won,
               coalesce(amount_usd, 0) AS amount_usd
        FROM outcome),
    touches AS MATERIALIZED (
        SELECT d.opportunity_id, t.campaign_id, {TOUCH_ORDER} AS touch_order
        FROM deals d JOIN campaign_touch t
          ON t.pid = d.pid AND t.touch_time <= d.created_at AND t.campaign_id IS NOT NULL),
    ends AS (
        SELECT opportunity_id, arg_min(campaign_id, touch_order) AS first_campaign,
               arg_max(campaign_id, touch_order) AS last_campaign, count(*) AS n
        FROM touches GROUP BY opportunity_id),
    shares AS (
        SELECT opportunity_id, first_campaign AS campaign_id, 'first_touch' AS model, 1.0 AS share
        FROM ends
        UNION ALL
        SELECT opportunity_id, last_campaign, 'last_touch', 1.0 FROM ends
        UNION ALL
        SELECT t.opportunity_id, t.campaign_id, 'linear', count(*) / any_value(e.n)
        FROM touches t JOIN ends e USING (opportunity_id) GROUP BY t.opportunity_id, t.campaign_id
        UNION ALL
        SELECT d.opportunity_id, '{NO_CAMPAIGN}', m.model, 1.0
        FROM deals d CROSS JOIN (SELECT unnest({list(MODELS)}) AS model) m
        WHERE d.opportunity_id NOT IN (SELECT opportunity_id FROM ends))
    SELECT s.opportunity_id, s.model, s.campaign_id, s.share, d.won, s.share * d.amount_usd AS pipeline_usd,
           CASE WHEN d.won THEN s.share * d.amount_usd ELSE 0 END AS revenue_usd
    FROM shares s JOIN deals d USING (opportunity_id)
    ORDER BY s.opportunity_id, s.model, s.campaign_id"""


def by_campaign_sql() -> str:
    """One row per campaign of `deal_credit`, a `<figure>_<model>` column per figure and model."""
    sums = {"opportunities": "share", "won_deals": "share", "pipeline_usd": "pipeline_usd",
            "revenue_usd": "revenue_usd"}
    columns = [f"coalesce(sum({sums[figure]}) FILTER (WHERE model = '{model}'"
               f"{' AND won' if figure == 'won_deals' else ''}), 0) AS {figure}_{model}"
               for figure in FIGURES for model in MODELS]
    return f"SELECT campaign_id, {', '.join(columns)} FROM deal_credit GROUP BY 1 ORDER BY 1"


def deal_credits(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Per deal, model and campaign: the share of the deal and its pipeline and revenue."""
    return con.execute(CREDITS_SQL).df()


def attribution_by_campaign(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """One row per campaign (and `(none)`): opportunities, won deals, pipeline and revenue
    credited under each model (`<figure>_<model>` columns, 0 where none)."""
    credit_campaigns(con)
    return con.execute("SELECT * FROM campaign_credit").df()


def credit_campaigns(con: duckdb.DuckDBPyConnection) -> None:
    """The temporary tables `deal_credit` (CREDITS_SQL) and `campaign_credit` (its sums per
    campaign) on `con`, for the ROI table to join."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE deal_credit AS {CREDITS_SQL}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE campaign_credit AS {by_campaign_sql()}")


def attribution(settings: Settings) -> pd.DataFrame:
    """`attribution_by_campaign` of the current middle layer."""
    with connect(settings) as con:
        return attribution_by_campaign(con)
