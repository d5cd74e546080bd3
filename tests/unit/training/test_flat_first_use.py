"""A first-time user's own table (issue 15, items 13-16): other separators and encodings, the
row number as id, a row filter, rows in time order, YAML's booleans, rules on text, joins that
miss, and when each column becomes known."""

from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from leadscore.scoring.rules import rule_hit_array
from leadscore.scoring.spec import Rule
from leadscore.training.experiment import guarded_inputs
from leadscore.training.flat import split_table, table_experiment
from leadscore.training.table import ROW_ID, load_spec, table_frame


def _bank(path, rows: int = 800, seed: int = 0) -> pd.DataFrame:
    """A `;`-separated latin-1 file with decimal commas and no id column, in time order: students
    convert more; `closing_note` is written after the outcome (at `noted_at`, a week after the
    call) and nearly tells it; `product` keys are spelled two ways."""
    rng = np.random.default_rng(seed)
    job = rng.choice(["admin", "técnico", "student"], rows)
    converted = rng.random(rows) < 0.15 + 0.35 * (job == "student")
    called = pd.date_range("2025-01-01", periods=rows, freq="6h")
    frame = pd.DataFrame({
        "age": rng.integers(18, 80, rows), "job": job, "balance": rng.normal(1000, 300, rows).round(2),
        "product": rng.choice(["A 1", "B 2"], rows),
        # 80% right: single-feature AUC near 0.8, under the guard's limit, yet known only after
        "closing_note": np.where(rng.random(rows) < 0.8, converted, ~converted).astype(int),
        "called_at": called.strftime("%Y-%m-%d %H:%M"),
        "noted_at": (called + pd.Timedelta(days=7)).strftime("%Y-%m-%d %H:%M"),
        "y": np.where(converted, "yes", "no")})
    frame.to_csv(path, sep=";", index=False, encoding="latin-1", decimal=",")
    return frame


def _spec(tmp_path, **changes) -> dict:
    _bank(tmp_path / "bank.csv")
    pd.DataFrame({"product": ["A1", "B 2"], "price": [10, 20]}).to_csv(tmp_path / "products.csv", sep=";",
                                                                       index=False)
    spec = {"name": "bank", "table": "bank.csv", "id": "@row", "target": {"column": "y", "positive": "yes"},
            "read": {"sep": ";", "encoding": "latin-1", "decimal": ","}, "exclude": ["called_at", "noted_at"]}
    spec.update(changes)
    (tmp_path / "bank.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True))
    return spec


def _frame(tmp_path, settings, **changes):
    _spec(tmp_path, **changes)
    return table_frame(load_spec(tmp_path / "bank.yaml", settings), settings)


def test_the_separator_encoding_and_decimal_comma_are_read_as_the_spec_says(tmp_path, settings):
    frame, features = _frame(tmp_path, settings)
    assert frame["balance"].dtype == float and "técnico" in set(frame["job"])
    assert frame[ROW_ID].tolist() == list(range(len(frame)))  # the row number is the id
    assert ROW_ID not in features.all and "balance" in features.numeric


def test_a_file_read_with_the_wrong_separator_says_which_one_it_holds(tmp_path, settings):
    with pytest.raises(ValueError, match=r"header was read as one column, which holds ';'.*sep: \";\""):
        _frame(tmp_path, settings, id="age", read={"encoding": "latin-1"})
    with pytest.raises(ValueError, match=r"not utf-8 text .*encoding: latin-1"):
        _frame(tmp_path, settings, read={"sep": ";"})


def test_an_unquoted_yes_is_a_boolean_and_the_error_says_to_quote_it(tmp_path, settings):
    _spec(tmp_path)
    text = (tmp_path / "bank.yaml").read_text().replace("positive: 'yes'", "positive: yes")
    (tmp_path / "bank.yaml").write_text(text)
    with pytest.raises(ValueError, match=r"only class 0 .*'no', 'yes'.*boolean True.*quote it"):
        table_frame(load_spec(tmp_path / "bank.yaml", settings), settings)


def test_a_row_filter_keeps_what_it_says_and_a_bad_one_is_named(tmp_path, settings):
    frame, _ = _frame(tmp_path, settings, where="age >= 30 AND job <> 'admin'")
    everything = pd.read_csv(tmp_path / "bank.csv", sep=";", encoding="latin-1")
    assert len(frame) == ((everything["age"] >= 30) & (everything["job"] != "admin")).sum() > 0
    assert frame["age"].min() >= 30 and "admin" not in set(frame["job"])
    with pytest.raises(ValueError, match="where 'agge > 3' is not a condition on the table's columns"):
        _frame(tmp_path, settings, where="agge > 3")


def test_rows_in_time_order_split_in_that_order(tmp_path, settings):
    _spec(tmp_path, time="@row")
    spec = load_spec(tmp_path / "bank.yaml", settings)
    frame, _ = table_frame(spec, settings)
    split = split_table(spec, frame)
    assert split.train[ROW_ID].max() < split.validation[ROW_ID].min()
    assert split.validation[ROW_ID].max() < split.test[ROW_ID].min()


def test_a_join_that_misses_says_how_much_and_can_stop_the_run(tmp_path, settings, caplog):
    join = {"table": "products.csv", "key": "product"}
    with caplog.at_level(logging.WARNING):
        frame, _ = _frame(tmp_path, settings, join=[join])
    missed = (frame["product"] == "A 1").sum()
    assert f"{missed:,} of {len(frame):,} rows" in caplog.text and "'A 1'" in caplog.text
    with pytest.raises(ValueError, match=r"no row of products.csv .* more than this join's max_unmatched"):
        _frame(tmp_path, settings, join=[{**join, "max_unmatched": 0.1}])


def test_a_column_known_after_the_outcome_is_never_a_feature(tmp_path, settings):
    _, features = _frame(tmp_path, settings, known={"closing_note": "after_outcome"})
    assert "closing_note" not in features.all and "balance" in features.all


def test_a_column_recorded_after_the_row_time_is_caught_though_it_leaks_under_the_auc_limit(
        tmp_path, settings, caplog):
    """Unseen by AUC (about 0.8, under 0.95; the first of the near-misses): declared with its
    recording time, the guard sees it was written after each call and leaves it out."""
    _spec(tmp_path, time="called_at", exclude=["noted_at"])
    spec = load_spec(tmp_path / "bank.yaml", settings)
    with caplog.at_level(logging.INFO):
        plain = guarded_inputs(table_experiment(spec, settings), settings)
    assert "closing_note" not in plain.excluded
    assert "closest to the limit of 0.95" in caplog.text and "closing_note 0.8" in caplog.text
    _spec(tmp_path, time="called_at", known={"closing_note": "noted_at"})
    spec = load_spec(tmp_path / "bank.yaml", settings)
    declared = guarded_inputs(table_experiment(spec, settings), settings)
    assert "closing_note" in declared.excluded and "noted_at" not in declared.features.all


def test_a_recording_time_without_a_time_column_is_refused(tmp_path, settings):
    _spec(tmp_path, known={"closing_note": "noted_at"})
    with pytest.raises(ValueError, match="name the time column"):
        load_spec(tmp_path / "bank.yaml", settings)


def test_a_rule_on_text_fires_and_an_order_on_text_is_refused():
    rule = Rule(feature="occupation", op="==", value="Working Professional", points=30)
    occupations = np.array(["Working Professional", "Student", None], dtype=object)
    hits = rule_hit_array([rule], {"occupation": occupations})
    assert hits[:, 0].tolist() == [30, 0, 0]
    with pytest.raises(ValueError, match="needs a number"):
        Rule(feature="occupation", op=">=", value="Student", points=1)


def test_a_bad_table_is_said_before_the_models_libraries_load(tmp_path, settings):
    """Item 18: the spec and the table are checked with pandas alone; LightGBM, MLflow and
    Feast (seconds of imports) load only for a table that can be trained on."""
    _spec(tmp_path, id="nosuch")
    probe = ("import sys; from typer.testing import CliRunner; from leadscore.cli import app; "
             f"r = CliRunner().invoke(app, ['-c', {str(settings.source)!r}, 'train', 'table', "
             f"{str(tmp_path / 'bank.yaml')!r}]); "
             "print(r.exit_code, sorted(m for m in ('lightgbm', 'mlflow', 'feast', 'sklearn') "
             "if m in sys.modules)); "
             "print(r.output)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    status, output = result.stdout.split("\n", 1)
    assert status == "2 []", result.stdout + result.stderr
    assert "id names unknown columns ['nosuch']" in " ".join(output.split())


def test_a_numeric_target_with_blanks_and_a_filter_that_keeps_nothing(tmp_path, settings):
    _spec(tmp_path)
    bank = pd.read_csv(tmp_path / "bank.csv", sep=";", encoding="latin-1", decimal=",")
    bank["y"] = np.where(bank["y"] == "yes", 1.0, np.where(bank.index % 10 == 0, np.nan, 0.0))
    bank.to_csv(tmp_path / "bank.csv", sep=";", index=False, encoding="latin-1", decimal=",")
    spec = yaml.safe_load((tmp_path / "bank.yaml").read_text())
    (tmp_path / "bank.yaml").write_text(yaml.safe_dump({**spec, "target": {"column": "y", "positive": 1}}))
    frame, _ = table_frame(load_spec(tmp_path / "bank.yaml", settings), settings)
    assert frame["label"].sum() == (bank["y"] == 1).sum() > 0  # 1 finds 1.0 in a column with blanks
    (tmp_path / "bank.yaml").write_text(yaml.safe_dump({**spec, "where": "age > 200"}))
    with pytest.raises(ValueError, match="no rows left to train on"):
        table_frame(load_spec(tmp_path / "bank.yaml", settings), settings)


def test_a_rule_value_yaml_read_as_a_boolean_is_refused():
    with pytest.raises(ValueError, match="read as a boolean .* quote the word"):
        Rule.model_validate(yaml.safe_load("{feature: newsletter, op: '==', value: yes, points: 5}"))


def test_an_empty_column_is_left_out_and_decimal_commas_read_as_text_are_said(tmp_path, settings, caplog):
    """A column with no value at all broke the logistic regression's explanation; a number
    column with decimal commas read without `decimal` trains as text, silently."""
    _spec(tmp_path)
    bank = pd.read_csv(tmp_path / "bank.csv", sep=";", encoding="latin-1", decimal=",")
    bank.assign(never_filled=np.nan).to_csv(tmp_path / "bank.csv", sep=";", index=False,
                                            encoding="latin-1", decimal=",")
    spec = yaml.safe_load((tmp_path / "bank.yaml").read_text())
    (tmp_path / "bank.yaml").write_text(yaml.safe_dump({**spec, "read": {"sep": ";", "encoding": "latin-1"}}))
    with caplog.at_level(logging.WARNING):
        _, features = table_frame(load_spec(tmp_path / "bank.yaml", settings), settings)
    assert "never_filled" not in features.all and "no row has a value: ['never_filled']" in caplog.text
    assert "'balance' holds numbers written with a decimal comma" in caplog.text
