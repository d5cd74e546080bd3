"""`leadscore serve`: the BentoML service in a child process (`bentoml serve`), after a
banner with requests worth trying."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from leadscore.cli.common import console
from leadscore.config import Settings


def sample_pids(settings: Settings, n: int = 3) -> list[tuple[str, str | None]]:
    """(PID, owning rep) worth trying: the most engaged people at the feature clock's 'now'."""
    import duckdb

    path = settings.feature_data_dir / "person_interest.parquet" / "*.parquet"
    with duckdb.connect(str(settings.middle_db), read_only=True) as con:
        return con.execute(f"""
            WITH now AS (SELECT pid, events_30d FROM read_parquet('{path}')
                         WHERE event_timestamp = (SELECT max(event_timestamp) FROM read_parquet('{path}')))
            SELECT now.pid, coalesce(c.owner_rep_id, p.owner_rep_id)
            FROM now JOIN person p USING (pid) LEFT JOIN company c ON c.cid = p.cid
            ORDER BY now.events_30d DESC, now.pid LIMIT {n}""").fetchall()


def _print_banner(settings: Settings, url: str) -> None:
    samples = sample_pids(settings)
    say = functools.partial(console.print, soft_wrap=True, highlight=False, markup=False)
    console.print(f"\n[bold]leadscore is starting at {url}[/bold] (API docs at {url}/api/docs; "
                  f"demo keys and roles in {settings.config_file(settings.serving.access_file)})",
                  soft_wrap=True)
    say("Score the most engaged people right now, as the CRM:")
    for pid, _ in samples:
        say(f"  curl -s -X POST {url}/score -H 'X-API-Key: demo-crm-key' "
            f"-H 'content-type: application/json' -d '{{\"pid\": \"{pid}\"}}'")
    pid, owner = next((sample for sample in samples if sample[1]), samples[0])
    say(f"Open a portrait as its account's sales rep: {url}/login?next=/portrait/{pid} "
        f"with the key demo-sales-{owner} (another rep's key is refused)")
    say(f"Build a segment as a marketer: {url}/login?next=/segments/page with the key demo-marketer-key")


def serve(
    ctx: typer.Context,
    port: Annotated[int | None, typer.Option(help="Port (default: serving.port).")] = None,
) -> None:
    """Start the BentoML service (`bentoml serve`) and show how to call it."""
    settings: Settings = ctx.obj
    port = port or settings.serving.port
    _print_banner(settings, f"http://{settings.serving.host}:{port}")
    from leadscore.serving import OVERRIDES_ENV_VAR, bentoml_overrides

    bentoml = Path(sys.executable).parent / "bentoml"
    command = [str(bentoml), "serve", "leadscore.serving.service:LeadScoring",
               "--host", settings.serving.host, "--port", str(port)]
    # The child inherits the quiet terminal's settings through os.environ (cli/logs.py).
    env = {**os.environ, OVERRIDES_ENV_VAR: bentoml_overrides(workers=settings.serving.workers)}
    raise typer.Exit(subprocess.call(command, cwd=settings.root, env=env))
