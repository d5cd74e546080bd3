"""Integration fixtures: one tiny world built by the real `leadscore pipeline` for the
whole session, and a real redis-server."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from leadscore.local_servers import free_port
from leadscore.local_servers import redis_server as local_redis_server

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LEADSCORE = str(Path(sys.executable).parent / "leadscore")


def write_config(root: Path, **overrides: dict) -> Path:
    """A copy of config/ under `root` whose paths point into `root`; `overrides` update
    top-level sections (world=..., features=...)."""
    shutil.copytree(PROJECT_ROOT / "config", root / "config", dirs_exist_ok=True)
    config_file = root / "config" / "leadscore.yaml"
    config = yaml.safe_load(config_file.read_text())
    project = yaml.safe_load((PROJECT_ROOT / "config" / "leadscore.yaml").read_text())["paths"]
    config["paths"] = {"data_dir": str(root / "data"), "mlflow_dir": str(root / "mlflow"),
                       "feature_repo": str(PROJECT_ROOT / "features"),
                       "datasets_dir": str((PROJECT_ROOT / project["datasets_dir"]).resolve())}
    for section, values in overrides.items():
        config[section].update(values)
    config_file.write_text(yaml.safe_dump(config))
    return config_file


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


def _redis_server_binary() -> str:
    """redis-server, installed from the distribution's packages if missing and we may."""
    found = shutil.which("redis-server")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "redis-server"], check=True,
                       capture_output=True)
        found = shutil.which("redis-server")
    if found is None:
        pytest.fail("redis-server is not installed and cannot be installed here: "
                    "run `apt-get install redis-server` (as root)")
    return found


@pytest.fixture(scope="session")
def redis_server() -> str:
    """A real redis-server on a free port, without persistence; yields host:port."""
    with local_redis_server(_redis_server_binary()) as address:
        yield address


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        yield browser
        browser.close()


def _chromium() -> str:
    """Debian's chromium, installed when missing and we may (as .ci/run does)."""
    import os
    import shutil

    found = shutil.which("chromium")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, capture_output=True)
        found = shutil.which("chromium")
    if found is None:
        pytest.fail("chromium is not installed and cannot be installed here: apt-get install chromium")
    return found
