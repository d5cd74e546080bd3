"""Planning from the bottom up: the reach a campaign type needs for a target of won deals.

From the campaigns of one type so far (`campaign.campaign_type`: a paid program such as
`dataplat-search`, `webinar`, `summit`, `email:product-a`), the historical stages:

reach (people and anonymous browsers the type's campaigns touched or invited) -> leads it
sourced (first campaign touch) -> MQL -> opportunity -> won

with the rate from each stage to the next. The target divided by the product of the rates
from a stage to won is what that stage needs: the reach needed is the last line's figure.
A stage no one passed makes the plan impossible (`needed` is null there and above), said so.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from leadscore.config import Settings
from leadscore.duckdb_rows import one_row
from leadscore.marketing.funnel import prepare
from leadscore.marketing.inputs import connect

PLAN_STAGES = ("reach", "lead", "mql", "opportunity", "customer")

HISTORY_SQL = """
    WITH typed AS (SELECT campaign_id FROM campaign WHERE campaign_type = $type),
    reached AS (
        SELECT coalesce(pid, 'cookie:' || cookie_id) AS who FROM campaign_touch
        WHERE campaign_id IN (SELECT campaign_id FROM typed)
        UNION
        SELECT coalesce(pid, 'email:' || lower(email)) FROM campaign_invitation
        WHERE campaign_id IN (SELECT campaign_id FROM typed))
    SELECT (SELECT count(*) FROM reached) AS reach,
           count(*) AS lead, count(*) FILTER (WHERE mql) AS mql,
           count(*) FILTER (WHERE opportunity) AS opportunity, count(*) FILTER (WHERE customer) AS customer,
           (SELECT count(*) FROM typed) AS campaigns
    FROM person_fact WHERE campaign IN (SELECT campaign_id FROM typed)"""


def campaign_types(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [t for t, in con.execute("SELECT DISTINCT campaign_type FROM campaign ORDER BY 1").fetchall()]


def plan_table(con: duckdb.DuckDBPyConnection, campaign_type: str, won_target: float) -> pd.DataFrame:
    """Per stage: the historical count, the rate to the next stage and what the target needs;
    needs `funnel.prepare`. An unknown type is an error listing the known ones."""
    known = campaign_types(con)
    if campaign_type not in known:
        raise ValueError(f"no campaigns of type {campaign_type!r}; known types: {', '.join(known)}")
    history = one_row(con, HISTORY_SQL, {"type": campaign_type})
    counts = dict(zip(PLAN_STAGES, history[:len(PLAN_STAGES)], strict=True))
    rows: list[dict] = []
    needed: float | None = float(won_target)
    for stage, after in reversed(list(zip(PLAN_STAGES, [*PLAN_STAGES[1:], None], strict=True))):
        rate = counts[after] / counts[stage] if after and counts[stage] else None
        if after:
            needed = needed / rate if needed is not None and rate else None
        rows.append({"stage": stage, "historical": counts[stage], "rate_to_next": rate,
                     "needed": None if needed is None else round(needed, 1)})
    return pd.DataFrame(rows[::-1]).assign(campaign_type=campaign_type, campaigns=history[-1],
                                           won_target=won_target)


def plan(settings: Settings, campaign_type: str, won_target: float) -> pd.DataFrame:
    """`plan_table` on the current middle layer."""
    with connect(settings) as con:
        prepare(con, settings.serving.webhook.mql_threshold)
        return plan_table(con, campaign_type, won_target)
