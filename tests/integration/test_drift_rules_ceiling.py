"""The loop benchmark's `rules_ceiling` (benchmarks/ceiling.py) on the tiny world's truth: what a
drift's new rules alone change in the ranking of person-days."""

from __future__ import annotations

import shutil

import duckdb
import pandas as pd
import pytest

from leadscore.benchmarks.ceiling import rules_ceiling
from leadscore.clock import world_end
from leadscore.config import load_settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def person_days(world) -> pd.DataFrame:
    """Every person with an interaction, 120 days before the world's end, and whether an
    opportunity of theirs opened in the 90 days after (pid, at, converted)."""
    settings = load_settings(world["config_file"])
    at = pd.Timestamp(world_end(settings)) - pd.Timedelta(days=120)
    with duckdb.connect(str(settings.middle_db), read_only=True) as con:
        pids = con.execute("SELECT DISTINCT pid FROM interaction WHERE pid IS NOT NULL "
                           "ORDER BY pid").df()["pid"]
        opened = con.execute("SELECT DISTINCT pid FROM outcome WHERE opportunity_created_at > ? AND "
                             "opportunity_created_at <= ?", [at, at + pd.Timedelta(days=90)]).df()["pid"]
    return pd.DataFrame({"pid": pids, "at": at, "converted": pids.isin(set(opened))})


def test_a_world_without_drift_leaves_its_rules_nothing_to_change(world, person_days):
    settings = load_settings(world["config_file"])
    assert 0 < person_days["converted"].sum() < len(person_days)
    horizon = settings.training.horizon_days
    figures = rules_ceiling(person_days, settings.middle_db, settings.truth_dir, horizon)
    assert figures["rules_after"] == figures["rules_before"] and figures["ratio"] == 1.0
    assert figures["rows_with_a_true_person"] > 0.9 * figures["rows"]


def test_rules_that_knew_no_cycle_s_chance_rank_worse_than_the_new_ones(world, person_days, tmp_path):
    """The rules before, changed to give every cycle the same chance: knowing each cycle's own
    chance (the rules after) ranks the buyers better, a ratio above 1."""
    settings = load_settings(world["config_file"])
    truth = tmp_path / "truth"
    shutil.copytree(settings.truth_dir, truth)
    cycles = pd.read_parquet(truth / "cycles.parquet")
    cycles.assign(p_without_drift=cycles["p_opportunity"].mean()).to_parquet(truth / "cycles.parquet")
    figures = rules_ceiling(person_days, settings.middle_db, truth, settings.training.horizon_days)
    after, before = figures["rules_after"]["pr_auc"], figures["rules_before"]["pr_auc"]
    assert figures["ratio"] == pytest.approx(after / before) and figures["ratio"] > 1
    one_class = person_days.assign(converted=False)
    assert "skipped" in rules_ceiling(one_class, settings.middle_db, truth, settings.training.horizon_days)
