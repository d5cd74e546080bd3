"""The account model's references from the people's scores (the best person's, the chance that
any of them converts), and the stacked candidate's guarantee: no person's score in a company's row
was fit on that company."""

import numpy as np
import pandas as pd
import pytest

from leadscore.training.account_people import company_folds, people_any, people_max
from leadscore.training.experiment import calibrate, candidates, fit_model

T = pd.Timestamp("2026-03-02", tz="UTC")


def test_each_account_reads_its_own_people_at_the_same_snapshot_and_zero_without_any():
    accounts = pd.DataFrame({"cid": ["C1", "C2", "C3"], "event_timestamp": [T, T, T]})
    people = pd.DataFrame({"cid": ["C1", "C1", "C2", "C3"],
                           "event_timestamp": [T, T, T, T + pd.Timedelta(days=14)]})
    probability = np.array([0.5, 0.2, 0.3, 0.9])  # C3's person is a lead at another snapshot
    assert people_max(accounts, people, probability) == pytest.approx([0.5, 0.3, 0.0])
    assert people_any(accounts, people, probability) == pytest.approx([1 - 0.5 * 0.8, 0.3, 0.0])


def test_company_folds_never_fit_on_a_company_they_score():
    people = pd.DataFrame({"pid": [f"P{i}" for i in range(12)],
                           "cid": ["C1", "C1", "C2", "C2", "C3", "C3", "C4", "C4", None, None, "C5", "C6"]})
    for fit_rows, scored_rows in company_folds(people):
        fitted = set(people["cid"].iloc[fit_rows].dropna())
        assert fitted.isdisjoint(people["cid"].iloc[scored_rows].dropna())
        assert set(fit_rows).isdisjoint(scored_rows)
    assert sorted(np.concatenate([scored for _, scored in company_folds(people)])) == list(range(12))


def _company_memory(companies: int = 12, people: int = 10) -> tuple[pd.DataFrame, np.ndarray]:
    """People whose only signal is their company's code, labelled 1 at every other company: a
    model fit on a company's rows learns its label; one that never saw the company reads it from
    its neighbours, whose label is the other one."""
    code = np.repeat(np.arange(companies), people)
    noise = np.random.default_rng(0).normal(size=len(code))
    rows = pd.DataFrame({"pid": [f"P{i}" for i in range(len(code))], "cid": [f"C{c}" for c in code],
                         "code": code.astype(float), "noise": noise})
    return rows, code % 2


def test_cross_fitted_people_scores_never_learn_the_label_of_their_own_company(settings):
    from sklearn.metrics import roc_auc_score

    from leadscore.scoring.spec import FeatureSet
    from leadscore.training.account_people import cross_fitted_people
    from leadscore.training.experiment import Inputs
    from leadscore.training.leakage import LeakageReport

    rows, y = _company_memory()
    features = FeatureSet(numeric=["code", "noise"], categorical=[])
    X = rows[features.all]
    lead = Inputs(LeakageReport(features.all, [], {}), set(), features, None,
                  {"train": X, "validation": X}, {"train": y, "validation": y}, np.ones(len(y)))
    eager = {"num_leaves": 31, "min_child_samples": 5, "learning_rate": 0.3, "n_estimators": 40}
    training = settings.training.model_copy(update={"lightgbm": eager})
    scoped = settings.model_copy(update={"training": training})
    in_sample = calibrate(fit_model(candidates(None, features, eager)["lightgbm"], X, y), X, y)
    assert roc_auc_score(y, in_sample.predict_proba(X)[:, 1]) > 0.95  # the label is learnable in sample
    assert roc_auc_score(y, cross_fitted_people(lead, rows, scoped)) < 0.75


def test_the_stacked_candidate_is_trained_only_with_its_people_s_start_and_its_spec_must_say_so():
    from pydantic import ValidationError

    from leadscore.config import ScoreSettings
    from leadscore.scoring.spec import FeatureSet, Offset, ScoringSpec, TierTable
    from leadscore.training.experiment import STACKED, candidates

    features = FeatureSet(numeric=["employees"], categorical=[])
    offset = Offset(column="people_any", lead_model="lead-propensity", lead_version="3", edge=1e-4,
                    reference=-3.0)
    assert STACKED not in candidates(None, features)
    assert list(candidates(None, features, offset=offset)) == ["logistic_regression", "lightgbm", STACKED]
    tiers = TierTable.model_validate({"tiers": [{"name": "all"}], "routing": {
        "all": {"action": "a", "channel": "crm", "description": "d"}}})
    spec = {"features": features, "tiers": tiers, "score": ScoreSettings()}
    assert ScoringSpec(model_kind=STACKED, offset=offset, **spec).offset == offset
    for refused in ({"model_kind": STACKED}, {"model_kind": "lightgbm", "offset": offset}):
        with pytest.raises(ValidationError, match="offset"):
            ScoringSpec(**refused, **spec)
