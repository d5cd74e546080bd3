"""An account's people's scores: the references the account model is measured against, and the
offset of the stacked account model (issue 16).

From a lead model's probabilities of a company's people at the same snapshot: "max of its
people's scores" (the account goal's baseline) and "any of its people", 1 - prod(1 - p), the
chance that at least one of them converts were they independent. The stacked account model
(training/experiment.py's `stacked` candidate, `TreesPlusOffset`) adds the log-odds of "any of
its people" to the raw score of LightGBM trees fit on the company's own features; its sigmoid
calibration on the validation window weighs the sum. The trees never read the people's scores,
so only the validation and test windows need them: there they are the **lead champion's**, fit on
the training window, which ends a label horizon before the validation window starts
(dataset.split_by_time), so they are out of sample for every row they are read on. (The champion
was stopped early and calibrated on the validation window's people: the stacked candidate's
validation figures, on which it is chosen, may be slightly flattering; the test window's are
not.) The training window's rows carry none (NaN). One prediction of the champion per person
row of the two windows: seconds, where cross-fitting lead models for the training window's rows
took most of twenty minutes.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from leadscore.features.catalog import PEOPLE_SCORES
from leadscore.scoring.prepare import prepare_for
from leadscore.scoring.spec import ScoringSpec
from leadscore.training.experiment import Experiment

log = logging.getLogger(__name__)
EDGE = 1e-4  # the log-odds of "any of its people" are taken of p clipped to [EDGE, 1 - EDGE]
PEOPLE_ANY = PEOPLE_SCORES.name  # the account row's "any of its people" (the stacked model's offset)
KEYS = ["cid", "event_timestamp"]


def people_max(accounts: pd.DataFrame, people: pd.DataFrame, probability) -> np.ndarray:
    """Each account row's baseline: the highest lead probability among its people at the same
    snapshot (0 where none of them is a lead then)."""
    best = people.assign(p=probability).groupby(KEYS)["p"].max()
    return accounts.join(best, on=KEYS)["p"].fillna(0.0).to_numpy()


def people_any(accounts: pd.DataFrame, people: pd.DataFrame, probability) -> np.ndarray:
    """Each account row's chance that at least one of its people converts, were they
    independent: 1 - prod(1 - p) over its leads at the same snapshot (0 where none)."""
    missed = people.assign(q=np.log1p(-np.minimum(probability, 1 - 1e-12)))
    total = missed.groupby(KEYS)["q"].sum()
    return 1 - np.exp(accounts.join(total, on=KEYS)["q"].fillna(0.0).to_numpy())


def people_scores(lead: Experiment, champion: tuple[BaseEstimator, ScoringSpec]
                  ) -> tuple[pd.DataFrame, np.ndarray]:
    """Every person row of the lead experiment's validation and test windows (pid, cid,
    event_timestamp) and its lead probability by the lead champion (`champion`: its model and
    spec), fit on the training window before them."""
    model, spec = champion
    later = (lead.split.validation, lead.split.test)
    log.info("the account's people: the lead champion scores %d person rows", sum(map(len, later)))
    people = pd.concat([part[["pid", *KEYS]] for part in later], ignore_index=True)
    return people, np.concatenate([model.predict_proba(prepare_for(part, spec))[:, 1] for part in later])


def with_people_any(accounts: pd.DataFrame, people: pd.DataFrame, probability: np.ndarray) -> pd.DataFrame:
    """The account rows with "any of its people" (`PEOPLE_ANY`) at the snapshots `people` covers
    (0 for a company none of whose people is a lead then), NaN before them (the training window,
    whose trees do not read it)."""
    chance = people_any(accounts, people, probability)
    covered = accounts["event_timestamp"] >= people["event_timestamp"].min()
    return accounts.assign(**{PEOPLE_ANY: np.where(covered, chance, np.nan)})
