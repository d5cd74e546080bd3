"""Compute the feature tables from the middle layer in DuckDB SQL.

Both tables form a grid: one row per person every `step_days` (on a fixed
epoch, so rows stay put as data grows) plus one at the end of the data
(`as_of`). Interest rows count only events strictly before their timestamp;
fit rows show an attribute only once it was known. So Feast's point-in-time join at
time t sees only the past, and the `as_of` row is what the online store serves.
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

log = logging.getLogger(__name__)

GRID_EPOCH = datetime(2000, 1, 3, tzinfo=timezone.utc)  # a Monday: weekly rows fall on Mondays
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
    """TRUE when the person's `field` was known before the row's time."""
    return f"coalesce(pg.{field}_known_at::TIMESTAMPTZ < pg.t, FALSE)"


def fit_sql(rules: FitRules, step_days: int) -> str:
    """Grid rows from the time a person was identified; each attribute shows only once it was
    known (a CRM contact created with a later opportunity must not show up before it)."""
    levels = ", ".join(f"'{level}'" for level in rules.decision_maker_levels)
    company = _known("company")
    completeness = " + ".join(f"{clause}::INT" for clause in [
        _known("email"), _known("phone"), _known("title"), company,
        f"({company} AND c.industry IS NOT NULL)", f"({company} AND c.employees IS NOT NULL)",
        f"({company} AND c.funding_stage IS NOT NULL)"])
    return f"""
        WITH grid AS ({_grid_sql(step_days)}),
        pg AS (SELECT p.*, grid.t FROM person p JOIN grid ON grid.t > p.identified_at::TIMESTAMPTZ)
        SELECT pg.pid, pg.t AS event_timestamp,
               CASE WHEN {company} THEN c.employees END::BIGINT AS company_employees,
               CASE WHEN {company} THEN {_band_sql(rules.employee_bands)} END AS company_employees_band,
               CASE WHEN {company} THEN c.industry END AS company_industry,
               CASE WHEN {company} THEN c.funding_stage END AS company_funding_stage,
               CASE WHEN {company} THEN c.annual_revenue_usd END::DOUBLE AS company_revenue_usd,
               CASE WHEN {company} THEN g.companies END::BIGINT AS group_companies,
               CASE WHEN {_known("title")} THEN pg.seniority END AS seniority,
               CASE WHEN {_known("title")} THEN pg.department END AS department,
               CASE WHEN {_known("title")} THEN (pg.seniority IN ({levels}))::BIGINT END
                 AS is_decision_maker,
               ({completeness}) / 7.0 AS profile_completeness
        FROM pg
        LEFT JOIN company c USING (cid)
        LEFT JOIN (SELECT eid, count(*) AS companies FROM company GROUP BY eid) g USING (eid)
        ORDER BY pg.pid, pg.t"""


def _cumulative_sql(kinds: list[str], channels: list[str], passive: list[str]) -> str:
    """Per person and event time: running totals per event type, of engagement (passive
    events such as our own email sends excluded) and of engagement per channel. Ties in
    time share one row."""
    engaged = f"(event_type NOT IN ({', '.join(repr(kind) for kind in passive) or 'NULL'}))"
    totals = [f"sum((event_type = '{kind}')::BIGINT) OVER w AS n_{kind}" for kind in kinds]
    totals += [f"sum((channel = '{channel}' AND {engaged})::BIGINT) OVER w AS ch_{i}"
               for i, channel in enumerate(channels)]
    return f"""
        SELECT DISTINCT pid, event_time, sum({engaged}::BIGINT) OVER w AS n_events, {", ".join(totals)}
        FROM interaction WHERE pid IS NOT NULL
        WINDOW w AS (PARTITION BY pid ORDER BY event_time
                     RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"""


def _window_count(total: str, window: int) -> str:
    return f"(coalesce(now.{total}, 0) - coalesce(w{window}.{total}, 0))"


def _interest_columns(catalog: InterestCatalog, channels: list[str]) -> list[str]:
    columns = []
    for w in catalog.windows:
        columns += [f"{_window_count('n_' + kind, w)} AS {catalog.count_name(kind, w)}"
                    for kind in catalog.event_types]
        columns.append(f"{_window_count('n_events', w)} AS events_{w}d")
    active = " + ".join(f"({_window_count(f'ch_{i}', 90)} > 0)::BIGINT" for i in range(len(channels)))
    return columns + [
        "date_diff('second', now.event_time, pg.t) / 86400.0 AS days_since_last_event",
        f"({active or '0'})::BIGINT AS distinct_channels_90d",
        f"({_window_count('n_email_open', 90)} / nullif({_window_count('n_email_send', 90)}, 0))::DOUBLE"
        " AS email_open_rate_90d",
    ]


def interest_sql(catalog: InterestCatalog, step_days: int, channels: list[str]) -> str:
    """Grid rows for every person from their first event on. A count over [t - w, t) is the
    running total just before t minus the running total just before t - w, both found by
    ASOF joins: linear in events + rows, where a range join would be events x rows."""
    kinds = sorted({*catalog.event_types, "email_open", "email_send"})
    windows = sorted({*catalog.windows, 90})
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


def feature_clock(con: duckdb.DuckDBPyConnection, step_days: int) -> dict[str, datetime]:
    """`as_of`: midnight after the last interaction. `start`: the first grid point after the
    first interaction. Grid points are whole steps from a fixed epoch, so they stay put when
    data grows; only the extra `as_of` row moves."""
    first, as_of = con.execute(
        "SELECT min(event_time), date_trunc('day', max(event_time)) + INTERVAL 1 DAY FROM interaction"
        " WHERE pid IS NOT NULL").fetchone()
    steps = (first - GRID_EPOCH).days // step_days + 1
    return {"start": GRID_EPOCH + timedelta(days=steps * step_days), "as_of": as_of}


def channels(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [row[0] for row in con.execute(
        "SELECT DISTINCT channel FROM interaction WHERE channel IS NOT NULL ORDER BY 1").fetchall()]


def _copy_atomically(con: duckdb.DuckDBPyConnection, sql: str, path: Path,
                     params: dict | None = None) -> int:
    tmp = path.with_suffix(".tmp.parquet")
    con.execute(f"CREATE OR REPLACE TEMP TABLE out AS {sql}", params or {})
    con.execute(f"COPY out TO '{tmp}' (FORMAT parquet)")
    rows = con.execute("SELECT count(*) FROM out").fetchone()[0]
    if rows == 0:
        log.warning("feature table %s is empty", path.name)
    os.replace(tmp, path)
    return rows


def build_features(middle_db: Path, out_dir: Path, catalog: InterestCatalog, fit_rules: FitRules,
                   step_days: int) -> dict:
    """Write person_fit.parquet, person_interest.parquet and manifest.json (clock, counts)."""
    if not middle_db.is_file():
        raise FileNotFoundError(f"middle layer not found: {middle_db} (run `leadscore identity resolve`)")
    out_dir.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(middle_db), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        check_middle_layer(con)
        clock = feature_clock(con, step_days)
        counts = {
            "person_fit": _copy_atomically(con, fit_sql(fit_rules, step_days),
                                           out_dir / "person_fit.parquet", clock),
            "person_interest": _copy_atomically(con, interest_sql(catalog, step_days, channels(con)),
                                                out_dir / "person_interest.parquet", clock),
        }
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
