import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from leadscore.config import load_yaml
from leadscore.scoring.estimators import RuleBaseline


@pytest.fixture
def baseline(settings) -> RuleBaseline:
    rules = load_yaml(settings.config_file("scoring_rules.yaml"))
    return RuleBaseline(rules["fit"], rules["interest"], rules["mql_threshold"])


def _leads() -> pd.DataFrame:
    return pd.DataFrame({
        "company_employees": [5000.0, 10.0, np.nan],
        "company_funding_stage": ["series_d", "seed", None],
        "is_decision_maker": [1.0, 0.0, np.nan],
        "email_open_90d": [3.0, 0.0, 5.0],
        "web_visit_180d": [2.0, 0.0, 1.0],
        "contact_sales_30d": [0.0, 0.0, 0.0],
    })


def test_points_follow_the_seed_rules(baseline):
    model = baseline.fit(_leads())
    # 20 (size) + 30 (series D) + 10 (decision maker) + 10 (opens) + 20 (visit)
    assert list(model.decision_function(_leads())) == [90.0, 0.0, 30.0]
    assert list(model.predict(_leads())) == [1, 0, 0]


def test_fit_and_interest_scores_are_shares_of_available_points(baseline):
    scores = baseline.fit(_leads()).fit_interest_scores(_leads())
    assert scores.loc[0, "fit_score"] == pytest.approx(100.0)
    assert scores.loc[2, "fit_score"] == 0.0
    assert scores.loc[2, "interest_score"] == pytest.approx(100 * 30 / 60)


def test_more_intent_never_lowers_the_points(baseline):
    leads = _leads()
    more = leads.assign(contact_sales_30d=1.0, email_open_90d=leads["email_open_90d"] + 5)
    model = baseline.fit(leads)
    assert (model.decision_function(more) >= model.decision_function(leads)).all()


def test_unknown_feature_in_rules_is_a_clear_error():
    model = RuleBaseline([{"feature": "nope", "op": ">", "value": 1, "points": 5}], [], 60)
    with pytest.raises(KeyError, match="nope"):
        model.fit(_leads())


def test_is_a_cloneable_sklearn_estimator(baseline):
    copy = clone(baseline)
    assert copy.get_params() == baseline.get_params()
    proba = copy.fit(_leads()).predict_proba(_leads())
    assert proba.shape == (3, 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert proba[0, 1] == pytest.approx(0.9)


def test_a_rule_set_without_fit_or_interest_rules_scores_zero_there():
    visits = {"feature": "web_visit_180d", "op": ">=", "value": 1, "points": 10}
    baseline = RuleBaseline([], [visits]).fit(_leads())
    scores = baseline.fit_interest_scores(_leads())
    assert (scores["fit_score"] == 0).all() and scores["interest_score"].max() == 100
