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
The `as_of` rows are what the online store serves.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb

from leadscore.features.catalog import InterestCatalog
from leadscore.features.tags import build_tags

log = logging.getLogger(__name__)

GRID_EPOCH = datetime(2000, 1, 3, tzinfo=timezone.utc)  # a Monday: weekly rows fall on Mondays
# Staging table -> Parquet file name, where they differ ("interest" is read by later steps).
FEATURE_TABLES = {"interest": "person_interest"}
ACCOUNT_WINDOWS = (30, 90)  # windows of the company-level engagement counts
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
               ({completeness}) / 7.0 AS profile_completeness
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


def _window_count(total: str, window: int, since: str = "now") -> str:
    return f"(coalesce({since}.{total}, 0) - coalesce(w{window}.{total}, 0))"


def _days_since(last: str) -> str:
    return f"date_diff('second', now.{last}, pg.t) / 86400.0"


def _interest_columns(catalog: InterestCatalog, channels: list[str]) -> list[str]:
    columns = []
    for w in catalog.windows:
        columns += [f"{_window_count('n_' + kind, w)} AS {catalog.count_name(kind, w)}"
                    for kind in catalog.event_types]
    # events_30d and events_90d also feed the company-level counts, whatever the windows
    columns += [f"{_window_count('n_events', w)} AS events_{w}d"
                for w in sorted({*catalog.windows, *ACCOUNT_WINDOWS})]
    columns.append(f"{_days_since('last_events')} AS days_since_last_event")
    columns += [f"{_days_since('last_' + kind)} AS days_since_last_{kind}" for kind in catalog.event_types]
    active = " + ".join(f"({_window_count(f'n_ch_{i}', 90)} > 0)::BIGINT" for i in range(len(channels)))
    sent = f"nullif({_window_count('n_email_send', 90)}, 0)"
    recent, before = catalog.trend_recent_days, catalog.trend_before_days
    earlier = f"(coalesce(w{recent}.n_events, 0) - coalesce(w{recent + before}.n_events, 0))"
    return columns + [
        f"({active or '0'})::BIGINT AS distinct_channels_90d",
        f"({_window_count('n_email_open', 90)} / {sent})::DOUBLE AS email_open_rate_90d",
        f"({_window_count('n_email_click', 90)} / {sent})::DOUBLE AS email_click_rate_90d",
        f"(({_window_count('n_events', recent)} + 1) / ({earlier} * {recent / before} + 1))::DOUBLE"
        " AS engagement_trend",
    ]


def interest_sql(catalog: InterestCatalog, step_days: int, channels: list[str]) -> str:
    """Grid rows for every person from their first event on. A count over [t - w, t) is the
    running total just before t minus the running total just before t - w, both found by
    ASOF joins: linear in events + rows, where a range join would be events x rows."""
    kinds = sorted({*catalog.event_types, "email_open", "email_click", "email_send"})
    recent, before = catalog.trend_recent_days, catalog.trend_before_days
    windows = sorted({*catalog.windows, *ACCOUNT_WINDOWS, recent, recent + before})
    shifted = ", ".join(f"t - INTERVAL {w} DAY AS t_{w}" for w in windows)
    joins = "\n".join(f"ASOF LEFT JOIN cum w{w} ON pg.pid = w{w}.pid AND pg.t_{w} > w{w}.event_time"
                      for w in windows)
    columns = ",\n               ".join(_interest_columns(catalog, channels))
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


def company_engagement_sql() -> str:
    """Per company and grid time, from the interest rows (table `interest`): how many of its
    people engaged lately. A person counts for a company only once that link was known."""
    return """
        SELECT p.cid, i.event_timestamp,
               count(*) FILTER (WHERE i.events_30d > 0) AS people_engaged_30d,
               count(*) FILTER (WHERE i.events_90d > 0) AS people_engaged_90d,
               sum(i.events_30d)::BIGINT AS events_30d
        FROM interest i JOIN person p USING (pid)
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
    """`as_of`: midnight after the last interaction (or identification, with no interactions).
    `start`: the first grid point after the first one. Grid points are whole steps from a
    fixed epoch, so they stay put when data grows; only the extra `as_of` row moves."""
    first, last = con.execute(
        "SELECT min(t), max(t) FROM (SELECT event_time AS t FROM interaction WHERE pid IS NOT NULL"
        " UNION ALL SELECT identified_at FROM person)").fetchone()
    if first is None:
        raise ValueError("middle layer has no people and no interactions: nothing to build features from")
    as_of = datetime.combine(last.astimezone(timezone.utc).date() + timedelta(days=1),
                             datetime.min.time(), timezone.utc)
    steps = (first - GRID_EPOCH).days // step_days + 1
    return {"start": GRID_EPOCH + timedelta(days=steps * step_days), "as_of": as_of}


def channels(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [row[0] for row in con.execute(
        "SELECT DISTINCT channel FROM interaction WHERE channel IS NOT NULL ORDER BY 1").fetchall()]


def _stage(con: duckdb.DuckDBPyConnection, name: str, sql: str, out_dir: Path, params: dict) -> int:
    """Compute table `name` (kept for later steps) and write it beside its final Parquet path;
    `build_features` moves every file into place only once all are written."""
    used = {key: value for key, value in params.items() if f"${key}" in sql}
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}", used)
    con.execute(f"COPY {name} TO '{out_dir / name}.tmp.parquet' (FORMAT parquet)")
    rows = con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
    if rows == 0:
        log.warning("feature view source %s is empty: its features will be missing for everyone",
                    FEATURE_TABLES.get(name, name))
    return rows


def latest_features_sql() -> str:
    """Each person's newest row of every person view: what the online store serves."""
    views = ["person_fit", "interest", "person_account"]
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


def build_features(middle_db: Path, out_dir: Path, catalog: InterestCatalog, fit_rules: FitRules,
                   step_days: int, tag_rules: dict | None = None) -> dict:
    """Write the feature view sources (`FEATURE_TABLES`, Parquet), the person tags (with
    `tag_rules`, config/tags.yaml) and manifest.json (clock, row counts). A failed build
    leaves the previous feature files untouched."""
    if not middle_db.is_file():
        raise FileNotFoundError(f"middle layer not found: {middle_db} (run `leadscore identity resolve`)")
    out_dir.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(middle_db), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        check_middle_layer(con)
        clock = feature_clock(con, step_days)
        params = {**clock, "epoch": GRID_EPOCH}
        sources = {
            "person_fit": fit_sql(fit_rules),
            "interest": interest_sql(catalog, step_days, channels(con)),
            "company_profile": company_profile_sql(fit_rules),
            "company_engagement": company_engagement_sql(),
            "person_account": person_account_sql(),
        }
        counts = {FEATURE_TABLES.get(name, name): _stage(con, name, sql, out_dir, params)
                  for name, sql in sources.items()}
        if tag_rules is not None:
            counts["person_tags"] = _build_tags(con, tag_rules, out_dir, clock["as_of"])
    for name in sources:
        os.replace(out_dir / f"{name}.tmp.parquet", out_dir / f"{FEATURE_TABLES.get(name, name)}.parquet")
    manifest = {"as_of": clock["as_of"].isoformat(), "start": clock["start"].isoformat(),
                "step_days": step_days, "rows": counts}
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
    log.info("features as of %s: %s", clock["as_of"], counts)
    return manifest


def read_manifest(out_dir: Path) -> dict:
    """The clock and row counts of the last feature build."""
    path = out_dir / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"no feature build in {out_dir} (run `leadscore features build`)")
    manifest = json.loads(path.read_text())
    manifest["as_of"] = datetime.fromisoformat(manifest["as_of"])
    manifest["start"] = datetime.fromisoformat(manifest["start"])
    return manifest
