"""Score feature rows: probability, score, fit and interest, tier, routing, reasons.

Kept apart from the BentoML service so that scoring is a plain function of a
model, its scoring metadata and a feature frame, with no server in the way.
"""

from __future__ import annotations

import pandas as pd
from sklearn.base import BaseEstimator

from leadscore.config import ScoreSettings
from leadscore.features.catalog import FeatureSpec, phrase
from leadscore.serving.schemas import Reason, Routing, ScoreResponse
from leadscore.training.experiment import FeatureSet, prepare, rule_points, score_parts
from leadscore.training.explain import contributions, top_reasons
from leadscore.training.tiers import assign_tiers, routing_action


class Scorer:
    """Everything needed to turn feature rows into explained scores, built once."""

    def __init__(self, model: BaseEstimator, metadata: dict, version: str,
                 specs: list[FeatureSpec], max_reasons: int = 5):
        self.model = model
        self.metadata = metadata
        self.version = version
        self.features = FeatureSet(metadata["numeric"], metadata["categorical"],
                                   metadata["zero_when_missing"])
        rules = metadata["rules"]
        empty = prepare(pd.DataFrame(columns=["pid", *self.features.all]), self.features)
        self.points = rule_points(rules, empty)
        self.specs: dict[str, FeatureSpec] = {spec.name: spec for spec in specs}
        self.rule_reasons = {r["feature"]: r["reason"] for r in [*rules["fit"], *rules["interest"]]}
        self.score_settings = ScoreSettings(**metadata["score"])
        self.max_reasons = max_reasons

    def _reason(self, feature: str, value: object, impact: float) -> Reason:
        if self.metadata["model_kind"] == "rule_baseline":
            text = self.rule_reasons.get(feature, feature)
        else:
            text = phrase(self.specs[feature], value)
        return Reason(feature=feature, text=text, impact=round(float(impact), 4))

    def score_frame(self, frame: pd.DataFrame) -> list[ScoreResponse]:
        """One response per row of `frame` (columns: pid plus the service's features)."""
        X = prepare(frame, self.features)
        probability = self.model.predict_proba(X)[:, 1]
        parts = score_parts(probability, X, self.points, self.score_settings)
        tiers = assign_tiers(parts, self.metadata["tiers"])
        contrib = contributions(self.model, X)
        return [self._response(frame["pid"].iloc[i], X.iloc[i], probability[i], parts.iloc[i],
                               tiers.iloc[i], contrib.iloc[i]) for i in range(len(X))]

    def _response(self, pid: str, row: pd.Series, probability: float, parts: pd.Series,
                  tier: str, contrib: pd.Series) -> ScoreResponse:
        up, down = top_reasons(contrib, self.max_reasons)
        return ScoreResponse(
            pid=pid, probability=round(float(probability), 6), score=round(float(parts["score"]), 1),
            fit_score=round(float(parts["fit_score"]), 1),
            interest_score=round(float(parts["interest_score"]), 1), tier=tier,
            routing=Routing(**routing_action(tier, self.metadata["tiers"])),
            reasons_up=[self._reason(f, row[f], contrib[f]) for f in up],
            reasons_down=[self._reason(f, row[f], contrib[f]) for f in down],
            model_version=self.version, model_kind=self.metadata["model_kind"],
            horizon_days=int(self.metadata["horizon_days"]))
