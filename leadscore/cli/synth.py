"""`leadscore synth`: the synthetic B2B world."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from leadscore.cli.common import console, step
from leadscore.config import DriftSettings, Settings

if TYPE_CHECKING:
    import pandas as pd


def run_synth(settings: Settings, seed: int | None, scale: float | None,
              drifts: list[str] | None = None) -> None:
    from leadscore.synth import generate_world, write_world

    world_settings = settings.world.model_copy(update={
        k: v for k, v in {"seed": seed, "scale": scale, "drift": parse_drifts(drifts)}.items()
        if v is not None})
    drifted = "".join(f", drift {drift}" for drift in world_settings.drift)
    with step(f"synthetic world (seed {world_settings.seed}, scale {world_settings.scale}{drifted})"):
        try:
            world = generate_world(world_settings)
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint="--drift / world.drift") from None
        write_world(world, settings.raw_dir, settings.truth_dir, settings.future_dir)
    print_counts("raw sources", settings.raw_dir, world.sources)
    if world_settings.future_days:
        print_counts(f"next {world_settings.future_days} days", settings.future_dir, world.future)


def parse_drifts(texts: list[str] | None) -> list[DriftSettings] | None:
    """`--drift` values as drift settings (they replace world.drift); None when none was given."""
    if not texts:
        return None
    try:
        return [DriftSettings.parse(text) for text in texts]
    except ValueError as error:  # pydantic's ValidationError is a ValueError too
        raise typer.BadParameter(str(error), param_hint="--drift") from None


def print_counts(label: str, folder: Path, tables: dict[str, pd.DataFrame]) -> None:
    console.print(f"  {label} in {folder}: " +
                  ", ".join(f"{name} {len(frame):,}" for name, frame in tables.items()))


def synth(
    ctx: typer.Context,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: world.seed).")] = None,
    scale: Annotated[float | None, typer.Option(
        help="Multiply every size (default: world.scale); 0.1 is a quick small world.")] = None,
    drift: Annotated[list[str] | None, typer.Option(
        help="Change the rules at a moment: KIND[=TARGET][*FACTOR]@WHEN, e.g. "
             "industry=education@end-120d, channel=webinar@2026-06-01, base_rate*2@end+90d "
             "(repeatable; replaces world.drift; see synth/drift.py).")] = None,
) -> None:
    """Generate the synthetic B2B world: raw source systems, their next days (world.future_days)
    and, apart, the ground truth."""
    run_synth(ctx.obj, seed, scale, drift)
