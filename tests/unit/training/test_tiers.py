import numpy as np
import pandas as pd
import pytest

from leadscore.config import ScoreSettings, load_typed, load_yaml
from leadscore.scoring.spec import TierTable, TopShare
from leadscore.scoring.tiers import probability_to_score
from leadscore.training.tiers import assign_tiers, fit_tiers, tier_thresholds, top_share_threshold


def test_score_scale_is_fixed_and_monotone():
    settings = ScoreSettings()
    p = np.array([0.01, 0.05, 0.0952, 0.5])
    scores = probability_to_score(p, settings)
    assert scores[1] == pytest.approx(50.0)
    assert scores[2] == pytest.approx(50 + settings.points_to_double_odds, abs=0.1)  # twice the odds
    assert np.all(np.diff(scores) > 0)
    assert scores.min() >= 0 and scores.max() <= 100


def _fitted_by_hand(config: TierTable) -> TierTable:
    """The shipped table with its shares replaced by numbers, as if fitted."""
    numbers = {("high-value", "score_min"): 60, ("high-value", "fit_min"): 40,
               ("high-potential", "score_min"): 50, ("to-nurture", "fit_min"): 40,
               ("to-verify", "interest_min"): 45}
    for tier in config.tiers:
        tier.when.update({c: numbers[tier.name, c] for c in tier.when})
    return config


def test_tiers_follow_the_config_order_and_read_the_score_and_its_two_axes(settings):
    config = _fitted_by_hand(load_typed(settings.config_file("tiers.yaml"), TierTable))
    frame = pd.DataFrame({  # fit and interest as shown; the rule shares and the profile are not read
        "score": [70, 70, 55, 20, 20, 20, 30],
        "fit": [45, 35, 30, 50, 20, 50, 35],
        "interest": [50, 60, 50, 10, 50, 50, 40],
        "fit_score": [0, 100, 0, 0, 100, 0, 100],
        "interest_score": [0, 100, 0, 0, 100, 0, 100],
        "completeness": [1.0, 0.1, 1.0, 1.0, 0.1, 1.0, 0.1],
    })
    assert list(assign_tiers(frame, config)) == [
        "high-value", "high-potential", "high-potential", "to-nurture", "to-verify", "to-nurture",
        "low-conversion"]
    assert set(config.routing) == set(config.best_first) == {tier.name for tier in config.tiers}


def test_a_tier_config_without_catch_all_is_rejected(settings):
    config = load_yaml(settings.config_file("tiers.yaml"))
    config["tiers"][-1]["when"] = {"score_min": 1}
    with pytest.raises(ValueError, match="catch-all"):
        TierTable.model_validate(config)


def test_top_share_thresholds_are_fitted_on_the_validation_window(settings):
    config = load_typed(settings.config_file("tiers.yaml"), TierTable)
    validation = pd.DataFrame({"score": np.arange(1000) / 10.0, "fit": 60.0, "interest": 0.0})
    config.tiers[0].when["fit_min"] = 50  # plain numbers stay
    fitted = fit_tiers(config, validation)
    thresholds = tier_thresholds(fitted)
    assert thresholds["high-value.score_min"] == pytest.approx(97.0, abs=0.1)  # top 3% of 0..99.9
    assert thresholds["high-potential.score_min"] == pytest.approx(90.0, abs=0.1)
    assert thresholds["high-value.fit_min"] == 50
    tiers = assign_tiers(validation, fitted)
    assert (tiers == "high-value").mean() == pytest.approx(0.03, abs=0.002)
    with pytest.raises(ValueError, match="fit the tiers"):
        assign_tiers(validation, config)  # unfitted shares cannot be applied


def test_ties_at_the_cut_never_overfill_a_tier():
    scores = pd.Series([100.0] * 30 + list(np.linspace(0, 90, 70)))  # 30% clipped at 100
    threshold = top_share_threshold(scores, 0.10)
    assert (scores >= threshold).mean() <= 0.10
    assert threshold > 100  # the whole tie group stays out
    assert (pd.Series(np.arange(100.0)) >= top_share_threshold(pd.Series(np.arange(100.0)), 0.1)).sum() == 10


def test_top_share_on_a_maximum_is_rejected(settings):
    config = load_typed(settings.config_file("tiers.yaml"), TierTable)
    config.tiers[2].when["completeness_max"] = TopShare(top_share=0.5)
    frame = pd.DataFrame({"score": [1.0], "fit": [0.0], "interest": [0.0], "completeness": [1.0]})
    with pytest.raises(ValueError, match="only fits a minimum"):
        fit_tiers(config, frame)
