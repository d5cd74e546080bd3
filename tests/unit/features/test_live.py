"""Live features equal the batch's: `features_at` on a tiny middle layer built inline, compared
with a batch build of the same middle layer (plus, for the live records, a second middle
layer holding them as identity resolution would)."""

from datetime import datetime, timezone

import duckdb
import pandas as pd
import pytest

from leadscore.features.build import build_features
from leadscore.features.live import (
    COLLEAGUE_ACCOUNTS,
    COMPANY_VIEWS,
    PERSON_VIEWS,
    FeatureDefinitions,
    LiveRecords,
    _recent_enough,
    features_at,
    open_middle_layer,
)

UTC = timezone.utc
MONDAY = datetime(2026, 2, 16, tzinfo=UTC)  # a grid time of the batch (weekly, on Mondays)
VIEWS = [*PERSON_VIEWS, *COMPANY_VIEWS]


def _event(lid, pid, event_type, day, hour=10, channel="web", cookie=None):
    return {"lid": lid, "pid": pid, "cid": None, "event_type": event_type,
            "event_time": datetime(2026, *day, hour, tzinfo=UTC), "channel": channel,
            "source": "test", "cookie_id": cookie, "properties": "{}"}


EVENTS = [
    _event("L1", "P1", "web_visit", (1, 2)),
    _event("L2", "P1", "email_send", (1, 20), 9, "email"),
    _event("L3", "P1", "email_open", (2, 10), 10, "email"),
    _event("L4", "P2", "web_visit", (2, 3)),
    _event("L5", "P3", "webinar_attend", (2, 12), 16, "event"),
    _event("L6", "P5", "form_submit", (2, 9)),
    _event("L7", "P5", "web_visit", (3, 1)),  # after MONDAY: in the as_of row only
    # an anonymous visitor's sessions (cookie K1), not yet bound to anyone
    _event("L8", None, "web_visit", (2, 5), cookie="K1"),
    _event("L9", None, "whitepaper_download", (2, 11), cookie="K1"),
    _event("L10", None, "web_visit", (2, 11), cookie="K2"),
]

DAY = pd.Timestamp("2026-01-01", tz="UTC")
PEOPLE = pd.DataFrame({
    "pid": ["P1", "P2", "P3", "P4", "P5"], "cid": ["C1", "C1", "C2", None, "C3"],
    "seniority": ["c_level", "manager", None, None, "director"],
    "department": ["engineering", "marketing", None, None, "sales"],
    "identified_at": [DAY] * 5, "email_known_at": [DAY, DAY, DAY, pd.NaT, DAY],
    "phone_known_at": [pd.NaT] * 5, "title_known_at": [DAY, DAY, pd.NaT, pd.NaT, DAY],
    "company_known_at": [pd.Timestamp("2026-02-01", tz="UTC"), DAY, DAY, pd.NaT, DAY],
})
# C1 and C2 are one group (E1): P3 at C2 counts in P1's group engagement
COMPANIES = pd.DataFrame({"cid": ["C1", "C2", "C3"], "eid": ["E1", "E1", "E2"],
                          "industry": ["software", "software", "retail"], "employees": [1500, 80, 20],
                          "funding_stage": ["series_d", "seed", None],
                          "annual_revenue_usd": [1e8, 2e6, None]})


def _write_middle_layer(path, events, people=PEOPLE, companies=COMPANIES):
    interaction = pd.DataFrame(events)
    interaction["event_time"] = interaction["event_time"].astype("datetime64[us, UTC]")
    frames = {"interaction": interaction.astype({"pid": "string", "cid": "string", "cookie_id": "string"}),
              "person": people, "company": companies}
    with duckdb.connect(str(path)) as con:
        for name, frame in frames.items():
            con.register(f"{name}_df", frame)
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM {name}_df")
    return path


@pytest.fixture(scope="module")
def definitions(settings):
    return FeatureDefinitions.from_settings(settings)


@pytest.fixture
def batch_at(tmp_path, definitions):
    """A batch build of a middle layer; its rows of a view at a time, as Feast's point-in-time
    join reads them (the latest row at or before it), stamped with that time."""
    def run(events, people=PEOPLE, name="batch", companies=COMPANIES):
        db = _write_middle_layer(tmp_path / f"{name}.duckdb", events, people, companies)
        build_features(db, tmp_path / name, definitions.catalog, definitions.fit_rules,
                       definitions.step_days)
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")

        def rows(view, keys, at):
            key = "pid" if view in PERSON_VIEWS else "cid"
            return con.execute(
                f"SELECT * REPLACE ($at::TIMESTAMPTZ AS event_timestamp) "
                f"FROM read_parquet('{tmp_path / name / view}.parquet/*.parquet') "
                f"WHERE event_timestamp <= $at AND {key} IN (SELECT unnest($keys)) "
                f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY event_timestamp DESC) = 1 "
                f"ORDER BY {key}", {"at": at, "keys": keys}).df()
        return rows
    return run


@pytest.fixture
def middle(tmp_path):
    """The worker's connection on the middle layer of EVENTS."""
    con = open_middle_layer(_write_middle_layer(tmp_path / "middle.duckdb", EVENTS))
    yield con
    con.close()


def _assert_same_rows(live: pd.DataFrame, batch: pd.DataFrame) -> None:
    """Same columns, types and rows; floats to 1e-9."""
    pd.testing.assert_frame_equal(live.reset_index(drop=True), batch.reset_index(drop=True),
                                  check_exact=False, rtol=0, atol=1e-9)


def _assert_equal_to_batch(rows: dict, batch, pids: list[str], at: datetime) -> None:
    companies = sorted(PEOPLE.set_index("pid").loc[pids, "cid"].dropna().unique())
    for view in VIEWS:
        _assert_same_rows(rows[view], batch(view, pids if view in PERSON_VIEWS else companies, at))


@pytest.mark.parametrize("at", [MONDAY, datetime(2026, 3, 2, tzinfo=UTC)], ids=["grid time", "as_of"])
def test_every_view_equals_the_batch_at_a_time_it_built(middle, definitions, batch_at, at):
    pids = ["P1", "P2", "P3", "P4", "P5"]
    rows = features_at(middle, definitions, pids, at)
    _assert_equal_to_batch(rows, batch_at(EVENTS), pids, at)
    assert rows["person_interest"]["event_timestamp"].eq(pd.Timestamp(at)).all()
    assert set(rows["person_account"]["pid"]) == {"P1", "P2", "P3", "P5"}  # P4: no company


def test_one_person_alone_gets_the_rows_the_batch_gives_them_among_everyone(middle, definitions,
                                                                           batch_at):
    """The scope (colleagues of the company and the group) is found from the PID alone."""
    rows = features_at(middle, definitions, ["P1"], MONDAY)
    _assert_equal_to_batch(rows, batch_at(EVENTS), ["P1"], MONDAY)
    account = rows["person_account"].iloc[0]
    # P1 (email open 10 Feb) and P2 (visit 3 Feb) at C1, P3 (webinar) at C2 in the same group
    assert account["company_people_engaged_30d"] == 2 and account["group_people_engaged_30d"] == 3


LIVE_EVENTS = [_event("L20", "P2", "whitepaper_download", (2, 14), 11),
               _event("L21", "P4", "contact_sales", (2, 15))]


def test_a_live_interaction_counts_as_if_it_were_in_the_middle_layer(middle, definitions, batch_at):
    live = LiveRecords(interactions=pd.DataFrame(LIVE_EVENTS))
    rows = features_at(middle, definitions, ["P1", "P2", "P4"], MONDAY, live)
    _assert_equal_to_batch(rows, batch_at([*EVENTS, *LIVE_EVENTS], name="with_live"), ["P1", "P2", "P4"],
                           MONDAY)
    without = features_at(middle, definitions, ["P2"], MONDAY)["person_interest"]
    assert rows["person_interest"].set_index("pid").loc["P2", "whitepaper_download_7d"] == 1
    assert without["whitepaper_download_7d"].iloc[0] == 0  # the comparison above can fail


def test_a_colleagues_live_interaction_changes_the_persons_account_rows(middle, definitions):
    """P3's live event makes P3 engaged lately, which P1's group count sees."""
    event = _event("L22", "P3", "web_visit", (2, 14))
    before = features_at(middle, definitions, ["P1"], datetime(2026, 3, 20, tzinfo=UTC))
    after = features_at(middle, definitions, ["P1"], datetime(2026, 3, 20, tzinfo=UTC),
                        LiveRecords(interactions=pd.DataFrame([{**event, "event_time": datetime(
                            2026, 3, 18, tzinfo=UTC)}])))
    assert (after["person_account"]["group_people_engaged_30d"].iloc[0]
            == before["person_account"]["group_people_engaged_30d"].iloc[0] + 1)


def test_the_colleagues_accounts_come_with_the_targets_when_asked(middle, definitions, batch_at):
    """P1's company and group colleagues (P2 at C1, P3 at C2 of E1), not the target, not P5
    of another group: the rows the batch gives them, with their company and its group."""
    rows = features_at(middle, definitions, ["P1"], MONDAY, colleagues=True)
    colleagues = rows[COLLEAGUE_ACCOUNTS]
    assert list(colleagues["pid"]) == ["P2", "P3"]
    assert list(colleagues["cid"]) == ["C1", "C2"] and set(colleagues["eid"]) == {"E1"}
    _assert_same_rows(colleagues.drop(columns=["cid", "eid"]),
                      batch_at(EVENTS)("person_account", ["P2", "P3"], MONDAY))
    alone = features_at(middle, definitions, ["P1"], MONDAY)
    assert COLLEAGUE_ACCOUNTS not in alone
    # the group's companies' rows too, written with the colleagues' so that the two agree online
    assert list(rows["company_engagement"]["cid"]) == ["C1", "C2"]
    assert list(alone["company_engagement"]["cid"]) == ["C1"]


def test_a_bound_cookie_counts_its_anonymous_sessions_as_the_batch_would(middle, definitions, batch_at):
    """Binding K1 to P4 counts K1's sessions for P4, as a middle layer that resolved them to
    P4 does; K2 stays anonymous."""
    resolved = [{**event, "pid": "P4"} if event["cookie_id"] == "K1" else event for event in EVENTS]
    rows = features_at(middle, definitions, ["P4"], MONDAY, LiveRecords(cookies={"P4": ["K1"]}))
    _assert_equal_to_batch(rows, batch_at(resolved, name="resolved"), ["P4"], MONDAY)
    interest = rows["person_interest"].iloc[0]
    assert interest["whitepaper_download_30d"] == 1 and interest["web_visit_30d"] == 1
    assert features_at(middle, definitions, ["P4"], MONDAY)["person_interest"].empty


def test_a_live_person_row_replaces_the_middle_layers(middle, definitions, batch_at):
    """P4 is found to work at C3 as a director: fit and account rows as the batch's."""
    changed = PEOPLE.set_index("pid")
    changed.loc["P4", ["cid", "seniority", "department"]] = ["C3", "director", "sales"]
    changed.loc["P4", ["title_known_at", "company_known_at"]] = pd.Timestamp("2026-02-10", tz="UTC")
    changed = changed.reset_index()
    live = LiveRecords(people=changed[changed["pid"] == "P4"])
    rows = features_at(middle, definitions, ["P4", "P5"], MONDAY, live)
    batch = batch_at(EVENTS, changed, name="changed")
    for view in VIEWS:
        keys = ["P4", "P5"] if view in PERSON_VIEWS else ["C3"]
        _assert_same_rows(rows[view], batch(view, keys, MONDAY))
    assert rows["person_fit"].set_index("pid").loc["P4", "is_decision_maker"] == 1


def test_a_live_record_already_in_the_middle_layer_counts_once(middle, definitions):
    again = LiveRecords(interactions=pd.DataFrame([EVENTS[0]]))  # L1, P1's web visit
    twice = features_at(middle, definitions, ["P1"], MONDAY, again)["person_interest"]
    once = features_at(middle, definitions, ["P1"], MONDAY)["person_interest"]
    _assert_same_rows(twice, once)


def test_an_event_at_the_instant_counts_only_after_it(middle, definitions):
    """Events strictly before `at`, as the grid rows."""
    at = datetime(2026, 2, 10, 10, tzinfo=UTC)  # P1's email open
    just_after = datetime(2026, 2, 10, 10, 0, 0, 1, tzinfo=UTC)
    opens = [features_at(middle, definitions, ["P1"], t)["person_interest"]["email_open_7d"].iloc[0]
             for t in (at, just_after)]
    assert opens == [0, 1]


def test_a_naive_instant_is_refused(middle, definitions):
    with pytest.raises(ValueError, match="timezone"):
        features_at(middle, definitions, ["P1"], datetime(2026, 2, 16))


def _old(lid, pid, event_type, day):
    return {**_event(lid, pid, event_type, (1, 1)), "event_time": datetime(2025, *day, 10, tzinfo=UTC)}


# Colleagues in P1's group (E1) with history before the colleague horizon (the last event, 1
# March 2026, less 90 days): P2 an old visit besides its recent one; P6 at C4 only visits of
# September 2025, counted in no window, yet C4's engagement row (and P6's account row) exist
# only because of them; P7 at C5 only a download of 20 December, in the 90-day counts at
# 2 March and not in the 30-day ones.
HISTORY = [*EVENTS, _old("L30", "P2", "web_visit", (6, 2)), _old("L31", "P6", "web_visit", (9, 1)),
           _old("L32", "P6", "email_open", (9, 3)), _old("L33", "P7", "whitepaper_download", (12, 20))]
HISTORY_PEOPLE = pd.concat([PEOPLE, *(PEOPLE[PEOPLE["pid"] == "P2"].assign(pid=pid, cid=cid)
                                      for pid, cid in (("P6", "C4"), ("P7", "C5")))], ignore_index=True)
HISTORY_COMPANIES = pd.concat([COMPANIES, *(COMPANIES[COMPANIES["cid"] == "C2"].assign(cid=cid)
                                            for cid in ("C4", "C5"))], ignore_index=True)


def test_colleagues_read_from_their_recent_events_count_as_their_whole_history(tmp_path, definitions,
                                                                              batch_at):
    """After the last event the colleagues' stored events come from the recent ones and one
    earlier event each; their account rows and their companies' are the batch's."""
    at = datetime(2026, 3, 2, tzinfo=UTC)  # the batch's as_of
    middle = open_middle_layer(_write_middle_layer(tmp_path / "worker.duckdb", HISTORY, HISTORY_PEOPLE,
                                                   HISTORY_COMPANIES))
    with middle.cursor() as cur:
        assert _recent_enough(cur, at)  # the recent events are what this test reads
    rows = features_at(middle, definitions, ["P1"], at, colleagues=True)
    batch = batch_at(HISTORY, HISTORY_PEOPLE, name="history", companies=HISTORY_COMPANIES)
    colleagues = rows[COLLEAGUE_ACCOUNTS]
    assert list(colleagues["pid"]) == ["P2", "P3", "P6", "P7"]
    _assert_same_rows(colleagues.drop(columns=["cid", "eid"]),
                      batch("person_account", ["P2", "P3", "P6", "P7"], at))
    engagement = rows["company_engagement"].set_index("cid")
    assert list(engagement.index) == ["C1", "C2", "C4", "C5"]
    assert list(engagement["people_engaged_90d"]) == [2, 1, 0, 1]
    assert list(engagement["people_engaged_30d"]) == [2, 1, 0, 0]
    _assert_same_rows(rows["company_engagement"], batch("company_engagement", ["C1", "C2", "C4", "C5"], at))


def test_monitorings_reference_reads_each_row_at_its_own_instant_in_the_rows_order(tmp_path, settings,
                                                                                     middle, definitions):
    """monitoring/inputs.py `features_at_times`: the live SQL per instant, rows kept in order
    with their other columns (drift's reference: people at the weekday and hour of now)."""
    from leadscore.monitoring.inputs import ACTED_DAYS, features_at_times

    # `middle` wrote tmp_path/middle.duckdb, which a data dir at tmp_path holds
    later = datetime(2026, 3, 2, 9, tzinfo=UTC)  # after P5's visit of 1 March
    rows = pd.DataFrame({"pid": ["P5", "P1", "P5"], "event_timestamp": [later, MONDAY, MONDAY],
                         ACTED_DAYS: [0.9, 6.0, 7.0]}, index=[7, 3, 5])
    got = features_at_times(settings.with_data_dir(tmp_path), rows)
    assert got.index.tolist() == [7, 3, 5] and got[ACTED_DAYS].tolist() == [0.9, 6.0, 7.0]
    for index, pid, at in [(7, "P5", later), (3, "P1", MONDAY), (5, "P5", MONDAY)]:
        alone = features_at(middle, definitions, [pid], at)
        for view in PERSON_VIEWS:
            for column in alone[view].columns.drop(["pid", "event_timestamp"]):
                assert got.loc[index, column] == alone[view][column].iloc[0] or (
                    pd.isna(got.loc[index, column]) and pd.isna(alone[view][column].iloc[0])), (index, column)
    assert got.loc[7, "web_visit_7d"] == 1 and got.loc[5, "web_visit_7d"] == 0  # the instant counts
