"""`leadscore backtest`: the lead model refitted period after period on what came before
(rolling origin), beside the model fitted once; and the options and output that
`leadscore train table SPEC --backtest` shares."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError

from leadscore.cli.common import console, frame_table
from leadscore.config import BacktestSettings, Settings, validation_problems

if TYPE_CHECKING:
    from leadscore.training.backtest import Backtest

Model = Annotated[str | None, typer.Option(
    help="lightgbm, logistic_regression or rule_baseline (default: training.backtest.model).")]
PeriodDays = Annotated[int | None, typer.Option(
    help="Refit every this many days (default: training.backtest.period_days).")]
PeriodRows = Annotated[int | None, typer.Option(help="Refit every this many rows instead of days.")]
Window = Annotated[str | None, typer.Option(
    help="expanding (every earlier row) or sliding (the latest --window-days or --window-rows).")]
WindowDays = Annotated[int | None, typer.Option(help="Sliding window: train on this many days.")]
WindowRows = Annotated[int | None, typer.Option(help="Sliding window: train on this many rows.")]
# the periods table's columns, short enough for a terminal
SHORT = {"train_rows": "train", "test_rows": "rows", "positives": "pos",
         "rolling_roc_auc": "rolling ROC", "rolling_pr_auc": "rolling PR", "rolling_ece": "rolling ECE",
         "train_once_roc_auc": "once ROC", "train_once_pr_auc": "once PR", "train_once_ece": "once ECE"}
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON object: pooled, train_once, periods.")]


def backtest_options(settings: Settings, **overrides: object) -> BacktestSettings:
    """training.backtest with the options given on the command line; a bad one is a usage error."""
    given = {key: value for key, value in overrides.items() if value is not None}
    if "period_days" in given and "period_rows" not in given:
        given["period_rows"] = None  # days asked for: not the rows of the config
    try:
        return BacktestSettings(**{**settings.training.backtest.model_dump(), **given})
    except ValidationError as error:
        raise typer.BadParameter(validation_problems(error)) from None


@contextmanager
def period_bar(title: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar over the backtest's periods (each a refit)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn(f"[bold]{title}[/bold]"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("periods"), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield advance


def show_backtest(result: Backtest, run_id: str, settings: Settings, as_json: bool) -> None:
    """The JSON object on stdout, or the periods and the pooled figures as tables."""
    import pandas as pd

    from leadscore.training.backtest import periods_table

    if as_json:
        print(json.dumps({**result.as_json(), "mlflow_run_id": run_id}, indent=2))
        return
    periods = periods_table(result).set_index("start").round(3)
    periods.columns = [SHORT.get(column, column) for column in periods.columns]
    console.print(frame_table(f"{result.model}, {result.window} window: each period", periods),
                  soft_wrap=True)
    pooled = pd.DataFrame({"rolling (refit each period)": result.pooled,
                           f"train once ({result.train_once_rows:,} rows)": result.train_once}).T
    console.print(frame_table(f"pooled over {len(result.periods)} periods (MLflow run {run_id}, "
                              f"{settings.tracking_uri})", pooled.round(4)), soft_wrap=True)


def backtest(
    ctx: typer.Context,
    model: Model = None,
    period_days: PeriodDays = None,
    period_rows: PeriodRows = None,
    window: Window = None,
    window_days: WindowDays = None,
    window_rows: WindowRows = None,
    as_json: AsJson = False,
    export: Annotated[Path | None, typer.Option(
        help="Also write the training set (one row per person and snapshot) as Parquet: a flat "
             "table for `leadscore train table` (config/tables/synthetic_world.yaml reads "
             "data/backtest/training_set.parquet).")] = None,
) -> None:
    """Rolling-origin backtest of the lead model on the Feast training set: refit before each
    period on the snapshots a label horizon before it, score the period; beside the model fitted
    once. Per-period and pooled ROC-AUC, PR-AUC and ECE, logged to MLflow."""
    from leadscore.features.build import read_manifest
    from leadscore.features.store import open_store
    from leadscore.training.train import backtest_leads

    settings: Settings = ctx.obj
    options = backtest_options(settings, model=model, period_days=period_days, period_rows=period_rows,
                               window=window, window_days=window_days, window_rows=window_rows)
    try:
        manifest = read_manifest(settings.feature_data_dir)
        with period_bar("backtest of the lead model") as advance:
            result, run_id, frame = backtest_leads(settings, open_store(settings), manifest, options, advance)
    except (ValueError, FileNotFoundError) as error:
        console.print(f"[red]error:[/red] {error}", soft_wrap=True)
        raise typer.Exit(2) from error
    if export is not None:
        export.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(export, index=False)
        console.print(f"training set ({len(frame):,} rows) written to {export}")
    show_backtest(result, run_id, settings, as_json)
