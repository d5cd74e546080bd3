"""`leadscore segments ...`: saved segments from the terminal (the API's, segments/api.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from leadscore.cli.common import console, step
from leadscore.config import Settings

app = typer.Typer(help="Saved segments: export.", no_args_is_help=True)


@app.command()
def export(
    ctx: typer.Context,
    segment: Annotated[str, typer.Argument(help="A saved segment's id or name.")],
    out: Annotated[Path, typer.Option(help="The CSV file to write.")],
    within_frequency_cap: Annotated[bool, typer.Option(
        help="Leave out the members already at their contact frequency cap (`leadscore marketing "
             "frequency`).")] = False,
) -> None:
    """Every member of a saved segment as CSV, email and phone masked, as GET /segments/{id}/export."""
    from leadscore.segments.engine import SegmentEngine

    settings: Settings = ctx.obj
    with step("loading the segments' world"):
        engine = SegmentEngine(settings)
    named = engine.store.named(segment)
    try:
        record = engine.saved(named["id"] if named else segment)
    except KeyError:
        console.print(f"[red]no saved segment {segment!r}[/red]: saved are "
                      + ", ".join(f"{s['id']} ({s['name']})" for s in engine.store.list()))
        raise typer.Exit(2) from None
    leave_out = engine.over_frequency_cap(record["segment"]) if within_frequency_cap else set()
    out.write_text("".join(engine.export_csv(record["segment"], leave_out)))
    left = f", {len(leave_out):,} left out at their frequency cap" if within_frequency_cap else ""
    console.print(f"wrote {out}{left}")
