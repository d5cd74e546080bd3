"""The funnel and campaign ROI: how people move from lead to customer, and what it costs.

Each person who became a known lead is counted once, under:

- `campaign` / `channel` / `campaign_type`: the campaign of their first campaign touch (the
  one that sourced them; `(none)` without one) and its channel and type;
- `demand_tag`: the demand tag of their first tagged touch (`(none)`);
- `tier`: their tier in the latest score before their first opportunity (or the latest, without
  one), so that a tier is judged by what came after it (`(unscored)`);
- `month`: the month they became a known lead.

Stages follow the lifecycle (lifecycle.py), counted as *passed*: a person passed a stage if
they entered it or any later one (a deal won without a recorded MQL still passed MQL), so each
count is at most the one before and the rates are stage to stage.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import pandas as pd

from leadscore.config import Settings
from leadscore.marketing.attribution import FIGURES, MODELS, TOUCH_ORDER, credit_campaigns
from leadscore.marketing.inputs import connect
from leadscore.marketing.lifecycle import HISTORY_SQL

FUNNEL = ("lead", "mql", "sales_accepted", "opportunity", "customer")
DIMENSIONS = ("campaign", "channel", "campaign_type", "demand_tag", "tier", "month")
STAGE_COUNTS = ", ".join(f"count(*) FILTER (WHERE {stage}) AS {stage}" for stage in FUNNEL)

FACTS_SQL = f"""
    WITH first_touch AS (
        SELECT pid, arg_min(campaign_id, {TOUCH_ORDER}) AS campaign_id
        FROM campaign_touch WHERE pid IS NOT NULL AND campaign_id IS NOT NULL GROUP BY pid),
    first_opportunity AS (SELECT pid, min(opportunity_created_at) AS at FROM outcome GROUP BY pid),
    tier AS (
        SELECT s.pid, arg_max(s.tier, s.scored_at) AS tier
        FROM scores s LEFT JOIN first_opportunity o USING (pid)
        WHERE o.at IS NULL OR s.scored_at <= o.at GROUP BY s.pid),
    stages AS (
        SELECT pid, min(entered_at) FILTER (WHERE stage = 'known_lead') AS lead_at,
               bool_or(stage = 'customer' OR stage = 'renewal_upsell') AS customer,
               bool_or(stage = 'opportunity') AS opportunity,
               bool_or(stage = 'sales_accepted') AS sales_accepted,
               bool_or(stage = 'mql') AS mql
        FROM lifecycle GROUP BY pid)
    SELECT s.pid, s.lead_at, coalesce(f.campaign_id, '(none)') AS campaign,
           coalesce(c.channel, '(none)') AS channel, coalesce(c.campaign_type, '(none)') AS campaign_type,
           coalesce(d.first_tag, '(none)') AS demand_tag, coalesce(t.tier, '(unscored)') AS tier,
           strftime(s.lead_at, '%Y-%m') AS month,
           TRUE AS lead,
           s.customer AS customer,
           s.customer OR s.opportunity AS opportunity,
           s.customer OR s.opportunity OR s.sales_accepted AS sales_accepted,
           s.customer OR s.opportunity OR s.sales_accepted OR s.mql AS mql
    FROM stages s
    LEFT JOIN first_touch f USING (pid)
    LEFT JOIN campaign c ON c.campaign_id = f.campaign_id
    LEFT JOIN person_demand_tag d USING (pid)
    LEFT JOIN tier t USING (pid)
    WHERE s.lead_at IS NOT NULL"""

FIGURE_COLUMNS = [f"{figure}_{model}" for figure in FIGURES for model in MODELS]
COST_PER = ("lead", "mql", "opportunity")

# One row per campaign, all in DuckDB: its plan, reach and engagement, the people it sourced
# (person_fact), cost per stage, and the credit of every attribution model (campaign_credit).
ROI_SQL = f"""
    WITH attended AS (
        SELECT properties->>'event_id' AS campaign_id, count(*) AS attended,
               count(*) FILTER (WHERE coalesce(TRY_CAST(properties->>'questions_asked' AS INT), 0) > 0
                                   OR coalesce(TRY_CAST(properties->>'demo_requested' AS BOOLEAN), FALSE))
                   AS engaged
        FROM interaction WHERE event_type IN ('webinar_attend', 'event_attend') GROUP BY 1),
    touched AS (
        SELECT campaign_id, count(*) AS touches,
               count(DISTINCT coalesce(pid, 'cookie:' || cookie_id)) AS reach,
               count(*) FILTER (WHERE event_type IN ('webinar_register', 'event_register')) AS registered
        FROM campaign_touch WHERE campaign_id IS NOT NULL GROUP BY 1),
    invited AS (SELECT campaign_id, count(*) AS invited FROM campaign_invitation GROUP BY 1),
    sourced AS (
        SELECT campaign AS campaign_id, {STAGE_COUNTS} FROM person_fact GROUP BY 1)
    SELECT c.campaign_id, c.name, c.channel, c.campaign_type, c.owner, c.start_at, c.end_at,
           c.budget_usd, c.cost_usd, coalesce(t.touches, 0) AS touches, coalesce(t.reach, 0) AS reach,
           coalesce(i.invited, 0) AS invited, coalesce(t.registered, 0) AS registered,
           coalesce(a.attended, 0) AS attended, coalesce(a.engaged, 0) AS engaged,
           a.engaged / nullif(a.attended, 0) AS engaged_share,
           {", ".join(f"coalesce(s.{stage}, 0) AS {stage}" for stage in FUNNEL)},
           {", ".join(f"coalesce(r.{column}, 0) AS {column}" for column in FIGURE_COLUMNS)},
           {", ".join(f"c.cost_usd / nullif(s.{stage}, 0) AS cost_per_{stage}" for stage in COST_PER)},
           c.cost_usd / nullif(r.won_deals_first_touch, 0) AS cost_per_won_deal,
           (coalesce(r.revenue_usd_linear, 0) - c.cost_usd) / nullif(c.cost_usd, 0) AS roi_linear
    FROM campaign c
    LEFT JOIN touched t USING (campaign_id)
    LEFT JOIN invited i USING (campaign_id)
    LEFT JOIN attended a USING (campaign_id)
    LEFT JOIN sourced s USING (campaign_id)
    LEFT JOIN campaign_credit r USING (campaign_id)
    ORDER BY c.start_at, c.campaign_id"""


def prepare(con: duckdb.DuckDBPyConnection, mql_threshold: float) -> None:
    """The temporary tables the analyses share: `lifecycle` and `person_fact`."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE lifecycle AS {HISTORY_SQL}", {"threshold": mql_threshold})
    con.execute(f"CREATE OR REPLACE TEMP TABLE person_fact AS {FACTS_SQL}")


def dimensions_of(by: str | Sequence[str]) -> list[str]:
    """`by` as a list of known dimensions, or an error listing them."""
    dims = [by] if isinstance(by, str) else list(by)
    unknown = [d for d in dims if d not in DIMENSIONS]
    if unknown or not dims:
        raise ValueError(f"funnel by {unknown or 'nothing'}: choose from {', '.join(DIMENSIONS)}")
    return dims


def funnel_table(con: duckdb.DuckDBPyConnection, by: str | Sequence[str]) -> pd.DataFrame:
    """People passing each stage per group of `by`, and the stage-to-stage rates
    (`<stage>_to_<next>`, and `lead_to_customer`); needs `prepare`."""
    dims = dimensions_of(by)
    keys = ", ".join(dims)
    rates = ", ".join(f"{after} / nullif({stage}, 0) AS {stage}_to_{after}"
                      for stage, after in [*zip(FUNNEL, FUNNEL[1:], strict=False), ("lead", "customer")])
    counts = f"SELECT {keys}, {STAGE_COUNTS} FROM person_fact GROUP BY {keys}"
    return con.execute(f"SELECT *, {rates} FROM ({counts}) ORDER BY {keys}").df()


def roi_table(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """One row per campaign: cost, reach, invitations, registrations, attendance and the
    engaged share, the people it sourced at each stage, cost per stage, and pipeline and
    revenue under each attribution model (attribution.py); needs `prepare`."""
    credit_campaigns(con)
    return con.execute(ROI_SQL).df()


def funnel_by(settings: Settings, by: str | Sequence[str] = "campaign") -> pd.DataFrame:
    """The funnel of the current middle layer by one dimension or several
    (`"campaign"`, `["tier", "month"]`; see DIMENSIONS)."""
    dimensions_of(by)
    with connect(settings) as con:
        prepare(con, settings.serving.webhook.mql_threshold)
        return funnel_table(con, by)


def campaign_roi(settings: Settings) -> pd.DataFrame:
    """`roi_table` of the current middle layer."""
    with connect(settings) as con:
        prepare(con, settings.serving.webhook.mql_threshold)
        return roi_table(con)
