"""Throwaway local servers for benchmarks and integration tests: a free port, a redis-server
without persistence, a PostgreSQL cluster in a temporary folder and an `mlflow server` on a
backend store, each stopped (and its files removed) when the block ends; and a child's Ctrl-C
restored for those stopped as a terminal stops them (`ctrl_c_at_default`)."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

POSTGRES_USER = "leadscore"  # the cluster's superuser (trust authentication on 127.0.0.1 only)


def ctrl_c_at_default() -> None:
    """Ctrl-C's signal back to its default, in a child before it runs (`preexec_fn`), for a
    child that is stopped as a terminal's Ctrl-C stops it: a shell without job control starts
    a command sent to the background (`cmd &` in a script, some CI runners) with SIGINT
    ignored, its children inherit that, and Python turns SIGINT into KeyboardInterrupt only
    when it was not ignored at its start."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until(ready: Callable[[], bool], process_alive: Callable[[], bool], seconds: float,
                what: str) -> None:
    """Poll `ready` every 0.2 s; RuntimeError naming `what` once `seconds` passed or the
    process died."""
    deadline = time.time() + seconds
    while not ready():
        if time.time() > deadline or not process_alive():
            raise RuntimeError(f"{what} did not start within {seconds:.0f} s")
        time.sleep(0.2)


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@contextmanager
def redis_server(binary: str, startup_seconds: float = 20) -> Iterator[str]:
    """Run `binary` (redis-server) on a free port; yields host:port once it accepts connections."""
    port = free_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        _wait_until(lambda: _accepts(port), lambda: process.poll() is None, startup_seconds,
                    f"redis-server on port {port}")
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def postgres_bin_dir() -> Path | None:
    """The folder of PostgreSQL's server programs (initdb, pg_ctl, createdb): on PATH, or where
    Debian's packages put them (/usr/lib/postgresql/<version>/bin, the newest, not on PATH);
    None when PostgreSQL is not installed."""
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    found = [path.parent for path in Path("/usr/lib/postgresql").glob("*/bin/initdb")
             if path.parent.parent.name.isdigit()]
    return max(found, key=lambda folder: int(folder.parent.name)) if found else None


def _as_server_user() -> tuple[list[str], str | None]:
    """initdb and postgres refuse to run as root: as root (CI, these machines), they run as the
    `postgres` system user that Debian's package creates (else `nobody`) through runuser.
    Returns the command prefix and that user (none when not root)."""
    if os.geteuid() != 0:
        return [], None
    try:
        user = pwd.getpwnam("postgres").pw_name
    except KeyError:
        user = "nobody"
    return ["runuser", "-u", user, "--"], user


def _run(what: str, command: list[str | Path]) -> None:
    """Run a PostgreSQL program; RuntimeError with its own words when it fails."""
    result = subprocess.run([str(part) for part in command], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed: {(result.stderr or result.stdout).strip()[-2000:]}")


@contextmanager
def postgres_server(bin_dir: Path, database: str = "mlflow", startup_seconds: float = 60) -> Iterator[str]:
    """A throwaway PostgreSQL cluster: `initdb` in a new temporary folder, started by `pg_ctl` on
    a free port of 127.0.0.1 (its unix socket in that folder), with one empty `database`.
    Yields its URI, postgresql://leadscore@127.0.0.1:PORT/DATABASE; stopped and removed after."""
    prefix, user = _as_server_user()
    root = Path(tempfile.mkdtemp(prefix="leadscore-postgres-"))
    data, port = root / "data", free_port()
    try:
        if user:
            shutil.chown(root, user)
        _run("initdb", [*prefix, bin_dir / "initdb", "-D", data, "-U", POSTGRES_USER, "--auth=trust",
              "--encoding=UTF8", "--no-locale", "--no-sync"])
        _run("pg_ctl start", [*prefix, bin_dir / "pg_ctl", "-D", data, "-l", root / "server.log", "-w",
              "-t", str(int(startup_seconds)), "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1",
              "start"])
        try:
            _run("createdb", [bin_dir / "createdb", "-h", "127.0.0.1", "-p", str(port), "-U", POSTGRES_USER,
                              database])
            yield f"postgresql://{POSTGRES_USER}@127.0.0.1:{port}/{database}"
        finally:
            _run("pg_ctl stop", [*prefix, bin_dir / "pg_ctl", "-D", data, "-m", "fast", "-w", "stop"])
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


@contextmanager
def mlflow_server(backend_store_uri: str, artifacts: Path, startup_seconds: float = 300) -> Iterator[str]:
    """`mlflow server` on a free port of 127.0.0.1 over `backend_store_uri` (it creates its
    tables on first start), keeping and serving the artifacts in the folder `artifacts`
    (--artifacts-destination). Yields its http:// URI once /health answers; stopped after."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # one worker: a test or benchmark needs no more (the default is 4 on these 2 cores); no GenAI
    # job runner (a second process, which nothing here uses)
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend_store_uri,
               "--artifacts-destination", str(artifacts), "--host", "127.0.0.1", "--port", str(port),
               "--workers", "1"]
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True)  # its own group: uvicorn is its child
        try:
            try:
                _wait_until(lambda: _healthy(url), lambda: process.poll() is None, startup_seconds,
                            f"mlflow server on port {port}")
            except RuntimeError as error:
                output.seek(0)
                raise RuntimeError(f"{error}: {output.read().decode(errors='replace')[-3000:]}") from None
            yield url
        finally:
            _stop_group(process)


def _stop_group(process: subprocess.Popen, seconds: float = 30) -> None:
    """SIGTERM to the process group of a server started with a session of its own (it and its
    workers); after `seconds`, or once it exited, SIGKILL to whatever of the group is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=seconds)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
