"""`leadscore replay`: the world's next days, sent to the running service as they happen."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

import typer

from leadscore.cli.common import console
from leadscore.config import Settings


def replay(
    ctx: typer.Context,
    days: Annotated[float, typer.Option(help="How many days of the world's future to send.", min=0)] = 1.0,
    speed: Annotated[float, typer.Option(
        help="World seconds per wall second (3600: an hour a second; 86400: a day a second).", min=1)] = 3600,
    url: Annotated[str | None, typer.Option(help="The service (default: serving.host and port).")] = None,
    key: Annotated[str, typer.Option(help="An API key of the ingest role.", envvar="LEADSCORE_INGEST_KEY")
                   ] = "demo-ingest-key",
    outcomes: Annotated[bool, typer.Option(
        help="Post each replayed opportunity back to POST /outcomes, as the CRM would report it "
             "(the labels monitoring and promotion judge scores by).")] = True,
    crm_key: Annotated[str, typer.Option(help="An API key of the crm role, for the outcomes.",
                                         envvar="LEADSCORE_CRM_KEY")] = "demo-crm-key",
) -> None:
    """Send the next DAYS of the synthetic world to `POST /ingest/{source}` of a running
    service (`leadscore serve` in another terminal), moving the world's clock at SPEED, and
    its opportunities back to `POST /outcomes` as the CRM's."""
    from rich.progress import BarColumn, Progress, TextColumn

    from leadscore.clock import WorldClock, open_clock
    from leadscore.live.replay import http_sender
    from leadscore.live.replay import replay as run_replay
    from leadscore.synth.future import read_future

    settings: Settings = ctx.obj
    clock = open_clock(settings)
    if not isinstance(clock, WorldClock):
        console.print("[red]replay moves the demo world's clock: set clock.mode: world[/red]")
        raise typer.Exit(2)
    try:
        future = read_future(settings.future_dir)
    except FileNotFoundError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    base = url or f"http://{settings.serving.host}:{settings.serving.port}"
    send, client = http_sender(base, key, crm_key=crm_key if outcomes else None,
                               max_outcomes=settings.outcomes.max_outcomes)
    try:
        client.get("/readyz").raise_for_status()
    except Exception as error:  # noqa: BLE001 - any failure to reach it says the same
        console.print(f"[red]no service ready at {base} ({error}): start `leadscore serve` first[/red]")
        raise typer.Exit(2) from None
    cursor = settings.live_dir / "replay.json"
    since = (datetime.fromisoformat(json.loads(cursor.read_text())["sent_until"]) if cursor.is_file()
             else None)
    with Progress(TextColumn("[bold]replay[/bold] {task.description}"), BarColumn(),
                  TextColumn("{task.fields[sent]:,} records sent"), console=console) as bar:
        task = bar.add_task("", total=days * 86_400, sent=0)
        start = since or clock.now()
        reached = {"at": start}

        def progress(stats, now) -> None:
            reached["at"] = now
            bar.update(task, completed=(now - start).total_seconds(), sent=stats.sent,
                       description=f"world time {now:%Y-%m-%d %H:%M} UTC")

        try:
            stats = run_replay(future, clock, days, speed, send, settings.live.max_records, since=since,
                               progress=progress)
        except RuntimeError as error:
            console.print(f"[red]{error}[/red]")
            raise typer.Exit(1) from None
        finally:
            client.close()
            cursor.write_text(json.dumps({"sent_until": reached["at"].isoformat()}))
    console.print(f"[green]✓[/green] replayed {stats.world_from:%Y-%m-%d %H:%M} .. "
                  f"{stats.world_to:%Y-%m-%d %H:%M} UTC: {stats.sent:,} records in {stats.calls:,} calls: "
                  f"{stats.accepted:,} accepted, "
                  f"{stats.duplicates:,} duplicates, {stats.quarantined:,} quarantined; "
                  + ", ".join(f"{name} {n:,}" for name, n in sorted(stats.by_source.items()))
                  + (f"; {stats.outcomes:,} opportunities posted back as CRM outcomes" if outcomes else ""))
