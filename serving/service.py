"""The BentoML service: scores for the CRM.

Start it with `bentoml serve` from the project root (bentofile.yaml names this
class) or `leadscore serve`. At start it loads the MLflow `champion` of
`lead-propensity` and opens the Feast store; requests read online features and
explain with the model's own contributions, so nothing is set up per request.
Settings come from $LEADSCORE_CONFIG (default config/leadscore.yaml) and
$LEADSCORE_DATA_DIR.
"""

from __future__ import annotations

from typing import Annotated

import bentoml
from bentoml.exceptions import NotFound
from pydantic import Field

from leadscore.config import load_settings
from leadscore.features.catalog import scoring_specs
from leadscore.features.store import OnlineFeatures, open_store
from leadscore.serving.schemas import ScoreResponse
from leadscore.serving.scorer import Scorer
from leadscore.training.register import load_champion


@bentoml.service(name="leadscore", traffic={"timeout": 30})
class LeadScoring:
    """Lead scores with reasons, from the champion model and online features."""

    def __init__(self) -> None:
        settings = load_settings()
        model, metadata, version = load_champion(settings)
        self.scorer = Scorer(model, metadata, version, scoring_specs(settings),
                             settings.serving.max_reasons)
        self.features = OnlineFeatures(open_store(settings))

    @bentoml.api(route="/score")
    def score(
        self,
        pid: Annotated[str, Field(min_length=1, description="The person to score (One ID PID).")],
    ) -> ScoreResponse:
        """Probability, score, tier, routing and the reasons for one person."""
        features = self.features.read([pid])
        if not bool(features["known"].iloc[0]):
            raise NotFound(f"unknown pid {pid!r}: no features online for it; check the PID "
                           "(see the person table) or run `leadscore features materialize`")
        return self.scorer.score_frame(features)[0]
