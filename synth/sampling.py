"""Small vectorised sampling helpers shared by the generators."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def choice(rng: np.random.Generator, values: Sequence[Any] | np.ndarray, weights: Sequence[float],
           n: int) -> np.ndarray:
    """`n` draws of `values` with relative `weights` (an object array for strings)."""
    p = np.asarray(weights, dtype=float)
    picked = rng.choice(len(values), size=n, p=p / p.sum())
    return np.asarray(values, dtype=object)[picked]



def or_none(keep: ArrayLike, values: ArrayLike) -> np.ndarray:
    """`values` where `keep` holds, None elsewhere (an object array). `np.where(keep, values, None)`,
    which numpy's stubs do not accept."""
    return np.where(keep, values, np.array(None, dtype=object))


def pick_index(rng: np.random.Generator, weights: Sequence[float], n: int) -> np.ndarray:
    p = np.asarray(weights, dtype=float)
    return rng.choice(len(p), size=n, p=p / p.sum())


def rows_choice(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One category per row, each row with its own probability vector (rows of `probs`)."""
    cumulative = np.cumsum(probs / probs.sum(axis=1, keepdims=True), axis=1)
    u = rng.random((probs.shape[0], 1))
    return np.minimum((u > cumulative).sum(axis=1), probs.shape[1] - 1)


def repeat_index(counts: np.ndarray) -> np.ndarray:
    """Owner index of each of `counts.sum()` children: [0, 0, 1, 2, 2, 2] for [2, 1, 3]."""
    return np.repeat(np.arange(counts.size), counts)


def rank_within(groups: np.ndarray) -> np.ndarray:
    """0-based position of each row among the rows of its group, in row order."""
    order = np.argsort(groups, kind="stable")
    sorted_groups = groups[order]
    starts = np.r_[0, np.flatnonzero(sorted_groups[1:] != sorted_groups[:-1]) + 1]
    run = np.repeat(starts, np.diff(np.r_[starts, groups.size]))
    ranks = np.empty(groups.size, dtype=np.int64)
    ranks[order] = np.arange(groups.size) - run
    return ranks


def bernoulli(rng: np.random.Generator, p, n: int) -> np.ndarray:
    return rng.random(n) < p
