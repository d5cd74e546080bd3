"""The scale benchmark's memory figures: the whole process tree is measured, and the
pipeline really runs on a world of its own."""

from __future__ import annotations

import sys

import pytest

from leadscore.benchmarks.scale import X10_SETTINGS, measure_command, memory, world_config
from leadscore.config import load_settings

# a parent that starts a child holding 300 MB for a second, then waits for it
CHILD_HOLDS_300_MB = ("import subprocess, sys; subprocess.run([sys.executable, '-c', "
                      "'import time; block = bytearray(300 * 2**20); time.sleep(1.5)'])")


def test_the_peak_counts_the_memory_of_child_processes():
    measured = measure_command([sys.executable, "-c", CHILD_HOLDS_300_MB], sample_s=0.05)
    assert measured.returncode == 0
    assert measured.peak_bytes > 300 * 2**20  # the parent alone holds some 10 MB
    assert measured.seconds >= 1.5


def test_the_10x_world_gets_the_duckdb_limits_it_needs(settings, tmp_path):
    """The 10x world's identity fails held to the default 1GB (README, "Memory")."""
    large = load_settings(world_config(settings, tmp_path, settings.world.scale * 10, X10_SETTINGS))
    assert large.world.scale == settings.world.scale * 10
    assert large.identity.duckdb_memory_limit == "3GB" and large.duckdb.memory_limit == "6GB"
    assert large.data_dir == tmp_path / "data"
    same = load_settings(world_config(settings, tmp_path / "default", settings.world.scale))
    assert same.identity.duckdb_memory_limit == settings.identity.duckdb_memory_limit
    assert same.duckdb.memory_limit == settings.duckdb.memory_limit


@pytest.mark.integration
def test_memory_of_the_pipeline_on_a_tiny_world(settings, tmp_path):
    tiny = settings.model_copy(update={"world": settings.world.model_copy(update={"scale": 0.02})})
    figures = memory(tiny, tmp_path)
    assert figures["x10_peak_gib"] is None and figures["x10_s"] is None
    assert 0.1 < figures["default_peak_gib"] < 3 and figures["default_s"] > 0
    stages = figures["default_stages"]
    assert any(title.startswith("training") for title in stages) and len(stages) >= 7
    assert max(stage["peak_gib"] for stage in stages.values()) <= figures["default_peak_gib"]
    assert sum(stage["seconds"] for stage in stages.values()) <= figures["default_s"]
    # the world was built in its own folder, with its own MLflow store
    assert (tmp_path / "default" / "data" / "scores" / "score_history.parquet").is_file()
    assert (tmp_path / "default" / "mlflow" / "mlflow.db").is_file()
