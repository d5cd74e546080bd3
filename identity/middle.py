"""The middle layer: behaviour and outcome tables built in DuckDB SQL.

`interaction` has one row per behaviour event (LID), in the closed event-type
vocabulary of config/event_types.yaml; `outcome` one row per opportunity. Both
join the raw sources to the resolver's record map (source, record id -> pid,
cid), so a quarantined raw row never becomes an interaction.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import duckdb
import pandas as pd

# Each raw behaviour row becomes one or more interactions: (source, id column,
# kind, event type SQL, time column, channel, properties SQL, filter).
INTERACTION_SELECTS = [
    ("web_sessions", "session_id", "visit", "'web_visit'", "started_at", "web",
     "{'url': landing_url, 'utm_source': utm_source, 'pageviews': pageviews, 'duration_s': duration_s, "
     "'utm_medium': utm_medium, 'utm_campaign': utm_campaign, 'utm_term': utm_term, "
     "'utm_content': utm_content}",
     "TRUE"),
    ("email_activity", "activity_id", "activity", "'email_' || activity", "occurred_at", "email",
     "{'campaign_id': campaign_id, 'subject': subject, 'url': url}", "TRUE"),
    ("form_fills", "form_fill_id", "form",
     "CASE WHEN form_type IN ('whitepaper_download', 'contact_sales') THEN form_type ELSE 'form_submit' END",
     "submitted_at", "web", "{'form_type': form_type, 'asset': asset, 'utm_source': utm_source, "
     "'utm_medium': utm_medium, 'utm_campaign': utm_campaign, 'utm_term': utm_term, "
     "'utm_content': utm_content}",
     "TRUE"),
    ("event_registrations", "registration_id", "register",
     "CASE WHEN event_kind = 'webinar' THEN 'webinar_register' ELSE 'event_register' END",
     "registered_at", "event", "{'event_id': event_id, 'event_name': event_name}", "TRUE"),
    ("event_registrations", "registration_id", "attend",
     "CASE WHEN event_kind = 'webinar' THEN 'webinar_attend' ELSE 'event_attend' END",
     "event_date", "event", "{'event_id': event_id, 'event_name': event_name, "
     "'questions_asked': questions_asked, 'demo_requested': demo_requested}", "attended"),
    ("orders", "order_id", "purchase", "'purchase'", "ordered_at", "commerce",
     "{'product': product, 'amount_usd': amount_usd}", "TRUE"),
]


INTERACTION_SOURCES = frozenset(spec[0] for spec in INTERACTION_SELECTS)
# Columns a source may lack (written before campaigns existed, or by a system without them):
# read as missing.
UTM_COLUMNS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
OPTIONAL_COLUMNS = {
    "web_sessions": {c: "object" for c in UTM_COLUMNS},
    "form_fills": {c: "object" for c in UTM_COLUMNS},
    "event_registrations": {"questions_asked": "Int64", "demo_requested": "boolean"},
}
# The marketing team's own records (synth: `World.plans`), read when present.
PLAN_COLUMNS = {
    "campaigns": {"campaign_id": "object", "name": "object", "channel": "object",
                  "campaign_type": "object", "owner": "object", "budget_usd": "float64",
                  "cost_usd": "float64", "start_at": "datetime64[us, UTC]",
                  "end_at": "datetime64[us, UTC]", "utm_campaign": "object"},
    "campaign_invitations": {"campaign_id": "object", "email": "object",
                             "invited_at": "datetime64[us, UTC]"},
}


def with_optional_columns(source: str, frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with every optional column of its source, missing where it had none."""
    absent = {c: t for c, t in OPTIONAL_COLUMNS.get(source, {}).items() if c not in frame.columns}
    return frame.assign(**{c: pd.Series(pd.NA, index=frame.index, dtype=t) for c, t in absent.items()})


def read_plans(raw_dir: Path | None) -> dict[str, pd.DataFrame]:
    """campaigns and campaign_invitations from `raw_dir` (empty tables when absent or None)."""
    return {name: pd.read_parquet(raw_dir / f"{name}.parquet")
            if raw_dir is not None and (raw_dir / f"{name}.parquet").is_file()
            else pd.DataFrame({c: pd.Series(dtype=t) for c, t in columns.items()})
            for name, columns in PLAN_COLUMNS.items()}


def build_campaigns(con: duckdb.DuckDBPyConnection, plans: dict[str, pd.DataFrame]) -> None:
    """campaign(...) as the marketing team lists it, and campaign_invitation(campaign_id, email,
    invited_at, pid): the invited address resolved to the person who used it, when anyone did."""
    con.register("campaign_df", plans["campaigns"])
    con.execute("CREATE OR REPLACE TABLE campaign AS "
                "SELECT * FROM campaign_df ORDER BY start_at, campaign_id")
    con.register("invitation_df", plans["campaign_invitations"])
    con.execute("""
        CREATE OR REPLACE TABLE campaign_invitation AS
        SELECT i.campaign_id, i.email, i.invited_at, e.pid
        FROM invitation_df i
        LEFT JOIN (SELECT email, any_value(pid ORDER BY pid) AS pid FROM record
                   WHERE email IS NOT NULL AND pid IS NOT NULL GROUP BY email) e
          ON e.email = lower(trim(i.email))
        ORDER BY i.invited_at, i.campaign_id, i.email""")
    con.unregister("campaign_df")
    con.unregister("invitation_df")


def _interaction_select(source: str, id_col: str, kind: str, event_type: str, time_col: str,
                        channel: str, properties: str, where: str) -> str:
    return f"""
        SELECT '{source}' AS source, {id_col}::VARCHAR AS source_record_id,
               'L' || upper(substr(md5('{source}:' || {id_col} || ':{kind}'), 1, 12)) AS lid,
               {event_type} AS event_type, {time_col} AS event_time, '{channel}' AS channel,
               to_json({properties})::VARCHAR AS properties
        FROM raw_{source} WHERE {where}"""


def interaction_sql(sources: Collection[str] | None = None, with_record_id: bool = False) -> str:
    """The interactions of raw tables `raw_<source>` joined to `record_map` (all sources, or
    these, with the source record's id: the live path builds a few records' interactions by
    the same SQL)."""
    specs = [spec for spec in INTERACTION_SELECTS if sources is None or spec[0] in sources]
    union = " UNION ALL ".join(_interaction_select(*spec) for spec in specs)
    return f"""
        SELECT e.lid, m.pid, m.cid, e.event_type, e.event_time, e.channel, e.source,
               m.cookie_id, e.properties{", e.source_record_id" if with_record_id else ""}
        FROM ({union}) e
        JOIN record_map m USING (source, source_record_id)
        ORDER BY e.event_time, e.lid"""


def build_interaction(con: duckdb.DuckDBPyConnection) -> None:
    """interaction(lid, pid, cid, event_type, event_time, channel, source, properties)."""
    con.execute(f"CREATE OR REPLACE TABLE interaction AS {interaction_sql()}")


def build_outcome(con: duckdb.DuckDBPyConnection) -> None:
    """outcome(opportunity_id, pid, cid, opportunity_created_at, stage, won_at, closed_at, amount_usd)."""
    con.execute("""
        CREATE OR REPLACE TABLE outcome AS
        SELECT o.opportunity_id, m.pid, m.cid, o.created_at AS opportunity_created_at, o.stage,
               CASE WHEN o.stage = 'won' THEN o.closed_at END AS won_at, o.closed_at, o.amount_usd
        FROM raw_opportunities o
        JOIN record_map m ON m.source = 'opportunities' AND m.source_record_id = o.opportunity_id
        ORDER BY opportunity_created_at, opportunity_id""")


def check_vocabulary(con: duckdb.DuckDBPyConnection, event_types: set[str]) -> None:
    """Fail loudly if an interaction's event type is outside the documented vocabulary."""
    found = {row[0] for row in con.execute("SELECT DISTINCT event_type FROM interaction").fetchall()}
    unknown = found - event_types
    if unknown:
        raise ValueError(f"event types outside config/event_types.yaml: {sorted(unknown)}")
