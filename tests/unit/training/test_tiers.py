import numpy as np
import pandas as pd
import pytest

from leadscore.config import ScoreSettings, load_yaml
from leadscore.training.tiers import TIER_ORDER, assign_tiers, probability_to_score


def test_score_scale_is_fixed_and_monotone():
    settings = ScoreSettings()
    p = np.array([0.01, 0.05, 0.0952, 0.5])
    scores = probability_to_score(p, settings)
    assert scores[1] == pytest.approx(50.0)
    assert scores[2] == pytest.approx(50 + settings.points_to_double_odds, abs=0.1)  # twice the odds
    assert np.all(np.diff(scores) > 0)
    assert scores.min() >= 0 and scores.max() <= 100


def test_tiers_follow_the_config_order(settings):
    config = load_yaml(settings.config_file("tiers.yaml"))
    frame = pd.DataFrame({
        "score": [70, 55, 20, 20, 20],
        "fit_score": [80, 10, 10, 60, 0],
        "interest_score": [50, 0, 50, 0, 0],
        "completeness": [1.0, 1.0, 0.3, 1.0, 1.0],
    })
    assert list(assign_tiers(frame, config)) == [
        "high-value", "high-potential", "to-verify", "to-nurture", "low-conversion"]
    assert set(config["routing"]) == set(TIER_ORDER)


def test_a_tier_config_without_catch_all_is_rejected(settings):
    config = load_yaml(settings.config_file("tiers.yaml"))
    config["tiers"][-1]["when"] = {"score_min": 1}
    with pytest.raises(ValueError, match="catch-all"):
        assign_tiers(pd.DataFrame({"score": [1.0], "fit_score": [0.0], "interest_score": [0.0],
                                   "completeness": [1.0]}), config)
