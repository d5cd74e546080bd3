"""A hand-built email history whose curves are known. Each person is mailed on a steady
schedule, n emails in every 30 days (n = 1 .. MOST, PEOPLE people each), for SPAN_DAYS; an
email's "sends a month" is then min(its rank, n). People with no product interest open with
log-odds OPEN_LOG_ODDS up to TURN sends a month and FALL less with every send past it; people
interested in a product (a whitepaper every 60 days) open RISE more per send. Opens are given
so that each (group, sends a month) has the planted rate to one open.

RECENT: three people mailed only in the last days before the history's "now" (too recent to be
judged on the curves), for the cap: OVER (no interest, 8 sends), UNDER (no interest, 3),
KEEN (interested, 10).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from datetime import UTC, datetime, timedelta

import pandas as pd

AS_OF = datetime(2026, 10, 20, tzinfo=UTC)
SPAN_DAYS, TURN, MOST, PEOPLE = 150, 6, 12, 6
OPEN_LOG_ODDS, FALL, RISE = -0.85, 0.3, 0.08
OVER, UNDER, KEEN = "P_OVER", "P_UNDER", "P_KEEN"


def open_rate(sends: int, interested: bool) -> float:
    log_odds = OPEN_LOG_ODDS + (RISE * sends if interested else -FALL * max(sends - TURN, 0))
    return 1 / (1 + math.exp(-log_odds))


def _email(pid: str, kind: str, at: datetime, campaign: str | None = None) -> tuple:
    return pid, kind, at, json.dumps({"campaign_id": campaign})


def _schedule(pid: str, n: int, interested: bool, start: datetime, given: Counter) -> list[tuple]:
    """n emails every 30 days from `start` for SPAN_DAYS; `given` counts (group, sends, seen,
    opened) so that each bucket's opens follow its planted rate."""
    rows, spacing = [], timedelta(days=30 / n + 0.01)
    for rank in range(int(SPAN_DAYS / (30 / n + 0.01))):
        at, campaign, recent = start + rank * spacing, f"{pid}-{rank}", min(rank + 1, n)
        rows.append(_email(pid, "email_send", at, campaign))
        key = (interested, recent)
        given[key, "seen"] += 1
        if math.floor(given[key, "seen"] * open_rate(recent, interested)) > given[key, "opened"]:
            given[key, "opened"] += 1
            rows.append(_email(pid, "email_open", at + timedelta(hours=2), campaign))
    if interested:  # a whitepaper in the 90 days before every email
        rows += [_email(pid, "whitepaper_download", start - timedelta(days=1) + timedelta(days=d))
                 for d in range(0, SPAN_DAYS, 60)]
    return rows


def _recent(as_of: datetime) -> list[tuple]:
    start = as_of - timedelta(days=6)
    rows = [_email(pid, "email_send", start + timedelta(hours=12 * i), f"{pid}-{i}")
            for pid, sends in ((OVER, 8), (UNDER, 3), (KEEN, 10)) for i in range(sends)]
    return rows + [_email(KEEN, "whitepaper_download", as_of - timedelta(days=20))]


def history(as_of: datetime = AS_OF) -> pd.DataFrame:
    """interaction(pid, event_type, event_time, properties) of the whole history up to `as_of`."""
    start, given, rows = as_of - timedelta(days=SPAN_DAYS + 10), Counter(), []
    for n in range(1, MOST + 1):
        for group, interested in (("no", False), ("yes", True)):
            for k in range(PEOPLE):
                rows += _schedule(f"H_{group}_{n}_{k}", n, interested, start, given)
    frame = pd.DataFrame(rows + _recent(as_of), columns=["pid", "event_type", "event_time", "properties"])
    frame["event_time"] = pd.to_datetime(frame["event_time"], utc=True)
    return frame
