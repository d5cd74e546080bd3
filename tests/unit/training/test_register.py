"""The champion alias moves only to a version that beats the champion (real MLflow, temp store)."""

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier

import mlflow
from leadscore.training import register


@pytest.fixture
def client(settings, tmp_path):
    yield register.setup_tracking(settings.with_data_dir(tmp_path, tmp_path / "mlflow"))
    mlflow.set_tracking_uri(None)


def _model_uri() -> str:
    X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    model = DummyClassifier(strategy="prior").fit(X, np.array([0, 1, 0, 1]))
    with mlflow.start_run():
        return mlflow.sklearn.log_model(model, name="model").model_uri


def _promote(client, value: float, champion_value: float | None) -> str:
    _, alias = register.register_and_promote(client, _model_uri(), "lead-propensity", "pr_auc",
                                             value, champion_value, True, "w")
    return alias


def test_champion_moves_only_when_beaten(client):
    assert _promote(client, 0.10, None) == "champion"
    assert _promote(client, 0.08, 0.10) == "challenger"
    assert str(client.get_model_version_by_alias("lead-propensity", "champion").version) == "1"
    assert _promote(client, 0.12, 0.10) == "champion"
    assert str(client.get_model_version_by_alias("lead-propensity", "champion").version) == "3"
