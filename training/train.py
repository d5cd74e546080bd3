"""Train on the Feast training set: point-in-time snapshots of people, labelled by what
came next, through the shared experiment (training/experiment.py)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import datetime

import pandas as pd

from leadscore.config import BacktestSettings, RetrainSettings, Settings, load_typed
from leadscore.features.catalog import fit_feature_names, scoring_specs
from leadscore.features.store import FEATURE_SERVICE, historical_features
from leadscore.scoring.spec import FeatureSet, RuleSet, TierTable
from leadscore.training import register
from leadscore.training.backtest import Backtest, backtest
from leadscore.training.dataset import data_hash, labelled_entities, snapshot_times, split_by_time
from leadscore.training.experiment import Experiment, Outcome, run_experiment
from leadscore.training.windows import window_times

log = logging.getLogger(__name__)


def feature_set(settings: Settings) -> FeatureSet:
    specs = scoring_specs(settings)
    return FeatureSet(numeric=[s.name for s in specs if s.dtype != "string"],
                      categorical=[s.name for s in specs if s.dtype == "string"],
                      zero_when_missing=[s.name for s in specs if s.zero_when_missing])


def identity_graph_version(settings: Settings) -> str:
    """A fingerprint of the identity graph the features came from (the id_map)."""
    import duckdb

    with duckdb.connect(str(settings.middle_db), read_only=True) as con:
        row = con.execute("SELECT count(*), sum(hash(source, source_record_id, pid)) FROM id_map").fetchone()
    return hashlib.sha256(repr(row).encode()).hexdigest()[:16]


def training_frame(settings: Settings, store, manifest: dict, until: datetime | None = None,
                   live_outcomes: pd.DataFrame | None = None, window: RetrainSettings | None = None
                   ) -> pd.DataFrame:
    """Snapshots whose horizon has passed by `until` (default: the feature clock), in the
    training `window` (default: all), labelled by the batch's outcomes and `live_outcomes`
    (live/labels.py), with their point-in-time features. A window with
    `partial_labels_min_days` adds the snapshots observed that long, labelled by what is
    known at `until` (training/windows.py)."""
    if settings.training.snapshot_every_days % manifest["step_days"]:
        raise ValueError(f"training.snapshot_every_days ({settings.training.snapshot_every_days}) must "
                         f"be a multiple of the feature step ({manifest['step_days']} days)")
    until = until or manifest["as_of"]
    partial = window.partial_labels_min_days if window is not None else None
    times = snapshot_times(manifest["start"], until, settings.training, partial)
    if window is not None:
        times = window_times(times, window)
    entities = labelled_entities(settings.middle_db, times, settings.training.horizon_days,
                                 settings.training.target, settings.training.exclude_customers,
                                 live_outcomes, known_at=until if partial else None)
    log.info("%d snapshots, %d rows, positive rate %.3f", len(times), len(entities),
             entities["label"].mean())
    return historical_features(store, entities)


ScoringConfig = tuple[RuleSet, TierTable]


def scoring_config(settings: Settings) -> ScoringConfig:
    """The rule points and the tier table, typed; a broken file is a ValueError naming it."""
    return (load_typed(settings.config_file(settings.training.rules_file), RuleSet),
            load_typed(settings.config_file(settings.training.tiers_file), TierTable))


def lead_experiment(settings: Settings, frame: pd.DataFrame, config: ScoringConfig | None = None,
                    half_life_days: float | None = None) -> Experiment:
    """The lead-propensity experiment on a Feast training frame (with the rules and tiers
    of `config`, else those of the settings' files; recency-weighted with `half_life_days`)."""
    rules, tiers = config or scoring_config(settings)
    config_files = [settings.config_file(name) for name in (
        "leadscore.yaml", settings.training.rules_file, settings.training.tiers_file, "features.yaml")]
    return Experiment(
        name=register.EXPERIMENT, registered_model=settings.training.registered_model,
        split=split_by_time(frame, settings.training), features=feature_set(settings),
        rules=rules, tiers=tiers, entity="pid",
        horizon_days=settings.training.horizon_days, feature_service=FEATURE_SERVICE,
        about={"target": settings.training.target},
        tags={"git_commit": register.git_commit(settings.root), "feature_service": FEATURE_SERVICE,
              "training_data_hash": data_hash(frame),
              "identity_graph_version": identity_graph_version(settings)},
        config_files=config_files, half_life_days=half_life_days, fit_features=fit_feature_names(settings))


def train(settings: Settings, store, manifest: dict, config: ScoringConfig | None = None,
          frame: pd.DataFrame | None = None) -> Outcome:
    """Train, evaluate and log every candidate on the Feast training set (`frame`, built when not
    given); register the best. The rules and tiers are read (and checked) before the training set
    is built."""
    config = config or scoring_config(settings)
    frame = training_frame(settings, store, manifest) if frame is None else frame
    return run_experiment(lead_experiment(settings, frame, config), settings)


def backtest_leads(settings: Settings, store, manifest: dict, options: BacktestSettings,
                   on_period: Callable[[int, int], None] | None = None
                   ) -> tuple[Backtest, str, pd.DataFrame]:
    """Rolling-origin backtest of the lead model over the snapshots of the Feast training set
    (a label horizon apart), logged to MLflow: (result, run id, the training set)."""
    frame = training_frame(settings, store, manifest)
    gap = pd.Timedelta(days=settings.training.horizon_days)
    result, run_id = backtest(frame, lead_experiment(settings, frame), settings, options, gap, on_period)
    return result, run_id, frame
