"""Settings: a typo in config/leadscore.yaml is an error that names it."""

import pytest
import yaml

from leadscore.config import DEFAULT_SETTINGS_FILE, load_settings


def test_the_shipped_settings_load(settings):
    assert settings.training.primary_metric == "pr_auc"


@pytest.mark.parametrize(("section", "key"), [("training", "horizon_dayz"), ("features", "windows")])
def test_an_unknown_key_is_reported_with_its_place(tmp_path, section, key):
    config = yaml.safe_load(DEFAULT_SETTINGS_FILE.read_text())
    config[section][key] = 1
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "leadscore.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ValueError, match=f"{section}.{key}: Extra inputs are not permitted"):
        load_settings(tmp_path / "config" / "leadscore.yaml")


def _with_tracking_uri(tmp_path, uri):
    config = yaml.safe_load(DEFAULT_SETTINGS_FILE.read_text())
    config["mlflow"]["tracking_uri"] = uri
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "leadscore.yaml").write_text(yaml.safe_dump(config))
    return load_settings(tmp_path / "config" / "leadscore.yaml")


def test_mlflow_is_embedded_unless_a_tracking_uri_is_set(tmp_path, settings):
    assert settings.tracking_uri == f"sqlite:///{settings.mlflow_dir / 'mlflow.db'}"
    assert settings.artifact_location == (settings.mlflow_dir / "artifacts").as_uri()
    server = _with_tracking_uri(tmp_path, "http://mlflow.internal:5000")
    assert server.tracking_uri == "http://mlflow.internal:5000"
    assert server.artifact_location is None  # the server keeps them
    embedded = server.with_mlflow(None, tmp_path / "bench")  # a benchmark's own store
    assert embedded.tracking_uri == f"sqlite:///{tmp_path / 'bench' / 'mlflow.db'}"
    assert settings.with_mlflow("http://other:5000").tracking_uri == "http://other:5000"


def test_a_database_uri_without_a_server_keeps_its_artifacts_in_the_mlflow_dir(tmp_path):
    direct = _with_tracking_uri(tmp_path, "postgresql://mlflow@db:5432/mlflow")
    assert direct.tracking_uri == "postgresql://mlflow@db:5432/mlflow"
    assert direct.artifact_location == (direct.mlflow_dir / "artifacts").as_uri()


def test_a_tracking_uri_that_is_no_uri_says_what_to_write(tmp_path):
    with pytest.raises(ValueError, match="mlflow.tracking_uri: 'localhost:5000' is not a URI: http://host:port"):
        _with_tracking_uri(tmp_path, "localhost:5000")


def test_identity_holds_duckdb_to_its_own_limit_else_the_shared_one(settings):
    assert settings.identity_duckdb_config == settings.duckdb_config  # null: duckdb.memory_limit
    own = settings.model_copy(update={"identity": settings.identity.model_copy(
        update={"duckdb_memory_limit": "3GB"})})
    assert own.identity_duckdb_config == own.duckdb_config | {"memory_limit": "3GB"}
    assert own.duckdb_config["memory_limit"] == settings.duckdb.memory_limit  # the feature build's


def test_a_memory_limit_in_other_units_is_refused(tmp_path):
    config = yaml.safe_load(DEFAULT_SETTINGS_FILE.read_text())
    config["identity"]["duckdb_memory_limit"] = "3 gigs"
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "leadscore.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ValueError, match="identity.duckdb_memory_limit"):
        load_settings(tmp_path / "config" / "leadscore.yaml")
