"""The champion alias moves only to a version that beats the champion (real MLflow, temp store)."""

from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier

import mlflow
from leadscore.config import ScoreSettings
from leadscore.scoring.spec import FeatureSet, ScoringSpec, TierTable
from leadscore.training import register


@pytest.fixture(scope="module")
def store(settings, tmp_path_factory):
    """One tracking store for the module (creating one costs seconds); each test its own model."""
    local = settings.with_data_dir(tmp_path_factory.mktemp("mlflow"))
    client = register.setup_tracking(local)
    client.model_uri = _model_uri()  # logged once, registered as many versions as needed
    yield local, client
    mlflow.set_tracking_uri(None)


@pytest.fixture
def client(store):
    return store[1]


X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})


def _spec() -> ScoringSpec:
    route = {"action": "a", "channel": "c", "description": "d"}
    tiers = TierTable.model_validate({"tiers": [{"name": "all"}], "routing": {"all": route}})
    return ScoringSpec(model_kind="logistic_regression", features=FeatureSet(["x"], []), tiers=tiers,
                       score=ScoreSettings(), horizon_days=30)


def _dummy() -> DummyClassifier:
    return DummyClassifier(strategy="prior").fit(X, np.array([0, 1, 0, 1]))


def _model_uri() -> str:
    """A model with its scoring spec in one run, as training logs them."""
    with mlflow.start_run():
        return register.log_candidate("dummy", _dummy(), {}, {}, X.head(2), _spec(), [], {})


def test_a_logged_model_pins_what_its_pickle_needs_and_loads(client):
    requirements = Path(mlflow.pyfunc.get_model_dependencies(client.model_uri)).read_text().split()
    assert {requirement.split("==")[0] for requirement in requirements} == set(register.MODEL_DISTRIBUTIONS)
    assert f"lightgbm=={version('lightgbm')}" in requirements
    loaded = mlflow.sklearn.load_model(client.model_uri)
    assert np.allclose(loaded.predict_proba(X), _dummy().predict_proba(X))


def _promote(client, value: float, champion_value: float | None, ece: float = 0.01,
             champion_ece: float = 0.01, name: str = "lead-propensity") -> str:
    champion = None if champion_value is None else {"pr_auc": champion_value, "ece": champion_ece}
    _, alias = register.register_and_promote(client, client.model_uri, name, "pr_auc",
                                             {"pr_auc": value, "ece": ece}, champion, True, 0.005, "w")
    return alias


def test_champion_moves_only_when_beaten(client):
    assert _promote(client, 0.10, None, name="m1") == "champion"
    assert _promote(client, 0.08, 0.10, name="m1") == "challenger"
    assert str(client.get_model_version_by_alias("m1", "champion").version) == "1"
    assert _promote(client, 0.12, 0.10, name="m1") == "champion"
    assert str(client.get_model_version_by_alias("m1", "champion").version) == "3"


def test_a_better_but_worse_calibrated_model_does_not_become_champion(client):
    assert _promote(client, 0.10, None, name="m2") == "champion"
    assert _promote(client, 0.20, 0.10, ece=0.05, champion_ece=0.01, name="m2") == "challenger"
    assert _promote(client, 0.20, 0.10, ece=0.014, champion_ece=0.01, name="m2") == "champion"


def test_rollback_puts_an_earlier_version_back(store):
    local, client = store
    _promote(client, 0.10, None)
    _promote(client, 0.12, 0.10)
    assert register.rollback(local, "1") == "2"
    champion = client.get_model_version_by_alias("lead-propensity", "champion")
    assert str(champion.version) == "1" and champion.tags["rolled_back_from"] == "2"
    with pytest.raises(ValueError, match="no version 7; versions: 1, 2"):
        register.rollback(local, "7")
