"""The account model: the chance that a company (CID) opens an opportunity within the horizon.

Trained like the lead model (training/experiment.py: leakage guard, logistic regression and
LightGBM, sigmoid calibration, tiers fitted on the validation window, MLflow, registry), on
company snapshots at the lead model's snapshot times, with the features of the feature
service `account_scoring_v1` (the company's profile and its buying committee) read point in
time from Feast. It is registered under its own name (`training.account.registered_model`)
with its own `champion`. There is no rule baseline: the hand-written points are a person's.
Beside logistic regression and LightGBM, a third candidate, `stacked`, adds to LightGBM's raw
score on the company's features the log-odds of its people's scores by the lead champion ("any of
its people", training/account_people.py); the one best on the validation window is registered,
as for the lead model. Without a lead champion, or with `training.account.stacked_candidate` off,
there is no stacked candidate.

A snapshot at t holds every company known before t (one of its people identified and linked
to it before t) with no open opportunity at t (and, with `exclude_customers`, no deal won by
t); its label is 1 if any opportunity of the company is created in (t, t + horizon] (with
`target: won`, won in it).
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd

from leadscore.config import Settings, load_typed
from leadscore.features.catalog import account_scoring_specs
from leadscore.features.store import ACCOUNT_FEATURE_SERVICE, historical_features
from leadscore.scoring.registry import load_champion, load_version, use_store
from leadscore.scoring.spec import FeatureSet, Offset, TierTable
from leadscore.training import register
from leadscore.training.account_people import EDGE, PEOPLE_ANY, people_scores, with_people_any
from leadscore.training.dataset import data_hash, label_sql, outcomes_sql, snapshot_times, split_by_time
from leadscore.training.experiment import Experiment, Outcome, run_experiment, window_label
from leadscore.training.train import lead_experiment, training_frame

log = logging.getLogger(__name__)
EXPERIMENT = "account-propensity"  # the MLflow experiment of the account model's runs


def account_feature_set() -> FeatureSet:
    specs = account_scoring_specs()
    return FeatureSet(numeric=[s.name for s in specs if s.dtype != "string"],
                      categorical=[s.name for s in specs if s.dtype == "string"],
                      zero_when_missing=[s.name for s in specs if s.zero_when_missing])


def labelled_accounts(middle_db: Path, times: list[datetime], horizon_days: int,
                      target: str = "opportunity", exclude_customers: bool = False) -> pd.DataFrame:
    """(cid, event_timestamp, label) for every eligible company at every snapshot time: the
    lead model's label and eligibility (training/dataset.py's `label_sql`) keyed by company."""
    label, eligible = label_sql("k.cid", "k.cid", target, horizon_days, exclude_customers)
    snapshots = pd.DataFrame({"t": pd.to_datetime(times, utc=True).astype("datetime64[us, UTC]")})
    with duckdb.connect(str(middle_db), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        con.register("snapshots", snapshots)
        return con.execute(f"""
            WITH outcomes AS ({outcomes_sql(live=False)}), known AS (
                SELECT cid, min(greatest(identified_at, company_known_at)) AS known_at
                FROM person WHERE cid IS NOT NULL AND company_known_at IS NOT NULL GROUP BY cid)
            SELECT k.cid, s.t AS event_timestamp, {label}
            FROM known k JOIN snapshots s ON k.known_at < s.t
            WHERE {eligible}
            ORDER BY s.t, k.cid""").df()


def account_frame(settings: Settings, store, manifest: dict) -> pd.DataFrame:
    """Company snapshots whose horizon has passed by the feature clock, labelled, with their
    point-in-time features from `account_scoring_v1`."""
    times = snapshot_times(manifest["start"], manifest["as_of"], settings.training)
    entities = labelled_accounts(settings.middle_db, times, settings.training.horizon_days,
                                 settings.training.target, settings.training.exclude_customers)
    log.info("accounts: %d snapshots, %d rows, positive rate %.3f", len(times), len(entities),
             entities["label"].mean())
    return historical_features(store, entities, service_name=ACCOUNT_FEATURE_SERVICE)


def account_settings(settings: Settings) -> Settings:
    """The settings the shared experiment reads, with the account model's name and LightGBM."""
    account = settings.training.account
    training = settings.training.model_copy(update={"registered_model": account.registered_model,
                                                    "lightgbm": account.lightgbm})
    return settings.model_copy(update={"training": training})


def with_people_scores(settings: Settings, frame: pd.DataFrame, lead_frame: pd.DataFrame,
                       lead_version: str | None = None) -> tuple[pd.DataFrame, Offset | None]:
    """The company frame with its people's chance (`people_any`: a lead model's scores of the
    lead training frame's people, on the validation and test windows), and what the stacked
    candidate's spec tells of it; with the candidate off (`training.account.stacked_candidate`)
    or no lead model to read, the frame as it is and None. The lead model is `lead_version`,
    the one `leadscore train` has just fit on this very split (champion or not); without it,
    the lead champion, unless it may have seen the windows' labels (`maybe_in_sample`)."""
    if not settings.training.account.stacked_candidate:
        return frame, None
    lead = lead_experiment(settings, lead_frame)
    try:
        if lead_version is not None:
            model, spec, version = load_version(settings, lead_version)
        else:
            model, spec, version = load_champion(settings)
            tags = use_store(settings).get_model_version(settings.training.registered_model, version).tags
            if (reason := maybe_in_sample(version, tags, window_label(lead.split.test))) is not None:
                raise LookupError("the lead champion's scores of the validation and test windows "
                                  f"could be in sample: {reason}")
    except LookupError as error:
        log.warning("no stacked account candidate: %s", error)
        return frame, None
    people, probability = people_scores(lead, (model, spec))
    offset = Offset(column=PEOPLE_ANY, lead_model=settings.training.registered_model, lead_version=version,
                    edge=EDGE, reference=0.0)
    return with_people_any(frame, people, probability), offset


def maybe_in_sample(version: str, tags: dict[str, str], test_window: str) -> str | None:
    """Why the lead champion `version` (its registry `tags`) may have seen the labels of this
    run's validation or test window (None when it cannot have): refit on every labelled
    snapshot (`leadscore retrain`), or tested on another window than this run's lead split's
    `test_window` (trained on another split)."""
    if tags.get("refit") == "true":
        return f"version {version} was refit on every labelled snapshot (`leadscore retrain`)"
    if tags.get("test_window") != test_window:
        return (f"version {version} was tested on {tags.get('test_window')}, this run's lead split on "
                f"{test_window}: run `leadscore train` so that its lead model is champion")
    return None


def account_experiment(settings: Settings, frame: pd.DataFrame, offset: Offset | None = None) -> Experiment:
    """The account-propensity experiment on a company training frame (with `offset`, its column
    in the frame: the stacked candidate too)."""
    account = settings.training.account
    tiers = load_typed(settings.config_file(account.tiers_file), TierTable)
    split = split_by_time(frame, settings.training)
    if offset is not None:
        _check_people_cover(split, offset.column)
    return Experiment(
        name=EXPERIMENT, registered_model=account.registered_model,
        split=split, features=account_feature_set(),
        rules=None, tiers=tiers, entity="cid", horizon_days=settings.training.horizon_days,
        feature_service=ACCOUNT_FEATURE_SERVICE, about={"target": settings.training.target, "entity": "cid"},
        tags={"git_commit": register.git_commit(settings.root), "feature_service": ACCOUNT_FEATURE_SERVICE,
              "training_data_hash": data_hash(frame)},
        config_files=[settings.config_file(name) for name in ("leadscore.yaml", account.tiers_file)],
        offset=offset)


def _check_people_cover(split, column: str) -> None:
    """The people's chance is known on every validation and test row: a lead split that does not
    line up with the account split would leave NaN there, which the calibration turns into a
    constant model without a word."""
    missing = {name: int(part[column].isna().sum())
               for name, part in (("validation", split.validation), ("test", split.test))}
    if any(missing.values()):
        raise ValueError(f"the people's scores miss account rows ({missing}): the lead and account "
                         "training frames must share their snapshots")


def stacked_experiment(settings: Settings, store, manifest: dict, lead_frame: pd.DataFrame | None = None,
                       lead_version: str | None = None) -> Experiment:
    """The account experiment with its people's scores (for the stacked candidate) by the lead
    model `lead_version` (`with_people_scores`), read from `lead_frame` (the lead model's
    training frame; built when not given)."""
    if lead_frame is None:
        lead_frame = training_frame(settings, store, manifest)
    frame, offset = with_people_scores(settings, account_frame(settings, store, manifest), lead_frame,
                                       lead_version)
    return account_experiment(account_settings(settings), frame, offset)


def train_accounts(settings: Settings, store, manifest: dict, lead_frame: pd.DataFrame | None = None,
                   lead_version: str | None = None) -> Outcome:
    """Train, evaluate and log the account model's candidates; register the one best on the
    validation window. `lead_version`: the lead model just trained on `lead_frame`."""
    experiment = stacked_experiment(settings, store, manifest, lead_frame, lead_version)
    return run_experiment(experiment, account_settings(settings))
