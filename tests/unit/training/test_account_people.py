"""The account model's references from the people's scores (the best person's, the chance that
any of them converts), and the stacked candidate: trees that never read the people's chance, whose
raw score the chance's log-odds is added to."""

import numpy as np
import pandas as pd
import pytest

from leadscore.training.account_people import PEOPLE_ANY, people_any, people_max, with_people_any
from leadscore.training.experiment import calibrate, fit_model

T = pd.Timestamp("2026-03-02", tz="UTC")


def test_each_account_reads_its_own_people_at_the_same_snapshot_and_zero_without_any():
    accounts = pd.DataFrame({"cid": ["C1", "C2", "C3"], "event_timestamp": [T, T, T]})
    people = pd.DataFrame({"cid": ["C1", "C1", "C2", "C3"],
                           "event_timestamp": [T, T, T, T + pd.Timedelta(days=14)]})
    probability = np.array([0.5, 0.2, 0.3, 0.9])  # C3's person is a lead at another snapshot
    assert people_max(accounts, people, probability) == pytest.approx([0.5, 0.3, 0.0])
    assert people_any(accounts, people, probability) == pytest.approx([1 - 0.5 * 0.8, 0.3, 0.0])


def test_only_the_windows_the_people_cover_get_their_chance_and_the_training_window_none():
    later = T + pd.Timedelta(days=14)
    accounts = pd.DataFrame({"cid": ["C1", "C2", "C1", "C2"], "event_timestamp": [T, T, later, later]})
    people = pd.DataFrame({"cid": ["C1", "C1"], "event_timestamp": [later, later]})
    chance = with_people_any(accounts, people, np.array([0.5, 0.2]))[PEOPLE_ANY]
    assert chance.iloc[:2].isna().all()
    assert chance.iloc[2:].tolist() == pytest.approx([1 - 0.5 * 0.8, 0.0])


def _company_rows(rows: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Companies whose label follows their size and their people's chance, each half of it."""
    rng = np.random.default_rng(seed)
    employees, chance = rng.normal(size=rows), rng.random(rows)
    y = (employees + 4 * (chance - 0.5) + rng.normal(scale=0.5, size=rows) > 0).astype(int)
    return pd.DataFrame({"employees": employees, PEOPLE_ANY: chance}), y


def test_the_stacked_trees_never_read_the_people_s_chance_which_is_added_to_their_raw_score():
    from leadscore.scoring.estimators import log_odds
    from leadscore.training.models import make_lightgbm, make_stacked

    (X, y), (X_val, y_val) = _company_rows(2000, 0), _company_rows(500, 1)
    params = {"n_estimators": 60, "num_leaves": 7}
    unknown = fit_model(make_stacked([], PEOPLE_ANY, 1e-4, params), X.assign(**{PEOPLE_ANY: np.nan}), y,
                        X_val, y_val)
    known = fit_model(make_stacked([], PEOPLE_ANY, 1e-4, params), X, y, X_val, y_val)
    plain = fit_model(make_lightgbm([], params), X[["employees"]], y, X_val[["employees"]], y_val)
    trees = plain[-1].predict(X_val[["employees"]], raw_score=True)
    start = log_odds(X_val[PEOPLE_ANY].to_numpy(), 1e-4)
    for stacked in (unknown, known):
        assert np.abs(stacked.decision_function(X_val) - (trees + start)).max() < 1e-9
        assert stacked.offset_reference_ == pytest.approx(start.mean())  # the rows it stopped on


def test_adding_the_people_s_chance_ranks_better_than_either_view_alone():
    from sklearn.metrics import roc_auc_score

    from leadscore.training.models import make_stacked

    (X, y), (X_val, y_val) = _company_rows(2000, 0), _company_rows(2000, 1)
    stacked = calibrate(fit_model(make_stacked([], PEOPLE_ANY, 1e-4, {"n_estimators": 60, "num_leaves": 7}),
                                  X.assign(**{PEOPLE_ANY: np.nan}), y, X_val, y_val), X_val, y_val)
    both = roc_auc_score(y_val, stacked.predict_proba(X_val)[:, 1])
    assert both > max(roc_auc_score(y_val, X_val[column]) for column in ("employees", PEOPLE_ANY)) + 0.02


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


def test_a_lead_champion_that_may_have_seen_the_windows_gives_no_people_scores():
    """The stacked candidate reads the lead champion's scores of the validation and test windows:
    out of sample only for a champion trained on this run's split, never for a refit one."""
    from leadscore.training.accounts import maybe_in_sample

    window = "2026-06-29..2026-07-27"
    assert maybe_in_sample("4", {"test_window": window}, window) is None
    assert "refit" in maybe_in_sample("5", {"test_window": window, "refit": "true"}, window)
    assert "2026-05-01..2026-05-29" in maybe_in_sample("3", {"test_window": "2026-05-01..2026-05-29"}, window)
    assert maybe_in_sample("2", {}, window) is not None


def test_an_account_split_the_people_do_not_cover_is_an_error_not_a_constant_model():
    from types import SimpleNamespace

    from leadscore.training.accounts import _check_people_cover

    covered = pd.DataFrame({PEOPLE_ANY: [0.2, 0.0]})
    _check_people_cover(SimpleNamespace(validation=covered, test=covered), PEOPLE_ANY)
    gap = pd.DataFrame({PEOPLE_ANY: [0.2, np.nan]})
    with pytest.raises(ValueError, match="'validation': 1"):
        _check_people_cover(SimpleNamespace(validation=gap, test=covered), PEOPLE_ANY)


def test_a_stacked_model_without_rows_carrying_the_chance_is_a_clear_error_not_a_nan_reference():
    from leadscore.training.models import make_stacked

    (X, y), (X_val, y_val) = _company_rows(500, 0), _company_rows(200, 1)
    unknown = X.assign(**{PEOPLE_ANY: np.nan})
    params = {"n_estimators": 10, "num_leaves": 7}
    with pytest.raises(ValueError, match="no row of the training rows carries the offset column"):
        fit_model(make_stacked([], PEOPLE_ANY, 1e-4, params), unknown, y)  # no eval set
    with pytest.raises(ValueError, match="no row of the eval_set"):
        fit_model(make_stacked([], PEOPLE_ANY, 1e-4, params), unknown, y,
                  X_val.assign(**{PEOPLE_ANY: np.nan}), y_val)
    alone = fit_model(make_stacked([], PEOPLE_ANY, 1e-4, params), X, y)  # its own rows carry it
    assert np.isfinite(alone.offset_reference_)
