"""The champion's model and spec from a real MLflow store; a version without a spec is refused."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier

import mlflow
from leadscore.config import ScoreSettings
from leadscore.scoring.registry import SPEC_ARTIFACT, MissingSpec, champion_version, load_champion
from leadscore.scoring.spec import FeatureSet, ScoringSpec, TierTable
from leadscore.training import register

ROUTE = {"action": "a", "channel": "c", "description": "d"}
SPEC = ScoringSpec(model_kind="logistic_regression", features=FeatureSet(["x"], []),
                   tiers=TierTable.model_validate({"tiers": [{"name": "all"}], "routing": {"all": ROUTE}}),
                   score=ScoreSettings(), horizon_days=30)


@pytest.fixture
def store(settings, tmp_path):
    local = settings.with_data_dir(tmp_path)
    client = register.setup_tracking(local)
    yield local, client
    mlflow.set_tracking_uri(None)


def _champion(client, artifact: str | None, text: str) -> str:
    """Log a model (and `artifact` holding `text`) in one run, register it, make it champion."""
    X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    with mlflow.start_run():
        model = DummyClassifier().fit(X, np.array([0, 1, 0, 1]))
        uri = mlflow.sklearn.log_model(model, name="model",
                                       pip_requirements=register.model_requirements()).model_uri
        if artifact:
            mlflow.log_text(text, artifact)
    version = mlflow.register_model(uri, "lead-propensity").version
    client.set_registered_model_alias("lead-propensity", "champion", version)
    return str(version)


def test_the_champion_comes_with_its_spec(store):
    settings, client = store
    with pytest.raises(LookupError, match="no champion"):
        load_champion(settings)
    version = _champion(client, SPEC_ARTIFACT, SPEC.model_dump_json())
    model, spec, loaded = load_champion(settings)
    assert loaded == version == champion_version(settings)
    assert spec == SPEC and model.predict_proba(pd.DataFrame({"x": [1.0]})).shape == (1, 2)


def test_a_version_trained_before_the_spec_is_refused_with_what_to_do(store):
    settings, client = store
    old = {"model_kind": "lightgbm", "numeric": ["x"], "categorical": [], "tiers": {}}
    version = _champion(client, "scoring.json", json.dumps(old))
    with pytest.raises(MissingSpec, match=f"version {version} .* no {SPEC_ARTIFACT}.*retrain"):
        load_champion(settings)


def test_a_spec_of_an_unknown_version_is_refused(store):
    settings, client = store
    _champion(client, SPEC_ARTIFACT, SPEC.model_dump_json().replace('"spec_version":1', '"spec_version":9'))
    with pytest.raises(MissingSpec, match="cannot be read by this version"):
        load_champion(settings)


def test_rollback_refuses_a_version_serving_could_not_load(store):
    settings, client = store
    old = _champion(client, "scoring.json", "{}")
    current = _champion(client, SPEC_ARTIFACT, SPEC.model_dump_json())
    with pytest.raises(ValueError, match=f"version {old} .*retrain"):
        register.rollback(settings, old)
    assert champion_version(settings) == current
    assert register.rollback(settings, current) == current  # a version with a spec is fine
