"""The flat-table trainer: a YAML-described table, its checks, its split, a real run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

import mlflow
from leadscore.training.flat import split_table, train_table
from leadscore.training.table import load_spec, table_frame


def _table(path, rows: int = 600, seed: int = 0) -> None:
    """Leads with a real signal (visits), noise, a status column filled in after the outcome
    and a first-contact date; the last 20% of dates are the most recent leads."""
    rng = np.random.default_rng(seed)
    visits = rng.poisson(3, rows)
    converted = (rng.random(rows) < 1 / (1 + np.exp(-(visits - 4)))).astype(int)
    pd.DataFrame({
        "lead": [f"L{i}" for i in range(rows)],
        "visits": visits,
        "source": rng.choice(["search", "social", "Select"], rows),
        "status": np.where(converted == 1, "closed by sales", np.where(rng.random(rows) < 0.5, "lost", None)),
        "first_contact": pd.date_range("2024-01-01", periods=rows, freq="D").strftime("%Y-%m-%d"),
        "converted": converted,
    }).to_csv(path, index=False)


def _spec(tmp_path, **changes) -> dict:
    _table(tmp_path / "leads.csv")
    spec = {"name": "toy", "table": "leads.csv", "id": "lead", "target": {"column": "converted"},
            "time": "first_contact", "missing_values": ["Select"]}
    spec.update(changes)
    (tmp_path / "toy.yaml").write_text(yaml.safe_dump(spec))
    return spec


def test_a_table_is_read_labelled_and_split_by_time(tmp_path, settings):
    _spec(tmp_path)
    spec = load_spec(tmp_path / "toy.yaml", settings)
    frame, features = table_frame(spec, settings)
    assert set(features.all) == {"visits", "source", "status"}  # not the id, target or time
    assert features.numeric == ["visits"]
    assert frame["source"].isna().sum() > 0  # "Select" means not filled in
    split = split_table(spec, frame)
    assert len(split.test) == 120 and len(split.validation) == 120
    assert split.train["event_timestamp"].max() < split.validation["event_timestamp"].min()
    assert split.validation["event_timestamp"].max() < split.test["event_timestamp"].min()


def test_without_a_time_column_the_split_is_stratified(tmp_path, settings):
    _spec(tmp_path, time=None)
    spec = load_spec(tmp_path / "toy.yaml", settings)
    frame, _ = table_frame(spec, settings)
    split = split_table(spec, frame)
    rates = [part["label"].mean() for part in (split.train, split.validation, split.test)]
    assert max(rates) - min(rates) < 0.02
    assert len(split.train) + len(split.validation) + len(split.test) == len(frame)


@pytest.mark.parametrize(("changes", "message"), [
    ({"exclude": ["vists"]}, "exclude names unknown columns \\['vists'\\]; columns are: lead, visits"),
    ({"target": {"column": "converted", "positive": 7}}, "gives only class 0"),
    ({"targt": {"column": "converted"}}, "targt: Extra inputs are not permitted"),
    ({"time": "source"}, "time column 'source' has .* values that are not dates"),
])
def test_bad_specs_get_errors_that_say_what_to_fix(tmp_path, settings, changes, message):
    _spec(tmp_path, **changes)
    with pytest.raises(ValueError, match=message):
        spec = load_spec(tmp_path / "toy.yaml", settings)
        table_frame(spec, settings)


def test_a_missing_table_is_named(tmp_path, settings):
    _spec(tmp_path, table="nowhere.csv")
    with pytest.raises(FileNotFoundError, match="nowhere.csv"):
        load_spec(tmp_path / "toy.yaml", settings)


def test_training_a_table_excludes_the_status_column_and_registers_a_champion(tmp_path, settings):
    _spec(tmp_path)
    local = settings.with_data_dir(tmp_path / "data", tmp_path / "mlflow")
    try:
        outcome = train_table(load_spec(tmp_path / "toy.yaml", local), local)
    finally:
        mlflow.set_tracking_uri(None)
    assert [flag.column for flag in outcome.leakage.excluded] == ["status"]
    assert set(outcome.results) == {"logistic_regression", "lightgbm"}  # no rules given
    assert outcome.alias == "champion" and outcome.results[outcome.best]["roc_auc"] > 0.7
