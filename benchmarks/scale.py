"""`leadscore bench scale`: how leadscore holds up as the data grows. One function per key
of the figures, so that each part of the scale-out adds its own beside the others.

- memory: `leadscore pipeline` run as a user runs it, on the default world (the settings'
  world) and, opt-in since it takes long, on the world ten times as large (200,000 people,
  about 10M raw rows), each in a folder of its own with its own MLflow store: seconds, and
  the peak resident memory of the whole process tree (the CLI and what it starts, such as
  `feast apply`), sampled every SAMPLE_S; per stage too, a stage's peak being the highest
  sample between the line the CLI prints when the stage before it is done and its own.
  Goal: the default world's peak <= 3 GiB.
- mlflow_postgres: the registry's round trip (log and register a model, load it by alias) on
  an MLflow tracking server with PostgreSQL, beside the embedded SQLite store
  (benchmarks/mlflow_stores.py).
- engines: the current world's heavy stages on DuckDB and on Spark, seconds and whether
  they give the same rows (benchmarks/engines.py).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import yaml

from leadscore.benchmarks.engines import engines
from leadscore.benchmarks.mlflow_stores import mlflow_postgres
from leadscore.config import DATA_DIR_ENV_VAR, SETTINGS_ENV_VAR, Settings

GOAL_DEFAULT_PEAK_GIB = 3.0
SAMPLE_S = 0.2
X10 = 10
# What the 10x world needs of DuckDB (README, "Memory"): identity's components about 3GB, the
# feature build's interest view 6GB (held to the default 1GB, it spills until the disk is full)
X10_SETTINGS = {"identity": {"duckdb_memory_limit": "3GB"}, "duckdb": {"memory_limit": "6GB"}}
GIB = 2**30
STAGE_DONE = re.compile(r"^✓ (?P<title>.+) \((?P<seconds>[\d.]+) s\)$")  # leadscore.cli.common.step


@dataclass
class Measured:
    """A command's run: seconds, the peak of its process tree, its output with each line's time."""

    seconds: float
    peak_bytes: int
    returncode: int
    lines: list[tuple[float, str]]
    samples: list[tuple[float, int]] = field(repr=False)

    def stages(self) -> dict[str, dict[str, float]]:
        """Each stage the CLI reported done: its seconds and the peak while it ran."""
        stages, since = {}, 0.0
        for at, line in self.lines:
            done = STAGE_DONE.match(line.strip())
            if done:
                peak = max((rss for t, rss in self.samples if since <= t <= at), default=0)
                stages[done["title"]] = {"seconds": float(done["seconds"]), "peak_gib": peak / GIB}
                since = at
        return stages


def tree_rss(process: psutil.Process) -> int:
    """Resident memory of a process and every descendant now; one that ends meanwhile counts 0."""
    total = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            total += member.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def measure_command(argv: list[str], env: dict[str, str] | None = None,
                    sample_s: float = SAMPLE_S) -> Measured:
    """Run `argv` to its end, sampling its process tree's resident memory every `sample_s`."""
    started = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines: list[tuple[float, str]] = []
    output = child.stdout
    assert output is not None  # stdout=PIPE
    reader = threading.Thread(target=lambda: lines.extend(
        (time.perf_counter() - started, line) for line in output), daemon=True)
    reader.start()
    process, samples = psutil.Process(child.pid), []
    while child.poll() is None:
        try:
            samples.append((time.perf_counter() - started, tree_rss(process)))
        except psutil.NoSuchProcess:
            break
        time.sleep(sample_s)
    returncode = child.wait()
    reader.join()
    return Measured(time.perf_counter() - started, max((rss for _, rss in samples), default=0),
                    returncode, lines, samples)


def world_config(settings: Settings, root: Path, scale: float, overrides: dict | None = None) -> Path:
    """A copy of the config folder under `root`: the world `scale` times the base counts,
    data and an embedded MLflow store under `root` (the project's registry stays untouched,
    even when the user's config names a tracking server), and `overrides` ({section: {key:
    value}}) set over the user's settings."""
    config_dir = root / "config"
    shutil.rmtree(config_dir, ignore_errors=True)
    shutil.copytree(settings.config_dir, config_dir)
    raw = yaml.safe_load(settings.source_file.read_text())
    raw["paths"] = {"data_dir": str(root / "data"), "mlflow_dir": str(root / "mlflow"),
                    "feature_repo": str(settings.feature_repo), "datasets_dir": str(settings.datasets_dir)}
    raw["mlflow"] = {"tracking_uri": None}
    raw.setdefault("world", {})["scale"] = scale
    for section, values in (overrides or {}).items():
        raw.setdefault(section, {}).update(values)
    (config_dir / "leadscore.yaml").write_text(yaml.safe_dump(raw))
    return config_dir / "leadscore.yaml"


def pipeline_run(settings: Settings, root: Path, scale: float, overrides: dict | None = None) -> Measured:
    """`leadscore pipeline` on a world `scale` times the base counts, in `root` (emptied
    first), with `overrides` of the settings (see `world_config`)."""
    shutil.rmtree(root, ignore_errors=True)
    config_file = world_config(settings, root, scale, overrides)
    # the CLI that runs this benchmark set these to the user's world: the child reads its file
    env = {key: value for key, value in os.environ.items() if key not in {DATA_DIR_ENV_VAR, SETTINGS_ENV_VAR}}
    cli = str(Path(sys.executable).parent / "leadscore")
    measured = measure_command([cli, "-c", str(config_file), "pipeline"], env=env)
    if measured.returncode != 0:
        tail = "".join(line for _, line in measured.lines[-40:])
        raise RuntimeError(f"leadscore pipeline on the {scale}x world failed:\n{tail}")
    return measured


def memory(settings: Settings, work: Path, x10: bool = False) -> dict:
    """Peak memory and seconds of `leadscore pipeline` on the default world and, with `x10`,
    on the world ten times as large (else null)."""
    default = pipeline_run(settings, work / "default", settings.world.scale)
    large = pipeline_run(settings, work / "x10", settings.world.scale * X10, X10_SETTINGS) if x10 else None
    return {"default_peak_gib": default.peak_bytes / GIB, "default_s": default.seconds,
            "x10_peak_gib": large.peak_bytes / GIB if large else None,
            "x10_s": large.seconds if large else None,
            "goal_default_peak_gib": GOAL_DEFAULT_PEAK_GIB,
            "default_stages": default.stages(), "x10_stages": large.stages() if large else None}


PARTS = ("memory", "mlflow_postgres", "engines")


def run(settings: Settings, work: Path, x10: bool = False, parts: tuple[str, ...] = PARTS) -> dict:
    """The figures of the area's `parts`, one key per function (null for a part not run)."""
    return {"memory": memory(settings, work / "memory", x10) if "memory" in parts else None,
            "mlflow_postgres": mlflow_postgres(settings, work / "mlflow_postgres")
            if "mlflow_postgres" in parts else None,
            "engines": engines(settings, work / "engines") if "engines" in parts else None}
