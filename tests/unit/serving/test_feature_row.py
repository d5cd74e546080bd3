"""A feature row sent to /score is checked against the champion's spec: numbers are finite
numbers, categories are the model's own; each problem is a 422 naming its field."""

from __future__ import annotations

import pytest
from fastapi import HTTPException
from toy_model import make_scorer

from leadscore.serving.service import _check_feature_row

VALID = {"visits_30d": 2, "employees": 1e3, "opens_90d": None, "seniority": "vp"}


@pytest.fixture(scope="module")
def lightgbm():
    return make_scorer("lightgbm")[0]


def _problem(row: dict, scorer) -> tuple[list, str]:
    with pytest.raises(HTTPException) as error:
        _check_feature_row(row, scorer, ["body", "items", 3])
    assert error.value.status_code == 422 and len(error.value.detail) == 1
    return error.value.detail[0]["loc"], error.value.detail[0]["msg"]


def test_a_row_of_known_features_finite_numbers_and_known_categories_passes(lightgbm):
    assert _check_feature_row(VALID, lightgbm, ["body"]) == VALID


@pytest.mark.parametrize("value, shown", [(float("nan"), "nan"), (float("inf"), "inf"),
                                          (float("-inf"), "-inf"), (True, "True"), (10**400, "1000"),
                                          ("many", "'many'"), ([1], "[1]")])
def test_a_number_that_is_not_a_finite_number_is_a_422_naming_the_field(lightgbm, value, shown):
    loc, message = _problem({**VALID, "employees": value}, lightgbm)
    assert loc == ["body", "items", 3, "features", "employees"]
    assert f"employees is a finite number; got {shown}" in message


def test_an_unknown_category_is_a_422_listing_the_models_categories(lightgbm):
    loc, message = _problem({**VALID, "seniority": "emperor"}, lightgbm)
    assert loc[-1] == "seniority" and "unknown seniority 'emperor'" in message
    assert all(level in message for level in lightgbm.spec.levels["seniority"])
    loc, message = _problem({**VALID, "seniority": 5}, lightgbm)
    assert loc[-1] == "seniority" and "seniority is a category (text); got 5" in message


def test_a_model_without_levels_takes_any_text_as_a_category():
    logistic = make_scorer("logistic_regression")[0]
    assert not logistic.spec.levels
    assert _check_feature_row({**VALID, "seniority": "emperor"}, logistic, ["body"])["seniority"] == "emperor"
