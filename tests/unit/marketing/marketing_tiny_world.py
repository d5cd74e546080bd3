"""A hand-built world of four people for the marketing tests (lifecycle, attribution, funnel).

- P1 browses anonymously, is identified, becomes an MQL, is recycled to nurture, becomes an
  MQL again, is accepted, gets an opportunity, wins it (customer) and later an upsell.
- P2 is identified and gets an opportunity with no MQL nor disposition: accepted by sales
  from the opportunity itself; it is lost.
- P3 is identified and becomes an MQL that sales reject: back to nurture.
- P4 is identified and does nothing else.

Campaign touches: P1 registered for webinar CA (day 2), came by search CB (day 4) and
registered for CA again (day 20, after the first opportunity); P2 came by CB (day 3), P3 by
email CC, an anonymous browser by CB. Three people were invited to CA; P1 attended it and asked
a question.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import pandas as pd

from leadscore.config import Settings
from leadscore.marketing.inputs import SCORE_HISTORY, register_frames

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


PERSON = pd.DataFrame({"pid": ["P1", "P2", "P3", "P4"],
                       "identified_at": [day(1), day(2), day(3), day(4)],
                       "first_seen": [day(0), day(2), day(3), day(4)]})
INTERACTION = pd.DataFrame({
    "lid": ["L1", "L2", "L3", "L4"], "pid": ["P1", "P1", "P2", "P1"],
    "event_type": ["web_visit", "web_visit", "form_submit", "webinar_attend"],
    "event_time": [day(0), day(5), day(2), day(3)],
    "properties": ["{}", "{}", "{}", '{"event_id": "CA", "questions_asked": 1, "demo_requested": false}']})
OUTCOME = pd.DataFrame({
    "opportunity_id": ["O1", "O2", "O3"], "pid": ["P1", "P2", "P1"],
    "opportunity_created_at": [day(15), day(9), day(40)],
    "won_at": [day(30), None, day(50)], "amount_usd": [1000.0, 500.0, 300.0]})
SCORES = pd.DataFrame({
    "pid": ["P1", "P1", "P1", "P1", "P3", "P4"],
    "scored_at": [day(5), day(7), day(10), day(12), day(6), day(6)],
    "score": [70.0, 40.0, 65.0, 80.0, 61.0, 20.0],
    "tier": ["high-potential", "to-nurture", "high-potential", "high-value", "high-potential", "to-verify"]})
DISPOSITIONS = pd.DataFrame({
    "pid": ["P1", "P1", "P3"], "at": [day(6), day(11), day(8)],
    "disposition": ["recycled", "accepted", "rejected"]})
CAMPAIGN = pd.DataFrame({
    "campaign_id": ["CA", "CB", "CC"], "name": ["A webinar", "Search", "Newsletter"],
    "channel": ["webinar", "paid_search", "email"], "campaign_type": ["webinar", "search", "email"],
    "owner": "M", "budget_usd": 500.0, "cost_usd": [100.0, 200.0, 50.0],
    "start_at": [day(0), day(1), day(2)], "end_at": [day(20), day(20), day(20)],
    "utm_campaign": [None, "search-q1", "cmp1"]})
CAMPAIGN_TOUCH = pd.DataFrame({
    "lid": ["T1", "T2", "T3", "T4", "T5", "T6"], "pid": ["P1", "P1", "P1", "P2", "P3", None],
    "cookie_id": ["k1", "k1", "k1", "k2", "k3", "k9"],
    "event_type": ["webinar_register", "web_visit", "webinar_register", "web_visit", "email_click",
                   "web_visit"],
    "campaign_id": ["CA", "CB", "CA", "CB", "CC", "CB"], "touch_rank": [2, 0, 2, 0, 3, 0],
    "touch_time": [day(2), day(4), day(20), day(3), day(3), day(3)]})
INVITATION = pd.DataFrame({"campaign_id": ["CA", "CA", "CA"], "email": ["a@x.com", "b@x.com", "c@x.com"],
                           "invited_at": [day(0)] * 3, "pid": ["P1", None, None]})


def middle_tables(con: duckdb.DuckDBPyConnection) -> None:
    """The middle layer's tables the analyses read, on `con`."""
    for name, frame in (("person", PERSON), ("interaction", INTERACTION), ("outcome", OUTCOME),
                        ("campaign", CAMPAIGN), ("campaign_touch", CAMPAIGN_TOUCH),
                        ("campaign_invitation", INVITATION)):
        con.register(f"{name}_df", frame)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM {name}_df")
        con.unregister(f"{name}_df")
    con.execute("CREATE TABLE person_demand_tag AS SELECT 'P1' AS pid, 'data platform' AS first_tag")


def tiny_world() -> duckdb.DuckDBPyConnection:
    """An in-memory connection holding the tables the analyses read."""
    con = duckdb.connect()
    middle_tables(con)
    register_frames(con, SCORES, DISPOSITIONS)
    return con


def write_tiny_world(settings: Settings) -> None:
    """The tiny world as files where `settings` looks: the middle layer and the batch scores
    (no dispositions: there is no live event log)."""
    settings.middle_db.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(settings.middle_db)) as con:
        middle_tables(con)
    settings.scores_dir.mkdir(parents=True, exist_ok=True)
    SCORES.to_parquet(settings.scores_dir / SCORE_HISTORY, index=False)
