"""A score's reasons told by behaviour: features grouped into the catalog's reason families.

The windows of one behaviour (website visits in the last 7, 30, 90 and 180 days, the last
visit) are collinear, and SHAP splits their joint effect among them, often with opposite
signs: told feature by feature, "7 visits this week" raises a score that "39 visits this
quarter" lowers. Contributions are additive (TreeSHAP, and coefficient x value for a
linear model), so a family's contribution is the exact sum of its features', and the
score's reasons are families, each told once with its most telling numbers. The
per-feature reasons stay available to data scientists (`reasons=feature` on /score).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from leadscore.features.catalog import FeatureSpec

# How many of a family's features a reason mentions: those that moved the score most.
TELLING_FEATURES = 3
DETAILS = ("behaviour", "feature")  # grouped reasons (the default), or one per feature


@dataclass(frozen=True)
class Families:
    """The model's features (in model order) grouped by reason family."""

    names: list[str]
    labels: list[str]
    members: list[list[int]]  # feature positions per family, in model order
    matrix: np.ndarray  # (features, families): 1 where the feature belongs to the family
    feature_names: list[str]

    @classmethod
    def of(cls, feature_names: Sequence[str], specs: Mapping[str, FeatureSpec],
           labels: Mapping[str, str]) -> Families:
        """A feature the catalog does not know, or knows without a family, is its own family."""
        family_of = [(specs[name].family if name in specs else "") or name for name in feature_names]
        names = list(dict.fromkeys(family_of))
        members = [[j for j, family in enumerate(family_of) if family == name] for name in names]
        matrix = np.zeros((len(feature_names), len(names)))
        for k, positions in enumerate(members):
            matrix[positions, k] = 1.0
        return cls(names, [labels.get(name, name.replace("_", " ")) for name in names], members, matrix,
                   list(feature_names))

    def sums(self, contrib: np.ndarray) -> np.ndarray:
        """(rows, families): each family's contribution, the sum of its features'."""
        return contrib @ self.matrix

    def reason(self, family: int, impact: float, row_contrib: np.ndarray,
               text: Callable[[int], str]) -> dict:
        """One family's reason for one row: its label and the phrases of the features that
        moved this score most (told in model order, so windows read shortest first); a family
        of one feature is that feature's phrase alone."""
        by_strength = sorted(self.members[family], key=lambda j: -abs(row_contrib[j]))
        telling = sorted(j for j in by_strength[:TELLING_FEATURES] if row_contrib[j] != 0) or by_strength[:1]
        told = "; ".join(text(j) for j in telling)
        alone = len(self.members[family]) == 1
        return {"feature": self.feature_names[by_strength[0]], "family": self.names[family],
                "features": [self.feature_names[j] for j in telling],
                "label": told if alone else self.labels[family],
                "text": told if alone else f"{self.labels[family]}: {told}", "impact": impact}
