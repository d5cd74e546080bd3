"""What a user needs to choose a match threshold for their own table: how the pairs'
probabilities spread, and what each candidate threshold would give (pairs kept, groups,
records grouped, the largest group), computed by the same clustering as the run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from leadscore.identity.probabilistic import ClusterConfig, cluster

THRESHOLDS = (0.5, 0.8, 0.9, 0.95, 0.99, 0.999)
REPORT_COLUMNS = ["threshold", "pairs", "clusters", "records_in_groups", "largest_group"]


def threshold_report(pairs: pd.DataFrame, ids: Sequence[Any], config: ClusterConfig, link: bool,
                     thresholds: Sequence[float] = THRESHOLDS) -> pd.DataFrame:
    """One row per threshold: the pairs at or above it and the clusters they make."""
    rows = []
    for threshold in sorted(thresholds):
        sizes = cluster(pairs, threshold, ids, config, link).groupby("cluster_id").size()
        rows.append({"threshold": threshold, "pairs": int((pairs["match_probability"] >= threshold).sum()),
                     "clusters": len(sizes), "records_in_groups": int(sizes[sizes > 1].sum()),
                     "largest_group": int(sizes.max()) if len(sizes) else 0})
    return pd.DataFrame(rows, columns=REPORT_COLUMNS)


def probability_histogram(pairs: pd.DataFrame, bins: int = 10) -> pd.DataFrame:
    """Pairs per match-probability band (0-0.1, ..., 0.9-1): a threshold is best placed
    in the valley between the non-matches and the matches."""
    edges = np.linspace(0, 1, bins + 1)
    counts, _ = np.histogram(pairs["match_probability"].to_numpy(dtype=float), bins=edges)
    bands = [f"{low:.1f}-{high:.1f}" for low, high in zip(edges[:-1], edges[1:], strict=True)]
    return pd.DataFrame({"pairs": counts}, index=pd.Index(bands, name="match probability"))
