"""`leadscore serve`: the BentoML service in a child process (`bentoml serve`), after a
banner with requests worth trying; it says when the service is ready and how long that took.

Ready means BentoML's `/readyz` answers 200: a worker answers only once its service object
is built, that is once the champion and its spec are loaded from MLflow and the online
store is open (serving/service.py), so the first request after it is served at once.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Annotated

import typer

from leadscore.cli.common import console
from leadscore.config import Settings


def sample_pids(settings: Settings, n: int = 3) -> list[tuple[str, str | None, str | None, str | None]]:
    """(PID, owning rep, CID, the company's rep) worth trying: the most engaged people at the
    feature clock's 'now', with their company (the account page's, owned by the company's rep),
    of those with no open opportunity, nor their company: the pages then show a forecast, not
    "In an opportunity since ..." (serving/opportunities.py)."""
    import duckdb

    path = settings.feature_data_dir / "person_interest.parquet" / "*.parquet"
    with duckdb.connect(str(settings.middle_db), read_only=True) as con:
        return con.execute(f"""
            WITH now AS (SELECT pid, events_30d FROM read_parquet('{path}')
                         WHERE event_timestamp = (SELECT max(event_timestamp) FROM read_parquet('{path}')))
            SELECT now.pid, coalesce(c.owner_rep_id, p.owner_rep_id), c.cid, c.owner_rep_id
            FROM now JOIN person p USING (pid) LEFT JOIN company c ON c.cid = p.cid
            WHERE NOT EXISTS (SELECT 1 FROM outcome o WHERE (o.pid = p.pid OR o.cid = p.cid)
                              AND o.closed_at IS NULL AND o.stage NOT IN ('won', 'lost'))
            ORDER BY now.events_30d DESC, now.pid LIMIT {n}""").fetchall()


def _print_banner(settings: Settings, url: str) -> None:
    samples = sample_pids(settings)
    say = functools.partial(console.print, soft_wrap=True, highlight=False, markup=False)
    console.print(f"\n[bold]leadscore is starting at {url}[/bold] (API docs at {url}/api/docs; "
                  f"demo keys and roles in {settings.config_file(settings.serving.access_file)})",
                  soft_wrap=True)
    say("Score the most engaged people right now, as the CRM:")
    for pid, *_ in samples:
        say(_score_call(url, "pid", pid))
    pid, owner, *_ = next((sample for sample in samples if sample[1]), samples[0])
    say(f"Open a portrait as its account's sales rep: {url}/login?next=/portrait/{pid} "
        f"with the key demo-sales-{owner} (another rep's key is refused)")
    # a company with a rep
    account = next(((pid, cid, rep) for pid, _, cid, rep in samples if cid and rep), None)
    if account is not None:
        pid, cid, owner = account
        say(f"Open an account page, the company of {pid}, as its rep: {url}/login?next=/account/{cid} "
            f"with the key demo-sales-{owner}; the CRM scores the account by its CID:")
        say(_score_call(url, "cid", cid))
    say(f"Build a segment as a marketer: {url}/login?next=/segments/page with the key demo-marketer-key")
    if settings.future_dir.is_dir():
        say("Move the world: in another terminal, "
            f"`.venv/bin/leadscore replay --days 1 --speed 3600 --url {url}` sends its next day to "
            f"{url}/ingest/{{source}} (key demo-ingest-key) and its opportunities back to /outcomes "
            "as the CRM's (key demo-crm-key)")


def _score_call(url: str, field: str, value: str) -> str:
    """The curl of a POST /score as the CRM, for a `pid` or a `cid`."""
    return (f"  curl -s -X POST {url}/score -H 'X-API-Key: demo-crm-key' "
            f"-H 'content-type: application/json' -d '{{\"{field}\": \"{value}\"}}'")


def serve(
    ctx: typer.Context,
    port: Annotated[int | None, typer.Option(help="Port (default: serving.port).")] = None,
) -> None:
    """Start the BentoML service (`bentoml serve`) and show how to call it."""
    settings: Settings = ctx.obj
    started = time.perf_counter()
    port = port or settings.serving.port
    url = f"http://{settings.serving.host}:{port}"
    from leadscore.serving import HOME_ENV_VAR, OVERRIDES_ENV_VAR, bentoml_home, bentoml_overrides

    bentoml = Path(sys.executable).parent / "bentoml"
    command = [str(bentoml), "serve", "leadscore.serving.service:LeadScoring",
               "--host", settings.serving.host, "--port", str(port)]
    # The child inherits the quiet terminal's settings through os.environ (cli/logs.py).
    env = {**os.environ, OVERRIDES_ENV_VAR: bentoml_overrides(workers=settings.serving.workers),
           HOME_ENV_VAR: bentoml_home(settings.data_dir, port)}
    child = subprocess.Popen(command, cwd=settings.root, env=env)
    try:
        _print_banner(settings, url)  # while the service starts
    except Exception:  # no world to show (not built yet, say): no service either
        child.terminate()
        child.wait()
        raise
    threading.Thread(target=_report_ready, args=(url, child, started), daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: child.terminate())  # `kill`, systemd: stop the service too
    try:
        raise typer.Exit(child.wait())
    except KeyboardInterrupt:  # Ctrl-C reached the child too; let it shut down cleanly
        raise typer.Exit(child.wait()) from None


def wait_until_ready(url: str, child: subprocess.Popen, poll_s: float = 0.2) -> bool:
    """Poll `url`/readyz until it answers 200 (True) or the child exits (False)."""
    import httpx

    while child.poll() is None:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass  # not listening yet
        time.sleep(poll_s)
    return False


def _report_ready(url: str, child: subprocess.Popen, started: float) -> None:
    if wait_until_ready(url, child):
        console.print(f"[green]✓[/green] [bold]ready[/bold] at {url} "
                      f"[dim]({time.perf_counter() - started:.1f} s after start: champion and online "
                      "store loaded)[/dim]", highlight=False, soft_wrap=True)
