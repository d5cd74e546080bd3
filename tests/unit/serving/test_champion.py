"""The champion watcher: a new champion is swapped in, a broken one never is."""

from __future__ import annotations

import pytest
from toy_model import SPECS, make_scorer

from leadscore.scoring.spec import FeatureSet
from leadscore.serving import champion as module
from leadscore.serving.champion import ChampionWatcher


@pytest.fixture(scope="module")
def toy():
    scorer, _ = make_scorer("lightgbm")
    return scorer.model, scorer.spec


@pytest.fixture
def registry(monkeypatch, toy):
    """A registry whose champion alias the test moves; 'broken' versions fail to load."""
    state = {"alias": "1", "loads": []}

    def load_champion(settings, registered_model=None, alias="champion"):
        state["loads"].append(state["alias"])
        if state["alias"].startswith("broken"):
            raise OSError("artifact missing")
        spec = toy[1]
        if state["alias"].startswith("alien"):
            features = spec.features
            alien = FeatureSet([*features.numeric, "shoe_size"], features.categorical,
                               features.zero_when_missing)
            spec = spec.model_copy(update={"features": alien})
        return toy[0], spec, state["alias"]

    monkeypatch.setattr(module, "load_champion", load_champion)
    monkeypatch.setattr(module, "champion_version", lambda settings, _=None, alias="champion": state["alias"])
    monkeypatch.setattr(module, "scoring_specs", lambda settings: SPECS)
    return state


def test_a_moved_alias_is_loaded_and_swapped_in(settings, registry):
    watcher = ChampionWatcher(settings)
    assert watcher.scorer.version == "1" and not watcher.check()  # alias unchanged: nothing loaded
    registry["alias"] = "2"
    first_loaded = watcher.loaded_at
    assert watcher.check()
    assert watcher.scorer.version == "2" and watcher.loaded_at >= first_loaded
    assert registry["loads"] == ["1", "2"]


@pytest.mark.parametrize("bad, why", [("broken-3", "artifact missing"), ("alien-3", "shoe_size")])
def test_a_version_that_cannot_serve_leaves_the_current_one_and_is_not_retried(settings, registry, bad, why):
    watcher = ChampionWatcher(settings)
    registry["alias"] = bad
    loaded_at = watcher.loaded_at
    assert not watcher.check() and not watcher.check()
    assert watcher.scorer.version == "1" and watcher.loaded_at == loaded_at
    assert why in watcher.last_error
    assert registry["loads"].count(bad) == 1  # tried once, not every poll
    registry["alias"] = "4"
    assert watcher.check() and watcher.scorer.version == "4" and watcher.last_error is None


@pytest.fixture
def aliases(monkeypatch, toy):
    """A registry with a champion and a challenger alias the test moves (None: no alias)."""
    state: dict[str, str | None] = {"champion": "1", "challenger": None}

    def load_champion(settings, registered_model=None, alias="champion"):
        if state[alias].startswith("broken"):
            raise OSError("artifact missing")
        return toy[0], toy[1], state[alias]

    monkeypatch.setattr(module, "load_champion", load_champion)
    monkeypatch.setattr(module, "champion_version", lambda settings, _=None, alias="champion": state[alias])
    monkeypatch.setattr(module, "scoring_specs", lambda settings: SPECS)
    return state


def test_a_challenger_is_optional_loaded_when_its_alias_appears_and_dropped_when_it_goes(settings, aliases):
    challenger = ChampionWatcher(settings, "challenger")
    assert challenger.scorer is None and not challenger.check()  # none: no shadow, no error
    aliases["challenger"] = "2"
    assert challenger.check() and challenger.scorer.version == "2"
    aliases["challenger"] = None
    assert challenger.check() and challenger.scorer is None
    champion = ChampionWatcher(settings)
    aliases["champion"] = None
    assert not champion.check() and champion.scorer.version == "1"  # the champion stays


def test_a_challenger_that_cannot_load_only_means_no_shadow_scores(settings, aliases):
    aliases["challenger"] = "broken-2"
    challenger = ChampionWatcher(settings, "challenger")
    assert challenger.scorer is None and "artifact missing" in challenger.last_error
    aliases["challenger"] = "3"
    assert challenger.check() and challenger.scorer.version == "3"
