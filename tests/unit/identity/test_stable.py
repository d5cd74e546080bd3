"""IDs stay put across reruns and growth; merges and splits are audited."""

import pandas as pd
import pytest

from leadscore.config import WorldSettings
from leadscore.identity.records import SOURCE_LAYOUT
from leadscore.identity.resolve import previous_ids, resolve_records, rules_from_settings
from leadscore.identity.stable import inherit_ids
from leadscore.synth import generate_world


def test_unchanged_clusters_keep_their_ids():
    fresh = pd.Series(["n1", "n1", "n2"], index=["a", "b", "c"])
    previous = pd.Series(["P1", "P1", "P2"], index=["a", "b", "c"])
    final, audit = inherit_ids(fresh, previous, "person")
    assert final.to_dict() == {"n1": "P1", "n2": "P2"}
    assert audit.empty


def test_a_merge_keeps_the_bigger_id_and_is_audited():
    fresh = pd.Series(["n1", "n1", "n1"], index=["a", "b", "c"])
    previous = pd.Series(["P1", "P1", "P2"], index=["a", "b", "c"])
    final, audit = inherit_ids(fresh, previous, "person", pd.Series({"n1": "email"}))
    assert final["n1"] == "P1"
    assert audit[["event", "id", "other_id", "evidence"]].values.tolist() == [
        ["merge", "P2", "P1", "email"]]


def test_a_split_keeps_the_id_on_the_bigger_part_and_is_audited():
    fresh = pd.Series(["n1", "n1", "n2"], index=["a", "b", "c"])
    previous = pd.Series(["P1", "P1", "P1"], index=["a", "b", "c"])
    final, audit = inherit_ids(fresh, previous, "person")
    assert final["n1"] == "P1" and final["n2"] == "n2"
    assert audit[["event", "id", "other_id"]].values.tolist() == [["split", "P1", "n2"]]


def test_new_items_get_new_ids_that_never_reuse_a_surviving_one():
    fresh = pd.Series(["P1", "n9"], index=["new", "a"])
    previous = pd.Series(["P1"], index=["a"])
    final, _ = inherit_ids(fresh, previous, "person")
    assert final["n9"] == "P1" and final["P1"] != "P1"


@pytest.fixture(scope="module")
def rules(settings):
    return rules_from_settings(settings)


def _before(sources: dict[str, pd.DataFrame], cutoff: pd.Timestamp) -> dict[str, pd.DataFrame]:
    times = {name: layout[1] for name, layout in SOURCE_LAYOUT.items()} | {"crm_accounts": "created_at"}
    return {name: frame[frame[times[name]] < cutoff] for name, frame in sources.items()}


def test_ids_survive_a_rerun_and_growing_data(rules):
    sources = generate_world(WorldSettings(scale=0.02, seed=3)).sources
    cutoff = sources["form_fills"]["submitted_at"].quantile(0.75)
    first = resolve_records(_before(sources, cutoff), rules)
    rerun = resolve_records(_before(sources, cutoff), rules, previous_ids(first))
    assert rerun["records"]["pid"].equals(first["records"]["pid"])
    grown = resolve_records(sources, rules, previous_ids(first))
    key = ["source", "source_record_id"]
    both = first["records"][[*key, "pid"]].merge(grown["records"][[*key, "pid"]], on=key,
                                                 suffixes=("_first", "_grown")).dropna()
    audit = grown["id_audit"]
    absorbed = set(audit.loc[audit["event"] == "merge", "id"])
    split_off = both["pid_grown"].isin(set(audit.loc[audit["event"] == "split", "other_id"]))
    changed = both[(both["pid_first"] != both["pid_grown"]) & ~both["pid_first"].isin(absorbed)
                   & ~split_off]
    assert changed.empty, changed.head()
    assert set(first["person"]["pid"]) - absorbed <= set(grown["person"]["pid"])
    assert len(grown["person"]) > len(first["person"])
