"""One monitoring report at the clock's now: matured performance per model version, drift,
operations and the breaches, from what monitoring/inputs.py read. Pure: no I/O here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from leadscore.config import Settings
from leadscore.live.score_log import INGEST
from leadscore.monitoring.alerts import (
    Breach,
    arrival_breaches,
    drift_breaches,
    early_breaches,
    model_breaches,
    operations_breaches,
)
from leadscore.monitoring.arrivals import arrival_watch
from leadscore.monitoring.cohorts import matured_cohorts
from leadscore.monitoring.drift import DRIFT_COLUMNS, feature_drift, psi
from leadscore.monitoring.early import EARLY_COLUMNS, conversion_delays, delay_share, early_outcomes
from leadscore.monitoring.inputs import Inputs
from leadscore.monitoring.metrics import (
    cohort_metrics,
    conversion_by_decile,
    reliability_bins,
    tier_conversion,
)
from leadscore.monitoring.operations import disposition_counts, quarantine_counts


@dataclass
class Report:
    at: datetime
    horizon_days: int
    champion: str | None
    models: dict[str, dict]                 # cohort_metrics: per model version
    reliability: dict[str, pd.DataFrame]    # per model version: predicted, observed, rows
    deciles: dict[str, pd.DataFrame]        # per model version: conversion by score decile
    tiers: dict[str, pd.DataFrame]          # per model version: conversion by tier
    drift: pd.DataFrame                     # per feature (monitoring/drift.py DRIFT_COLUMNS)
    score_psi: float | None
    operations: dict
    breaches: list[Breach]
    posted: list[str] = field(default_factory=list)  # breach keys posted to the alert webhook now
    early: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=EARLY_COLUMNS))
    delay_source: str = "uniform"           # F of the early outcomes: `matured` or `uniform`
    arrivals: dict = field(default_factory=dict)  # monitoring/arrivals.py `arrival_watch`
    drift_wait_days: float | None = None    # drift not judged yet: days of served traffic to wait
    drift_building: str | None = None       # drift not judged yet: this hour of the week's reference is built

    def to_json(self) -> dict:
        """The report as one JSON-ready object (`leadscore monitor --json`)."""
        return {"at": self.at.isoformat(), "horizon_days": self.horizon_days, "champion": self.champion,
                "models": self.models,
                "reliability": {v: _records(t) for v, t in self.reliability.items()},
                "deciles": {v: _records(t) for v, t in self.deciles.items()},
                "tiers": {v: _records(t) for v, t in self.tiers.items()},
                "drift": {"score_psi": self.score_psi, "features": _records(self.drift),
                          "wait_days": self.drift_wait_days, "building": self.drift_building},
                "operations": self.operations,
                "breaches": [vars(b) for b in self.breaches], "posted": self.posted,
                "early": {"delay_source": self.delay_source, "rows": _records(self.early)},
                "arrivals": self.arrivals}


def _records(frame: pd.DataFrame) -> list[dict]:
    """A frame's rows as dicts, NaN as None (JSON has no NaN)."""
    return [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
            for row in frame.astype(object).to_dict("records")]


def operations_of(inputs: Inputs) -> dict:
    return {"webhook": inputs.outbox, "dispositions": disposition_counts(inputs.dispositions),
            "ingest": quarantine_counts(inputs.records)}


def drift_of(inputs: Inputs, bins: int) -> tuple[pd.DataFrame, float | None]:
    """Per-feature drift and the score's PSI (the champion's latest score of each person an
    ingest scored in the window); empty and None without both populations."""
    features = pd.DataFrame(columns=DRIFT_COLUMNS)
    champion = inputs.champion
    if champion is not None and inputs.reference is not None and inputs.current is not None:
        spec = champion.spec
        features = feature_drift(inputs.reference, inputs.current, spec.features.numeric,
                                 spec.features.categorical, spec.levels, bins)
    scores = inputs.scores
    recent = scores[(scores["at"] >= pd.Timestamp(inputs.since)) & (scores["trigger"] == INGEST)]
    if inputs.reference_scores is None or recent.empty:
        return features, None
    return features, psi(inputs.reference_scores, recent.groupby("pid").tail(1)["score"], bins)


def per_version(matured: pd.DataFrame, tier_order: list[str], bins: int
                ) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """Conversion by score decile and by tier of each model version's matured rows."""
    deciles, tiers = {}, {}
    for version, rows in matured.groupby("model_version", sort=True):
        deciles[str(version)] = conversion_by_decile(rows["converted"].to_numpy(),
                                                     rows["probability"].to_numpy(), bins)
        tiers[str(version)] = tier_conversion(rows, tier_order)
    return deciles, tiers


def early_of(inputs: Inputs, matured: pd.DataFrame, settings: Settings) -> tuple[pd.DataFrame, str]:
    """The early outcomes (monitoring/early.py) at `inputs.now`, and where F came from."""
    config, horizon, target = settings.monitoring, settings.training.horizon_days, settings.training.target
    share, source = delay_share(conversion_delays(matured, inputs.labels, target), horizon,
                                config.early_min_delays)
    return early_outcomes(inputs.scores, inputs.labels, share, inputs.now, horizon, config.early_windows_days,
                          config.early_confidence, target), source


def arrivals_of(inputs: Inputs, settings: Settings) -> dict:
    """The arrivals' watch (monitoring/arrivals.py) at `inputs.now`: the live history starts at
    the first score served."""
    since = inputs.scores["at"].min() if len(inputs.scores) else None
    return arrival_watch(inputs.labels["opportunity_created_at"], inputs.now, since,
                         settings.monitoring.arrivals)


def build_report(inputs: Inputs, settings: Settings) -> Report:
    """Every figure at `inputs.now`, and the breaches of `monitoring.thresholds`."""
    config, horizon = settings.monitoring, settings.training.horizon_days
    matured = matured_cohorts(inputs.scores, inputs.labels, inputs.now, horizon, settings.training.target)
    models = cohort_metrics(matured, config.bins)
    order = inputs.champion.spec.tiers.best_first if inputs.champion is not None else []
    deciles, tiers = per_version(matured, order, config.bins)
    drift, score_psi = drift_of(inputs, config.psi_bins)
    operations = operations_of(inputs)
    early, delay_source = early_of(inputs, matured, settings)
    arrivals = arrivals_of(inputs, settings)
    limits = config.thresholds
    breaches = [*model_breaches(models, limits, config.min_matured),
                *drift_breaches(drift.to_dict("records"), score_psi, limits),
                *early_breaches(early.to_dict("records"), limits),
                *arrival_breaches(arrivals, limits),
                *operations_breaches(operations, limits)]
    return Report(inputs.now, horizon, inputs.champion.version if inputs.champion else None, models,
                  reliability_bins(matured, config.bins), deciles, tiers, drift, score_psi, operations,
                  breaches, early=early, delay_source=delay_source, arrivals=arrivals,
                  drift_wait_days=inputs.drift_wait_days, drift_building=inputs.drift_building)
