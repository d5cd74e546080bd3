"""The fit x interest chart's tier regions: a lead's marker lies in the region of the tier its
score, fit and interest give it (the tiers `tier_array` assigns), for the shipped tier table."""

import numpy as np
import pytest
from matplotlib.path import Path

from leadscore.config import load_typed
from leadscore.scoring.spec import TierTable, TopShare
from leadscore.scoring.tiers import tier_array
from leadscore.serving.portrait.charts import axes_chart
from leadscore.serving.schemas import Routing, ScoreResponse

AVERAGE = 31.0


@pytest.fixture(scope="module")
def tiers(settings) -> TierTable:
    """config/tiers.yaml with its shares as numbers, as training fits them."""
    table = load_typed(settings.config_file("tiers.yaml"), TierTable)
    numbers = iter([62.0, 38.0, 50.0, 36.0, 41.0])
    for tier in table.tiers:
        tier.when.update({c: next(numbers) for c, v in tier.when.items() if isinstance(v, TopShare)})
    return table


def _lead(fit: float, interest: float) -> ScoreResponse:
    route = Routing(action="a", channel="c", description="d")
    return ScoreResponse(pid="P1", probability=0.1, score=fit + interest - AVERAGE, fit_score=0.0,
                         interest_score=0.0, tier="-", routing=route,
                         reasons_up=[], reasons_down=[], model_version="1", model_kind="lightgbm",
                         horizon_days=90, average_score=AVERAGE, fit=fit, interest=interest)


def _regions_at(chart, x: float, y: float) -> list[str]:
    return [region.tier for region in chart.regions
            if any(Path([tuple(map(float, p.split(","))) for p in piece.split()]).contains_point((x, y))
                   for piece in region.polygons)]


def test_every_lead_lies_in_the_region_of_its_tier_and_only_there(tiers):
    rng = np.random.default_rng(3)
    leads = rng.uniform(5, 95, size=(400, 2))
    away = [np.abs(leads.sum(axis=1) - AVERAGE - level) > 0.5 for level in (62.0, 50.0)]  # a pixel
    away += [np.abs(leads[:, 0] - level) > 0.5 for level in (38.0, 36.0)] + [np.abs(leads[:, 1] - 41.0) > 0.5]
    leads = leads[np.logical_and.reduce(away)]
    shown = {"score": leads.sum(axis=1) - AVERAGE, "fit": leads[:, 0], "interest": leads[:, 1]}
    given = tier_array(shown, tiers)
    assert len(set(given)) == 5  # every tier is met
    for (fit, interest), tier in zip(leads, given, strict=True):
        chart = axes_chart(_lead(fit, interest), [], tiers)
        assert _regions_at(chart, chart.marker["x"], chart.marker["y"]) == [tier], (fit, interest)


def test_the_boundaries_are_the_tables_thresholds(tiers):
    chart = axes_chart(_lead(50.0, 50.0), [], tiers)
    assert sorted(label for *_, label in chart.lines) == ["fit 36", "fit 38", "interest 41", "score 50",
                                                           "score 62"]
    assert {region.tier for region in chart.regions} == {tier.name for tier in tiers.tiers}
