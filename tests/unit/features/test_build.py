"""The feature SQL on a three-person middle layer built inline."""

from datetime import datetime, timezone

import duckdb
import pandas as pd
import pytest

from leadscore.config import load_yaml
from leadscore.features.build import GRID_VIEWS, FitRules, build_features, plan_build, read_manifest
from leadscore.features.catalog import interest_catalog, phrase
from leadscore.features.committee import company_committee_sql

UTC = timezone.utc


def _middle_layer(path, extra_events=()):
    events = [
        ("P1", "web_visit", datetime(2026, 1, 2, 10, tzinfo=UTC), "web"),
        ("P1", "email_send", datetime(2026, 1, 20, 9, tzinfo=UTC), "email"),
        ("P1", "email_open", datetime(2026, 1, 20, 10, tzinfo=UTC), "email"),
        ("P1", "contact_sales", datetime(2026, 3, 1, 10, tzinfo=UTC), "web"),
        ("P2", "web_visit", datetime(2026, 2, 27, 10, tzinfo=UTC), "web"),
        *extra_events,
    ]
    interaction = pd.DataFrame(events, columns=["pid", "event_type", "event_time", "channel"])
    interaction["event_time"] = interaction["event_time"].astype("datetime64[us, UTC]")
    day = pd.Timestamp("2026-01-01", tz="UTC")
    person = pd.DataFrame({
        "pid": ["P1", "P2", "P3"], "cid": ["C1", "C1", None],
        "seniority": ["c_level", None, None], "department": ["engineering", None, None],
        "identified_at": [day, day, day], "email_known_at": [day, day, pd.NaT],
        "phone_known_at": [pd.NaT, pd.NaT, pd.NaT], "title_known_at": [day, pd.NaT, pd.NaT],
        # P1's company is learnt only in February (a CRM contact created then)
        "company_known_at": [pd.Timestamp("2026-02-01", tz="UTC"), day, pd.NaT],
    })
    company = pd.DataFrame({"cid": ["C1"], "eid": ["E1"], "industry": ["software"],
                            "employees": [1500], "funding_stage": ["series_d"],
                            "annual_revenue_usd": [1e8]})
    with duckdb.connect(str(path)) as con:
        for name, frame in {"interaction": interaction, "person": person, "company": company}.items():
            con.register(f"{name}_df", frame)
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM {name}_df")


@pytest.fixture
def build(tmp_path, settings):
    config = load_yaml(settings.config_file("features.yaml"))
    catalog = interest_catalog(config, [7, 30, 90, 180])
    rules = FitRules(config["decision_maker_levels"], config["employee_bands"])

    def run(extra_events=(), out="features", incremental=False):
        db = tmp_path / "middle.duckdb"
        db.unlink(missing_ok=True)
        _middle_layer(db, extra_events)
        build_features(db, tmp_path / out, catalog, rules, step_days=7, incremental=incremental)
        return _view(tmp_path / out, "person_interest"), _view(tmp_path / out, "person_fit")
    return run


def _view(out_dir, name: str) -> pd.DataFrame:
    """A view's rows as Feast reads them: every `*.parquet` file in its folder."""
    return duckdb.sql(f"SELECT * FROM read_parquet('{out_dir / name}.parquet/*.parquet') "
                      "ORDER BY ALL").df()


LATER_EVENTS = [("P1", "email_open", datetime(2026, 3, 10, 8, tzinfo=UTC), "email"),
                ("P2", "webinar_attend", datetime(2026, 3, 24, 16, tzinfo=UTC), "event"),
                ("P2", "email_click", datetime(2026, 3, 24, 17, tzinfo=UTC), "email")]


MIDWEEK = [("P2", "form_submit", datetime(2026, 3, 4, 12, tzinfo=UTC), "web")]  # as_of a Thursday


@pytest.mark.parametrize("first_events", [(), MIDWEEK], ids=["as_of on the grid", "as_of mid-week"])
def test_an_incremental_build_gives_exactly_the_rows_of_a_full_build(build, tmp_path, first_events):
    """Direct aggregation at the new times (incremental) equals the running totals of a full
    build, for every interest, account and company row; the last build's off-grid `as_of`
    rows do not linger."""
    build(first_events, out="daily")
    daily, _ = build([*first_events, *LATER_EVENTS], out="daily", incremental=True)
    full, _ = build([*first_events, *LATER_EVENTS], out="full")
    manifest = read_manifest(tmp_path / "daily")
    assert manifest["mode"] == "incremental"
    pd.testing.assert_frame_equal(daily, full, check_dtype=False, check_exact=False, rtol=1e-12)
    for view in ("person_account", "company_engagement", "company_committee"):
        pd.testing.assert_frame_equal(_view(tmp_path / "daily", view), _view(tmp_path / "full", view),
                                      check_dtype=False)
    assert len(full) > 15


def test_the_plan_of_a_full_build_and_of_an_increment_without_new_interactions(settings):
    config = load_yaml(settings.config_file("features.yaml"))
    catalog = interest_catalog(config, [7, 30, 90])  # the buying committee reads 7, 30, 90
    rules = FitRules(config["decision_maker_levels"], config["employee_bands"])
    monday = {"start": datetime(2026, 1, 5, tzinfo=UTC), "as_of": datetime(2026, 3, 2, tzinfo=UTC)}
    full = plan_build(catalog, rules, 7, monday, ["web"], since=None)
    assert set(full.sources) == GRID_VIEWS | {"person_fit", "company_profile"} and not full.kept
    assert full.mode == "full" and not full.appends("person_interest")
    assert not full.as_of_apart("person_interest")  # as_of on the grid: no separate as_of file
    idle = plan_build(catalog, rules, 7, monday, ["web"], since=monday["as_of"])
    assert set(idle.sources) == {"person_fit", "company_profile"} and idle.kept == GRID_VIEWS
    assert idle.mode == "incremental" and idle.appends("person_interest") and not idle.appends("person_fit")
    thursday = {**monday, "as_of": datetime(2026, 3, 5, tzinfo=UTC)}
    increment = plan_build(catalog, rules, 7, thursday, ["web"], since=monday["as_of"])
    assert set(increment.sources) == set(full.sources) and not increment.kept
    assert increment.as_of_apart("person_interest") and not increment.as_of_apart("person_fit")
    grouped, running = "GROUP BY e.pid, s.t", "ROWS UNBOUNDED PRECEDING"  # how the last events come
    interest = increment.sources["person_interest"]
    assert grouped in interest and running not in interest
    months = plan_build(catalog, rules, 7, thursday, ["web"], since=monday["start"])  # 9 weeks: many times
    assert running in months.sources["person_interest"] and grouped not in months.sources["person_interest"]


def test_an_event_at_a_grid_time_counts_from_the_next_row(build):
    """Rows count events strictly before their time: an event at Monday 00:00 is not in
    that Monday's row, and is in the next one."""
    monday = datetime(2026, 2, 16, tzinfo=UTC)
    interest, _ = build([("P1", "webinar_attend", monday, "event")])
    p1 = interest[interest["pid"] == "P1"].set_index("event_timestamp")
    assert p1.loc[pd.Timestamp(monday), "webinar_attend_7d"] == 0
    assert p1.loc[pd.Timestamp(monday) + pd.Timedelta(days=7), "webinar_attend_7d"] == 1


def test_a_merged_pid_makes_the_incremental_build_a_full_one(build, tmp_path, settings):
    build(out="daily")
    db = tmp_path / "middle.duckdb"
    with duckdb.connect(str(db)) as con:  # P3 merged into P1: P3 is gone
        con.execute("DELETE FROM person WHERE pid = 'P3'")
    config = load_yaml(settings.config_file("features.yaml"))
    build_features(db, tmp_path / "daily", interest_catalog(config, [7, 30, 90, 180]),
                   FitRules(config["decision_maker_levels"], config["employee_bands"]), 7,
                   incremental=True)
    assert read_manifest(tmp_path / "daily")["mode"] == "full"


def test_an_incremental_build_without_new_data_adds_nothing(build, tmp_path):
    build(out="daily")
    parts = sorted(p.name for p in (tmp_path / "daily" / "person_interest.parquet").iterdir())
    build(out="daily", incremental=True)
    assert sorted(p.name for p in (tmp_path / "daily" / "person_interest.parquet").iterdir()) == parts
    assert not (tmp_path / "daily" / ".staging").exists()


def test_interest_rows_count_only_events_before_their_timestamp(build):
    interest, _ = build()
    p1 = interest[interest["pid"] == "P1"].set_index("event_timestamp")
    last = p1.iloc[-1]  # as_of: midnight after the last event (2026-03-02)
    assert last.name == pd.Timestamp("2026-03-02", tz="UTC")
    assert last["contact_sales_7d"] == 1 and last["web_visit_7d"] == 0
    assert p1.index[-2] == pd.Timestamp("2026-02-23", tz="UTC")  # weekly grid rows fall on Mondays
    assert last["web_visit_90d"] == 1 and last["email_open_90d"] == 1
    assert last["events_90d"] == 3  # our own email send is not the person's engagement
    assert last["email_open_rate_90d"] == 1.0 and last["distinct_channels_90d"] == 2
    earlier = p1.loc[pd.Timestamp("2026-01-19", tz="UTC")]
    assert earlier["email_open_30d"] == 0 and earlier["web_visit_30d"] == 1


def test_a_later_event_leaves_earlier_rows_unchanged(build):
    before, _ = build()
    late = ("P1", "webinar_attend", datetime(2026, 3, 20, 10, tzinfo=UTC), "event")
    after, _ = build([late])
    key = ["pid", "event_timestamp"]
    merged = before.merge(after, on=key, suffixes=("_before", "_after"))
    assert len(merged) == len(before)
    for column in [c for c in before.columns if c not in key]:
        pd.testing.assert_series_equal(merged[f"{column}_before"], merged[f"{column}_after"],
                                       check_names=False)


def test_people_without_events_have_fit_rows_but_no_interest_rows(build):
    interest, fit = build()
    assert "P3" not in set(interest["pid"])
    latest = fit.sort_values("event_timestamp").groupby("pid").last()
    assert latest.loc["P1", "company_employees_band"] == "1000-4999"
    assert latest.loc["P1", "is_decision_maker"] == 1
    assert latest.loc["P3", "profile_completeness"] == 0


def test_fit_rows_change_only_when_an_attribute_becomes_known(build):
    _, fit = build()
    p1 = fit[fit["pid"] == "P1"].set_index("event_timestamp")
    # identified on 1 January (title and email known), company learnt on 1 February
    assert list(p1.index) == [pd.Timestamp("2026-01-01", tz="UTC"), pd.Timestamp("2026-02-01", tz="UTC")]
    january, february = p1.iloc[0], p1.iloc[1]
    assert pd.isna(january["company_employees"]) and pd.isna(january["company_industry"])
    assert february["company_employees"] == 1500 and february["company_industry"] == "software"
    assert january["profile_completeness"] < february["profile_completeness"]


def test_recency_rates_and_trend_at_the_feature_clock(build):
    interest, _ = build()
    last = interest[interest["pid"] == "P1"].set_index("event_timestamp").iloc[-1]
    # as_of is 2 March 00:00; contact_sales was 1 March 10:00, the web visit 2 January 10:00
    assert last["days_since_last_contact_sales"] == pytest.approx(14 / 24)
    assert last["days_since_last_web_visit"] == pytest.approx(58 + 14 / 24)
    assert last["days_since_last_event"] == pytest.approx(14 / 24)
    assert pd.isna(last["days_since_last_purchase"])  # never happened: missing, not zero
    assert last["email_click_rate_90d"] == 0.0
    # one engagement in the last 30 days, two in the 90 before: (1 + 1) / (2 / 3 + 1)
    assert last["engagement_trend"] == pytest.approx(2 / (2 / 3 + 1))


def test_buying_committee_counts_colleagues_once_their_company_is_known(build, tmp_path):
    build()
    account = pd.read_parquet(tmp_path / "features" / "person_account.parquet")
    by_row = account.set_index(["pid", "event_timestamp"])["company_people_engaged_30d"]
    # P1 engaged in January but is linked to C1 only on 1 February: the first company row is
    # the grid Monday after, where P1 counts (email open on 20 January)
    assert account["event_timestamp"].min() == pd.Timestamp("2026-02-02", tz="UTC")
    assert by_row[("P2", pd.Timestamp("2026-02-02", tz="UTC"))] == 1
    # on 2 March both P1 (contact sales) and P2 (web visit on 27 February) engaged
    assert by_row[("P1", pd.Timestamp("2026-03-02", tz="UTC"))] == 2
    assert "P3" not in set(account["pid"])  # no company, no account row


def test_no_interactions_give_an_empty_interest_view_and_a_warning(tmp_path, settings, caplog):
    db = tmp_path / "middle.duckdb"
    _middle_layer(db)
    with duckdb.connect(str(db)) as con:
        con.execute("DELETE FROM interaction")
    config = load_yaml(settings.config_file("features.yaml"))
    build_features(db, tmp_path / "features", interest_catalog(config, [7, 30, 90]),
                   FitRules(config["decision_maker_levels"], config["employee_bands"]), 7)
    interest = pd.read_parquet(tmp_path / "features" / "person_interest.parquet")
    assert interest.empty and "web_visit_7d" in interest.columns
    assert len(pd.read_parquet(tmp_path / "features" / "person_fit.parquet")) == 4
    assert "person_interest" in caplog.text and "empty" in caplog.text


def test_manifest_records_the_feature_clock(build, tmp_path):
    build()
    manifest = read_manifest(tmp_path / "features")
    assert manifest["as_of"] == datetime(2026, 3, 2, tzinfo=UTC)
    assert manifest["step_days"] == 7


def test_missing_middle_layer_table_is_named(tmp_path, settings):
    db = tmp_path / "middle.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE person (pid VARCHAR)")
    config = load_yaml(settings.config_file("features.yaml"))
    with pytest.raises(ValueError, match="person"):
        build_features(db, tmp_path / "f", interest_catalog(config, [7]),
                       FitRules(config["decision_maker_levels"], config["employee_bands"]), 7)


def test_phrases_read_like_a_salesperson_wrote_them(settings):
    catalog = interest_catalog(load_yaml(settings.config_file("features.yaml")), [30])
    spec = {s.name: s for s in catalog.specs()}["email_open_30d"]
    assert phrase(spec, 3.0) == "opened 3 marketing emails in the last 30 days"


def test_the_committee_without_an_asof_join_has_the_same_rows(build, tmp_path, settings):
    """Spark SQL has no ASOF join: the committee's range join ranked to the latest fit row gives
    the rows DuckDB's ASOF join gives."""
    interest, fit = build()
    assert fit["pid"].value_counts().max() > 1  # someone's fit changed: the join has a choice to make
    catalog = interest_catalog(load_yaml(settings.config_file("features.yaml")), [7, 30, 90, 180])
    with duckdb.connect(str(tmp_path / "middle.duckdb"), read_only=True) as con:
        con.register("person_interest", interest)
        con.register("person_fit", fit)
        asof, ranked = (con.execute(company_committee_sql(catalog, asof_join=flag)).df()
                        for flag in (True, False))
    assert len(asof) > 0 and asof["committee_engaged_90d"].sum() > 0
    pd.testing.assert_frame_equal(asof, ranked)


ACCOUNT_AT = datetime(2026, 3, 2, tzinfo=UTC)
ACCOUNT_EVENTS = [  # around ACCOUNT_AT: windows' edges, passive events, old and later ones
    ("A1", "web_visit", datetime(2026, 1, 31, tzinfo=UTC)),       # exactly 30 days before: counts
    ("A1", "web_visit", datetime(2026, 1, 30, 23, 59, tzinfo=UTC)),  # just outside 30, inside 90
    ("A1", "email_send", datetime(2026, 2, 20, tzinfo=UTC)),      # passive: not engagement
    ("A2", "email_send", datetime(2026, 2, 25, tzinfo=UTC)),      # only passive: a row of zeros
    ("A3", "webinar_attend", datetime(2025, 6, 1, tzinfo=UTC)),   # only old: a row of zeros
    ("A4", "web_visit", ACCOUNT_AT),                              # at the instant: no row yet
    ("A5", "form_submit", datetime(2026, 3, 1, tzinfo=UTC)),
    ("A5", "web_visit", datetime(2026, 3, 5, tzinfo=UTC)),        # after it: not counted
    (None, "web_visit", datetime(2026, 3, 1, tzinfo=UTC)),        # anonymous: nobody's
]


def test_the_last_events_grouped_at_a_few_times_are_the_running_max(settings):
    """An increment finds each person's last event per type by grouping their events before
    each time; a long one (Spark's full build) by a running max: the same rows at every
    time, an event at the instant itself not before it, passive events not engagement."""
    from leadscore.features.build import interest_slices_sql

    catalog = interest_catalog(load_yaml(settings.config_file("features.yaml")), [7, 30, 90, 180])
    interaction = pd.DataFrame(ACCOUNT_EVENTS, columns=["pid", "event_type", "event_time"]).assign(
        channel="web")
    interaction["event_time"] = interaction["event_time"].astype("datetime64[us, UTC]")
    params = {"start": datetime(2026, 1, 26, tzinfo=UTC), "as_of": datetime(2026, 3, 9, 12, tzinfo=UTC),
              "since": datetime(2026, 1, 1, tzinfo=UTC)}  # weekly times from 26 January, and as_of
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        con.register("interaction", interaction)
        grouped, running = (con.execute(interest_slices_sql(catalog, 7, [], few_times=few), params).df()
                            for few in (True, False))
    pd.testing.assert_frame_equal(grouped, running)
    a4 = grouped[grouped["pid"] == "A4"]  # its one event at 2 March 00:00: the times after it only
    assert list(a4["event_timestamp"].dt.day) == [9, 9]
    assert a4["days_since_last_web_visit"].tolist() == [7, 7.5]
    a2 = grouped[grouped["pid"] == "A2"]  # sent a mail on 25 February, no engagement since
    assert len(a2) == 3 and a2["days_since_last_event"].isna().all() and a2["email_open_rate_90d"].eq(0).all()


def test_the_account_slices_are_the_interest_slices_account_columns(settings):
    """The colleagues' shortcut gives exactly the rows and counts of the full interest SQL."""
    from leadscore.features.build import account_slices_sql, interest_slices_sql

    catalog = interest_catalog(load_yaml(settings.config_file("features.yaml")), [7, 30, 90, 180])
    interaction = pd.DataFrame(ACCOUNT_EVENTS, columns=["pid", "event_type", "event_time"]).assign(
        channel="web")
    interaction["event_time"] = interaction["event_time"].astype("datetime64[us, UTC]")
    params = {"start": ACCOUNT_AT, "as_of": ACCOUNT_AT, "since": datetime(2026, 3, 1, 23, tzinfo=UTC)}
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        con.register("interaction", interaction)
        full = con.execute(interest_slices_sql(catalog, 7, []), params).df()
        account = con.execute(account_slices_sql(catalog, 7), params).df()
    pd.testing.assert_frame_equal(account, full[["pid", "event_timestamp", "events_30d", "events_90d"]])
    assert list(account["pid"]) == ["A1", "A2", "A3", "A5"]
    assert account.set_index("pid").loc["A1", ["events_30d", "events_90d"]].tolist() == [1, 2]
