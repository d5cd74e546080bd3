"""`leadscore train`: the three models on the Feast training set or any flat table, the
MLflow registry, rollback."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from leadscore.cli.backtest import (
    AsJson,
    Model,
    PeriodDays,
    PeriodRows,
    Window,
    WindowDays,
    WindowRows,
    backtest_options,
    period_bar,
    show_backtest,
)
from leadscore.cli.common import console, frame_table, step
from leadscore.config import Settings

app = typer.Typer(help="Training: the three models, MLflow registry, rollback. `leadscore train` alone "
                       "trains the lead model on the Feast training set.")


def run_train(settings: Settings) -> None:
    from leadscore.features.build import read_manifest
    from leadscore.features.store import open_store
    from leadscore.training.train import scoring_config, train, training_frame

    try:
        config = scoring_config(settings)
    except (ValueError, FileNotFoundError) as error:
        console.print(f"[red]error:[/red] {error}", soft_wrap=True)
        raise typer.Exit(2) from error
    manifest = read_manifest(settings.feature_data_dir)
    store = open_store(settings)
    with step("training: rule baseline, logistic regression, LightGBM"):
        frame = training_frame(settings, store, manifest)
        outcome = train(settings, store, manifest, config, frame)
    print_outcome(settings, outcome)
    if settings.training.account.enabled:
        run_train_accounts(settings, manifest, frame, outcome.version)


def run_train_accounts(settings: Settings, manifest: dict, lead_frame=None, lead_version: str | None = None
                       ) -> None:
    """The account model (companies), after the lead model, on the same snapshots (and its
    people's, `lead_frame`, scored by the lead model `lead_version` just trained on them, for
    the stacked candidate). A world too small for it (one class in a window: companies are
    fewer than people) leaves the lead model trained and says so."""
    from leadscore.features.store import open_store
    from leadscore.scoring.metrics import OneClass
    from leadscore.training.accounts import train_accounts

    try:
        with step("training the account model") as done:
            outcome = train_accounts(settings, open_store(settings), manifest, lead_frame, lead_version)
            wanted = settings.training.account.stacked_candidate
            done.title = account_step_title(list(outcome.results), wanted)
    except OneClass as error:
        console.print(f"[yellow]the account model was not trained[/yellow] (the lead model was): {error} "
                      "To skip it, set training.account.enabled: false.", soft_wrap=True)
        return
    print_outcome(settings, outcome)


CANDIDATE_WORDS = {"logistic_regression": "logistic regression", "lightgbm": "LightGBM",
                   "stacked": "stacked on its people"}


def account_step_title(trained: list[str], stacked_wanted: bool) -> str:
    """What the account step trained, in words: the candidates it did train (the stacked one is
    dropped without a lead model to read, or with one that may have seen the windows' labels:
    the warning above says which)."""
    names = ", ".join(CANDIDATE_WORDS.get(name, name) for name in trained)
    missing = stacked_wanted and "stacked" not in trained
    dropped = " (no stacked candidate: see the warning above)" if missing else ""
    return f"training the account model: {names}{dropped}"


def print_outcome(settings: Settings, outcome) -> None:
    """What the guard left out, then the candidates' test-window figures."""
    for flag in outcome.leakage.excluded:
        console.print(f"  [yellow]leakage guard excluded {flag.column}[/yellow]: {flag.reason}",
                      soft_wrap=True)
    table = outcome.table
    table.index.name = "model"
    console.print(frame_table(f"test window metrics (MLflow: {settings.tracking_uri})", table),
                  soft_wrap=True)


@app.callback(invoke_without_command=True)
def train(ctx: typer.Context) -> None:
    """Train and compare the three models on the Feast training set; register the best."""
    if ctx.invoked_subcommand is None:
        run_train(ctx.obj)


@app.command("table")
def train_table(
    ctx: typer.Context,
    spec: Annotated[Path, typer.Argument(help="YAML describing the table (see config/tables/).")],
    backtest: Annotated[bool, typer.Option(
        "--backtest", help="Rolling-origin backtest instead (needs the spec's time column): refit "
                           "every period on the rows before it, beside a model fitted once.")] = False,
    model: Model = None,
    period_days: PeriodDays = None,
    period_rows: PeriodRows = None,
    window: Window = None,
    window_days: WindowDays = None,
    window_rows: WindowRows = None,
    gap_days: Annotated[int, typer.Option(
        help="--backtest: a row's label is known this many days after its time; rows that recent "
             "stay out of the next period's training.", min=0)] = 0,
    as_json: AsJson = False,
) -> None:
    """Train the same three models on any flat table (one row per lead), logged to MLflow; or,
    with --backtest, evaluate one of them period after period."""
    from leadscore.training.table import load_spec, table_frame

    settings: Settings = ctx.obj
    options = backtest_options(settings, model=model, period_days=period_days, period_rows=period_rows,
                               window=window, window_days=window_days, window_rows=window_rows)
    try:
        table_spec = load_spec(spec, settings)
        with step(f"reading {table_spec.name}"):  # every check of the spec and the table, before
            table = table_frame(table_spec, settings)  # the models' libraries load (seconds)
        from leadscore.training.flat import backtest_table
        from leadscore.training.flat import train_table as run

        if backtest:
            with period_bar(f"backtest on {table_spec.name}") as advance:
                result, run_id = backtest_table(table_spec, settings, options, gap_days, advance, table)
        else:
            with step(f"training on {table_spec.name}: rule baseline, logistic regression, LightGBM"):
                outcome = run(table_spec, settings, table)
    except (ValueError, FileNotFoundError) as error:
        console.print(f"[red]error:[/red] {error}", soft_wrap=True)
        raise typer.Exit(2) from error
    if backtest:
        show_backtest(result, run_id, settings, as_json)
    else:
        print_outcome(settings, outcome)


@app.command("rollback")
def train_rollback(
    ctx: typer.Context,
    version: Annotated[str, typer.Argument(help="The registered version to make champion again.")],
) -> None:
    """Put an earlier version of the lead model back as champion (a running service picks it up
    within serving.model_check_s seconds)."""
    from leadscore.training.register import rollback

    settings: Settings = ctx.obj
    try:
        previous = rollback(settings, version)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="VERSION") from error
    console.print(f"{settings.training.registered_model}: champion is version {version} "
                  f"(was {previous or 'none'})")
