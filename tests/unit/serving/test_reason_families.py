"""Reason families: which features a family's reason tells, picked for all rows at once,
against the plain rule row by row."""

from __future__ import annotations

import numpy as np
import pytest

from leadscore.features.catalog import FeatureSpec
from leadscore.serving.reasons import TELLING_FEATURES, Families

# Families interleaved in model order, one of five members, one alone, one of two.
FAMILY_OF = ["web", "email", "web", "web", "role", "email", "web", "web", "email"]
NAMES = [f"f{j}" for j in range(len(FAMILY_OF))]
SPECS = {name: FeatureSpec(name, "float", name, family=family)
         for name, family in zip(NAMES, FAMILY_OF, strict=True)}


def told_row_by_row(members: list[int], row: np.ndarray) -> tuple[list[int], int]:
    """The rule: the family's strongest features (ties in model order), those that moved the
    score, in model order; the strongest alone when none moved it."""
    by_strength = sorted(members, key=lambda j: -abs(row[j]))
    telling = sorted(j for j in by_strength[:TELLING_FEATURES] if row[j] != 0) or by_strength[:1]
    return telling, by_strength[0]


def test_telling_features_for_all_rows_match_the_rule_row_by_row():
    families = Families.of(NAMES, SPECS, {})
    rng = np.random.default_rng(7)
    contrib = rng.choice([-0.5, -0.1, 0.0, 0.1, 0.3], size=(500, len(NAMES)))  # zeros and ties
    contrib[:50] = 0.0  # rows where nothing moved the score
    masks, strongest = families.telling(contrib)
    assert masks.shape == strongest.shape == (500, 3)
    for i, row in enumerate(contrib):
        for k, members in enumerate(families.members):
            telling, first = told_row_by_row(members, row)
            assert list(families.told_features(k, int(masks[i, k]))[0]) == telling, (i, k)
            assert strongest[i, k] == first, (i, k)


def test_one_row_is_told_like_the_same_row_in_a_batch():
    families = Families.of(NAMES, SPECS, {})
    contrib = np.random.default_rng(1).normal(size=(20, len(NAMES)))
    masks, strongest = families.telling(contrib)
    for i in range(20):
        one_masks, one_strongest = families.telling(contrib[i:i + 1])
        assert (one_masks[0] == masks[i]).all() and (one_strongest[0] == strongest[i]).all()


def test_a_reason_reads_its_label_then_its_phrases_and_a_lone_feature_its_phrase_alone():
    families = Families.of(NAMES, SPECS, {"web": "website"})
    web, role = families.names.index("web"), families.names.index("role")
    assert families.told(web, [0, 2], ["7 visits", "39 visits"])["text"] == "website: 7 visits; 39 visits"
    alone = families.told(role, [4], ["a director"])
    assert (alone["label"], alone["text"], alone["features"]) == ("a director", "a director", ["f4"])


def test_a_family_too_large_to_tell_is_refused_with_what_to_change():
    names = [f"g{j}" for j in range(63)]
    with pytest.raises(ValueError, match="more than 62 features.*features.yaml"):
        Families.of(names, {name: FeatureSpec(name, "float", name, family="all") for name in names}, {})
