"""`leadscore retrain`: the batch's incremental path up to the clock, then the models trained
again and the chosen one registered as `challenger`; with `--every`, on a schedule.

The steps are the pipeline's own (identity resolve with the records ingested live, an
incremental feature build, materialisation), then training/retrain.py with the CRM's outcomes
(live/labels.py) as labels beside the batch's. Identity has no incremental batch: it is
resolved in full, with stable IDs, as `leadscore identity resolve` does it. A file lock under
the data dir (training/lock.py) keeps two retrains from overlapping.
"""

from __future__ import annotations

import logging
import re
import time
from datetime import datetime, timedelta
from typing import Annotated

import typer

from leadscore.cli.common import console, step
from leadscore.cli.features import run_features_apply, run_features_build, run_features_materialize
from leadscore.cli.identity import run_identity
from leadscore.cli.train import print_outcome
from leadscore.config import Settings

log = logging.getLogger(__name__)
UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
POLL_S = 1.0  # how often a scheduled retrain looks at the clock (the world's may run fast)


def parse_every(text: str) -> timedelta:
    """'7d', '12h', '30m', '90s' (or a combination such as '1d12h') as a duration."""
    parts = re.findall(r"(\d+(?:\.\d+)?)([dhms])", text.strip().lower())
    if not parts or "".join(n + u for n, u in parts) != text.strip().lower():
        raise typer.BadParameter(f"{text!r} is not a duration such as 7d, 12h, 30m or 1d12h",
                                 param_hint="--every")
    every = timedelta(**{UNITS[unit]: float(n) for n, unit in parts})
    if every <= timedelta(0):
        raise typer.BadParameter("the interval must be longer than nothing", param_hint="--every")
    return every


def _live_labels(settings: Settings, until: datetime):
    """The CRM's opportunities as known at `until`, in the middle layer's outcome shape; None
    without an event log."""
    from leadscore.live.labels import opportunity_labels
    from leadscore.live.log import EVENT_LOG, EventLog

    if not (settings.live_dir / EVENT_LOG).is_file():
        return None
    log = EventLog(settings.live_dir / EVENT_LOG)
    try:
        return opportunity_labels(log, until)
    finally:
        log.close()


def run_incremental_batch(settings: Settings) -> dict:
    """Identity (in full, stable IDs), features (incremental), online store; the manifest."""
    run_identity(settings)
    manifest = run_features_build(settings, incremental=True)
    if manifest["mode"] == "full":  # definitions or identity changed: the registry follows
        run_features_apply(settings)
    run_features_materialize(settings)
    return manifest


def run_retrain(settings: Settings) -> None:
    """One retrain under the lock; AlreadyRunning if another holds it."""
    from leadscore.clock import open_clock
    from leadscore.features.build import read_manifest
    from leadscore.features.store import open_store
    from leadscore.training.lock import LOCK_FILE, exclusive
    from leadscore.training.retrain import retrain
    from leadscore.training.train import scoring_config

    config = scoring_config(settings)  # a broken rules or tiers file fails before the batch
    with exclusive(settings.data_dir / LOCK_FILE):
        until = open_clock(settings).now()
        console.print(f"retrain up to the clock: {until:%Y-%m-%d %H:%M} UTC")
        run_incremental_batch(settings)
        live = _live_labels(settings, until)
        with step(f"retraining on matured snapshots ({0 if live is None else len(live)} opportunities "
                  "from the CRM's outcomes beside the batch's)"):
            outcome = retrain(settings, open_store(settings), read_manifest(settings.feature_data_dir),
                              until, live, config)
    _print_outcome(settings, outcome)


def _print_outcome(settings: Settings, outcome) -> None:
    print_outcome(settings, outcome)
    console.print(f"{settings.training.registered_model} version {outcome.version}: {outcome.chosen}, "
                  f"chosen on validation, refit on {outcome.fit_window}, calibrated on "
                  f"{outcome.calibration_window}; "
                  "alias challenger (scored in shadow; the champion is unchanged)", soft_wrap=True)


def _one_run(settings: Settings) -> bool:
    """A retrain; its failure reported (True if it registered a challenger)."""
    from leadscore.training.lock import AlreadyRunning

    try:
        run_retrain(settings)
        return True
    except (AlreadyRunning, ValueError, FileNotFoundError) as error:
        console.print(f"[red]error:[/red] {error}", soft_wrap=True)
        return False


def _sleep_until(clock, due: datetime) -> None:
    while clock.now() < due:
        time.sleep(POLL_S)


def _every(settings: Settings, every: timedelta) -> None:
    """Retrain now, then every `every` of the clock, until Ctrl-C."""
    from leadscore.clock import open_clock

    clock = open_clock(settings)
    due = clock.now()
    while True:
        _sleep_until(clock, due)
        try:
            _one_run(settings)
        except Exception:  # noqa: BLE001 - a schedule outlives one failed run; Ctrl-C still stops it
            log.exception("the retrain failed; the schedule goes on")
        due = max(due + every, clock.now())  # a retrain longer than the interval: the next at once
        console.print(f"next retrain at {due:%Y-%m-%d %H:%M} UTC by the clock (Ctrl-C stops)")


def retrain(
    ctx: typer.Context,
    every: Annotated[str | None, typer.Option(
        help="Run in the foreground, retraining now and then at this interval of the clock "
             "(7d, 12h, 1d12h) until Ctrl-C.")] = None,
) -> None:
    """Bring identity and features up to the clock, train the models again on a rolling window
    with the CRM's outcomes, and register the chosen one as `challenger` (scored in shadow)."""
    settings: Settings = ctx.obj
    if every is None:
        if not _one_run(settings):
            raise typer.Exit(1)
        return
    interval = parse_every(every)
    try:
        _every(settings, interval)
    except KeyboardInterrupt:
        console.print("retrain schedule stopped")
