"""`leadscore synth`: the synthetic B2B world."""

from __future__ import annotations

from typing import Annotated

import typer

from leadscore.cli.common import console, step
from leadscore.config import Settings


def run_synth(settings: Settings, seed: int | None, scale: float | None) -> None:
    from leadscore.synth import generate_world, write_world

    world_settings = settings.world.model_copy(update={
        k: v for k, v in {"seed": seed, "scale": scale}.items() if v is not None})
    with step(f"synthetic world (seed {world_settings.seed}, scale {world_settings.scale})"):
        world = generate_world(world_settings)
        write_world(world, settings.raw_dir, settings.truth_dir)
    counts = {name: len(frame) for name, frame in world.sources.items()}
    console.print(f"  raw sources in {settings.raw_dir}: " +
                  ", ".join(f"{name} {count:,}" for name, count in counts.items()))


def synth(
    ctx: typer.Context,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: world.seed).")] = None,
    scale: Annotated[float | None, typer.Option(
        help="Multiply every size (default: world.scale); 0.1 is a quick small world.")] = None,
) -> None:
    """Generate the synthetic B2B world: raw source systems and, apart, the ground truth."""
    run_synth(ctx.obj, seed, scale)
