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

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

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
    _family_at: np.ndarray  # (features,): each feature's family
    _member_bit: np.ndarray  # (features,): 1 << the feature's place among its family's members
    _places: np.ndarray  # 0 .. features - 1
    _family_starts: np.ndarray  # (families,): where each family begins in a row sorted by family
    _telling_places: np.ndarray  # the places of a row sorted by family that can tell a reason
    _telling_starts: np.ndarray  # (families,): where each family begins among those places
    _picked: dict[tuple[int, int], tuple[tuple[int, ...], Callable]] = field(
        default_factory=dict, repr=False, compare=False)

    @classmethod
    def of(cls, feature_names: Sequence[str], specs: Mapping[str, FeatureSpec],
           labels: Mapping[str, str]) -> Families:
        """A feature the catalog does not know, or knows without a family, is its own family."""
        family_of = [(specs[name].family if name in specs else "") or name for name in feature_names]
        names = list(dict.fromkeys(family_of))
        members = [[j for j, family in enumerate(family_of) if family == name] for name in names]
        too_large = [name for name, positions in zip(names, members, strict=True) if len(positions) > 62]
        if too_large:  # a reason's telling features are bits of one int64
            raise ValueError(f"reason families {too_large} have more than 62 features: split them "
                             "in config/features.yaml (a reason tells a few features, not dozens)")
        family_at = np.zeros(len(feature_names), dtype=np.int64)
        member_bit = np.zeros(len(feature_names), dtype=np.int64)
        for k, positions in enumerate(members):
            family_at[positions] = k
            member_bit[positions] = np.left_shift(1, np.arange(len(positions)))
        sizes = np.array([len(positions) for positions in members])
        told = np.minimum(sizes, TELLING_FEATURES)
        family_starts = _starts(sizes)
        telling_places = np.concatenate([start + np.arange(n)
                                         for start, n in zip(family_starts, told, strict=True)])
        return cls(names, [labels.get(name, name.replace("_", " ")) for name in names], members,
                   (family_at[:, None] == np.arange(len(names))).astype(float), list(feature_names),
                   family_at, member_bit, np.arange(len(feature_names)), family_starts, telling_places,
                   _starts(told))

    def sums(self, contrib: np.ndarray) -> np.ndarray:
        """(rows, families): each family's contribution, the sum of its features'."""
        return contrib @ self.matrix

    def telling(self, contrib: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Which features each row's reason of each family tells, for all rows at once:
        (rows, families) bit masks over the family's members (bit b: its b-th member) of the
        TELLING_FEATURES that moved the score most, those with a contribution (the strongest
        alone when none has), and (rows, families) the position of the strongest feature.
        Each row is sorted by strength (stable: ties keep model order), then by family: a
        family's members then sit at the same places in every row, strongest first. A few
        array operations whatever the number of families, cheap for the one row of a /score."""
        strength = np.abs(contrib)
        rank = np.empty(contrib.shape, dtype=np.int64)
        np.put_along_axis(rank, np.argsort(-strength, axis=1, kind="stable"), self._places, axis=1)
        grouped = np.argsort(self._family_at * contrib.shape[1] + rank, axis=1)  # features by family
        telling = grouped[:, self._telling_places]
        moved = np.take_along_axis(strength, telling, axis=1) != 0
        masks = np.add.reduceat(self._member_bit[telling] * moved, self._telling_starts, axis=1)
        strongest = grouped[:, self._family_starts]
        return np.where(masks == 0, self._member_bit[strongest], masks), strongest

    def told_features(self, family: int, mask: int) -> tuple[tuple[int, ...], Callable[[Sequence], object]]:
        """The feature positions a mask of `telling` picks, in model order (windows shortest
        first), and a getter of their values from a row (a key for the reason's words)."""
        key = (family, mask)
        if key not in self._picked:  # a few masks per family: at most 3 of its members each
            positions = tuple(j for b, j in enumerate(self.members[family]) if mask >> b & 1)
            self._picked[key] = positions, operator.itemgetter(*positions)
        return self._picked[key]

    def told(self, family: int, telling: Sequence[int], phrases: Sequence[str]) -> dict:
        """A family's reason: its label and its telling features' phrases, each said once (two
        features unknown for one cause read the same: "no marketing emails sent"); a family of
        one feature is that feature's phrase alone."""
        text = "; ".join(dict.fromkeys(phrases))
        alone = len(self.members[family]) == 1
        return {"family": self.names[family], "features": [self.feature_names[j] for j in telling],
                "label": text if alone else self.labels[family],
                "text": text if alone else f"{self.labels[family]}: {text}"}


def _starts(sizes: np.ndarray) -> np.ndarray:
    """Where each of consecutive blocks of these sizes begins."""
    return np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
