"""The configs benchmarks write for their own worlds: never the user's MLflow server when they
train or move aliases."""

from __future__ import annotations

import shutil

import yaml

from leadscore.benchmarks.live import bench_settings
from leadscore.benchmarks.scale import world_config
from leadscore.config import load_settings

SERVER = "http://mlflow.internal:5000"


def _user_on_a_server(tmp_path, settings):
    """The shipped config copied, naming a tracking server as a team's would."""
    shutil.copytree(settings.config_dir, tmp_path / "user" / "config")
    config_file = tmp_path / "user" / "config" / "leadscore.yaml"
    raw = yaml.safe_load(config_file.read_text())
    raw["mlflow"]["tracking_uri"] = SERVER
    config_file.write_text(yaml.safe_dump(raw))
    return load_settings(config_file)


def test_a_scale_world_trains_on_its_own_embedded_store_beside_a_server(tmp_path, settings):
    user = _user_on_a_server(tmp_path, settings)
    assert user.tracking_uri == SERVER
    world = load_settings(world_config(user, tmp_path / "bench", 0.05))
    assert world.tracking_uri == f"sqlite:///{tmp_path / 'bench' / 'mlflow' / 'mlflow.db'}"
    assert world.world.scale == 0.05


def test_a_loop_trains_on_its_own_store_and_a_live_bench_reads_the_users(tmp_path, settings):
    user = _user_on_a_server(tmp_path, settings)
    work = tmp_path / "loop"
    loop = bench_settings(user, work, work / "data", None, work / "mlflow")
    assert loop.tracking_uri == f"sqlite:///{tmp_path / 'loop' / 'mlflow' / 'mlflow.db'}"
    live = bench_settings(user, tmp_path / "live", tmp_path / "live" / "data", "http://127.0.0.1:9/hook")
    assert live.tracking_uri == SERVER  # serves the user's champion, moves nothing
