"""The `leadscore` command: one subcommand per stage, in pipeline order.

    leadscore synth                 generate the synthetic B2B world (raw sources + truth)
    leadscore identity resolve      raw sources -> One ID middle layer (DuckDB)
    leadscore identity explain A B  why two raw records are (not) one person
    leadscore identity match MAP T  any person table (or two) through the probabilistic matcher
    leadscore features build        middle layer -> feature views and tags (Parquet)
    leadscore features apply        `feast apply` on the feature repo
    leadscore features materialize  offline -> online store (SQLite or Redis)
    leadscore train                 rule baseline, logistic regression, LightGBM -> MLflow
    leadscore train table SPEC      the same on any flat table described by a YAML
    leadscore train table SPEC --backtest  rolling-origin backtest on a table with a time column
    leadscore train rollback V      make an earlier registered version champion again
    leadscore retrain [--every 7d]  identity, features and training up to the clock -> challenger
    leadscore promote               the challenger made champion if it wins on live evidence
    leadscore backtest              rolling-origin backtest of the lead model, beside train-once
    leadscore score                 batch scores of everyone (and their history) with the champion
    leadscore serve                 the BentoML service: scores, portraits, segments
    leadscore pipeline              everything from synth to batch scores, in one process
    leadscore replay                the world's next days, sent to the running service's ingest API
    leadscore monitor               matured performance, drift, operations and alerts at the clock
    leadscore segments export ID    a saved segment's members as CSV (--within-frequency-cap)
    leadscore marketing funnel|roi|plan|lifecycle|tags  the funnel, campaign ROI and attribution,
                                    bottom-up planning, lifecycle stages, UTM demand tags
    leadscore marketing frequency   email rates by sends a month, turning points, caps per segment
    leadscore bench AREA --json     benchmark figures against the goals (identity, features,
                                    training, serving, segments, live, loop)

Each stage's commands are a module of this package (synth, identity, features, train,
backtest, score, serve, pipeline, replay, monitor, retrain, promote, segments, marketing,
bench); common.py holds the console and the step spinner, logs.py the quiet terminal. Heavy
libraries are imported inside the commands, so `leadscore --help` is quick.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from leadscore.cli import (
    backtest,
    bench,
    features,
    identity,
    marketing,
    monitor,
    pipeline,
    promote,
    replay,
    retrain,
    score,
    segments,
    serve,
    synth,
    train,
)
from leadscore.cli.common import console
from leadscore.cli.logs import configure_logging
from leadscore.config import DATA_DIR_ENV_VAR, SETTINGS_ENV_VAR, load_settings

app = typer.Typer(help="leadscore: B2B lead scoring with One ID, Feast, MLflow and BentoML.",
                  no_args_is_help=True, pretty_exceptions_show_locals=False)


@app.callback()
def main(
    ctx: typer.Context,
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", help="Settings file (default: $LEADSCORE_CONFIG or config/leadscore.yaml).",
        exists=True, dir_okay=False)] = None,
    data_dir: Annotated[Path | None, typer.Option(
        help="Where build output goes (default: paths.data_dir of the settings).")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    """Load the settings once; every subcommand receives them."""
    configure_logging(console, verbose)
    try:
        settings = load_settings(config)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--config") from None
    if data_dir is not None:
        settings = settings.with_data_dir(data_dir.resolve(), settings.mlflow_dir)
    ctx.obj = settings
    # Child processes (feast apply, bentoml serve) read the same settings and data.
    os.environ[SETTINGS_ENV_VAR] = str(settings.source)
    os.environ[DATA_DIR_ENV_VAR] = str(settings.data_dir)


# The single commands, then the stage groups: the order of `leadscore --help`.
app.command()(synth.synth)
app.command()(score.score)
app.command()(pipeline.pipeline)
app.command()(serve.serve)
app.command()(replay.replay)
app.command()(monitor.monitor)
app.command()(retrain.retrain)
app.command()(promote.promote)
app.command()(backtest.backtest)
app.add_typer(identity.app, name="identity")
app.add_typer(features.app, name="features")
app.add_typer(train.app, name="train")
app.add_typer(bench.app, name="bench")
app.add_typer(marketing.app, name="marketing")
app.add_typer(segments.app, name="segments")
