"""Live features on the tiny world: equal to the batch's rows at times the batch built, for
every view; written through Feast, they are what the online store serves; two processes
writing at once lose nothing."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest

from leadscore.config import load_settings
from leadscore.features.build import read_manifest
from leadscore.features.live import (
    COMPANY_VIEWS,
    PERSON_VIEWS,
    FeatureDefinitions,
    LiveRecords,
    features_at,
    open_middle_layer,
    write_online,
)
from leadscore.features.store import OnlineFeatures, feature_refs, open_store

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def settings(world):
    return load_settings(world["config_file"])


@pytest.fixture(scope="module")
def middle(settings):
    con = open_middle_layer(settings.middle_db)
    yield con
    con.close()


@pytest.fixture(scope="module")
def definitions(settings):
    return FeatureDefinitions.from_settings(settings)


@pytest.fixture(scope="module")
def sample(settings) -> list[str]:
    """60 people: most with interactions (many share a company or group), some without."""
    with duckdb.connect(str(settings.middle_db), read_only=True) as con:
        return [row[0] for row in con.execute("""
            (SELECT pid FROM person WHERE pid IN (SELECT pid FROM interaction) ORDER BY hash(pid) LIMIT 50)
            UNION ALL
            (SELECT pid FROM person WHERE pid NOT IN (SELECT pid FROM interaction WHERE pid IS NOT NULL)
             ORDER BY hash(pid) LIMIT 10)""").fetchall()]


def _batch_rows(features_dir, view: str, keys: list[str], at) -> pd.DataFrame:
    """The batch view's row of each key valid at `at` (what Feast's point-in-time join
    takes), stamped `at`."""
    key = "pid" if view in PERSON_VIEWS else "cid"
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con.execute(
        f"SELECT * REPLACE ($at::TIMESTAMPTZ AS event_timestamp) "
        f"FROM read_parquet('{features_dir / view}.parquet/*.parquet') "
        f"WHERE event_timestamp <= $at AND {key} IN (SELECT unnest($keys)) "
        f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY event_timestamp DESC) = 1 "
        f"ORDER BY {key}", {"at": at, "keys": keys}).df()


def _grid_time(features_dir):
    """A grid time the batch built, four weeks before its as_of."""
    times = pd.read_parquet(features_dir / "person_interest.parquet", columns=["event_timestamp"])
    grid = sorted(times["event_timestamp"].unique())
    return grid[-5].to_pydatetime()


def test_live_rows_equal_the_batch_rows_for_every_view(settings, middle, definitions, sample):
    features_dir = settings.feature_data_dir
    as_of = read_manifest(features_dir)["as_of"]
    for at in (_grid_time(features_dir), as_of):
        rows = features_at(middle, definitions, sample, at)
        for view in PERSON_VIEWS:
            batch = _batch_rows(features_dir, view, sample, at)
            pd.testing.assert_frame_equal(rows[view], batch, check_exact=False, rtol=0, atol=1e-9)
        for view in COMPANY_VIEWS:
            companies = rows[view]["cid"].tolist()
            batch = _batch_rows(features_dir, view, companies, at)
            pd.testing.assert_frame_equal(rows[view], batch, check_exact=False, rtol=0, atol=1e-9)
        assert len(rows["person_interest"]) >= 40 and rows["person_interest"]["events_90d"].sum() > 0
        assert rows["company_engagement"]["people_engaged_90d"].sum() > 0


@pytest.fixture
def online_copy(world, config_writer, tmp_path):
    """A store whose registry and online store are a copy of the world's (the other tests
    read the world's as the batch left it)."""
    config_file = config_writer(tmp_path)
    shutil.copytree(world["root"] / "data" / "feast", tmp_path / "data" / "feast")
    return config_file


def _assert_same_values(left: pd.DataFrame, right: pd.DataFrame) -> None:
    """Equal column by column: numbers to 1e-9 (missing equals missing), strings exactly."""
    for column in right.columns:
        a, b = left[column].reset_index(drop=True), right[column].reset_index(drop=True)
        if pd.api.types.is_numeric_dtype(b):
            np.testing.assert_allclose(a.astype(float), b.astype(float), rtol=0, atol=1e-9, err_msg=column)
        else:
            assert a.where(a.notna(), None).tolist() == b.where(b.notna(), None).tolist(), column


def test_written_rows_are_what_the_online_store_serves(online_copy, settings, middle, definitions, sample):
    """A live web visit five minutes ago: after write_online, the online read returns every
    written feature of every person view, the visit counted."""
    store = open_store(load_settings(online_copy))
    now = read_manifest(settings.feature_data_dir)["as_of"] + timedelta(days=1, hours=9)
    visit = {"lid": "LIVE-1", "pid": sample[0], "cid": None, "event_type": "web_visit",
             "event_time": now - timedelta(minutes=5), "channel": "web", "source": "live",
             "cookie_id": None, "properties": "{}"}
    rows = features_at(middle, definitions, sample, now, LiveRecords(interactions=pd.DataFrame([visit])))
    without = features_at(middle, definitions, sample[:1], now)["person_interest"].iloc[0]
    write_online(store, rows)
    online = OnlineFeatures(store).read(sample).set_index("pid")
    for view in PERSON_VIEWS:
        names = [ref.split(":")[1] for ref in feature_refs(store) if ref.startswith(f"{view}:")]
        written = rows[view].set_index("pid")
        _assert_same_values(online.loc[written.index, names], written[names])
    first = online.loc[sample[0]]
    assert first["web_visit_7d"] == without["web_visit_7d"] + 1
    assert first["days_since_last_event"] == pytest.approx(5 / 60 / 24)


WRITER = """
import json, sys, time
from pathlib import Path
import pandas as pd
from leadscore.config import load_settings
from leadscore.features.live import write_online
from leadscore.features.store import open_store

config_file, rows_file, marker, rounds, barrier = sys.argv[1:]
store = open_store(load_settings(config_file))
rows = pd.read_parquet(rows_file)
Path(barrier, marker).touch()  # ready: start together
while len(list(Path(barrier).iterdir())) < 2:
    time.sleep(0.01)
started = time.time()
for round_ in range(int(rounds)):
    value = int(marker) + round_
    write_online(store, {"person_interest": rows.assign(events_7d=value, events_30d=value)})
print(json.dumps([started, time.time()]))
"""


def test_two_processes_writing_at_once_lose_nothing(online_copy, settings, middle, definitions, sample,
                                                    tmp_path):
    """Both write the same 30 people (and 10 of their own each), round after round, with
    the round in two columns: no error, every person has the last round of a writer, and
    both columns of the same write (no row torn between writers)."""
    at = read_manifest(settings.feature_data_dir)["as_of"] + timedelta(hours=1)
    interest = features_at(middle, definitions, sample, at)["person_interest"]
    assert len(interest) >= 50
    shared, own = interest.iloc[:30], {1000: interest.iloc[30:40], 2000: interest.iloc[40:50]}
    (tmp_path / "barrier").mkdir()
    writers = []
    for marker, mine in own.items():
        rows_file = tmp_path / f"rows-{marker}.parquet"
        pd.concat([shared, mine]).to_parquet(rows_file)
        writers.append(subprocess.Popen(
            [sys.executable, "-c", WRITER, str(online_copy), str(rows_file), str(marker), "8",
             str(tmp_path / "barrier")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    spans = []
    for writer in writers:
        out, err = writer.communicate(timeout=300)
        assert writer.returncode == 0 and "locked" not in err, err
        spans.append(json.loads(out.strip().splitlines()[-1]))
    assert max(start for start, _ in spans) < min(end for _, end in spans)  # they did overlap
    online = OnlineFeatures(open_store(load_settings(online_copy))).read(interest["pid"].tolist())
    online = online.set_index("pid")[["events_7d", "events_30d"]]
    assert (online["events_7d"] == online["events_30d"]).all()
    assert set(online.loc[shared["pid"], "events_7d"]) <= {1007, 2007}
    for marker, mine in own.items():
        assert (online.loc[mine["pid"], "events_7d"] == marker + 7).all()


def test_a_writer_locked_out_past_sqlites_timeout_tries_again(online_copy, settings, middle, definitions,
                                                              sample, caplog):
    """Another connection holds the write lock for 7 s, longer than SQLite's 5 s wait: the
    write waits, tries again and lands, with no error."""
    store = open_store(load_settings(online_copy))
    at = read_manifest(settings.feature_data_dir)["as_of"] + timedelta(hours=2)
    rows = features_at(middle, definitions, sample[:5], at)
    write_online(store, rows)  # the store in WAL mode, as a running service's is
    marked = {"person_interest": rows["person_interest"].assign(events_7d=77)}
    blocker = sqlite3.connect(online_copy.parent.parent / "data" / "feast" / "online_store.db",
                              check_same_thread=False)
    blocker.execute("BEGIN EXCLUSIVE")
    threading.Timer(7, blocker.commit).start()
    started = time.monotonic()
    write_online(store, marked)
    assert time.monotonic() - started >= 5 and "trying again" in caplog.text
    online = OnlineFeatures(store).read(marked["person_interest"]["pid"].tolist())
    assert (online["events_7d"] == 77).all()
    blocker.close()


def _mover(middle_db, raw_dir, now, passive: list[str]) -> tuple[str, str, str, str, str]:
    """(pid, their company, a colleague there, their email, a company name as a form gives it
    that names a company of another group): a person engaged in the 30 days before `now`."""
    with duckdb.connect(str(middle_db), read_only=True) as con:
        pid, cid, colleague, email, eid = con.execute("""
            WITH engaged AS (
                SELECT DISTINCT pid FROM interaction WHERE event_time >= $now - INTERVAL 30 DAY
                  AND event_time < $now AND event_type NOT IN (SELECT unnest($passive::VARCHAR[]))),
            known AS (SELECT cid, count(*) AS people FROM person WHERE company_known_at < $now GROUP BY cid)
            SELECT p.pid, p.cid, (SELECT min(o.pid) FROM person o WHERE o.cid = p.cid AND o.pid <> p.pid
                                  AND o.company_known_at < $now), p.email, c.eid
            FROM person p JOIN company c USING (cid) JOIN known k USING (cid)
            WHERE p.email IS NOT NULL AND p.company_known_at < $now AND k.people > 1
              AND p.pid IN (FROM engaged)
            ORDER BY hash(p.pid) LIMIT 1""", {"now": now, "passive": passive}).fetchone()
        form = con.execute("""
            SELECT r.source_record_id FROM record r
            JOIN company_node n ON n.node = 'name:' || r.company_name_std JOIN company c ON c.cid = n.cid
            WHERE r.source = 'form_fills' AND c.eid <> $1
            ORDER BY r.source_record_id LIMIT 1""", [eid]).fetchone()[0]
    forms = pd.read_parquet(raw_dir / "form_fills.parquet")
    return pid, cid, colleague, email, forms.loc[forms["form_fill_id"] == form, "company_name"].iloc[0]


def test_a_person_who_moves_to_another_group_leaves_their_old_companys_count(settings, definitions,
                                                                              tmp_path):
    """An engaged person's form fill names a company of another group: the live update rewrites
    the old company's engaged count and its people's buying-committee rows without them (the
    new company's group alone would leave them stale until the next batch)."""
    from leadscore.benchmarks.live import bench_settings, world_copy
    from leadscore.features.store import read_view
    from leadscore.live.ingest import Ingestor
    from leadscore.live.online import OnlineUpdater
    from leadscore.live.sources import SOURCES

    live = bench_settings(settings, tmp_path, world_copy(settings.data_dir, tmp_path / "world"), None)
    store = open_store(live)
    now = read_manifest(settings.feature_data_dir)["as_of"] + timedelta(days=1)
    mover, old, colleague, email, company = _mover(live.middle_db, live.raw_dir, now,
                                                   definitions.catalog.passive_event_types)
    ingestor, updater = Ingestor(live), OnlineUpdater(live, store)

    def engaged() -> tuple[int, int]:
        company_row = read_view(store, updater.views["company_engagement"], "cid", [old],
                                ["people_engaged_30d"])[0]
        account = OnlineFeatures(store).read([colleague]).iloc[0]
        return company_row["people_engaged_30d"], account["company_people_engaged_30d"]

    with ingestor.log.writing() as log:  # the old company's rows at `now`, the mover counted
        log.mark_due([colleague])
    assert updater.update_due(ingestor.log, lambda: now, 100) == [colleague]
    before = engaged()
    form = SOURCES["form_fills"].model_validate({
        "form_fill_id": "MOVE-1", "submitted_at": now - timedelta(hours=1), "form_type": "contact_sales",
        "email": email, "company_name": company})
    done = ingestor.ingest("form_fills", [form], now)
    assert done.accepted[0]["pid"] == mover and done.people[mover]["cid"] != old
    scored: list[str] = []  # behind the answer: the update of whoever is due (serving/service.py)
    assert updater.update_due(ingestor.log, lambda: now, 100, lambda pids, _: scored.extend(pids)) == [mover]
    assert scored == [mover] and ingestor.log.due(10) == []  # re-scored, nothing left due
    assert before[0] == before[1] >= 1
    assert engaged() == (before[0] - 1, before[0] - 1)


def test_the_rows_an_update_hands_to_the_scoring_are_what_a_read_gives(settings, sample, tmp_path,
                                                                       monkeypatch):
    """The re-scoring after an update takes the rows as written (features/store.py
    `written_rows`) instead of reading them: values, knowledge and timestamps equal to a read,
    also where the machine's time zone is not UTC (Feast's SQLite read converts a stored time
    as local time, then calls it UTC); only the rows not written are read."""
    from leadscore.benchmarks.live import bench_settings, world_copy
    from leadscore.live.ingest import Ingestor
    from leadscore.live.online import OnlineUpdater

    live = bench_settings(settings, tmp_path, world_copy(settings.data_dir, tmp_path / "world"), None)
    store = open_store(live)
    now = read_manifest(settings.feature_data_dir)["as_of"] + timedelta(days=1, seconds=0.7)
    log, updater = Ingestor(live).log, OnlineUpdater(live, store)
    handed: list[tuple] = []
    for zone in ("UTC", "Europe/Paris"):  # the update and the reads in one process, as a worker
        monkeypatch.setenv("TZ", zone)
        time.tzset()
        try:
            with log.writing():
                log.mark_due(sample)
            handed.clear()
            assert sorted(updater.update_due(log, lambda: now, 100, lambda *given: handed.append(
                given))) == sorted(sample)
            (pids, written), = handed
            features = OnlineFeatures(store)
            asked = _counting_reads(features)
            served, read = features.read_rows(pids, written), OnlineFeatures(store).read_rows(pids)
        finally:
            monkeypatch.undo()
            time.tzset()
        assert written is not None and set(written) == set(PERSON_VIEWS) and written["person_interest"]
        assert asked == {view: missing for view in PERSON_VIEWS
                         if (missing := sum(pid not in written[view] for pid in pids))}
        assert served.known == read.known and served.updated_at == read.updated_at, zone
        assert served.columns == read.columns
        assert read.updated_at[0] == now.replace(microsecond=0)


def _counting_reads(features: OnlineFeatures) -> dict[str, int]:
    """view -> entities the reader reads from the store (filled as it reads)."""
    asked: dict[str, int] = {}
    read = features._online_read

    def counted(config, view, keys, names):
        asked[view.name] = asked.get(view.name, 0) + len(keys)
        return read(config, view, keys, names)

    features._online_read = counted
    return asked


def test_a_batch_load_over_live_rows_leaves_their_people_due_for_the_live_update(settings, sample, tmp_path):
    """`leadscore features materialize` while the live path runs: the load puts the build's
    rows over rows the live update had written from records the build did not hold (here:
    none of this log's), even at an instant before the build's own (its `as_of` is the
    midnight after its last event); their people are marked due, and the next live update
    writes theirs again."""
    from leadscore.benchmarks.live import bench_settings, world_copy
    from leadscore.cli.features import run_features_materialize
    from leadscore.live.ingest import Ingestor
    from leadscore.live.online import OnlineUpdater

    world = world_copy(settings.data_dir, tmp_path / "world")
    features_dir = world / settings.feature_data_dir.name
    features_dir.unlink()  # the build's manifest is written by the load: a copy of its own
    shutil.copytree(settings.feature_data_dir, features_dir)
    live = bench_settings(settings, tmp_path, world, None)
    store = open_store(live)
    as_of = read_manifest(live.feature_data_dir)["as_of"]
    now = as_of - timedelta(hours=2)
    log, updater = Ingestor(live).log, OnlineUpdater(live, store)
    with log.writing():
        log.mark_due(sample[:5])
    assert sorted(updater.update_due(log, lambda: now, 100)) == sorted(sample[:5])

    def stamps() -> set:
        return set(OnlineFeatures(store).read_rows(sample[:5]).updated_at)

    assert stamps() == {now}
    run_features_materialize(live, full=True)
    written_live = set(log.feature_writes()["pid"])  # theirs, and colleagues' committee rows
    assert stamps() == {as_of} and {pid for pid, _ in log.due(1000)} == written_live >= set(sample[:5])
    assert set(updater.update_due(log, lambda: now, 1000)) == written_live
    assert stamps() == {now} and log.due(10) == []
