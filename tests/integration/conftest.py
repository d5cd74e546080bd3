"""Integration fixtures: one tiny world built by the real `leadscore pipeline` for the
whole session, a real redis-server, and a real PostgreSQL with an `mlflow server` on it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
import yaml

from leadscore.local_servers import free_port, postgres_bin_dir
from leadscore.local_servers import mlflow_server as local_mlflow_server
from leadscore.local_servers import postgres_server as local_postgres_server
from leadscore.local_servers import redis_server as local_redis_server

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LEADSCORE = str(Path(sys.executable).parent / "leadscore")
Found = TypeVar("Found")


def write_config(root: Path, **overrides: dict) -> Path:
    """A copy of config/ under `root` whose paths point into `root`; `overrides` update
    top-level sections (world=..., features=...), nested sections key by key."""
    shutil.copytree(PROJECT_ROOT / "config", root / "config", dirs_exist_ok=True)
    config_file = root / "config" / "leadscore.yaml"
    config = yaml.safe_load(config_file.read_text())
    project = yaml.safe_load((PROJECT_ROOT / "config" / "leadscore.yaml").read_text())["paths"]
    config["paths"] = {"data_dir": str(root / "data"), "mlflow_dir": str(root / "mlflow"),
                       "feature_repo": str(PROJECT_ROOT / "features"),
                       "datasets_dir": str((PROJECT_ROOT / project["datasets_dir"]).resolve())}
    _update(config, overrides)
    config_file.write_text(yaml.safe_dump(config))
    return config_file


def _update(config: dict, overrides: dict) -> None:
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            _update(config[key], value)
        else:
            config[key] = value


@pytest.fixture(scope="session")
def config_writer():
    """`write_config(root, **overrides)` for tests that need a world of their own."""
    return write_config


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> dict:
    """A copied config pointing at a temporary data dir and MLflow store, and a tiny world."""
    root = tmp_path_factory.mktemp("leadscore")
    config_file = write_config(root, world={"scale": 0.05}, serving={"port": free_port(), "workers": 1})
    result = subprocess.run([LEADSCORE, "-c", str(config_file), "pipeline"],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load(config_file.read_text())
    return {"root": root, "config_file": config_file, "config": config, "output": result.stderr,
            "cli": LEADSCORE}


def _installed(package: str, find: Callable[[], Found | None]) -> Found:
    """What `find` finds, after installing `package` from the distribution's packages when it is
    missing and we may (as root with apt-get, as .ci/run does); else the test fails saying how."""
    found = find()
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", package], check=True, capture_output=True)
        found = find()
    if found is None:
        pytest.fail(f"{package} is not installed and cannot be installed here: "
                    f"run `apt-get install {package}` (as root)")
    return found


@pytest.fixture(scope="session")
def redis_server() -> str:
    """A real redis-server on a free port, without persistence; yields host:port."""
    with local_redis_server(_installed("redis-server", lambda: shutil.which("redis-server"))) as address:
        yield address


@pytest.fixture(scope="session")
def tiny_tables_spark(settings):
    """The process's one Spark session (leadscore/spark.py: every later `spark_session` call,
    Splink's and Feast's included, gets this one), started for the tiny tables of these tests:
    one shuffle partition, and no whole-stage code generation, which compiles a class for every
    query (seconds each on two cores, for milliseconds of work on a few thousand rows; the
    results are the same, interpreted)."""
    from leadscore.spark import spark_session

    options = {**settings.spark.options, "spark.sql.codegen.wholeStage": "false"}
    return spark_session(settings.spark.model_copy(update={"shuffle_partitions": 1, "options": options}))


@pytest.fixture(scope="module")
def postgres_server() -> str:
    """A real PostgreSQL cluster in a temporary folder on a free port (Debian's `postgresql`);
    yields its URI. Module-scoped: stopped once the module that asked for it is done."""
    with local_postgres_server(_installed("postgresql", postgres_bin_dir)) as uri:
        yield uri


@pytest.fixture(scope="module")
def mlflow_server(postgres_server, tmp_path_factory) -> dict:
    """A real `mlflow server` on that PostgreSQL, its artifacts in a temporary folder:
    {"url", "postgres" (the backend store's URI), "artifacts" (the folder)}."""
    artifacts = tmp_path_factory.mktemp("mlflow-artifacts")
    with local_mlflow_server(postgres_server, artifacts) as url:
        yield {"url": url, "postgres": postgres_server, "artifacts": artifacts}


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = _installed("chromium", lambda: shutil.which("chromium"))  # Debian's
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield browser
        browser.close()
