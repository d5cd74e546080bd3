"""`leadscore bench live`: the live loop against a running service, on a day of the world's future.

The service runs as `leadscore serve` runs it (`serving.workers` processes) on a view of the
world (symlinks to the data directory, with the Feast store and the live state copied or
fresh, so the user's world is left as it was), with the MQL webhook pointed at a receiver in
this process. Its online store is the world's SQLite store (copied), or with
`--online-store redis` a redis-server started for the run and loaded in full first. Then:

- ingest: the days after the world's end through its first weekday, every source's records in time order, in
  calls of `CALL_RECORDS` consecutive records of one source, sent at concurrency 16 (the
  clock first placed at the day's end, so every record is in the past), the stream cut in
  windows of `WINDOW_RECORDS`, each sent as one call per source. `records_per_s`
  and `errors`; `batch_records_per_s` is the batch on the same records, measured in the same
  run: identity resolution with the day compacted in, plus the feature build, over the
  records of the day (the batch redoes the whole world to take them in).
- event_to_score: the next day's records, one call at a time, at most `LATENCY_CALLS`
  calls, the clock moving `LATENCY_CLOCK_SPEED` times as fast as the wall's: from the moment
  each call returns to the moment `/score` for each person it names reflects it (features
  of an instant at or after the call's `at`: the online store keeps whole seconds, a
  millisecond of the wall at that speed); `webhook` the same, to the moment the receiver got
  an MQL crossing of a person the call named. One call at a time is a quiet time, when the
  answer waits for its people's update: `call_p50_ms` is that wait (the ingest phase's
  `fresh_after_last_answer_s` is how far the scores trailed the answers under load).
- consistency: the service stopped, a batch rebuild at the same clock (identity resolution
  compacting the event log, then every feature of every PID written live computed from the
  rebuilt middle layer at the instant of its last live write, view by view: a colleague's
  buying-committee row rewritten later is checked at its own instant); `feature_mismatches`
  (online after live updates vs that batch, every such PID, every feature),
  `pid_mismatches` (each record's PID live vs in the batch, after the stable-ID mapping:
  a live PID the batch merged into another, with its audit row, counts as that one; a record
  whose live person the batch split, with its audit row, has no one PID to follow to; those
  are counted apart, and the merged people left out of the feature check: the batch's
  materialisation replaces their online rows). What the batch regrouped is counted apart
  too (`features_the_batch_regrouped`): the people it merged or split (its probabilistic
  pass, which stays in the batch, moved records between them) and, for the buying-committee
  counts, everyone in their company groups; the batch's materialisation replaces those rows.
  `lost_records`: sent vs stored + quarantined in the event log.
"""

from __future__ import annotations

import json
import math
import shutil
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import httpx
import pandas as pd
import yaml

from leadscore.benchmarks.load import cpu_seconds, json_request, percentile, run_load
from leadscore.benchmarks.servers import bentoml_server
from leadscore.clock import CLOCK_FILE, WorldClock, world_end
from leadscore.config import Settings, load_settings
from leadscore.live.log import EVENT_LOG, EventLog
from leadscore.live.replay import due_calls
from leadscore.live.sources import ID_COLUMN, TIME_COLUMN
from leadscore.local_servers import redis_server
from leadscore.synth.future import future_records, read_future

SERVICE_TARGET = "leadscore.serving.service:LeadScoring"
INGEST_KEY, CRM_KEY = "demo-ingest-key", "demo-crm-key"
CONCURRENCY = 16
CALL_RECORDS = 50
WINDOW_RECORDS = 400  # the stream is sent in windows of this many records, by source within each
LATENCY_CALLS = 300
LATENCY_CLOCK_SPEED = 1000  # a world second in a wall millisecond: see event_to_score above
POLL_S = 0.002
TOLERANCE = 1e-9
COPIED = {"feast"}  # written by the service: copied, not linked
LEFT_OUT = {"bench", "serving", "segments", "live"}


# ---- the world, the config and the webhook receiver ----------------------------------------

def world_copy(data_dir: Path, target: Path) -> Path:
    """`target`: symlinks to the data directory's entries, its Feast store copied, no live state."""
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for entry in sorted(data_dir.iterdir()):
        if entry.name in COPIED:
            shutil.copytree(entry, target / entry.name)
        elif entry.name not in LEFT_OUT:
            (target / entry.name).symlink_to(entry.resolve())
    return target


def bench_settings(settings: Settings, work_dir: Path, world: Path, webhook_url: str | None,
                   mlflow_dir: Path | None = None, overrides: dict[str, dict] | None = None) -> Settings:
    """A copy of the config whose webhook points at the receiver, the data at `world`, and MLflow
    the user's, or with `mlflow_dir` an embedded store there (for a bench that trains or moves
    aliases: never the user's tracking server); `overrides` update its top-level sections."""
    config_dir = work_dir / "config"
    shutil.rmtree(config_dir, ignore_errors=True)
    shutil.copytree(settings.config_dir, config_dir)
    raw = yaml.safe_load(settings.source_file.read_text())
    if mlflow_dir is not None:
        raw["mlflow"] = {"tracking_uri": None}
    mlflow_dir = mlflow_dir or settings.mlflow_dir
    raw["paths"] = {"data_dir": str(world), "mlflow_dir": str(mlflow_dir),
                    "feature_repo": str(settings.feature_repo), "datasets_dir": str(settings.datasets_dir)}
    raw.setdefault("serving", {}).setdefault("webhook", {})["url"] = webhook_url
    for section, values in (overrides or {}).items():
        raw.setdefault(section, {}).update(values)
    (config_dir / "leadscore.yaml").write_text(yaml.safe_dump(raw))
    # $LEADSCORE_DATA_DIR (set by the CLI to the user's data) would win over the file: not here
    return load_settings(config_dir / "leadscore.yaml").with_data_dir(world, mlflow_dir)


class Receiver:
    """The CRM's webhook: every POST with its arrival time, pid and idempotency key."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.received.append({"at": time.time(), "key": self.headers.get("Idempotency-Key"),
                                          "body": json.loads(body or b"{}")})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    @contextmanager
    def running(self) -> Iterator[Receiver]:
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()


# ---- the measurements ----------------------------------------------------------------------

def _through_first_weekday(end) -> int:
    """Days from the world's end to the end of the first weekday (a weekend has few records)."""
    days = 1
    while (end + timedelta(days=days - 1)).weekday() >= 5:
        days += 1
    return days


def _records(future: dict[str, pd.DataFrame], start, days: float = 1.0) -> list[tuple]:
    return [(None, source, record) for source, record in
            future_records(future, pd.Timestamp(start), pd.Timestamp(start + timedelta(days=days)))]


def wait_until_scored(log: EventLog, timeout_s: float = 300) -> None:
    """Wait until no person is due for a feature update (the re-scoring included)."""
    deadline = time.monotonic() + timeout_s
    while log.due(1):
        if time.monotonic() > deadline:
            raise TimeoutError(f"people still due for a feature update after {timeout_s} s")
        time.sleep(POLL_S)


def measure_ingest(url: str, calls: list[tuple[str, list[dict]]], pids: list[int], log: EventLog) -> dict:
    """Records/s from the first call to the moment every person the calls named has fresh
    features and a new score (`answered_records_per_s`: to the last answer only)."""
    requests = [json_request("POST", f"/ingest/{source}", records, INGEST_KEY) for source, records in calls]
    started = time.perf_counter()
    before = cpu_seconds(pids)
    result = run_load(url, lambda i: requests[i], CONCURRENCY, requests=len(requests), timeout_s=300)
    wait_until_scored(log)
    elapsed, server_cpu = time.perf_counter() - started, cpu_seconds(pids) - before
    records = sum(len(records) for _, records in calls)
    return {"records": records, "calls": len(calls), "records_per_call": CALL_RECORDS,
            "concurrency": CONCURRENCY, "records_per_s": round(records / elapsed, 1),
            "answered_records_per_s": round(records / result.elapsed_s, 1),
            "fresh_after_last_answer_s": round(elapsed - result.elapsed_s, 3),
            "errors": result.errors, "call_p50_ms": round(percentile(result.latencies_ms, 50), 1),
            "call_p99_ms": round(percentile(result.latencies_ms, 99), 1),
            "server_cpu_ms_per_record": round(server_cpu * 1000 / records, 3)}


def _reflected(client: httpx.Client, pid: str, at: str, timeout_s: float = 5) -> float | None:
    """Seconds until /score for `pid` shows features of instant `at` or later (whole seconds,
    as the online store keeps them); None if never within the timeout."""
    at_s = math.floor(pd.Timestamp(at).timestamp())
    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        stamp = client.post("/score", json={"pid": pid}).json().get("feature_timestamp")
        if stamp and pd.Timestamp(stamp).timestamp() >= at_s:
            return time.perf_counter() - started
        time.sleep(POLL_S)
    return None


def measure_event_to_score(url: str, calls: list[tuple[str, list[dict]]], receiver: Receiver) -> dict:
    """Call by call: ingest, then /score until it reflects the call; webhook arrivals after,
    each from the start of the last call that named its person (a quiet call's crossing is
    pushed before its answer: from the answer it would read 0)."""
    to_score: list[float] = []
    calls_ms: list[float] = []
    started: dict[str, list[float]] = {}  # pid -> when the calls that named it started
    missing = 0
    with httpx.Client(base_url=url, timeout=30) as ingest, \
            httpx.Client(base_url=url, timeout=30, headers={"X-API-Key": CRM_KEY}) as score:
        ingest.headers["X-API-Key"] = INGEST_KEY
        for source, records in calls:
            sent, sent_at = time.perf_counter(), time.time()
            answer = ingest.post(f"/ingest/{source}", json=records).json()
            calls_ms.append((time.perf_counter() - sent) * 1000)
            for pid in answer["people"]:
                started.setdefault(pid, []).append(sent_at)
                seconds = _reflected(score, pid, answer["at"])
                if seconds is None:
                    missing += 1
                else:
                    to_score.append(seconds * 1000)
        time.sleep(2)  # the last crossings' deliveries
    pushes = push_delays_ms(started, receiver.received)
    return {"calls": len(calls), "call_p50_ms": round(percentile(calls_ms, 50), 1),
            "call_p99_ms": round(percentile(calls_ms, 99), 1),
            "scored_pids": len(to_score) + missing, "not_reflected": missing,
            "p50_ms": round(percentile(to_score, 50), 2), "p99_ms": round(percentile(to_score, 99), 2),
            "webhook": {"crossings": len(pushes), "p50_ms": round(percentile(pushes, 50), 1),
                        "p99_ms": round(percentile(pushes, 99), 1),
                        "measured": "from the start of the ingest call that named the person"}}


def push_delays_ms(started: dict[str, list[float]], received: list[dict]) -> list[float]:
    """Milliseconds from the start of the last call naming a pushed MQL's person (epoch
    seconds, per pid) to the push's arrival; pushes of people no call named, or that came
    before any call did, are not counted."""
    delays = []
    for hit in received:
        before = [at for at in started.get(hit["body"].get("pid"), []) if at <= hit["at"]]
        if before:
            delays.append((hit["at"] - max(before)) * 1000)
    return delays


def consistency(settings: Settings, sent: set[tuple[str, str]]) -> dict:
    """After the service stopped: the batch rebuilt at the same clock against the live state."""
    from leadscore.features.live import FeatureDefinitions, features_at, open_middle_layer
    from leadscore.features.store import OnlineFeatures, open_store
    from leadscore.identity.resolve import resolve, rules_from_settings

    log = EventLog(settings.live_dir / EVENT_LOG)
    stored = log.records()
    stored_keys = set(zip(stored["source"], stored["source_record_id"], strict=True))
    lost = len(sent - stored_keys)
    started, started_at = time.perf_counter(), pd.Timestamp.now(tz="UTC")
    middle = settings.middle_db  # a link to the user's: the rebuilt file replaces the link, not it
    resolve(settings.raw_dir, middle, rules_from_settings(settings), log.for_batch())
    identity_s = time.perf_counter() - started

    with duckdb.connect(str(middle), read_only=True) as con:
        mapped = con.execute("SELECT source, source_record_id, pid FROM id_map").df()
        merged = dict(con.execute("SELECT id, other_id FROM id_audit WHERE kind = 'person' AND "
                                  "event = 'merge' AND \"at\" >= $1", [started_at]).fetchall())
        splits = con.execute("SELECT id, other_id FROM id_audit WHERE kind = 'person' AND event = 'split' "
                             "AND \"at\" >= $1", [started_at]).fetchall()
        split = {person for pair in splits for person in pair}
        regrouped = set(merged.values()) | split  # people whose records the batch took or gave
        committees = _committees(con, regrouped | set(merged), stored)
    batch = mapped.set_index(mapped["source"] + ":" + mapped["source_record_id"])["pid"]
    kept = stored[stored["status"] == "kept"]
    keys = (kept["source"] + ":" + kept["source_record_id"]).to_numpy()
    live = pd.Series(kept["pid"].to_numpy(), index=keys)
    pids = _pid_figures(live, batch, merged, {person for person, _ in splits})
    writes = log.feature_writes()
    writes = writes[~writes["pid"].isin(merged)]  # merged away: the batch's materialisation follows
    touched = sorted(set(writes["pid"]))
    touched_set = set(touched)
    targets = set(writes.loc[writes["view"] == "person_interest", "pid"])  # the rest: colleagues
    online = OnlineFeatures(open_store(settings)).read(touched).set_index("pid")
    con = open_middle_layer(middle)
    definitions = FeatureDefinitions.from_settings(settings)
    mismatches, compared = 0, 0
    examples: list[dict] = []
    by_feature: Counter[str] = Counter()
    regrouping: Counter[str] = Counter()
    for at, written in writes.groupby("at"):
        views = set(zip(written["pid"], written["view"], strict=True))
        rows = features_at(con, definitions, sorted(set(written["pid"])), at.to_pydatetime())
        for view, frame in rows.items():
            for row in frame.to_dict("records"):
                if (row.get("pid"), view) not in views:  # a company view, or a row written later
                    continue
                moved = row["pid"] in regrouped or (view == "person_account" and row["pid"] in committees)
                for name, value in row.items():
                    if name in ("pid", "event_timestamp", "cid") or name not in online.columns:
                        continue
                    if moved:
                        regrouping["compared"] += 1
                        regrouping["mismatches"] += not _same(value, online.at[row["pid"], name])
                        continue
                    compared += 1
                    if not _same(value, online.at[row["pid"], name]):
                        mismatches += 1
                        by_feature[name] += 1
                        if len(examples) < 5:
                            examples.append({"pid": row["pid"], "view": view, "feature": name,
                                             "batch": _plain(value),
                                             "online": _plain(online.at[row["pid"], name])})
    return {"records_sent": len(sent), "records_stored": len(stored_keys & sent), "lost_records": lost,
            "quarantined": int((stored["status"] == "quarantined").sum()),
            **pids,
            "touched_pids": len(targets),
            "colleague_rows_rewritten": int(((writes["view"] == "person_account")
                                             & ~writes["pid"].isin(targets)).sum()),
            "features_compared": compared,
            "features_the_batch_regrouped": {"people": len(regrouped & touched_set),
                                             "committees": len(committees & touched_set), **regrouping},
            "feature_mismatches": mismatches, "mismatches_by_feature": dict(by_feature.most_common()),
            "mismatch_examples": examples,
            "batch_identity_s": round(identity_s, 2)}


def batch_comparison(ingest: dict, checks: dict) -> dict:
    """The batch on the same records: it takes a day in only by resolving the whole world again."""
    return {"records": ingest["records"], "identity_resolve_s": checks["batch_identity_s"],
            "records_per_s": round(ingest["records"] / checks["batch_identity_s"], 1),
            "measured": "identity resolution of the whole world with the day compacted in "
                        "(the feature build and materialisation come on top)"}


def _committees(middle: duckdb.DuckDBPyConnection, people: set[str], stored: pd.DataFrame) -> set[str]:
    """Everyone in the company groups of these people (their companies in the rebuilt middle
    layer, and as ingested): when the batch merges two of them or moves a record from one to
    another, their buying-committee counts change (two people counted live are one in the
    batch, or an engagement moves to another company)."""
    ingested = stored[stored["pid"].isin(list(people)) & stored["cid"].notna()]
    return {row[0] for row in middle.execute("""
        WITH involved AS (
            SELECT cid FROM person WHERE pid IN (SELECT unnest($1::VARCHAR[]))
            UNION SELECT unnest($2::VARCHAR[]))
        SELECT p.pid FROM person p JOIN company c USING (cid)
        WHERE c.eid IN (SELECT eid FROM company JOIN involved USING (cid))""",
        [sorted(people), sorted(set(ingested["cid"]))]).fetchall()}


def _pid_figures(live: pd.Series, batch: pd.Series, merged: dict[str, str], split: set[str]) -> dict:
    """Each record's PID live (`live`) against the batch's (`batch`), both by record key. A PID
    the batch merged into another (its audit says so) counts as the one it went to. A record
    whose live person the batch split (`split`; its probabilistic pass, or a later record that
    made the identifier that linked it shared: a second name on a cookie) has no one PID to
    follow to. Both are counted apart."""
    both = batch.reindex(live.index).fillna("")
    raw = live.fillna("") != both
    followed = live.map(lambda pid: _survivor(pid, merged), na_action="ignore").fillna("") != both
    split_away = followed & live.isin(split)
    return {"pid_mismatches": int((followed & ~split_away).sum()), "records_compared": len(live),
            "records_whose_person_the_batch_merged": int(raw.sum() - followed.sum()),
            "records_whose_person_the_batch_split": int(split_away.sum()),
            "people_merged_by_the_batch": len(set(merged) & set(live.dropna()))}


def _survivor(pid: str, merged: dict[str, str]) -> str:
    """Where the batch's merges took a PID (a chain of merges followed to its end)."""
    seen = {pid}
    while pid in merged and merged[pid] not in seen:
        pid = merged[pid]
        seen.add(pid)
    return pid


def _plain(value):
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else (
        value.item() if hasattr(value, "item") else value)


def _same(a, b) -> bool:
    a, b = _plain(a), _plain(b)
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(float(a) - float(b)) <= TOLERANCE * max(1.0, abs(float(a)))
    return str(a) == str(b)


@contextmanager
def online_store(kind: str) -> Iterator[dict]:
    """The features settings of the online store the service uses: the world's SQLite copy, or a
    redis-server started for the run (stopped after it)."""
    if kind == "sqlite":
        yield {"online_store": "sqlite"}
        return
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("`--online-store redis` needs redis-server: apt-get install redis-server")
    with redis_server(binary) as address:
        yield {"online_store": "redis", "redis": address}


def load_redis(settings: Settings) -> float:
    """`feast apply` and a full load of the world's features into the (empty) Redis store, as
    `leadscore features apply` and `materialize` do it; seconds of the load."""
    from leadscore.features.build import read_manifest
    from leadscore.features.store import apply, materialize, open_store

    apply(settings, settings.source)
    started = time.perf_counter()
    materialize(open_store(settings), read_manifest(settings.feature_data_dir)["as_of"], full=True)
    return time.perf_counter() - started


def run(settings: Settings, work_dir: Path, store: str = "sqlite") -> dict:
    work_dir.mkdir(parents=True, exist_ok=True)
    future = read_future(settings.future_dir)
    end = world_end(settings)
    world = world_copy(settings.data_dir, work_dir / "world")
    receiver = Receiver()
    with receiver.running(), online_store(store) as features:
        bench = bench_settings(settings, work_dir, world, receiver.url, overrides={"features": features})
        load_s = load_redis(bench) if store == "redis" else None
        clock = WorldClock(bench.live_dir / CLOCK_FILE, end)
        busy = _through_first_weekday(end)
        first, second = _records(future, end, busy), _records(future, end + timedelta(days=busy), 1)
        clock.place(end + timedelta(days=busy), speed=0)
        with bentoml_server("service", SERVICE_TARGET, bench, world, work_dir,
                            workers=bench.serving.workers) as server:
            calls = [call for start in range(0, len(first), WINDOW_RECORDS)
                     for call in due_calls(first[start:start + WINDOW_RECORDS], CALL_RECORDS)]
            ingest = measure_ingest(server.url, calls, server.pids, EventLog(bench.live_dir / EVENT_LOG))
            clock.place(end + timedelta(days=busy + 1), speed=LATENCY_CLOCK_SPEED)
            latency_calls = due_calls(second, 1)[:LATENCY_CALLS]
            sent = {(source, str(record[ID_COLUMN[source]])) for _, source, record in first} | {
                (source, str(records[0][ID_COLUMN[source]])) for source, records in latency_calls}
            event_to_score = measure_event_to_score(server.url, latency_calls, receiver)
            clock.place(clock.now(), speed=0)  # the batch rebuilds at the clock where it stopped
        checks = consistency(bench, sent)
    keys = [hit["key"] for hit in receiver.received]
    event_to_score["webhook"]["pushes"] = len(keys)
    event_to_score["webhook"]["duplicate_keys"] = len(keys) - len(set(keys))
    ingest["batch"] = batch_comparison(ingest, checks)
    return {"world_end": end.isoformat(), "online_store": store, "ingest": ingest,
            "event_to_score": event_to_score, "consistency": checks,
            "goals": {"event_to_score_p99_ms": 1000, "event_to_score_p50_ms": 100,
                      "ingest_records_per_s": 1000, "mismatches": 0},
            "method": {"order": f"time order, cut in windows of {WINDOW_RECORDS} records, each window "
                                f"one call per source, {CONCURRENCY} calls at a time",
                       "time_column": TIME_COLUMN,
                       "workers": bench.serving.workers,
                       **({"redis_full_load_s": round(load_s, 2)} if load_s is not None else {})}}
