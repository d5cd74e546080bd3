"""The servers of `leadscore bench serving`: `bentoml serve TARGET` as a child process on a
free port, in a session of its own, ready once /readyz answers, and stopped (its workers
too) when the block ends.

The server reads the settings and data the benchmark gives it (through the same
environment variables as `leadscore serve`) and BentoML's configuration overrides:
its worker processes, and no per-request access log.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from leadscore.config import DATA_DIR_ENV_VAR, SETTINGS_ENV_VAR, Settings
from leadscore.local_servers import free_port
from leadscore.serving import HOME_ENV_VAR, OVERRIDES_ENV_VAR, bentoml_home, bentoml_overrides

STARTUP_S = 300.0


def _children(pid: int) -> list[int]:
    """PIDs whose parent is `pid` (BentoML's workers run in sessions of their own)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover
        return True
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen
    log: Path
    workers: list[int] = field(default_factory=list)

    @property
    def pids(self) -> list[int]:
        return [self.process.pid, *self.workers]


# BentoML's line of a worker whose service is up: "[entry_service:<name>:<worker>] Service <name> initialized"
_INITIALISED = re.compile(r"\[entry_service:[^\]]*:(\d+)\] Service \S+ initialized")


def _wait_ready(server: Server, timeout_s: float) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {server.process.returncode} before it was "
                               f"ready; last log lines:\n{_tail(server.log)}")
        try:
            with urllib.request.urlopen(f"{server.url}/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{server.name} was not ready in {timeout_s:.0f} s; last log lines:\n"
                       f"{_tail(server.log)}")


def _wait_workers(server: Server, workers: int, timeout_s: float) -> set[str]:
    """Until each of the `workers` worker processes has logged its service initialised: /readyz
    answers once one has, and a benchmark started then ran beside the others' start (the
    live benchmark measured a quarter fewer records a second). Returns the workers' numbers."""
    deadline = time.time() + timeout_s
    while len(started := set(_INITIALISED.findall(server.log.read_text(errors="replace")))) < workers:
        if server.process.poll() is not None or time.time() > deadline:
            raise RuntimeError(f"{server.name}: not all of its {workers} workers started in time; "
                               f"last log lines:\n{_tail(server.log)}")
        time.sleep(0.1)
    return started


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _stop(server: Server) -> None:
    """SIGTERM to the server's process group (BentoML stops its workers), then SIGKILL what is left."""
    process = server.process
    workers = set(server.workers) | set(_children(process.pid))
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    deadline = time.time() + 10
    while any(_alive(pid) for pid in workers) and time.time() < deadline:
        time.sleep(0.2)
    for pid in workers:
        if _alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _environment(settings: Settings, data_dir: Path, workers: int | None, port: int) -> dict[str, str]:
    """This process's environment, with the settings, the data, BentoML's overrides and a
    BentoML home of the service's own (`bentoml_home`)."""
    return {**os.environ, SETTINGS_ENV_VAR: str(settings.source), DATA_DIR_ENV_VAR: str(data_dir),
            OVERRIDES_ENV_VAR: bentoml_overrides(workers=workers, access_log=False),
            HOME_ENV_VAR: bentoml_home(data_dir, port), "PYTHONUNBUFFERED": "1"}


@contextmanager
def bentoml_server(name: str, target: str, settings: Settings, data_dir: Path, work_dir: Path,
                   startup_s: float = STARTUP_S, workers: int | None = None) -> Iterator[Server]:
    """`bentoml serve target` on a free port in a new session; stopped when the block ends, always."""
    port = free_port()
    bentoml = Path(sys.executable).parent / "bentoml"
    log = work_dir / f"{name}.log"
    command = [str(bentoml), "serve", target, "--host", "127.0.0.1", "--port", str(port)]
    with open(log, "w") as out:
        process = subprocess.Popen(command, cwd=settings.root,
                                   env=_environment(settings, data_dir, workers, port), stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    server = Server(name, f"http://127.0.0.1:{port}", process, log)
    try:
        deadline = time.time() + startup_s
        _wait_ready(server, startup_s)
        _wait_workers(server, workers or settings.serving.workers, deadline - time.time())
        server.workers = _children(process.pid)
        yield server
    finally:
        _stop(server)
