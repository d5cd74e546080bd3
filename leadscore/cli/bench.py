"""`leadscore bench AREA --json`: benchmark figures against the goals, one JSON object per
area (identity, features, training, serving, segments, marketing, live, loop, scale)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import typer

from leadscore.cli.common import console, step
from leadscore.config import Settings

OnlineStore = Literal["sqlite", "redis"]
app = typer.Typer(help="Benchmarks: `leadscore bench AREA --json` prints one JSON object.",
                  no_args_is_help=True)


def _rounded(value: object) -> object:
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    return round(value, 5) if isinstance(value, float) else value


def _emit(figures: dict, as_json: bool) -> None:
    rounded = _rounded(figures)
    if as_json:
        print(json.dumps(rounded, indent=2))
    else:
        console.print_json(json.dumps(rounded))


@app.command("identity")
def bench_identity(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print only the JSON object.")] = False,
    quick: Annotated[bool, typer.Option(help="Small worlds only (0.1 and 0.02 of the default).")] = False,
) -> None:
    """Identity quality against the hidden truth (default world), speed at 100k and 1M records,
    and the probabilistic matcher on FEBRL (../shared/datasets/febrl)."""
    from leadscore.benchmarks.identity import (
        febrl_benchmark,
        resolve_exact_only,
        speed,
        synthetic_quality,
    )

    settings: Settings = ctx.obj
    work = settings.data_dir / "bench" / "identity"
    scales = {"20k": 0.02, "100k": 0.1} if quick else {"100k": 0.1, "1m": 1.0}
    with step("identity benchmark: generate and resolve worlds"):
        figures: dict[str, Any] = {"speed": speed(settings, work, scales)}
        largest = work / list(scales)[-1]
        quality = synthetic_quality(largest / "middle.duckdb", largest / "truth")
        exact = synthetic_quality(resolve_exact_only(settings.source_file, largest), largest / "truth")
    figures["synthetic"] = {**quality, "exact_only_f1": exact["f1"],
                            "exact_only_precision": exact["precision"],
                            "exact_only_recall": exact["recall"], "world_scale": scales[largest.name]}
    febrl_dir = settings.datasets_dir / "febrl"
    if febrl_dir.is_dir():
        with step("FEBRL3 dedupe and FEBRL4 link (Splink)"):
            figures.update(febrl_benchmark(febrl_dir, settings.config_file("mappings/febrl.yaml"),
                                           settings.config_file("identity.yaml")))
    else:
        console.print(f"[yellow]FEBRL skipped: {febrl_dir} not found[/yellow]")
    _emit(figures, as_json)


@app.command("features")
def bench_features(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print only the JSON object.")] = False,
) -> None:
    """Feature build (current world in full; a week's increment of a 1M-person copy),
    materialisation, and online reads of one PID from SQLite and a real Redis."""
    from leadscore.benchmarks.features import run

    settings: Settings = ctx.obj
    with step("feature benchmark: build, materialise, read online"):
        figures = run(settings, settings.data_dir / "bench" / "features")
    _emit(figures, as_json)


@app.command("training")
def bench_training(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print only the JSON object.")] = False,
) -> None:
    """Rule baseline, logistic regression and LightGBM on the synthetic world, X Education and
    Olist (test window figures, leakage guard), training speed on 1M rows, and the ceiling: the
    synthetic world's hidden truth ranking the same test window."""
    from leadscore.benchmarks.training import run

    settings: Settings = ctx.obj
    with step("training benchmark: three datasets and 1M rows"):
        figures = run(settings, settings.data_dir / "bench" / "training")
    _emit(figures, as_json)


@app.command("serving")
def bench_serving(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print only the JSON object.")] = False,
) -> None:
    """The service under load (`bentoml serve`, side by side with a bare constant endpoint):
    /score latency and throughput, batch scoring with reasons against LightGBM's pred_contrib,
    and portraits."""
    from leadscore.benchmarks.serving import run

    settings: Settings = ctx.obj
    with step("serving benchmark: the service and a reference endpoint under load"):
        figures = run(settings, settings.data_dir / "bench" / "serving")
    _emit(figures, as_json)


@app.command("segments")
def bench_segments(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print only the JSON object.")] = False,
) -> None:
    """Segment counts (the seed example and a ten-condition segment) at the default world and
    at 10x."""
    from leadscore.benchmarks.segments import run_benchmark

    settings: Settings = ctx.obj
    with step("segments benchmark: counts at 1x and 10x"):
        figures = run_benchmark(settings)
    _emit(figures, as_json)


@app.command("marketing")
def bench_marketing(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print only the JSON object.")] = False,
    part: Annotated[list[str] | None, typer.Option(
        "--part", help="personalize, funnel or truth (repeat for several; default: all).")] = None,
) -> None:
    """Marketing's side: GET /personalize for known and anonymous cookies at concurrency 1 (p50,
    p99) and 16 (requests/s) against `leadscore serve` on the current world; the funnel and ROI
    tables' time on the default world and at 10x; campaign won deals and the planted email
    frequency turning point against the hidden truth."""
    from leadscore.benchmarks.marketing import PARTS, run

    settings: Settings = ctx.obj
    parts = _chosen_parts(part, PARTS)
    with step(f"marketing benchmark: {', '.join(parts)}"):
        figures = run(settings, settings.data_dir / "bench" / "marketing", parts)
    _emit(figures, as_json)


def _chosen_parts(chosen: list[str] | None, parts: tuple[str, ...]) -> tuple[str, ...]:
    """The `--part`s asked for (default: all), or a usage error naming the valid ones."""
    unknown = set(chosen or ()) - set(parts)
    if unknown:
        raise typer.BadParameter(f"unknown parts {sorted(unknown)}; choose from {', '.join(parts)}",
                                 param_hint="--part")
    return tuple(chosen or parts)


@app.command("live")
def bench_live(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print only the JSON object.")] = False,
    online_store: Annotated[OnlineStore, typer.Option(
        help="The online store the service writes and reads: sqlite (the embedded default) or "
             "redis (a redis-server started for the run, loaded in full first).")] = "sqlite",
) -> None:
    """The live loop on a day of the world's future, against the service with its workers: ingest
    records/s at concurrency 16 (and the batch on the same records), event to fresh score and to
    the MQL webhook, and consistency with a batch rebuild at the same clock."""
    from leadscore.benchmarks.live import run

    settings: Settings = ctx.obj
    with step(f"live benchmark ({online_store}): ingest, event to score, consistency with the batch"):
        figures = run(settings, settings.data_dir / "bench" / "live", online_store)
    _emit(figures, as_json)


@app.command("scale")
def bench_scale(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print only the JSON object.")] = False,
    x10: Annotated[bool, typer.Option(
        "--x10", help="Also run the pipeline on the world ten times as large (200,000 people, "
                      "about 10M raw rows; long). Without it, its figures are null.")] = False,
    part: Annotated[list[str] | None, typer.Option(
        "--part", help="memory, mlflow_postgres or engines (repeat for several; default: all).")] = None,
) -> None:
    """memory: `leadscore pipeline` as a user runs it, on the settings' world (world.scale: the
    default world unless changed) and with --x10 on ten times that: seconds and the peak memory
    of its whole process tree, in all and per stage. mlflow_postgres: the MLflow registry on a
    tracking server with PostgreSQL beside SQLite. engines: every heavy stage on DuckDB and on
    Spark local[2], seconds and whether they give the same rows (long: on the default world the
    Spark feature build alone takes about half an hour on two cores)."""
    from leadscore.benchmarks.scale import PARTS, run

    settings: Settings = ctx.obj
    parts = _chosen_parts(part, PARTS)
    with step(f"scale benchmark: {', '.join(parts)}"):
        figures = run(settings, settings.data_dir / "bench" / "scale", x10, parts)
    _emit(figures, as_json)


@app.command("loop")
def bench_loop(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print only the JSON object.")] = False,
    scale: Annotated[float, typer.Option(help="Size of the loop's world (1.0: the default world).")] = 0.05,
    days: Annotated[int, typer.Option(help="Days of the loop (then one label horizon more).")] = 180,
    drift_day: Annotated[int, typer.Option(help="The loop's day the world's rules change.")] = 90,
    drift: Annotated[list[str] | None, typer.Option(
        help="A drift at the drift day, KIND[=TARGET][*FACTOR] (repeatable; default: "
             "industry=education and base_rate).")] = None,
    retrain_every: Annotated[int, typer.Option(help="Retrain (and try to promote) every N days.")] = 7,
    seed: Annotated[int, typer.Option(help="Seed of the loop's world.")] = 42,
    no_drift: Annotated[bool, typer.Option(
        "--no-drift", help="A control run: the same world and loop without any drift (the alerts a "
                           "drifted run's detection is judged against).")] = False,
    backtest: Annotated[bool, typer.Option(help="Backtest the drifted world as a flat table after the "
                                                "loop.")] = True,
    default_world: Annotated[bool, typer.Option(
        "--default-world", help="Also time one retrain of a fresh default-scale world (minutes more).")
    ] = False,
    control: Annotated[bool, typer.Option(
        help="Run the control beside, in a child process: the same world without the drift, its days "
             "monitored without retraining; its alerts (false alarms) go in the JSON's `control`.")] = False,
    promote: Annotated[bool, typer.Option(
        help="Apply the promotions decided on live evidence (off: decided and reported only, so the "
             "first champion serves throughout and train-once is judged on every day after the "
             "drift).")] = False,
    monitor_only: Annotated[bool, typer.Option(
        "--monitor-only", help="Only the loop's days, monitored, no retraining and no horizon after: "
                               "detection alone (with --control, against the control beside); with "
                               "--no-drift, what --control runs, under data/bench/loop-control.")] = False,
) -> None:
    """The closed loop over a moving world, a drift half-way, retraining weekly against the real
    service: days from the drift to the first alert, matured PR-AUC and ECE after the drift
    (rolling against train-once), the drifted world's backtest, and retrain seconds."""
    from leadscore.benchmarks.loop import LoopPlan, run, work_dir_of

    settings: Settings = ctx.obj
    try:
        if no_drift and drift:
            raise ValueError("--no-drift and --drift exclude each other")
        plan = LoopPlan(scale=scale, seed=seed, days=days, drift_day=drift_day,
                        retrain_every_days=retrain_every,
                        drifts=() if no_drift else tuple(drift) if drift else LoopPlan.drifts,
                        backtest=backtest, default_world=default_world, control=control,
                        monitor_only=monitor_only, promote=promote)
        plan.world_drifts()
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    then = ("monitored only" if monitor_only else
            f"retraining every {retrain_every} days, then a label horizon")
    with step(f"loop benchmark: {days} days at scale {scale}, drift at day {drift_day}, {then}"):
        figures = run(settings, work_dir_of(settings.data_dir, plan), plan, console.print)
    _emit(figures, as_json)
