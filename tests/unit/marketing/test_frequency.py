"""Contact frequency (marketing/frequency.py) on a hand-built history whose turning point is
known (frequency_history.py): each email counted against the emails before it, the turning
point found where planted, the cap computed, over-cap people named."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import duckdb
import pandas as pd
import pytest
from frequency_history import AS_OF, KEEN, OVER, TURN, UNDER, history, open_rate

from leadscore.config import FrequencySettings
from leadscore.marketing import frequency

CONFIG = FrequencySettings(min_sends=20)


def _connection(frame: pd.DataFrame) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    con.register("frame", frame)
    con.execute("CREATE TABLE interaction AS SELECT * FROM frame")
    return con


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    return _connection(history())


def test_each_email_counts_the_emails_of_the_30_days_up_to_it_and_its_open():
    day0 = datetime(2026, 1, 1, tzinfo=UTC)

    def event(pid, kind, day, campaign=None):
        return pid, kind, day0 + timedelta(days=day), json.dumps({"campaign_id": campaign})

    rows = [event("A", "email_send", d, f"c{d}") for d in (0, 10, 20, 45, 98)]
    rows += [event("A", "email_open", 0.1, "c0"), event("A", "email_open", 46, "c45"),
             event("A", "email_click", 46, "c45"), event("A", "email_open", 12, "other")]
    rows += [event("B", "whitepaper_download", -5), event("B", "email_send", 0, "c0"),
             event("B", "email_send", 90, "c90")]  # interest 5 days before it, but not 95
    frame = pd.DataFrame(rows, columns=["pid", "event_type", "event_time", "properties"])
    counts = frequency.email_counts(_connection(frame), day0 + timedelta(days=101), CONFIG)
    got = {(r.interest, r.sends_per_month): (r.sends, r.opens, r.clicks) for r in counts.itertuples()}
    # A's day-98 email is too recent to judge (response_days 7)
    assert got == {("not_interested", 1): (2, 1, 0), ("not_interested", 2): (2, 1, 1),
                   ("not_interested", 3): (1, 0, 0), ("interested", 1): (1, 0, 0)}


def test_rates_are_the_planted_ones(con):
    rates = frequency.rate_table(frequency.email_counts(con, AS_OF, CONFIG), CONFIG.min_sends)
    assert set(rates["sends_per_month"]) == set(range(1, 13))
    for row in rates.itertuples():
        planted = open_rate(row.sends_per_month, row.interest == frequency.INTERESTED)
        assert row.open_rate == pytest.approx(planted, abs=1 / row.sends)
    assert frequency.email_counts(con, AS_OF, CONFIG, [OVER, UNDER, KEEN]).empty  # too recent to judge


def test_the_turning_point_is_found_where_planted_and_the_cap_below_it(con):
    rates, points = frequency.analyse(con, AS_OF, CONFIG)
    tired = points[frequency.NOT_INTERESTED]
    assert tired.sends_per_month == pytest.approx(TURN, abs=0.5)
    assert tired.cap == TURN
    assert points[frequency.INTERESTED].sends_per_month is None  # their rate keeps rising
    assert points[frequency.INTERESTED].cap is None
    table = frequency.with_turning_points(rates, points)
    assert set(table.loc[table["interest"] == frequency.NOT_INTERESTED, "cap_sends_per_month"]) == {TURN}


def test_a_flat_curve_has_no_turning_point():
    curve = pd.DataFrame({"sends_per_month": range(1, 11), "open_rate": 0.25, "sends": 1000})
    assert frequency.turning_point(curve, "any", 0.1).sends_per_month is None


def test_a_short_curve_takes_everyones_points(con):
    _, everyone = frequency.analyse(con, AS_OF, CONFIG)
    assert frequency.segment_caps(con, AS_OF, CONFIG, [OVER, UNDER], everyone) == everyone


def test_over_cap_names_those_at_their_groups_cap(con):
    _, points = frequency.analyse(con, AS_OF, CONFIG)
    assert frequency.over_cap(con, AS_OF, CONFIG, [OVER, UNDER, KEEN], points) == {OVER}
    assert frequency.over_cap(con, AS_OF, CONFIG, [UNDER, KEEN], points) == set()
