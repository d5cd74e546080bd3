"""The account model against its people's scores: the references, and a stacked account model.

References, from a lead model's probabilities of a company's people at the same snapshot:
"max of its people's scores" (the goal's baseline) and "any of its people", 1 - prod(1 - p).

The stacked study (issue 16): an account model that reads its people's out-of-sample lead
scores. LightGBM starts each company row from the log-odds of "any of its people"
(`init_score`) and boosts the company's own features on top of it (early stopping on the
validation window), then a sigmoid calibration on the validation window. Its people's scores are
out of sample for every row it learns from or is measured on:

- training window: a person's score comes from a lead model fit on the training window's people
  of the *other* companies (`company_folds`: folds by company), so no score in a company's row
  was fit on that company's labels, in any window;
- validation and test windows: the lead champion of the same run, fit on the training window,
  which ends a label horizon before the validation window starts (dataset.split_by_time).

It is measured here, not served: serving it would score a company's people with the lead
champion on each account request (README "Accounts").
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from lightgbm import early_stopping
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

from leadscore.config import Settings
from leadscore.scoring.metrics import metrics
from leadscore.training.experiment import Inputs, calibrate, candidates, fit_model
from leadscore.training.models import make_lightgbm

FOLDS = 3  # lead models fit for the training window's out-of-fold scores
EDGE = 1e-4  # the log-odds of "any of its people" are taken of p clipped to [EDGE, 1 - EDGE]
ACCOUNT_KEYS = ("roc_auc", "pr_auc", "ece")


def people_max(accounts: pd.DataFrame, people: pd.DataFrame, probability) -> np.ndarray:
    """Each account row's baseline: the highest lead probability among its people at the same
    snapshot (0 where none of them is a lead then)."""
    best = people.assign(p=probability).groupby(["cid", "event_timestamp"])["p"].max()
    return accounts.join(best, on=["cid", "event_timestamp"])["p"].fillna(0.0).to_numpy()


def people_any(accounts: pd.DataFrame, people: pd.DataFrame, probability) -> np.ndarray:
    """Each account row's chance that at least one of its people converts, were they
    independent: 1 - prod(1 - p) over its leads at the same snapshot (0 where none). A second
    reference beside the baseline: how much of the people's model an account model still misses."""
    missed = people.assign(q=np.log1p(-np.minimum(probability, 1 - 1e-12)))
    total = missed.groupby(["cid", "event_timestamp"])["q"].sum()
    return 1 - np.exp(accounts.join(total, on=["cid", "event_timestamp"])["q"].fillna(0.0).to_numpy())


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


def any_log_odds(accounts: pd.DataFrame, people: pd.DataFrame, probability: np.ndarray) -> np.ndarray:
    """The log-odds of "any of its people" per account row, the stacked model's starting point."""
    p = np.clip(people_any(accounts, people, probability), EDGE, 1 - EDGE)
    return np.log(p / (1 - p))


def stacked_probabilities(account: Inputs, offsets: dict[str, np.ndarray], settings: Settings
                          ) -> dict[str, np.ndarray]:
    """The stacked account model's calibrated probabilities on the validation and test windows:
    LightGBM boosted from `offsets` (log-odds per row of each part) on the account's features."""
    X, y = account.X, account.y
    model = make_lightgbm(account.features.categorical, settings.training.account.lightgbm)
    prep = model[:-1].fit(X["train"], y["train"])
    booster = model[-1].fit(prep.transform(X["train"]), y["train"], init_score=offsets["train"],
                            eval_set=[(prep.transform(X["validation"]), y["validation"])],
                            eval_init_score=[offsets["validation"]],
                            callbacks=[early_stopping(100, verbose=False)])
    raw = {part: booster.predict(prep.transform(X[part]), raw_score=True) + offsets[part]
           for part in ("validation", "test")}
    sigmoid = LogisticRegression(C=1e6).fit(raw["validation"][:, None], y["validation"])
    return {part: sigmoid.predict_proba(raw[part][:, None])[:, 1] for part in raw}


def figures_of(y: np.ndarray, probability: np.ndarray) -> dict[str, float]:
    measured = metrics(y, probability)
    return {key: measured[key] for key in ACCOUNT_KEYS}
