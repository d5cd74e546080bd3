"""An account's people's scores: the references the account model is measured against, and the
start of the stacked account model (issue 16).

From a lead model's probabilities of a company's people at the same snapshot: "max of its
people's scores" (the account goal's baseline) and "any of its people", 1 - prod(1 - p), the
chance that at least one of them converts were they independent. The stacked account model
(training/experiment.py's `stacked` candidate) starts each company row from the log-odds of
"any of its people" and boosts the company's own features on top of it. Its people's scores are
out of sample for every row it learns from or is measured on:

- training window: a person's score comes from a lead model fit on the training window's people
  of the *other* companies (`company_folds`: folds by company), stopped early and calibrated on
  the validation window as the champion is, so no score in a company's row was fit on that
  company's labels, or its people's, in any window;
- validation and test windows: the lead champion, fit on the training window, which ends a label
  horizon before the validation window starts (dataset.split_by_time). (It was also stopped
  early and calibrated on the validation window: the stacked candidate's validation figures,
  on which it is chosen, are slightly flattering; the test window's are not.)
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.model_selection import GroupKFold

from leadscore.config import Settings
from leadscore.features.catalog import PEOPLE_SCORES
from leadscore.scoring.prepare import prepare_for
from leadscore.scoring.spec import ScoringSpec
from leadscore.training.experiment import Experiment, Inputs, calibrate, candidates, fit_model, guarded_inputs

log = logging.getLogger(__name__)
FOLDS = 3  # lead models fit for the training window's out-of-fold scores
EDGE = 1e-4  # the log-odds of "any of its people" are taken of p clipped to [EDGE, 1 - EDGE]
PEOPLE_ANY = PEOPLE_SCORES.name  # the account row's column of "any of its people" (the stacked model's start)
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


def company_folds(people: pd.DataFrame, folds: int = FOLDS) -> list[tuple[np.ndarray, np.ndarray]]:
    """(fit rows, scored rows) by position: every company's people (all their snapshots) fall in
    one scored part and in no fit part beside it; a person without a company is a group alone."""
    groups = people["cid"].fillna(people["pid"]).to_numpy()
    return list(GroupKFold(folds).split(people, groups=groups))


def cross_fitted_people(lead: Inputs, train: pd.DataFrame, settings: Settings) -> np.ndarray:
    """Out-of-fold lead probabilities of the training window's people (rows of `train`, whose
    model inputs are `lead.X["train"]`): each fold's LightGBM fit on the other companies, stopped
    early and calibrated on the validation window, as the champion is."""
    X, y = lead.X, lead.y
    scores = np.zeros(len(train))
    for fit_rows, scored_rows in company_folds(train):
        model = candidates(None, lead.features, settings.training.lightgbm)["lightgbm"]
        fitted = fit_model(model, X["train"].iloc[fit_rows], y["train"][fit_rows], X["validation"],
                           y["validation"])
        scores[scored_rows] = calibrate(fitted, X["validation"], y["validation"]).predict_proba(
            X["train"].iloc[scored_rows])[:, 1]
    return scores


def people_scores(lead: Experiment, champion: tuple[BaseEstimator, ScoringSpec], settings: Settings
                  ) -> tuple[pd.DataFrame, np.ndarray]:
    """Every person row of the lead experiment's three windows (pid, cid, event_timestamp) and its
    out-of-sample lead probability: cross-fitted by company on the training window, the lead
    champion's (`champion`: its model and spec) on the validation and test windows."""
    split = lead.split
    model, spec = champion
    log.info("the account's people: cross-fitting %d lead models by company on %d training rows",
             FOLDS, len(split.train))
    later = (split.validation, split.test)
    scores = [cross_fitted_people(guarded_inputs(lead, settings), split.train, settings),
              *(model.predict_proba(prepare_for(part, spec))[:, 1] for part in later)]
    people = pd.concat([part[["pid", *KEYS]] for part in (split.train, split.validation, split.test)],
                       ignore_index=True)
    return people, np.concatenate(scores)
