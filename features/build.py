"""Compute the feature tables from the middle layer in DuckDB SQL.

Each table is a Feast source of timestamped rows, so that Feast's point-in-time
join at time t sees only the past:
- person_fit: a row whenever a person's known attributes change (identification,
  a title or company learnt later); an attribute shows only once it was known.
- person_interest: a grid row per person every `step_days` (on a fixed epoch, so
  rows stay put as data grows) plus one at the end of the data (`as_of`), each
  counting only events strictly before its timestamp.
- company_engagement (per company) and person_account (the same seen from each
  person): how many of a company's people engaged lately, on the same grid.
- company_profile: each company's firmographics.
- company_committee: each company's buying committee on the same grid (features/committee.py).
The `as_of` rows are what the online store serves.

The SQL is DuckDB's; with `engine: spark` the same text runs on Spark SQL, transpiled by
sqlglot (features/on_spark.py). So a division or a decimal literal is cast to DOUBLE
first: on Spark 7.0 is a DECIMAL, and so would be the result. Where DuckDB's SQL uses an
ASOF join, the Spark text ranks a range join instead (`asof_join` False: the same rows).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import duckdb

from leadscore.duckdb_rows import one_row
from leadscore.features.catalog import InterestCatalog
from leadscore.features.committee import company_committee_sql
from leadscore.features.tags import build_tags

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

GRID_EPOCH = datetime(2000, 1, 3, tzinfo=timezone.utc)  # a Monday: weekly rows fall on Mondays
# Each view's source is a folder `<view>.parquet/` of part files (Feast reads `*.parquet`):
# a full build replaces them, an incremental build appends one for the new grid times to
# the grid views and rewrites the others (small: fit and company profiles) whole.
GRID_VIEWS = {"person_interest", "company_engagement", "person_account",
              "company_committee"}  # rows on the grid + as_of
ACCOUNT_WINDOWS = (30, 90)  # windows of the company-level engagement counts
# An increment of at most this many grid times finds each person's last events by grouping
# their events before each time; a longer one by a running max (interest_slices_sql). The
# interest query on the default world (2026-12-05): 0.45 s against 0.9 at two times, 2.0
# against 2.2 at nine, 7.7 against 7.2 at 29, 15.4 against 14.6 at 105.
FEW_TIMES = 8
REQUIRED_COLUMNS = {
    "person": ["pid", "cid", "seniority", "department", "identified_at", "email_known_at",
               "phone_known_at", "title_known_at", "company_known_at"],
    "company": ["cid", "eid", "industry", "employees", "funding_stage", "annual_revenue_usd"],
    "interaction": ["pid", "event_type", "event_time", "channel"],
}


@dataclass(frozen=True)
class FitRules:
    decision_maker_levels: list[str]
    employee_bands: dict[str, int]


def check_middle_layer(con: duckdb.DuckDBPyConnection) -> None:
    """Fail with the name of the first missing middle-layer table or column."""
    for table, columns in REQUIRED_COLUMNS.items():
        found = {row[0] for row in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table]
        ).fetchall()}
        if not found:
            raise ValueError(f"middle layer has no table `{table}` (run `leadscore identity resolve`)")
        missing = [column for column in columns if column not in found]
        if missing:
            raise ValueError(f"middle-layer table `{table}` lacks columns {missing}")


def _band_sql(bands: dict[str, int]) -> str:
    cases = " ".join(f"WHEN c.employees >= {low} THEN '{name}'"
                     for name, low in sorted(bands.items(), key=lambda item: -item[1]))
    return f"CASE {cases} END"


def _grid_sql(step_days: int) -> str:
    """Grid times: every step from $start, plus $as_of."""
    return (f"SELECT unnest(generate_series($start, $as_of, INTERVAL {step_days} DAY)) AS t "
            "UNION SELECT $as_of")


def _known(field: str) -> str:
    """TRUE when the person's `field` was known at the row's time."""
    return f"coalesce(pc.{field}_known_at::TIMESTAMPTZ <= pc.t, FALSE)"


KNOWN_FIELDS = ["email", "phone", "title", "company"]


def fit_sql(rules: FitRules) -> str:
    """A row when a person is identified and one whenever another attribute becomes known:
    fit changes only then, so these rows are exact at every time (Feast's point-in-time join
    takes the latest row). An attribute shows only once it was known (a CRM contact created
    with a later opportunity must not show up before it)."""
    levels = ", ".join(f"'{level}'" for level in rules.decision_maker_levels)
    company = _known("company")
    completeness = " + ".join(f"{clause}::INT" for clause in [
        _known("email"), _known("phone"), _known("title"), company,
        f"({company} AND c.industry IS NOT NULL)", f"({company} AND c.employees IS NOT NULL)",
        f"({company} AND c.funding_stage IS NOT NULL)"])
    known_times = " UNION ".join(
        f"SELECT pid, identified_at, {column}::TIMESTAMPTZ AS k FROM person"
        for column in ["identified_at", *(f"{field}_known_at" for field in KNOWN_FIELDS)])
    return f"""
        WITH changes AS (
            SELECT DISTINCT pid, greatest(identified_at, k) AS t
            FROM ({known_times})
            WHERE k IS NOT NULL AND identified_at IS NOT NULL),
        pc AS (SELECT p.*, changes.t FROM person p JOIN changes USING (pid))
        SELECT pc.pid, pc.t AS event_timestamp,
               CASE WHEN {company} THEN c.employees END::BIGINT AS company_employees,
               CASE WHEN {company} THEN {_band_sql(rules.employee_bands)} END AS company_employees_band,
               CASE WHEN {company} THEN c.industry END AS company_industry,
               CASE WHEN {company} THEN c.funding_stage END AS company_funding_stage,
               CASE WHEN {company} THEN c.annual_revenue_usd END::DOUBLE AS company_revenue_usd,
               CASE WHEN {company} THEN g.companies END::BIGINT AS group_companies,
               CASE WHEN {_known("title")} THEN pc.seniority END AS seniority,
               CASE WHEN {_known("title")} THEN pc.department END AS department,
               CASE WHEN {_known("title")} THEN (pc.seniority IN ({levels}))::BIGINT END
                 AS is_decision_maker,
               ({completeness})::DOUBLE / 7 AS profile_completeness
        FROM pc
        LEFT JOIN company c USING (cid)
        LEFT JOIN (SELECT eid, count(*) AS companies FROM company GROUP BY eid) g USING (eid)
        ORDER BY pc.pid, pc.t"""


def company_profile_sql(rules: FitRules) -> str:
    """One row per company, valid from the grid epoch: the CRM account's firmographics."""
    return f"""
        SELECT c.cid, $epoch AS event_timestamp, c.industry, c.employees::BIGINT AS employees,
               {_band_sql(rules.employee_bands)} AS employees_band, c.funding_stage,
               c.annual_revenue_usd::DOUBLE AS revenue_usd, g.companies::BIGINT AS group_companies
        FROM company c
        LEFT JOIN (SELECT eid, count(*) AS companies FROM company GROUP BY eid) g USING (eid)
        ORDER BY c.cid"""


def _engaged(passive: list[str]) -> str:
    return f"(event_type NOT IN ({', '.join(repr(kind) for kind in passive) or 'NULL'}))"


def _cumulative_sql(kinds: list[str], channels: list[str], passive: list[str]) -> str:
    """Per person and event time: running totals per event type, of engagement (passive
    events such as our own email sends excluded) and of engagement per channel, and the
    time of the last event of each kind. Ties in time are grouped into one row first."""
    engaged = _engaged(passive)
    counts = [f"count(*) FILTER (WHERE {engaged}) AS e_events"]
    counts += [f"count(*) FILTER (WHERE event_type = '{kind}') AS e_{kind}" for kind in kinds]
    counts += [f"count(*) FILTER (WHERE channel = '{channel}' AND {engaged}) AS e_ch_{i}"
               for i, channel in enumerate(channels)]
    totals = [f"(sum(e_{name}) OVER w)::BIGINT AS n_{name}"
              for name in ["events", *kinds, *(f"ch_{i}" for i in range(len(channels)))]]
    lasts = [f"max(CASE WHEN e_{name} > 0 THEN event_time END) OVER w AS last_{name}"
             for name in ["events", *kinds]]
    return f"""
        SELECT pid, event_time, {", ".join(totals + lasts)}
        FROM (SELECT pid, event_time, {", ".join(counts)}
              FROM interaction WHERE pid IS NOT NULL GROUP BY pid, event_time)
        WINDOW w AS (PARTITION BY pid ORDER BY event_time ROWS UNBOUNDED PRECEDING)"""


def _seconds_between(earlier: str, later: str) -> str:
    """Whole seconds from `earlier` to `later` (a grid time), as DOUBLE. DuckDB counts the
    second boundaries crossed, Spark whole seconds elapsed: the same on whole seconds."""
    return f"date_diff('second', date_trunc('second', {earlier}), {later})::DOUBLE"


class _GridCounts:
    """Interest counts on the grid: a count over [t - hi, t - lo) is a difference of running
    totals found by ASOF joins (`now` just before t, `w<d>` just before t - d)."""

    def count(self, total: str, hi: int, lo: int = 0) -> str:
        since = "now" if lo == 0 else f"w{lo}"
        return f"(coalesce({since}.n_{total}, 0) - coalesce(w{hi}.n_{total}, 0))"

    def days_since(self, total: str) -> str:
        return f"{_seconds_between(f'now.last_{total}', 'pg.t')} / 86400"

    def distinct_channels(self, channels: list[str], window: int) -> str:
        active = " + ".join(f"({self.count(f'ch_{i}', window)} > 0)::BIGINT" for i in range(len(channels)))
        return active or "0"


@dataclass(frozen=True)
class _SliceCounts:
    """Interest counts at given times from events pre-counted per person, time, type,
    channel and age bucket (table `recent`: `within` is the smallest window holding the
    event), plus the last event per type (table `lasts`): the same definitions as the grid,
    for a few times over many people."""

    passive: list[str]

    def _predicate(self, total: str) -> str:
        if total == "events":
            return _engaged(self.passive)
        return f"(event_type = '{total}')"

    def count(self, total: str, hi: int, lo: int = 0) -> str:
        lower = f" AND r.within > {lo}" if lo else ""
        return f"coalesce(sum(r.n) FILTER (WHERE {self._predicate(total)} AND r.within <= {hi}{lower}), 0)"

    def days_since(self, total: str) -> str:
        column = "last_engaged" if total == "events" else f"last_{total}"
        return f"{_seconds_between(f'any_value(l.{column})', 'l.t')} / 86400"

    def distinct_channels(self, window: int) -> str:
        return (f"count(DISTINCT r.channel) FILTER (WHERE {_engaged(self.passive)} "
                f"AND r.within <= {window})")


def _interest_columns(catalog: InterestCatalog, channels: list[str],
                      counts: _GridCounts | _SliceCounts) -> list[str]:
    """The interest view's columns, in its order, with counts taken by `counts`."""
    columns = []
    for w in catalog.windows:
        columns += [f"{counts.count(kind, w)}::BIGINT AS {catalog.count_name(kind, w)}"
                    for kind in catalog.event_types]
    # events_30d and events_90d also feed the company-level counts, whatever the windows
    columns += [f"{counts.count('events', w)}::BIGINT AS events_{w}d"
                for w in sorted({*catalog.windows, *ACCOUNT_WINDOWS})]
    columns.append(f"{counts.days_since('events')} AS days_since_last_event")
    columns += [f"{counts.days_since(kind)} AS days_since_last_{kind}" for kind in catalog.event_types]
    channels_90d = (counts.distinct_channels(channels, 90) if isinstance(counts, _GridCounts)
                    else counts.distinct_channels(90))
    sent = f"nullif({counts.count('email_send', 90)}, 0)"
    recent, before = catalog.trend_recent_days, catalog.trend_before_days
    return columns + [
        f"({channels_90d})::BIGINT AS distinct_channels_90d",
        f"({counts.count('email_open', 90)} / {sent})::DOUBLE AS email_open_rate_90d",
        f"({counts.count('email_click', 90)} / {sent})::DOUBLE AS email_click_rate_90d",
        f"(({counts.count('events', recent)} + 1) / "
        f"({counts.count('events', recent + before, recent)}::DOUBLE * {recent / before} + 1))::DOUBLE"
        " AS engagement_trend",
    ]


def _joined_windows(catalog: InterestCatalog) -> list[int]:
    recent, before = catalog.trend_recent_days, catalog.trend_before_days
    return sorted({*catalog.windows, *ACCOUNT_WINDOWS, recent, recent + before})


def interest_sql(catalog: InterestCatalog, step_days: int, channels: list[str]) -> str:
    """Grid rows for every person from their first event on. A count over [t - w, t) is the
    running total just before t minus the running total just before t - w, both found by
    ASOF joins: linear in events + rows, where a range join would be events x rows."""
    kinds = sorted({*catalog.event_types, "email_open", "email_click", "email_send"})
    windows = _joined_windows(catalog)
    shifted = ", ".join(f"t - INTERVAL {w} DAY AS t_{w}" for w in windows)
    joins = "\n".join(f"ASOF LEFT JOIN cum w{w} ON pg.pid = w{w}.pid AND pg.t_{w} > w{w}.event_time"
                      for w in windows)
    columns = ",\n               ".join(_interest_columns(catalog, channels, _GridCounts()))
    return f"""
        WITH cum AS ({_cumulative_sql(kinds, channels, catalog.passive_event_types)}),
        span AS (SELECT pid, min(event_time) AS first_event FROM cum GROUP BY pid),
        grid AS ({_grid_sql(step_days)}),
        pg AS (SELECT span.pid, grid.t, {shifted} FROM span JOIN grid ON grid.t > span.first_event)
        SELECT pg.pid, pg.t AS event_timestamp,
               {columns}
        FROM pg
        ASOF LEFT JOIN cum now ON pg.pid = now.pid AND pg.t > now.event_time
        {joins}
        ORDER BY pg.pid, pg.t"""


def _lasts_sql(passive: list[str], kinds: list[str]) -> str:
    """Per person and time of `s` with an event before it: the last event of each kind
    strictly before that time. A running max over the person's events and times in one order
    (a time before an event at the same instant): linear in events + times, where joining
    each event to every later time would take their product (Spark has no ASOF join)."""
    running = [f"max(CASE WHEN {_engaged(passive)} THEN event_time END) OVER w AS last_engaged"]
    running += [f"max(CASE WHEN event_type = '{kind}' THEN event_time END) OVER w AS last_{kind}"
                for kind in kinds]
    names = ", ".join(["last_engaged", *(f"last_{kind}" for kind in kinds)])
    return f"""
        SELECT pid, t, {names} FROM (
            SELECT pid, t, is_event, max(event_time) OVER w AS last_any, {", ".join(running)}
            FROM (SELECT pid, event_time AS t, 1 AS is_event, event_type, event_time FROM events
                  UNION ALL
                  SELECT p.pid, s.t, 0, NULL, NULL FROM (SELECT DISTINCT pid FROM events) AS p, s) AS timeline
            WINDOW w AS (PARTITION BY pid ORDER BY t, is_event ROWS UNBOUNDED PRECEDING)) AS running
        WHERE is_event = 0 AND last_any IS NOT NULL"""


def _lasts_at_few_times_sql(passive: list[str], kinds: list[str]) -> str:
    """`_lasts_sql`'s rows by grouping each person's events before each time of `s`: events x
    times, for a few times (an increment, the live path's one instant) cheaper than ordering
    every person's whole history (on a 1M-person week's increment, the running max took 42
    of the query's CPU seconds)."""
    lasts = [f"max(e.event_time) FILTER (WHERE {_engaged(passive)}) AS last_engaged"]
    lasts += [f"max(e.event_time) FILTER (WHERE e.event_type = '{kind}') AS last_{kind}" for kind in kinds]
    return f"""
        SELECT e.pid, s.t, {", ".join(lasts)}
        FROM events e JOIN s ON e.event_time < s.t
        GROUP BY e.pid, s.t"""


def interest_slices_sql(catalog: InterestCatalog, step_days: int, channels: list[str],
                        after: str = "$since", few_times: bool = True) -> str:
    """The grid rows after `after` only (an incremental build: $since). Events of the longest
    window before each new time are counted per type, channel and age bucket, then pivoted;
    the last event per type comes from grouping each person's events before each time
    (`few_times`: an increment, the live path's instant) or from a running max (many times).
    No running totals over the whole history, and no ASOF join: after $epoch, the full build
    of engines without one (Spark)."""
    windows = _joined_windows(catalog)
    kinds = sorted({*catalog.event_types, "email_open", "email_click", "email_send"})
    bucket = "CASE " + " ".join(f"WHEN e.event_time >= s.t - INTERVAL {w} DAY THEN {w}"
                                for w in windows) + " END"
    columns = ",\n               ".join(
        _interest_columns(catalog, channels, _SliceCounts(catalog.passive_event_types)))
    lasts = (_lasts_at_few_times_sql if few_times else _lasts_sql)(catalog.passive_event_types, kinds)
    return f"""
        WITH s AS (SELECT t FROM ({_grid_sql(step_days)}) WHERE t > {after}),
        events AS (SELECT pid, event_type, channel, event_time FROM interaction WHERE pid IS NOT NULL),
        recent AS (
            SELECT e.pid, s.t, e.event_type, e.channel, {bucket} AS within, count(*) AS n
            FROM events e JOIN s ON e.event_time < s.t AND e.event_time >= s.t - INTERVAL {windows[-1]} DAY
            GROUP BY ALL),
        lasts AS ({lasts})
        SELECT l.pid, l.t AS event_timestamp,
               {columns}
        FROM lasts l LEFT JOIN recent r ON r.pid = l.pid AND r.t = l.t
        GROUP BY l.pid, l.t
        ORDER BY l.pid, l.t"""


def account_slices_sql(catalog: InterestCatalog, step_days: int, after: str = "$since") -> str:
    """`interest_slices_sql`'s rows with only the columns the account views read
    (`events_30d`, `events_90d`), for people whose own interest is not asked for (the live
    path's colleagues, a whole company group's). The same rows: one per person and time
    with an event strictly before it, engaged events counted over [t - w, t). Without the
    last event per type, no running max over each person's whole history is needed: one
    pass grouping events by person and time. Each window's start is computed once per time,
    not per event: a time zone's interval arithmetic on every event of a company group's
    history was most of the CPU (together a sixth of the old query's on the benchmark's
    groups: 16 against 97 ms a group of about 230 records)."""
    engaged = _engaged(catalog.passive_event_types)
    counts = ", ".join(f"count(*) FILTER (WHERE {engaged} AND e.event_time >= s.t_{w})::BIGINT AS events_{w}d"
                       for w in ACCOUNT_WINDOWS)
    starts = ", ".join(f"t - INTERVAL {w} DAY AS t_{w}" for w in ACCOUNT_WINDOWS)
    return f"""
        WITH s AS (SELECT t, {starts} FROM ({_grid_sql(step_days)}) WHERE t > {after})
        SELECT e.pid, s.t AS event_timestamp, {counts}
        FROM interaction e JOIN s ON e.event_time < s.t
        WHERE e.pid IS NOT NULL
        GROUP BY e.pid, s.t
        ORDER BY e.pid, s.t"""


def company_engagement_sql() -> str:
    """Per company and grid time, from the interest rows (table `person_interest`): how many of its
    people engaged lately. A person counts for a company only once that link was known."""
    return """
        SELECT p.cid, i.event_timestamp,
               count(*) FILTER (WHERE i.events_30d > 0) AS people_engaged_30d,
               count(*) FILTER (WHERE i.events_90d > 0) AS people_engaged_90d,
               sum(i.events_30d)::BIGINT AS events_30d
        FROM person_interest i JOIN person p USING (pid)
        WHERE p.cid IS NOT NULL AND p.company_known_at <= i.event_timestamp
        GROUP BY p.cid, i.event_timestamp
        ORDER BY p.cid, i.event_timestamp"""


def person_account_sql() -> str:
    """The buying committee seen from each person whose company is known: people engaged at
    the company and across its group (table `company_engagement`), on the grid."""
    return """
        WITH group_engagement AS (
            SELECT c.eid, ce.event_timestamp, sum(ce.people_engaged_30d)::BIGINT AS people_engaged_30d
            FROM company_engagement ce JOIN company c USING (cid)
            GROUP BY c.eid, ce.event_timestamp)
        SELECT p.pid, ce.event_timestamp,
               ce.people_engaged_30d AS company_people_engaged_30d,
               ge.people_engaged_30d AS group_people_engaged_30d
        FROM person p
        JOIN company_engagement ce ON ce.cid = p.cid AND ce.event_timestamp >= p.company_known_at
        JOIN company c ON c.cid = p.cid
        LEFT JOIN group_engagement ge ON ge.eid = c.eid AND ge.event_timestamp = ce.event_timestamp
        ORDER BY p.pid, ce.event_timestamp"""


def feature_clock(con: duckdb.DuckDBPyConnection, step_days: int) -> dict[str, datetime]:
    """`as_of`: midnight after the last interaction. `start`: the first grid point after the
    first interaction (identifications stand in when there are none). Grid points are whole
    steps from a fixed epoch, so they stay put when data grows; only `as_of` moves."""
    first, last = one_row(con, "SELECT min(event_time), max(event_time) FROM interaction "
                               "WHERE pid IS NOT NULL")
    if first is None:
        first, last = one_row(con, "SELECT min(identified_at), max(identified_at) FROM person")
    if first is None:
        raise ValueError("middle layer has no people and no interactions: nothing to build features from")
    as_of = datetime.combine(last.astimezone(timezone.utc).date() + timedelta(days=1),
                             datetime.min.time(), timezone.utc)
    steps = (first - GRID_EPOCH).days // step_days + 1
    return {"start": GRID_EPOCH + timedelta(days=steps * step_days), "as_of": as_of}


def channels(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [row[0] for row in con.execute(
        "SELECT DISTINCT channel FROM interaction WHERE channel IS NOT NULL ORDER BY 1").fetchall()]


STAGING = ".staging"  # beside the view folders, so that Feast's `*.parquet` never sees a staged part


# --- what to build: steps that return values and write nothing ------------------------------------

def _fingerprint(catalog: InterestCatalog, fit_rules: FitRules, step_days: int) -> str:
    """What the feature definitions depend on: an incremental build needs it unchanged."""
    text = json.dumps([repr(catalog), repr(fit_rules), step_days, sorted(GRID_VIEWS)], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _on_grid(clock: dict, step_days: int) -> bool:
    return (clock["as_of"] - GRID_EPOCH) % timedelta(days=step_days) == timedelta(0)


@dataclass(frozen=True)
class BuildPlan:
    """What one build computes. `since`: None for a full build (every view from the whole
    history), else the `as_of` of the build it continues (the grid views get the grid times
    after it only, as a new part beside their old ones)."""

    clock: dict[str, datetime]
    step_days: int
    since: datetime | None
    sources: dict[str, str]  # view -> the SQL of its rows, each view after those it reads
    kept: frozenset[str] = frozenset()  # grid views left as published: no interactions since

    @property
    def mode(self) -> str:
        return "full" if self.since is None else "incremental"

    @property
    def params(self) -> dict[str, datetime | None]:
        return {**self.clock, "epoch": GRID_EPOCH, "since": self.since}

    @property
    def part(self) -> str:
        """The file name of this build's rows in each view's folder."""
        return f"part-{self.clock['as_of']:%Y%m%dT%H%M%S}.parquet"

    def appends(self, view: str) -> bool:
        """The view's new part joins its old ones (else it replaces them)."""
        return self.since is not None and view in GRID_VIEWS

    def as_of_apart(self, view: str) -> bool:
        """The view's off-grid `as_of` rows go in their own `asof.parquet`, which every build
        replaces, so that an increment never leaves a stale one behind."""
        return view in GRID_VIEWS and not _on_grid(self.clock, self.step_days)


def plan_build(catalog: InterestCatalog, fit_rules: FitRules, step_days: int, clock: dict[str, datetime],
               channel_names: list[str], since: datetime | None, asof_join: bool = True) -> BuildPlan:
    """The views to compute and their SQL. Without interactions after `since`, the grid views
    keep their published parts: fit, companies (and tags) only. Without `asof_join` (Spark
    SQL has none) a full build counts the interest rows as an increment from the epoch does
    (the same rows: tests/unit/features/test_build.py)."""
    if since is not None:
        times = (clock["as_of"] - since) // timedelta(days=step_days) + 2  # at most, the as_of row too
        interest = interest_slices_sql(catalog, step_days, channel_names, few_times=times <= FEW_TIMES)
    elif asof_join:
        interest = interest_sql(catalog, step_days, channel_names)
    else:
        interest = interest_slices_sql(catalog, step_days, channel_names, after="$epoch", few_times=False)
    sources = {"person_fit": fit_sql(fit_rules), "person_interest": interest,
               "company_profile": company_profile_sql(fit_rules),
               "company_engagement": company_engagement_sql(), "person_account": person_account_sql(),
               "company_committee": company_committee_sql(catalog, asof_join)}
    if since is None or clock["as_of"] > since:
        return BuildPlan(clock, step_days, since, sources)
    rest = {name: sql for name, sql in sources.items() if name not in GRID_VIEWS}
    return BuildPlan(clock, step_days, since, rest, frozenset(GRID_VIEWS))


def _identity_changes(con: duckdb.DuckDBPyConnection, out_dir: Path, since: datetime) -> str | None:
    """Why the people changed in a way an increment cannot follow, or None: a PID of the last
    build is gone (merged or split: its history is filed under another PID now), or a new
    PID was identified before the last build (its earlier rows are missing)."""
    people = out_dir / "people.parquet"
    if not people.is_file():
        return "no record of the last build's people"
    vanished, late = one_row(con, f"""
        SELECT (SELECT count(*) FROM read_parquet('{people}') o ANTI JOIN person p USING (pid)),
               (SELECT count(*) FROM person p ANTI JOIN read_parquet('{people}') o USING (pid)
                WHERE p.identified_at <= $since)""", {"since": since})
    if vanished or late:
        return (f"identity changed since the last build ({vanished} PIDs merged or split away, "
                f"{late} new PIDs identified before it)")
    return None


def _incremental_since(con: duckdb.DuckDBPyConnection, out_dir: Path, previous: dict | None,
                       fingerprint: str) -> tuple[datetime | None, str | None]:
    """The `as_of` an incremental build continues from: the previous build's, unless there is
    none (None, None) or its definitions or people changed (None and why: a full build)."""
    if previous is None:
        return None, None
    if previous.get("fingerprint") != fingerprint:
        return None, "feature definitions changed since the last build"
    why = _identity_changes(con, out_dir, previous["as_of"])
    return (None, why) if why else (previous["as_of"], None)


def _manifest(plan: BuildPlan, fingerprint: str, counts: dict[str, int], previous: dict | None) -> dict:
    """The record of a build: clock, mode, definitions and row counts. An increment keeps the
    `start` of the build it continues."""
    start = previous["start"] if plan.since is not None and previous else plan.clock["start"]
    return {"as_of": plan.clock["as_of"].isoformat(), "start": start.isoformat(),
            "step_days": plan.step_days, "mode": plan.mode,
            "since": plan.since.isoformat() if plan.since else None, "fingerprint": fingerprint,
            "rows": counts, "online_reload": plan.since is None}


# --- staging and publishing: the writes -------------------------------------------------------

def _compute(con: duckdb.DuckDBPyConnection, name: str, sql: str, params: dict) -> int:
    """Table `name` (kept on the connection for the views and tags that read it); its rows."""
    used = {key: value for key, value in params.items() if f"${key}" in sql}
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}", used)
    return one_row(con, f"SELECT count(*) FROM {name}")[0]


def as_of_rows(as_of: datetime | None) -> str:
    """The condition that picks a view's rows at `as_of` (none without it)."""
    return f"event_timestamp = '{as_of.isoformat()}'::TIMESTAMPTZ" if as_of else "FALSE"


def _write_parts(con: duckdb.DuckDBPyConnection, name: str, folder: Path, part: str,
                 as_of: datetime | None) -> None:
    """Table `name` into `folder`: its rows as `part`, and, given `as_of`, the rows at that
    time apart as `asof.parquet`."""
    folder.mkdir(parents=True)
    split = as_of_rows(as_of)
    con.execute(f"COPY (SELECT * FROM {name} WHERE NOT ({split})) TO '{folder / part}' (FORMAT parquet)")
    if as_of:
        con.execute(f"COPY (SELECT * FROM {name} WHERE {split}) TO '{folder / 'asof.parquet'}' "
                    "(FORMAT parquet)")


class ViewEngine(Protocol):
    """Where the views' SQL runs: DuckDB (below) or Spark (features/on_spark.py). `asof_join`:
    whether its SQL has ASOF joins (the full build's interest rows use them)."""

    @property
    def asof_join(self) -> bool: ...

    def compute(self, name: str, sql: str, params: dict) -> int: ...

    def write(self, name: str, folder: Path, part: str, as_of: datetime | None) -> None: ...


@dataclass(frozen=True)
class DuckDBViews:
    """The views as temporary tables of the build's DuckDB connection."""

    con: duckdb.DuckDBPyConnection
    asof_join: bool = True

    def compute(self, name: str, sql: str, params: dict) -> int:
        return _compute(self.con, name, sql, params)

    def write(self, name: str, folder: Path, part: str, as_of: datetime | None) -> None:
        _write_parts(self.con, name, folder, part, as_of)


def _stage_views(engine: ViewEngine, plan: BuildPlan, staging: Path) -> dict[str, int]:
    """Compute the plan's views and write each into `staging/<view>/`; their row counts. An
    empty view built whole is worth a warning; an empty increment is not."""
    counts: dict[str, int] = {}
    for name, sql in plan.sources.items():
        started = time.perf_counter()
        rows = counts[name] = engine.compute(name, sql, plan.params)
        log.info("%s: %s rows in %.1f s", name, f"{rows:,}", time.perf_counter() - started)
        if rows == 0 and not plan.appends(name):
            log.warning("feature view source %s is empty: its features will be missing for everyone", name)
        as_of = plan.clock["as_of"] if plan.as_of_apart(name) else None
        engine.write(name, staging / name, plan.part, as_of)
    return counts


def latest_features_sql() -> str:
    """Each person's newest row of every person view: what the online store serves."""
    views = ["person_fit", "person_interest", "person_account"]
    latest = [f"(SELECT * EXCLUDE (event_timestamp) FROM {view} "
              f"WHERE event_timestamp <= $as_of QUALIFY row_number() OVER "
              f"(PARTITION BY pid ORDER BY event_timestamp DESC) = 1) AS {view}" for view in views]
    return f"SELECT * FROM {latest[0]} " + " ".join(
        f"FULL JOIN {table} USING (pid)" for table in latest[1:])


def _build_tags(con: duckdb.DuckDBPyConnection, tag_rules: dict, out_dir: Path, as_of: datetime) -> int:
    con.execute(f"CREATE OR REPLACE TEMP TABLE latest_features AS {latest_features_sql()}",
                {"as_of": as_of})
    con.execute("CREATE OR REPLACE TEMP TABLE feature_clock AS SELECT $as_of::TIMESTAMPTZ AS as_of",
                {"as_of": as_of})
    return build_tags(con, tag_rules, out_dir / "person_tags.parquet")


def _stage(con: duckdb.DuckDBPyConnection, plan: BuildPlan, out_dir: Path,
           tag_rules: dict | None, engine: ViewEngine) -> dict[str, int]:
    """Stage the plan's views and the people they are of (the tags, with `tag_rules`, are
    written in place, by DuckDB); the row counts."""
    staging = out_dir / STAGING
    counts = _stage_views(engine, plan, staging)
    for name in plan.kept:  # tags read the published rows
        con.execute(f"CREATE TEMP TABLE {name} AS SELECT * FROM "
                    f"read_parquet('{out_dir / name}.parquet/*.parquet')")
    if not isinstance(engine, DuckDBViews):  # ... and the staged ones, computed elsewhere
        for name in plan.sources:
            con.execute(f"CREATE TEMP VIEW {name} AS "
                        f"SELECT * FROM read_parquet('{staging / name}/*.parquet')")
    if tag_rules is not None:
        counts["person_tags"] = _build_tags(con, tag_rules, out_dir, plan.clock["as_of"])
    con.execute(f"COPY (SELECT pid, identified_at FROM person) TO '{staging / 'people.parquet'}' "
                "(FORMAT parquet)")
    return counts


def _publish(staged: Path, folder: Path, replace: bool) -> None:
    """Move a view's staged files into its folder. `replace`: the old parts go first;
    otherwise only the old `asof.parquet` (the new increment brings its own, if any)."""
    if folder.is_file():  # the single-file layout of earlier versions
        folder.unlink()
    folder.mkdir(exist_ok=True)
    for old in folder.glob("*.parquet"):
        if replace or old.name.startswith("asof"):  # Spark writes asof-<n>.parquet
            old.unlink()
    for new in staged.iterdir():
        os.replace(new, folder / new.name)


def _publish_all(plan: BuildPlan, out_dir: Path) -> None:
    """Move every staged file into place, the build's last step: a failed build leaves the
    last good files."""
    staging = out_dir / STAGING
    for name in plan.sources:
        _publish(staging / name, out_dir / f"{name}.parquet", replace=not plan.appends(name))
    os.replace(staging / "people.parquet", out_dir / "people.parquet")
    shutil.rmtree(staging)


def _previous_manifest(out_dir: Path) -> dict | None:
    try:
        return read_manifest(out_dir)
    except FileNotFoundError:
        return None


# --- the driver: the steps in order, with the logs --------------------------------------------

def build_features(middle_db: Path, out_dir: Path, catalog: InterestCatalog, fit_rules: FitRules,
                   step_days: int, tag_rules: dict | None = None, incremental: bool = False,
                   since: datetime | None = None, duckdb_config: dict[str, str] | None = None,
                   spark: SparkSession | None = None) -> dict:
    """Write the feature view sources (Parquet folders, one per view), the person tags
    (with `tag_rules`, config/tags.yaml) and manifest.json (clock, row counts).

    Full: every view from the whole history. Incremental: the grid times after the last
    build's `as_of` only, appended as new parts (fit and company profiles are rewritten),
    the daily job for a large base. It falls back to a full build when the definitions or
    the people changed in a way it cannot follow (identity merges, late identifications).
    `since` overrides the last build's `as_of` (the benchmark measures a week's increment).
    `duckdb_config` (Settings.duckdb_config) holds DuckDB to a memory limit: without one, the
    interest view's joins took 6 GB on the default world (1 GB with it, the same rows).
    With `spark` (`engine: spark`) the views' SQL runs there, transpiled (features/on_spark.py):
    the same rows in the same folders; the tags and the bookkeeping stay on DuckDB.
    Files are staged apart and published at the end: a failed build leaves the last good ones."""
    if not middle_db.is_file():
        raise FileNotFoundError(f"middle layer not found: {middle_db} (run `leadscore identity resolve`)")
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out_dir / STAGING, ignore_errors=True)
    fingerprint = _fingerprint(catalog, fit_rules, step_days)
    previous = _previous_manifest(out_dir) if incremental or since is not None else None
    # duckdb's stub takes only a dict of its value union (dict is invariant), not our dict[str, str]
    with duckdb.connect(str(middle_db), read_only=True, config=duckdb_config or {}) as con:  # type: ignore[arg-type]
        con.execute("SET TimeZone = 'UTC'")
        check_middle_layer(con)
        if incremental and since is None:
            since, why = _incremental_since(con, out_dir, previous, fingerprint)
            if why:
                log.info("%s: building in full", why)
        engine = DuckDBViews(con) if spark is None else _spark_views(con, spark, middle_db)
        plan = plan_build(catalog, fit_rules, step_days, feature_clock(con, step_days), channels(con), since,
                          engine.asof_join)
        if plan.kept:
            log.info("no interactions after the last build (as of %s): fit, companies and tags only", since)
        counts = _stage(con, plan, out_dir, tag_rules, engine)
    _publish_all(plan, out_dir)
    manifest = _manifest(plan, fingerprint, counts, previous)
    write_manifest(out_dir, manifest)
    log.info("features as of %s (%s): %s", plan.clock["as_of"], plan.mode, counts)
    return manifest


def _spark_views(con: duckdb.DuckDBPyConnection, spark: SparkSession, middle_db: Path) -> ViewEngine:
    from leadscore.features.on_spark import SparkViews, middle_to_spark

    middle_to_spark(con, spark, middle_db.parent / "middle")
    return SparkViews(spark)


def write_manifest(out_dir: Path, manifest: dict) -> None:
    serialisable = {key: value.isoformat() if isinstance(value, datetime) else value
                    for key, value in manifest.items()}
    (out_dir / "manifest.json").write_text(json.dumps(serialisable, indent=2))


def read_manifest(out_dir: Path) -> dict:
    """The clock and row counts of the last feature build."""
    path = out_dir / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"no feature build in {out_dir} (run `leadscore features build`)")
    manifest = json.loads(path.read_text())
    manifest["as_of"] = datetime.fromisoformat(manifest["as_of"])
    manifest["start"] = datetime.fromisoformat(manifest["start"])
    return manifest
