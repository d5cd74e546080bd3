"""`leadscore bench loop`: the closed loop over months of a moving world, a drift half-way.

What runs is the product's own loop, on a world of its own (under the bench's work dir, with
an MLflow store of its own, so the user's world and registry are left as they were):

1. **The world.** `leadscore pipeline` on a world of `scale` whose future spans the loop and
   one label horizon more (`world.future_days` = days + horizon + 1), with every drift of the
   plan at `end+<drift_day>d` (synth/drift.py). The champion it registers is the model
   trained once.
2. **The loop** (`days` days from the world's end), day by day against the real service
   (`bentoml serve`, the bench's config): the clock placed at the day's end, the day's records
   of every source sent to `POST /ingest/{source}` at once (one call per source, as `leadscore
   replay` groups them; the service's group commit takes them together), and each opportunity
   the CRM recorded sent back to `POST /outcomes` as `opportunity_created` with the PID the
   ingest answered (the world's opportunities flow in as the CRM's outcomes). Then
   `leadscore monitor`'s own function (the report at the clock, breaches posted once to the
   alert webhook, a receiver in this process, and the MLflow run). Every `retrain_every_days`
   (from day 0): `leadscore promote`'s function (the challenger against the champion on
   matured live evidence; decided, not applied, unless `--promote`: see below), then
   `leadscore retrain`'s (identity, incremental features,
   materialisation, the candidates, the refit, alias `challenger`); the loop waits until the
   service scores in shadow with the new version.
3. **The horizon after it.** A score is judged only once its 90-day horizon has passed, so the
   scores served after the drift are judged a horizon after the loop: the world goes on for
   one more horizon in steps of `TAIL_STEP_DAYS` (records and outcomes sent the same way,
   monitoring after each step, no retraining: the loop is over).
4. **Figures.** `detection_days`: from the drift to the first alert after it that raises a
   kind of breach (`ece`, `roc_auc`, `early_oe`, `arrivals_up`, `score_psi`, `feature_psi`, ...) not
   raised before it: a
   kind already raised before the drift is noise on this world (served traffic leans to
   engaged people, so feature PSI breaches come and go, and a return after
   `monitoring.alert_keep_days` clear is posted again);
   the first alert of any kind after the drift and the kinds raised before it are beside, and
   each kind's first day after it, and how many of each kind were posted before and after it
   (`posted_by_kind`): a plan without drifts (`--no-drift`) on the same seed is the control,
   whose alerts after the drift day say what the loop raises without any drift. With
   `--control` the bench runs that control beside itself, in a child process
   (`--no-drift --monitor-only`: the same world without the drift, the loop's days sent and monitored, no
   retraining and no horizon after, under `bench/loop-control`), and puts its alerts in the
   JSON's `control`: every breach it posts is a false alarm; `detection_beyond_control` is then
   the first day a kind is raised after the drift that neither run raised before it and the
   control had not raised by then (the first matured cohorts' ECE on the drift's day judges
   scores served before it, in both runs), and `met.detection_days` judges that. Without retraining it has no
   shadow model, so it tells the false alarms of the champion's and the model-free signals
   (`arrivals_up` and `_down`, `feature_psi`, `score_psi`, the champion's `early_oe` and `ece`), not those
   of a challenger's.
   `after_drift`: the matured cohorts (monitoring/cohorts.py: daily first
   scores, labelled by the CRM's outcomes) of the scores served from the drift to the loop's
   end, on the person-days both arms scored (monitoring/promotion.py `paired_cohorts`):
   `train_once` is the rows of the first champion, `rolling` those of every later version (the
   weekly challenger in shadow, or a promoted champion), and `rules_ceiling`: what the
   drift's new rules alone change in the ranking of those person-days (the truth's propensity
   under them against under the rules before, benchmarks/ceiling.py), the ratio a perfect
   retrain would reach. `ratio_interval` is the ratio's 95% interval over resamples of the
   people (each with all of their days, `people` of them), `rolling_ahead_share` the share of
   resamples in which rolling is ahead: a busy person counts once a day, so a few people can
   fill the top of a ranking, and a ratio off 1 by 0.2 on a small world can be noise (at scale
   0.1, 35 days: 0.81, interval 0.65-1.04). `against_truth`: both arms ranked against the
   truth's propensity of the same person-days as soft labels (benchmarks/ceiling.py
   `soft_ranking`), the comparison without the luck of which person-days converted (there
   0.93). `before_drift` the same before it.
   `backtest`: the loop's world brought up to the clock by the batch once more, its lead
   training set (matured snapshots, the drift inside) written as a flat table and backtested
   as `leadscore train table config/tables/synthetic_world.yaml --backtest --gap-days 90`
   does. `retrain_seconds`: the loop's retrains, and with `--default-world` one retrain of a
   fresh default-scale world timed the same way.

Why on a small world, and how long it takes: the loop needs 26 retrains, and each runs the
batch's path and trains, logs and compares three candidates in MLflow, a cost that hardly
shrinks with the world (at scale 0.05: 49-244 s, median 112 s, on a 2-core machine shared
with other work); the default world's are minutes each. With the 270 days of ingest and
monitoring (3-7 s a day), the world's pipeline and the backtest, the bench took 2-5 minutes
a simulated week on that machine, 80 minutes in all. `--retrain-every 14` halves the
retrains; `--days`, `--drift-day` and `--scale` shorten it further. Detection alone needs no
retrain but volume (the opportunities a day): `--monitor-only` on a drifted world (with
`--control` beside) runs the loop's days monitored on a world as large as the default one
(scale 1.0: 40 minutes for both runs on that machine).

Promotion on live evidence: a challenger's shadow scores are judged a horizon (90 days) after
they are served, and a weekly retrain replaces the challenger after 7 days, so the challenger
is judged with its lineage (the earlier retrains of the same policy, monitoring/promotion.py):
their shadow scores mature from day 90 on. The bench reports every decision and its reason,
and by default applies none (`promote --dry-run`): once a challenger is promoted the first
champion scores nothing more, and `after_drift` would pair nothing after that day (a run at
scale 0.1 promoted on day 112 and compared days 90-111 only). `rolling` is the weekly
challengers' shadow scores, and with `--promote` a promoted lineage's served ones.
"""

from __future__ import annotations

import logging
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from leadscore.benchmarks.live import (
    CRM_KEY,
    INGEST_KEY,
    SERVICE_TARGET,
    Receiver,
    bench_settings,
    wait_until_scored,
)
from leadscore.benchmarks.servers import bentoml_server
from leadscore.clock import CLOCK_FILE, WorldClock, world_end
from leadscore.config import DATA_DIR_ENV_VAR, SETTINGS_ENV_VAR, DriftSettings, Settings
from leadscore.live.log import EVENT_LOG, EventLog
from leadscore.live.replay import due_calls, sender
from leadscore.local_servers import ctrl_c_at_default
from leadscore.monitoring.cohorts import SHADOW
from leadscore.monitoring.inputs import matured_scores_at
from leadscore.synth.future import future_records, read_future

log = logging.getLogger(__name__)
LEADSCORE = Path(sys.executable).parent / "leadscore"
TAIL_STEP_DAYS = 7
SHADOW_WAIT_S = 120.0
GOALS = {"detection_days_max": 14, "after_drift_ratio_min": 1.3, "rolling_ece_max": 0.03,
         "backtest": "pooled ROC-AUC above train-once"}
ARMS = ("train_once", "rolling")
RESAMPLES = 200  # people resamples behind the ratio's interval
Say = Callable[[str], None]  # a progress line for the terminal


@dataclass(frozen=True)
class LoopPlan:
    """The run's parameters (all in the JSON's `parameters`)."""

    scale: float = 0.05
    seed: int = 42
    days: int = 180
    drift_day: int = 90
    retrain_every_days: int = 7
    drifts: tuple[str, ...] = ("industry=education", "base_rate")  # KIND[=TARGET][*FACTOR], at the drift day
    backtest: bool = True
    default_world: bool = False  # also time one retrain of a default-scale world
    control: bool = False  # run the control (no drift, monitoring only) beside, in a child process
    # apply the promotions decided on live evidence; off, they are decided and reported only
    # (`promote --dry-run`), so that the first champion serves the whole loop and train-once is
    # judged against the weekly challengers on every day after the drift
    promote: bool = False
    monitor_only: bool = False  # the loop's days monitored, no retraining: a control, or detection alone

    def __post_init__(self) -> None:
        if not 0 < self.drift_day < self.days:
            raise ValueError(f"the drift day ({self.drift_day}) must fall inside the loop "
                             f"(1..{self.days - 1})")
        if self.retrain_every_days < 1:
            raise ValueError("retrain_every_days must be at least 1")
        if self.control and not self.drifts:
            raise ValueError("a control runs beside a drifted loop, not beside a run without drift")

    def world_drifts(self) -> list[dict]:
        """The drifts as `world.drift` entries, each at the world's end + drift_day."""
        return [DriftSettings.parse(f"{kind}@end+{self.drift_day}d").model_dump(exclude_none=True)
                for kind in self.drifts]


@dataclass
class LoopLog:
    """What happened during the loop, as it happened."""

    records: int = 0
    outcomes: int = 0
    retrains: list[dict] = field(default_factory=list)
    promotions: list[dict] = field(default_factory=list)
    monitor_seconds: list[float] = field(default_factory=list)


# ---- the world and its settings ------------------------------------------------------------

def loop_settings(settings: Settings, work_dir: Path, plan: LoopPlan, alert_url: str | None,
                  scale: float | None = None, drifts: list[dict] | None = None) -> Settings:
    """The bench's config: its own data dir and MLflow store, the world of the plan (or
    `scale` and `drifts` given), one service worker following the aliases every second, the
    alert webhook at `alert_url`."""
    horizon = settings.training.horizon_days
    world = {"scale": plan.scale if scale is None else scale, "seed": plan.seed,
             "future_days": plan.days + horizon + 1,
             "drift": plan.world_drifts() if drifts is None else drifts}
    return bench_settings(settings, work_dir, work_dir / "data", None, work_dir / "mlflow",
                          {"world": world, "serving": {"workers": 1, "model_check_s": 1},
                           "monitoring": {"alert_webhook": alert_url}})


def build_world(bench: Settings, work_dir: Path) -> float:
    """`leadscore pipeline` on the bench's config (a child process, as a user runs it); seconds."""
    started = time.perf_counter()
    command = [str(LEADSCORE), "-c", str(bench.source), "--data-dir", str(bench.data_dir), "pipeline"]
    with open(work_dir / "pipeline.log", "w") as out:
        result = subprocess.run(command, cwd=bench.root, stdout=out, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        tail = "\n".join((work_dir / "pipeline.log").read_text().splitlines()[-30:])
        raise RuntimeError(f"`leadscore pipeline` failed ({result.returncode}):\n{tail}")
    return time.perf_counter() - started


def pointed_at(bench: Settings) -> AbstractContextManager[None]:
    """Child processes started in this block (feast apply) read the bench's settings and data,
    not the user's that the CLI put in the environment."""
    from leadscore.features.store import scoped_environment

    return scoped_environment({SETTINGS_ENV_VAR: str(bench.source), DATA_DIR_ENV_VAR: str(bench.data_dir)})


@contextmanager
def quiet_console() -> Iterator[None]:
    """The CLI's step spinners silenced (hundreds of monitoring runs would flood the terminal)."""
    from leadscore.cli.common import console

    console.quiet = True
    try:
        yield
    finally:
        console.quiet = False


# ---- one step of the world: records in, outcomes back ---------------------------------------

def send_period(client: httpx.Client, future: dict[str, pd.DataFrame], start: datetime, end: datetime,
                bench: Settings) -> tuple[int, int]:
    """The records of [start, end), one call per source sent together, each opportunities call
    followed by its outcomes (`live.replay.sender`): (records, outcomes) sent."""
    pending = [(None, source, record) for source, record in
               future_records(future, pd.Timestamp(start), pd.Timestamp(end))]
    calls = due_calls(pending, bench.live.max_records)
    if not calls:
        return 0, 0
    send = sender(client, INGEST_KEY, CRM_KEY, bench.outcomes.max_outcomes)
    with ThreadPoolExecutor(len(calls)) as pool:
        answers = list(pool.map(lambda call: send(*call), calls))
    return len(pending), sum(answer.get("outcomes", 0) for answer in answers)


def scored_before_the_clock_moves(bench: Settings) -> None:
    """Wait until the service has updated and re-scored everyone the period's records named: an
    update still due when the loop moves the clock would be stamped (and its scores served) on
    the next day. (The ingest's answer waits for them only at a quiet time: right after a
    retrain rewrote the middle layer, the service reloads it first, and the first day's scores
    landed on the second, after the drift, leaving the days before it unpaired.)"""
    log = EventLog(bench.live_dir / EVENT_LOG, bench.live.busy_timeout_s)
    try:
        wait_until_scored(log)
    finally:
        log.close()


# ---- retraining, promotion, monitoring -------------------------------------------------------

def _serving_challenger(client: httpx.Client) -> str | None:
    return client.get("/model", headers={"X-API-Key": CRM_KEY}).json().get("challenger_version")


def wait_for_shadow(client: httpx.Client, version: str, timeout_s: float = SHADOW_WAIT_S) -> None:
    """Until the service scores in shadow with `version` (it follows the alias by itself)."""
    deadline = time.monotonic() + timeout_s
    while _serving_challenger(client) != version:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the service did not load challenger v{version} in {timeout_s:.0f} s")
        time.sleep(0.5)


def retrain_once(bench: Settings, day: int) -> dict:
    """`leadscore retrain`'s own run, timed; a failed one is recorded, and the loop goes on."""
    from leadscore.cli.retrain import run_retrain
    from leadscore.scoring.registry import CHALLENGER, champion_version
    from leadscore.training.lock import AlreadyRunning

    started = time.perf_counter()
    try:
        run_retrain(bench)
    except (AlreadyRunning, ValueError, FileNotFoundError) as error:
        return {"day": day, "seconds": round(time.perf_counter() - started, 1), "error": str(error)}
    return {"day": day, "seconds": round(time.perf_counter() - started, 1),
            "version": champion_version(bench, alias=CHALLENGER)}


def promote_once(bench: Settings, day: int, apply: bool) -> dict | None:
    """`leadscore promote`'s own decision, applied or not (`--dry-run`); None without a
    challenger to judge."""
    from leadscore.cli.promote import run_promote

    try:
        promotion = run_promote(bench, dry_run=not apply)
    except LookupError:
        return None
    return {"day": day, "challenger": promotion.challenger, "promoted": promotion.promoted,
            "would_promote": promotion.decision.promote,
            "basis": promotion.decision.evidence.basis if promotion.decision.evidence else None,
            "reason": promotion.decision.reason}


def monitor_once(bench: Settings, loop_log: LoopLog) -> None:
    """`leadscore monitor`'s own run at the clock: breaches posted once to the alert webhook."""
    from leadscore.cli.monitor import run_monitor

    started = time.perf_counter()
    with quiet_console():
        run_monitor(bench)
    loop_log.monitor_seconds.append(time.perf_counter() - started)


def weekly(bench: Settings, client: httpx.Client, day: int, plan: LoopPlan, loop_log: LoopLog, say: Say
           ) -> None:
    """Promotion on live evidence, then a retrain whose challenger the service then shadows."""
    decision = promote_once(bench, day, plan.promote)
    if decision is not None:
        loop_log.promotions.append(decision)
        fate = ("promoted" if decision["promoted"] else "would be promoted" if decision["would_promote"]
                else "kept apart")
        say(f"day {day}: challenger v{decision['challenger']} {fate}: {decision['reason']}")
    retrained = retrain_once(bench, day)
    loop_log.retrains.append(retrained)
    say(f"day {day}: retrained in {retrained['seconds']:.0f} s: "
        + (f"challenger v{retrained['version']}" if "version" in retrained else retrained["error"]))
    if retrained.get("version"):
        wait_for_shadow(client, retrained["version"])


# ---- the loop -----------------------------------------------------------------------------

def run_days(bench: Settings, client: httpx.Client, clock: WorldClock, future: dict[str, pd.DataFrame],
             first_day: int, last_day: int, step_days: int, plan: LoopPlan | None, loop_log: LoopLog,
             say: Say) -> None:
    """Days [first_day, last_day) in steps: the clock at the step's end, its records and outcomes
    sent, monitoring; with a plan, the weekly promotion and retrain at the start of their days."""
    end = world_end(bench)
    for day in range(first_day, last_day, step_days):
        if plan is not None and day % plan.retrain_every_days == 0:
            weekly(bench, client, day, plan, loop_log, say)
        start, stop = end + timedelta(days=day), end + timedelta(days=min(day + step_days, last_day))
        clock.place(stop, speed=0)
        records, outcomes = send_period(client, future, start, stop, bench)
        scored_before_the_clock_moves(bench)
        loop_log.records += records
        loop_log.outcomes += outcomes
        monitor_once(bench, loop_log)
        if day % 7 == 0:
            say(f"day {day} ({stop:%Y-%m-%d}): {loop_log.records:,} records and {loop_log.outcomes:,} "
                f"outcomes sent so far, {len(loop_log.monitor_seconds)} monitoring runs")


@contextmanager
def served_world(bench: Settings, work_dir: Path) -> Iterator[tuple[httpx.Client, WorldClock, dict]]:
    """The service up on the bench's world, the clock at the world's end, and its future."""
    future = read_future(bench.future_dir)
    clock = WorldClock(bench.live_dir / CLOCK_FILE, world_end(bench))
    clock.place(world_end(bench), speed=0)
    service = bentoml_server("loop-service", SERVICE_TARGET, bench, bench.data_dir, work_dir, workers=1)
    with service as server, httpx.Client(base_url=server.url, timeout=300) as client:
        yield client, clock, future


def run_loop(bench: Settings, work_dir: Path, plan: LoopPlan, loop_log: LoopLog, say: Say) -> datetime:
    """The loop's days with retraining, then a horizon more to let its scores mature; the clock
    at the end."""
    tail = bench.training.horizon_days + 1
    with served_world(bench, work_dir) as (client, clock, future):
        run_days(bench, client, clock, future, 0, plan.days, 1, plan, loop_log, say)
        say(f"loop over; {tail} more days for its scores to mature")
        run_days(bench, client, clock, future, plan.days, plan.days + tail, TAIL_STEP_DAYS, None, loop_log,
                 say)
    return clock.now()


# ---- the figures ----------------------------------------------------------------------------

def paired_arms(matured: pd.DataFrame, first_champion: str, start: datetime, end: datetime) -> pd.DataFrame:
    """The matured rows of the person-days both arms scored in [start, end), `model_version`
    the arm: `train_once` (the first champion's rows) or `rolling` (every later version's)."""
    from leadscore.monitoring.promotion import paired_cohorts

    window = matured[(matured["at"] >= pd.Timestamp(start)) & (matured["at"] < pd.Timestamp(end))]
    arm = np.where(window["model_version"].astype(str) == first_champion, ARMS[0], ARMS[1])
    return paired_cohorts(window.assign(model_version=arm), *ARMS)


def arms_figures(paired: pd.DataFrame, bins: int, resamples: int = RESAMPLES) -> dict:
    """Train-once against rolling on the person-days both scored (`paired_arms`); `ratio` =
    rolling PR-AUC / train-once PR-AUC, with the 2.5th and 97.5th percentiles of the ratio over
    `resamples` resamples of the people (each with all of their days: promotion's cluster
    bootstrap, monitoring/promotion.py) and the share of them in which rolling is ahead."""
    from leadscore.monitoring.metrics import cohort_metrics
    from leadscore.monitoring.promotion import ahead_share, resampled_pr_auc

    figures = cohort_metrics(paired, bins)
    keys = ("n", "positives", "roc_auc", "pr_auc", "ece")
    out: dict[str, Any] = {name: {key: figures.get(name, {}).get(key) for key in keys} for name in ARMS}
    out["people"] = int(paired["pid"].nunique())
    once, rolling = out["train_once"]["pr_auc"], out["rolling"]["pr_auc"]
    out["ratio"] = rolling / once if once and rolling is not None else None
    drawn = resampled_pr_auc(paired, *ARMS, resamples)
    ratios = (drawn[:, 1] / drawn[:, 0])[np.isfinite(drawn).all(axis=1)]
    out["ratio_interval"] = np.percentile(ratios, [2.5, 97.5]).round(3).tolist() if len(ratios) else None
    out["rolling_ahead_share"] = ahead_share(drawn) if len(ratios) else None
    return out


def drift_rules_ceiling(bench: Settings, paired: pd.DataFrame) -> dict:
    """What the drift's new rules alone change in the ranking of the person-days both arms
    scored after it (benchmarks/ceiling.py `rules_ceiling`): the ratio that a retrain which
    learnt them perfectly would reach over a train-once model that knew the old ones."""
    from leadscore.benchmarks.ceiling import rules_ceiling

    once = paired[paired["model_version"] == ARMS[0]]
    return rules_ceiling(once, bench.middle_db, bench.truth_dir, bench.training.horizon_days)


def arms_against_truth(bench: Settings, paired: pd.DataFrame) -> dict:
    """Both arms ranked against the truth's propensity of the person-days they scored
    (benchmarks/ceiling.py `against_truth`): the comparison without the luck of the outcomes."""
    from leadscore.benchmarks.ceiling import against_truth

    return against_truth(paired, ARMS, bench.middle_db, bench.truth_dir, bench.training.horizon_days)


def breach_kind(key: str) -> str:
    """What a breach is about, without where: `feature_psi`, `score_psi`, `ece`, `roc_auc`, ..."""
    return key.split(":", 1)[0]


def first_days(alerts: list[dict], drift: pd.Timestamp) -> dict[str, float]:
    """Each kind of breach raised in `alerts` (time-ordered) and the first day from the drift it
    was: what a drifted run and its control (`--no-drift`) are compared on."""
    first: dict[str, float] = {}
    for alert in alerts:
        for key in alert["keys"]:
            first.setdefault(breach_kind(key), (alert["at"] - drift) / pd.Timedelta(days=1))
    return first


def detection(received: list[dict], drift_at: datetime) -> dict:
    """Days from the drift to the first alert after it that raises a kind of breach not raised
    before it. A kind raised before the drift is the monitoring's noise on this world (the
    served traffic's feature PSI breaches come and go: a return after `alert_keep_days` clear is
    posted again), so it detects nothing; the first alert of any kind after the drift is given
    beside."""
    alerts = sorted(({"at": pd.Timestamp(hit["body"]["at"]),
                      "keys": [breach["key"] for breach in hit["body"]["breaches"]]} for hit in received),
                    key=lambda alert: alert["at"])
    drift = pd.Timestamp(drift_at)
    before = [alert for alert in alerts if alert["at"] < drift]
    after = [alert for alert in alerts if alert["at"] >= drift]
    noise = {breach_kind(key) for alert in before for key in alert["keys"]}
    new = [{**alert, "keys": [key for key in alert["keys"] if breach_kind(key) not in noise]}
           for alert in after]
    first_new = next((alert for alert in new if alert["keys"]), None)

    def shown(alert: dict | None) -> dict | None:
        return None if alert is None else {"day_from_drift": (alert["at"] - drift) / pd.Timedelta(days=1),
                                           "at": alert["at"].isoformat(), "keys": alert["keys"]}

    first_new_shown = shown(first_new)
    return {"detection_days": None if first_new_shown is None else first_new_shown["day_from_drift"],
            "first_new_kind_after_drift": first_new_shown,
            "first_after_drift": shown(next(iter(after), None)),
            "first_day_of_kind": first_days(after, drift),
            "first_day_of_kind_without_shadow": first_days(
                [{**alert, "keys": [key for key in alert["keys"] if f":{SHADOW}:" not in f"{key}:"]}
                 for alert in after], drift),
            "kinds_before_drift": sorted(noise), "alerts_before_drift": len(before), "posted": len(alerts),
            "posted_by_kind": posted_by_kind(alerts, drift)}


def beyond_control(drifted: dict, control: dict) -> dict:
    """Detection judged against the control (both `detection` of the same drift day): the first
    day a kind of breach is raised after the drift that neither run raised before it and the
    control had not raised by then. What the control raises as soon without any drift (the
    first matured cohorts' ECE, for one, which judge scores served before the drift day) is
    this world's, not the drift's. A shadow model's breaches do not count: the control
    (`--monitor-only`) retrains nothing, so it cannot tell how often they come without a drift."""
    noise = set(drifted["kinds_before_drift"]) | set(control["kinds_before_drift"])
    seen_without = control["first_day_of_kind"]
    days = {kind: day for kind, day in drifted["first_day_of_kind_without_shadow"].items()
            if kind not in noise and seen_without.get(kind, float("inf")) > day}
    first = min(days, key=lambda kind: days[kind], default=None)
    return {"detection_days": None if first is None else days[first], "kind": first, "kinds": days}


def posted_by_kind(alerts: list[dict], drift: pd.Timestamp) -> dict[str, dict[str, int]]:
    """How many breaches of each kind were posted before the drift and after it: in the control
    (`--no-drift`), every one is a false alarm."""
    counts: dict[str, dict[str, int]] = {}
    for alert in alerts:
        side = "before_drift" if alert["at"] < drift else "after_drift"
        for key in alert["keys"]:
            kind = counts.setdefault(breach_kind(key), {"before_drift": 0, "after_drift": 0})
            kind[side] += 1
    return counts


def backtest_figures(bench: Settings) -> dict:
    """The loop's world brought up to the clock by the batch, its lead training set written as
    the flat table config/tables/synthetic_world.yaml reads, and backtested as a table."""
    from leadscore.cli.retrain import run_incremental_batch
    from leadscore.features.build import read_manifest
    from leadscore.features.store import open_store
    from leadscore.training.flat import backtest_table
    from leadscore.training.table import load_spec
    from leadscore.training.train import training_frame

    run_incremental_batch(bench)
    frame = training_frame(bench, open_store(bench), read_manifest(bench.feature_data_dir))
    path = bench.data_dir / "backtest" / "training_set.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    spec = load_spec(bench.config_file("tables/synthetic_world.yaml"), bench)
    result, run_id = backtest_table(spec, bench, bench.training.backtest, bench.training.horizon_days)
    figures = result.as_json()
    return {"table": "config/tables/synthetic_world.yaml", "rows": len(frame),
            "positive_rate": float(frame["label"].mean()), "periods": len(figures["periods"]),
            "pooled": figures["pooled"], "train_once": figures["train_once"], "mlflow_run_id": run_id}


def default_world_retrain_seconds(settings: Settings, work_dir: Path, plan: LoopPlan) -> float:
    """One `leadscore retrain` of a fresh default-scale world (no drift), timed as in the loop."""
    bench = loop_settings(settings, work_dir, plan, None, scale=1.0, drifts=[])
    build_world(bench, work_dir)
    with pointed_at(bench):
        return retrain_once(bench, 0)["seconds"]


def detection_met(figures: dict) -> bool:
    """Detection's goal; judged against the control when one ran beside."""
    judged = figures.get("detection_beyond_control")
    detected = figures["detection_days"] if judged is None else judged["detection_days"]
    return detected is not None and detected <= GOALS["detection_days_max"]


def _met(figures: dict) -> dict:
    """Each goal met or not."""
    after, backtest = figures["after_drift"], figures["backtest"]
    ratio = after["ratio"]
    return {"detection_days": detection_met(figures),
            "after_drift_ratio": ratio is not None and ratio >= GOALS["after_drift_ratio_min"],
            "rolling_ece": after["rolling"]["ece"] is not None
            and after["rolling"]["ece"] <= GOALS["rolling_ece_max"],
            "backtest": None if backtest is None else
            backtest["pooled"]["roc_auc"] > backtest["train_once"]["roc_auc"]}


def _retrain_summary(loop_log: LoopLog, default_world: float | None) -> dict:
    done = [r["seconds"] for r in loop_log.retrains if "version" in r]
    return {"loop_median": statistics.median(done) if done else None, "loop_max": max(done, default=None),
            "retrains": len(loop_log.retrains), "failed": [r for r in loop_log.retrains if "error" in r],
            "default_world": default_world}


def run(settings: Settings, work_dir: Path, plan: LoopPlan, say: Say = log.info) -> dict:
    """The whole benchmark (see the module's docstring): one JSON-ready object."""
    import shutil

    if plan.monitor_only:
        return run_monitor_only(settings, work_dir, plan, say)
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True)
    started, loop_log, receiver = time.perf_counter(), LoopLog(), Receiver()
    with control_beside(settings, plan, work_dir) as control, receiver.running():
        bench = loop_settings(settings, work_dir / "world", plan, receiver.url)
        say(f"building the world (`leadscore pipeline`, scale {plan.scale}, drift "
            f"{', '.join(plan.drifts)} at day {plan.drift_day})")
        seconds = {"world": build_world(bench, work_dir / "world")}
        first_champion = _champion(bench)
        with pointed_at(bench):
            begun = time.perf_counter()
            now = run_loop(bench, work_dir / "world", plan, loop_log, say)
            seconds["loop_and_horizon"] = time.perf_counter() - begun
            end, drift_at = world_end(bench), world_end(bench) + timedelta(days=plan.drift_day)
            loop_end = end + timedelta(days=plan.days)
            matured = matured_scores_at(bench, now)
            paired_after = paired_arms(matured, first_champion, drift_at, loop_end)
            paired_before = paired_arms(matured, first_champion, end, drift_at)
            after = {**arms_figures(paired_after, bench.monitoring.bins),
                     "rules_ceiling": drift_rules_ceiling(bench, paired_after),
                     "against_truth": arms_against_truth(bench, paired_after)}
            before = {**arms_figures(paired_before, bench.monitoring.bins),
                      "against_truth": arms_against_truth(bench, paired_before)}
            begun = time.perf_counter()
            backtest = None
            if plan.backtest:
                say("the drifted world backtested as a flat table")
                backtest = backtest_figures(bench)
            seconds["backtest"] = time.perf_counter() - begun
        default = None
        if plan.default_world:
            say("one retrain of a fresh default-scale world")
            default = default_world_retrain_seconds(settings, work_dir / "default", plan)
    alerts = detection(receiver.received, drift_at)
    figures = {"detection_days": alerts["detection_days"], "after_drift": after, "before_drift": before,
               "backtest": backtest, "retrain_seconds": _retrain_summary(loop_log, default),
               **with_control(control, alerts, work_dir, say)}
    seconds["total"] = time.perf_counter() - started
    return {**figures, "goals": GOALS, "met": _met(figures), "alerts": alerts,
            "promotions": {"decisions": len(loop_log.promotions),
                           "promoted": sum(p["promoted"] for p in loop_log.promotions),
                           "would_promote": [p["day"] for p in loop_log.promotions if p["would_promote"]],
                           "last": loop_log.promotions[-1] if loop_log.promotions else None},
            "parameters": {**asdict(plan), "drifts": [str(DriftSettings(**d)) for d in plan.world_drifts()],
                           "world_end": end.isoformat(), "drift_at": drift_at.isoformat(),
                           "loop_end": loop_end.isoformat(), "judged_at": now.isoformat(),
                           "horizon_days": bench.training.horizon_days, "first_champion": first_champion,
                           "records_sent": loop_log.records, "outcomes_sent": loop_log.outcomes},
            "seconds": {**seconds, "monitor_median": statistics.median(loop_log.monitor_seconds)
                        if loop_log.monitor_seconds else None}}


# ---- the control beside it ----------------------------------------------------------------

def work_dir_of(data_dir: Path, plan: LoopPlan) -> Path:
    """Where a run keeps its world: a control (monitor-only, no drift) apart from the drifted
    run it may run beside."""
    return data_dir / "bench" / ("loop-control" if plan.monitor_only and not plan.drifts else "loop")


def control_command(settings: Settings, plan: LoopPlan) -> list[str]:
    """`leadscore bench loop` as the control of `plan`: its world without the drift, the loop's
    days monitored, no retraining (`--monitor-only`, its own work dir)."""
    config = ["-c", str(settings.source)] if settings.source is not None else []
    return [str(LEADSCORE), *config, "--data-dir", str(settings.data_dir), "bench", "loop", "--json",
            "--no-drift", "--monitor-only", "--no-backtest", "--scale", str(plan.scale),
            "--seed", str(plan.seed), "--days", str(plan.days), "--drift-day", str(plan.drift_day)]


def start_control(settings: Settings, plan: LoopPlan, work_dir: Path) -> subprocess.Popen:
    """The control in a child process (its own environment, MLflow store and service), so that
    it runs beside the drifted loop; its JSON goes to `control.json`, its progress to `control.log`."""
    out, err = open(work_dir / "control.json", "w"), open(work_dir / "control.log", "w")
    with out, err:
        return subprocess.Popen(control_command(settings, plan), cwd=settings.root, stdout=out, stderr=err,
                                preexec_fn=ctrl_c_at_default)  # else stop_control's SIGINT may go unheard


@contextmanager
def control_beside(settings: Settings, plan: LoopPlan, work_dir: Path) -> Iterator[subprocess.Popen | None]:
    """The control started beside the run (None without `plan.control`); stopped when the run
    fails inside the block (`stop_control`), else left to finish (`with_control` waits for it)."""
    control = start_control(settings, plan, work_dir) if plan.control else None
    try:
        yield control
    except BaseException as error:
        if control is not None and control.poll() is None:
            stop_control(control, interrupted=isinstance(error, KeyboardInterrupt))
        raise


def stop_control(control: subprocess.Popen, interrupted: bool, grace_s: float = 60.0) -> None:
    """Stop the control as Ctrl-C does, so that it stops its own service (a session of its own,
    which a kill would leave running); killed if it has not stopped within `grace_s`. After a
    Ctrl-C in the terminal it has had its SIGINT already, and is only waited for."""
    if not interrupted:
        control.send_signal(signal.SIGINT)
    try:
        control.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        control.kill()
        control.wait()


def control_figures(process: subprocess.Popen, work_dir: Path) -> dict:
    """The control's alerts once it is done (its error when it failed)."""
    import json

    if process.wait() != 0:
        tail = "\n".join((work_dir / "control.log").read_text().splitlines()[-20:])
        return {"error": f"the control run failed ({process.returncode}): {tail}"}
    return json.loads((work_dir / "control.json").read_text())


def with_control(control: subprocess.Popen | None, alerts: dict, work_dir: Path, say: Say) -> dict:
    """The control's figures once it is done, and detection judged against it (nothing without
    a control)."""
    if control is None:
        return {}
    say("waiting for the control run")
    figures = {"control": control_figures(control, work_dir)}
    if "alerts" in figures["control"]:
        figures["detection_beyond_control"] = beyond_control(alerts, figures["control"]["alerts"])
    return figures


def run_monitor_only(settings: Settings, work_dir: Path, plan: LoopPlan, say: Say = log.info) -> dict:
    """A monitor-only run (`plan.monitor_only`): the world built, the loop's days sent and
    monitored, no retraining, no horizon after; its alerts judged as a drifted run's are. It is
    what the control runs; on a drifted world (with `plan.control` the control beside) it
    measures detection alone, on a world too large to retrain weekly in the time at hand."""
    import shutil

    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True)
    started, loop_log, receiver = time.perf_counter(), LoopLog(), Receiver()
    with control_beside(settings, plan, work_dir) as control, receiver.running():
        bench = loop_settings(settings, work_dir / "world", plan, receiver.url)
        drifts = f"drift {', '.join(plan.drifts)} at day {plan.drift_day}" if plan.drifts else "no drift"
        say(f"building the monitor-only world (scale {plan.scale}, {drifts})")
        build_world(bench, work_dir / "world")
        with pointed_at(bench), served_world(bench, work_dir / "world") as (client, clock, future):
            run_days(bench, client, clock, future, 0, plan.days, 1, None, loop_log, say)
    drift_at = world_end(bench) + timedelta(days=plan.drift_day)
    alerts = detection(receiver.received, drift_at)
    figures = {"alerts": alerts, **with_control(control, alerts, work_dir, say)}
    if plan.drifts:  # detection alone: its figure and goal, as a whole loop's JSON has them
        figures = {"detection_days": alerts["detection_days"], **figures}
        figures["met"] = {"detection_days": detection_met(figures)}
    return {**figures,
            "parameters": {**asdict(plan), "drift_at": drift_at.isoformat(), "records_sent": loop_log.records,
                           "outcomes_sent": loop_log.outcomes},
            "seconds": {"total": time.perf_counter() - started,
                        "monitor_median": statistics.median(loop_log.monitor_seconds)
                        if loop_log.monitor_seconds else None}}


def _champion(bench: Settings) -> str:
    from leadscore.scoring.registry import champion_version

    version = champion_version(bench)
    if version is None:
        raise RuntimeError("`leadscore pipeline` registered no champion")
    return str(version)
