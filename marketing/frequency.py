"""Contact frequency: how email open and click rates move with how often people are mailed.

The unit is an email sent: whether the person opened it (or clicked in it), against how many
emails they had been sent in the `recent_days` (30) up to it, itself included: their "sends a
month" when it arrived. An email is "interested" when the person showed interest in a product
in the `interest_days` before it (one of `interest_event_types`: the whitepapers, demo
requests, webinars and events behind the interest tags of config/tags.yaml), else "not
interested". Opens and clicks are matched to their email by campaign. Emails of the last
`response_days` before "now" are left out (their opens may be still to come).

The curve of each group is its open rate at each number of sends a month (`rate_table`). Its
turning point (`turning_point`) is where a broken line fitted to the curve's log-odds (flat or
rising up to the point, falling after it; each number weighted by the information its emails
carry) bends: the sends a month past which more sends lower the rate. A group whose fitted
rate at the most sends is not at least `min_relative_drop` below the rate at the point has no
turning point: more sends never hurt it (people interested in a product open more the more
they receive). The recommended cap is the whole number of sends a month nearest it.

Why per email rather than per calendar month: a person-month's count is a noisy measure of
what its emails met (an email early in a month follows the last month's emails, and an email
is always among its own recent sends), which smears the bend over several sends.

Everything here runs SQL on a DuckDB connection holding `interaction(pid, event_type,
event_time, ...)`: the middle layer (the campaign in the `properties` JSON: `IN_MIDDLE_LAYER`)
or the segments' in-memory world (segments/world.py, a `campaign_id` column), so the CLI, the
dashboard and a segment export agree.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb
import numpy as np
import pandas as pd

from leadscore.clock import open_clock
from leadscore.config import FrequencySettings, Settings

INTERESTED, NOT_INTERESTED = "interested", "not_interested"
GROUPS = (INTERESTED, NOT_INTERESTED)
IN_MIDDLE_LAYER = "json_extract_string(properties, '$.campaign_id')"  # an email's campaign there
KINK_STEP = 0.1  # the turning point is searched on a grid of this many sends a month
RATE_COLUMNS = ["interest", "sends_per_month", "people", "sends", "opens", "clicks", "open_rate",
                "click_rate"]

RATES_SQL = """
WITH sends AS (
    SELECT pid, event_time AS sent_at, {campaign} AS campaign_id,
           count(*) OVER (PARTITION BY pid ORDER BY event_time
                          RANGE BETWEEN INTERVAL {recent_days} DAYS PRECEDING AND CURRENT ROW) AS recent
    FROM interaction
    WHERE pid IS NOT NULL AND event_type = 'email_send' AND event_time < $as_of {members}),
responses AS (
    SELECT pid, {campaign} AS campaign_id, bool_or(event_type = 'email_open') AS opened,
           bool_or(event_type = 'email_click') AS clicked
    FROM interaction
    WHERE pid IS NOT NULL AND event_type IN ('email_open', 'email_click') AND event_time < $as_of {members}
    GROUP BY ALL),
intent AS (
    SELECT pid, event_time FROM interaction
    WHERE pid IS NOT NULL AND list_contains($interest_types, event_type) AND event_time < $as_of {members}),
judged AS (
    SELECT s.pid, s.recent, coalesce(r.opened, false) AS opened,
           coalesce(r.clicked, false) AS clicked,
           EXISTS (SELECT 1 FROM intent i WHERE i.pid = s.pid AND i.event_time < s.sent_at
                   AND i.event_time >= s.sent_at - to_days($interest_days)) AS interested
    FROM sends s LEFT JOIN responses r ON r.pid = s.pid AND r.campaign_id = s.campaign_id
    WHERE s.sent_at < $judged_before)
SELECT CASE WHEN interested THEN 'interested' ELSE 'not_interested' END AS interest,
       recent AS sends_per_month, count(DISTINCT pid) AS people, count(*) AS sends,
       count(*) FILTER (WHERE opened) AS opens, count(*) FILTER (WHERE clicked) AS clicks
FROM judged
GROUP BY ALL
ORDER BY interest, sends_per_month
"""


@dataclass(frozen=True)
class TurningPoint:
    """Where a group's curve bends: `sends_per_month` None when more sends never lower its rate."""

    interest: str
    sends_per_month: float | None
    rate_at_point: float | None
    rate_at_most: float | None
    most_sends: int | None

    @property
    def cap(self) -> int | None:
        """The recommended most sends a month: the whole number nearest the turning point (the
        point is estimated to a tenth; at the cap the rate is at most half a send past it)."""
        return None if self.sends_per_month is None else max(1, math.floor(self.sends_per_month + 0.5))


def email_counts(con: duckdb.DuckDBPyConnection, as_of: datetime, settings: FrequencySettings,
                 members: Iterable[str] | None = None, campaign: str = IN_MIDDLE_LAYER) -> pd.DataFrame:
    """Emails sent, opened and clicked (and the people) per group and sends a month, of everyone
    (or of `members`): RATE_COLUMNS without the rates. `campaign`: the SQL of an event's
    campaign id on `con`."""
    clause = "AND pid IN (SELECT unnest($members))" if members is not None else ""
    sql = RATES_SQL.format(campaign=campaign, members=clause, recent_days=int(settings.recent_days))
    params = {"as_of": as_of, "judged_before": as_of - timedelta(days=settings.response_days),
              "interest_types": settings.interest_event_types, "interest_days": settings.interest_days}
    if members is not None:
        params["members"] = sorted(set(members))
    with con.cursor() as cursor:
        return cursor.execute(sql, params).fetchdf()


def rate_table(counts: pd.DataFrame, min_sends: int) -> pd.DataFrame:
    """Open and click rates of each group at each number of sends a month that at least
    `min_sends` emails had (RATE_COLUMNS)."""
    table = counts[counts["sends"] >= min_sends].reset_index(drop=True)
    table = table.assign(open_rate=table["opens"] / table["sends"],
                         click_rate=table["clicks"] / table["sends"])
    return table[RATE_COLUMNS]


def _log_odds(rate: np.ndarray, sends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The log-odds of each rate (kept off 0 and 1 by half an email) and its information,
    the inverse of its variance (sends x rate x (1 - rate))."""
    rate = np.clip(rate, 0.5 / sends, 1 - 0.5 / sends)
    return np.log(rate / (1 - rate)), sends * rate * (1 - rate)


def _hinge_fit(x: np.ndarray, y: np.ndarray, w: np.ndarray, point: float) -> tuple[float, np.ndarray]:
    """Weighted least squares of y = a + b min(x, point) + c max(x - point, 0): (error, [a, b, c])."""
    design = np.column_stack([np.ones_like(x), np.minimum(x, point), np.maximum(x - point, 0.0)])
    root = np.sqrt(w)
    coef, *_ = np.linalg.lstsq(design * root[:, None], y * root, rcond=None)
    return float(np.sum(w * (design @ coef - y) ** 2)), coef


def turning_point(curve: pd.DataFrame, interest: str, min_relative_drop: float) -> TurningPoint:
    """The turning point of one group's curve (rows of `rate_table`); see the module docstring."""
    curve = curve.sort_values("sends_per_month")
    x = curve["sends_per_month"].to_numpy(float)
    if len(x) < 4:  # a bend needs two points on each side
        return TurningPoint(interest, None, None, None, int(x.max()) if len(x) else None)
    y, w = _log_odds(curve["open_rate"].to_numpy(float), curve["sends"].to_numpy(float))
    grid = np.arange(x[1], x[-2] + KINK_STEP / 2, KINK_STEP)
    errors = [_hinge_fit(x, y, w, point)[0] for point in grid]
    point = float(grid[int(np.argmin(errors))])
    _, (a, b, c) = _hinge_fit(x, y, w, point)
    at_point, at_most = _rate(a + b * point), _rate(a + b * point + c * (x[-1] - point))
    falls = c < 0 and at_most <= at_point * (1 - min_relative_drop)
    return TurningPoint(interest, round(point, 1) if falls else None, at_point, at_most, int(x[-1]))


def _rate(log_odds: float) -> float:
    return float(1 / (1 + np.exp(-log_odds)))


def turning_points(rates: pd.DataFrame, settings: FrequencySettings) -> dict[str, TurningPoint]:
    """Each group's turning point (a group without rows has none)."""
    return {group: turning_point(rates[rates["interest"] == group], group, settings.min_relative_drop)
            for group in GROUPS}


def caps_table(points: dict[str, TurningPoint], segment: str = "all people") -> pd.DataFrame:
    """One row per group: its turning point and recommended cap (None: no cap)."""
    return pd.DataFrame([{"segment": segment, "interest": p.interest, "turning_point": p.sends_per_month,
                          "cap_sends_per_month": p.cap, "most_sends_observed": p.most_sends}
                         for p in points.values()])


def analyse(con: duckdb.DuckDBPyConnection, as_of: datetime, settings: FrequencySettings,
            members: Iterable[str] | None = None,
            campaign: str = IN_MIDDLE_LAYER) -> tuple[pd.DataFrame, dict[str, TurningPoint]]:
    """The rate table and turning points of everyone (or of `members`)."""
    rates = rate_table(email_counts(con, as_of, settings, members, campaign), settings.min_sends)
    return rates, turning_points(rates, settings)


def segment_caps(con: duckdb.DuckDBPyConnection, as_of: datetime, settings: FrequencySettings,
                 members: Iterable[str], everyone: dict[str, TurningPoint],
                 campaign: str = IN_MIDDLE_LAYER) -> dict[str, TurningPoint]:
    """A segment's turning points from its own members; a group whose curve is too short for one
    (fewer than four numbers of sends with enough emails) takes everyone's (`everyone`)."""
    rates, own = analyse(con, as_of, settings, members, campaign)
    counts = rates["interest"].value_counts()
    return {group: own[group] if counts.get(group, 0) >= 4 else everyone[group] for group in GROUPS}


OVER_CAP_SQL = """
WITH recent AS (
    SELECT pid, count(*) AS sends FROM interaction
    WHERE event_type = 'email_send' AND event_time >= $since AND event_time < $as_of
      AND pid IN (SELECT unnest($members))
    GROUP BY pid),
interested AS (
    SELECT DISTINCT pid FROM interaction
    WHERE list_contains($interest_types, event_type) AND event_time >= $interest_since
      AND event_time < $as_of AND pid IN (SELECT unnest($members)))
SELECT r.pid FROM recent r LEFT JOIN interested i ON i.pid = r.pid
WHERE r.sends >= CASE WHEN i.pid IS NULL THEN $cap_not_interested ELSE $cap_interested END
"""


def over_cap(con: duckdb.DuckDBPyConnection, as_of: datetime, settings: FrequencySettings,
             members: Iterable[str], points: dict[str, TurningPoint]) -> set[str]:
    """The `members` already at or over their group's cap (their group: interest in the
    `interest_days` before `as_of`): the sends of the last `recent_days` reach the cap, so one
    more would pass it. A group without a cap holds no one."""
    no_cap = np.iinfo(np.int64).max
    params = {"as_of": as_of, "since": as_of - timedelta(days=settings.recent_days),
              "interest_since": as_of - timedelta(days=settings.interest_days),
              "interest_types": settings.interest_event_types, "members": sorted(set(members)),
              "cap_interested": points[INTERESTED].cap or no_cap,
              "cap_not_interested": points[NOT_INTERESTED].cap or no_cap}
    with con.cursor() as cursor:
        return {pid for pid, in cursor.execute(OVER_CAP_SQL, params).fetchall()}


def with_turning_points(rates: pd.DataFrame, points: dict[str, TurningPoint]) -> pd.DataFrame:
    """The rate table with each group's turning point and cap on its rows (empty: none)."""
    return rates.assign(
        turning_point=rates["interest"].map({g: p.sends_per_month for g, p in points.items()}),
        cap_sends_per_month=rates["interest"].map({g: p.cap for g, p in points.items()}).astype("Int64"))


def frequency_table(settings: Settings) -> pd.DataFrame:
    """Everyone's curves at the clock's now, from the middle layer, with the turning points
    (`with_turning_points`): the dashboard's panel and `leadscore marketing frequency`'s table."""
    if not settings.middle_db.is_file():
        raise FileNotFoundError(f"no middle layer at {settings.middle_db}: run `leadscore identity resolve`")
    with duckdb.connect(str(settings.middle_db), read_only=True) as con:
        rates, points = analyse(con, open_clock(settings).now(), settings.marketing.frequency)
    return with_turning_points(rates, points)
