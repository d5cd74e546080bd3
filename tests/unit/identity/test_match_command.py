"""`leadscore identity match` on real third-party data (FEBRL4, first rows of each file) and
on a table of the user's own, with a copy of the shipped mapping."""

import itertools
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from leadscore.cli import app

FEBRL_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "datasets" / "febrl"


@pytest.mark.skipif(not FEBRL_DIR.is_dir(), reason=f"FEBRL data not found at {FEBRL_DIR}")
def test_match_links_two_tables_into_clusters(tmp_path, settings):
    paths = []
    for name in ("dataset4a.csv", "dataset4b.csv"):
        frame = pd.read_csv(FEBRL_DIR / name, skipinitialspace=True, dtype=str)
        frame = frame[frame["rec_id"].str.extract(r"rec-(\d+)-", expand=False).astype(int) < 1500]
        paths.append(tmp_path / name)
        frame.drop(columns="rec_id").to_csv(paths[-1], index=False)
    out = tmp_path / "clusters.csv"
    result = CliRunner().invoke(app, ["identity", "match",
                                      str(settings.config_file("mappings/febrl.yaml")),
                                      *map(str, paths), "--out", str(out)])
    assert result.exit_code == 0, result.output
    clusters = pd.read_csv(out)
    assert set(clusters["source"]) == {"left", "right"}
    sizes = clusters.groupby("cluster_id").size()
    assert (sizes == 2).mean() > 0.95  # nearly every record found its one counterpart


def test_match_names_a_missing_mapping():
    result = CliRunner().invoke(app, ["identity", "match", "no-such.yaml", "t.csv"])
    assert result.exit_code != 0
    assert "no-such.yaml" in result.output


def _people_with_duplicates(seed: int = 1, people: int = 300) -> pd.DataFrame:
    """A person table nobody here designed the model for: other column names, no
    identifier number, an email, a gender, an occupation and a birth place; each person
    written 1 to 3 times with typos, missing emails and a few inconsistent attributes.
    `truth` says who is who (never mapped)."""
    rng = np.random.default_rng(seed)
    first = ["anna", "ben", "carla", "david", "eva", "frank", "greta", "hugo", "ines", "jan", "karl",
             "lena", "max", "nora", "otto", "paula", "rita", "sven", "tina", "uwe"]
    last = ["meyer", "schmidt", "fischer", "weber", "wagner", "becker", "hoffmann", "koch", "richter",
            "klein", "wolf", "neumann", "schwarz", "braun", "zimmer", "krause"]
    jobs, places = ["nurse", "engineer", "teacher", "clerk"], ["berlin", "hamburg", "munich", "cologne"]
    rows = []
    for i in range(people):
        given, surname = rng.choice(first), rng.choice(last)
        born = f"19{rng.integers(50, 99)}-{rng.integers(1, 12):02d}-{rng.integers(1, 28):02d}"
        person = {"first": given, "last": surname, "birth": born, "mail": f"{given}.{surname}{i}@example.org",
                  "gender": rng.choice(["m", "f"]), "job": rng.choice(jobs), "born_in": rng.choice(places),
                  "truth": i}
        for copy in range(int(rng.choice([1, 1, 2, 3]))):
            row = dict(person)
            if copy and rng.random() < 0.3:
                row["first"] = given[:-1] + "x"
            if copy and rng.random() < 0.2:
                row["birth"] = born[:-1] + "9"
            if copy and rng.random() < 0.4:
                row["mail"] = ""
            for column, values in (("gender", ["m", "f"]), ("job", jobs), ("born_in", places)):
                if rng.random() < 0.05:
                    row[column] = rng.choice(values)
            rows.append(row)
    return pd.DataFrame(rows)


def _mapping_for_my_table(settings, tmp_path: Path, columns: str,
                          drop_comparisons: tuple[str, ...] = ()) -> Path:
    """febrl.yaml with only its column mapping changed, as a first-time user copies it."""
    raw = yaml.safe_load(settings.config_file("mappings/febrl.yaml").read_text())
    raw["mapping"]["columns"] = yaml.safe_load(columns)
    raw["mapping"]["date_of_birth_format"] = "%Y-%m-%d"
    raw["model"]["comparisons"] = [spec for spec in raw["model"]["comparisons"]
                                   if spec["name"] not in drop_comparisons]
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _plain(output: str) -> str:
    """The CLI's output as one line of words, without rich's boxes and line wraps."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", output).split())


def _pair_set(groups: pd.Series) -> set[tuple]:
    return {pair for members in groups.groupby(groups).groups.values()
            for pair in itertools.combinations(sorted(members), 2)}


MY_COLUMNS = """{given_name: first, surname: last, date_of_birth: birth, email: mail, gender: gender,
                 occupation: job, birth_place: born_in}"""


def test_a_copied_mapping_works_on_a_table_without_the_prior_rules_columns(tmp_path, settings):
    """No identifier number (the prior's deterministic rule reads one): the prior comes from
    the EM sessions instead of a `math domain error`, the new roles and the email count,
    and pairs with probabilities and a threshold report are written beside the clusters."""
    table = _people_with_duplicates()
    table.to_csv(tmp_path / "people.csv", index=False)
    out = tmp_path / "clusters.csv"
    mapping = _mapping_for_my_table(settings, tmp_path, MY_COLUMNS)
    result = CliRunner().invoke(app, ["identity", "match", str(mapping), str(tmp_path / "people.csv"),
                                      "--out", str(out), "--threshold", "0.99"])
    assert result.exit_code == 0, result.output
    clusters = pd.read_csv(out).sort_values("id")
    found, truth = _pair_set(clusters.set_index("id")["cluster_id"]), _pair_set(table["truth"])
    precision, recall = len(found & truth) / len(found), len(found & truth) / len(truth)
    assert precision > 0.9 and recall > 0.9, (precision, recall)
    pairs = pd.read_csv(tmp_path / "clusters.pairs.csv")
    assert list(pairs.columns) == ["id_l", "id_r", "match_weight", "match_probability"]
    assert pairs["match_probability"].min() >= 0.01 and (pairs["match_probability"] < 0.99).any()
    report = pd.read_csv(tmp_path / "clusters.thresholds.csv").set_index("threshold")
    assert report.loc[0.99, "pairs"] == (pairs["match_probability"] >= 0.99).sum()
    assert report.loc[0.99, "clusters"] == clusters["cluster_id"].nunique()
    assert report["pairs"].is_monotonic_decreasing and report["clusters"].is_monotonic_increasing
    assert "warning" not in result.output.lower().split("pairs per match")[-1]  # every mapped role is read


def test_a_mapped_role_no_comparison_reads_is_reported(tmp_path, settings):
    table = _people_with_duplicates(people=120)
    table.to_csv(tmp_path / "people.csv", index=False)
    mapping = _mapping_for_my_table(settings, tmp_path, "{given_name: first, surname: last, "
                                    "date_of_birth: birth, email: mail}", drop_comparisons=("email",))
    raw = yaml.safe_load(mapping.read_text())
    raw["model"]["blocking_rules"] = [rule for rule in raw["model"]["blocking_rules"] if rule != ["email"]]
    mapping.write_text(yaml.safe_dump(raw))
    result = CliRunner().invoke(app, ["identity", "match", str(mapping), str(tmp_path / "people.csv"),
                                      "--out", str(tmp_path / "c.csv")])
    assert result.exit_code == 0, result.output
    assert "'email' is read by no comparison" in _plain(result.output)


def test_an_unknown_role_is_a_message_that_names_the_roles(tmp_path, settings):
    _people_with_duplicates(people=20).to_csv(tmp_path / "people.csv", index=False)
    mapping = _mapping_for_my_table(settings, tmp_path, "{given_name: first, gendre: gender, hobby: job}")
    result = CliRunner().invoke(app, ["identity", "match", str(mapping), str(tmp_path / "people.csv")])
    output = _plain(result.output)
    assert result.exit_code == 2 and "Traceback" not in output
    assert "gendre (did you mean gender?)" in output and "hobby" in output and "birth_place" in output
