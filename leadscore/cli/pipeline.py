"""`leadscore pipeline`: every stage from the synthetic world to batch scores, in one process."""

from __future__ import annotations

import shutil
from typing import Annotated

import typer

from leadscore.cli.features import run_features_apply, run_features_build, run_features_materialize
from leadscore.cli.identity import run_identity
from leadscore.cli.score import run_score
from leadscore.cli.synth import run_synth
from leadscore.cli.train import run_train
from leadscore.config import Settings


def pipeline(
    ctx: typer.Context,
    seed: Annotated[int | None, typer.Option(help="Random seed of the world.")] = None,
    scale: Annotated[float | None, typer.Option(help="Size multiplier of the world.")] = None,
) -> None:
    """Run every stage from the synthetic world to a registered champion and batch scores.

    A new world means new people: the Feast registry and online store of the data
    dir are rebuilt from scratch, so no PID of an earlier world stays online, the live
    state (the event log, the score log, the clock) starts again at the world's end, and so
    does monitoring's (its drift references and the breaches it posted).
    """
    settings: Settings = ctx.obj
    shutil.rmtree(settings.data_dir / "feast", ignore_errors=True)
    shutil.rmtree(settings.live_dir, ignore_errors=True)
    shutil.rmtree(settings.monitoring_dir, ignore_errors=True)
    run_synth(settings, seed, scale)
    run_identity(settings)
    run_features_build(settings)
    run_features_apply(settings)
    run_features_materialize(settings)  # in full: the build was
    run_train(settings)
    run_score(settings)
