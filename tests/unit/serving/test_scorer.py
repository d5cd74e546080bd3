"""The scorer: the LightGBM matrix path gives exactly what the scikit-learn pipeline gives."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from toy_model import FEATURES, SPECS, TIERS, make_scorer

from leadscore.scoring.prepare import prepare
from leadscore.scoring.spec import TierTable
from leadscore.serving.schemas import ScoreResponse
from leadscore.serving.scorer import Scorer, _GeneralPath, _LightGBMPath
from leadscore.training.tiers import fit_tiers


def _responses(scorer: Scorer, pids: list, columns: dict) -> list[ScoreResponse]:
    """The scorer's records, validated against the API's response model."""
    return [ScoreResponse.model_validate(record) for record in scorer.score_records(pids, columns)]


def _score(scorer: Scorer, frame: pd.DataFrame) -> list[ScoreResponse]:
    columns = {name: frame[name].to_numpy() for name in scorer.feature_names}
    return _responses(scorer, list(frame["pid"]), columns)


@pytest.fixture(scope="module")
def lightgbm() -> tuple[Scorer, pd.DataFrame]:
    return make_scorer("lightgbm")


def test_a_calibrated_lightgbm_takes_the_matrix_path_and_logistic_the_general_one(lightgbm):
    scorer, _ = lightgbm
    assert isinstance(scorer.path, _LightGBMPath)
    assert isinstance(make_scorer("logistic_regression")[0].path, _GeneralPath)


def test_the_matrix_path_equals_the_pipeline_in_probability_parts_tiers_and_reasons(lightgbm):
    scorer, leads = lightgbm
    leads = pd.concat([leads, leads.head(3).assign(industry="never-seen-industry", seniority=None)])
    general = Scorer(scorer.model, scorer.spec, "7", SPECS)
    general.path = _GeneralPath(scorer.model, scorer.spec)
    fast, slow = _score(scorer, leads), _score(general, leads)
    expected = scorer.model.predict_proba(prepare(leads, FEATURES))[:, 1]
    assert np.allclose([r.probability for r in fast], expected.round(6), atol=1e-6)
    assert [_without_points(r) for r in fast] == [_without_points(r) for r in slow]
    assert all(r.average_score is not None for r in fast)  # the matrix path knows TreeSHAP's bias
    assert len({r.tier for r in fast}) >= 3  # the comparison covers several tiers


def _without_points(response) -> dict:
    """A response without what only the matrix path tells (score points, the average lead, the
    two axes)."""
    record = response.model_dump(exclude={"average_score", "fit", "interest"})
    for reason in record["reasons_up"] + record["reasons_down"]:
        reason.pop("points")
    return record


def test_reasons_are_at_most_the_limit_each_way_strongest_first_and_in_words(lightgbm):
    scorer, leads = lightgbm
    for response in _score(scorer, leads.head(50)):
        assert len(response.reasons_up) <= 5 and len(response.reasons_down) <= 5
        assert all(r.impact > 0 for r in response.reasons_up)
        assert all(r.impact < 0 for r in response.reasons_down)
        impacts = [abs(r.impact) for r in response.reasons_up]
        assert impacts == sorted(impacts, reverse=True)
    visitor = leads[leads["visits_30d"] >= 3].head(1)
    texts = [r.text for r in _score(scorer, visitor)[0].reasons_up]
    assert any(t.startswith("visited the site") and "in the last 30 days" in t for t in texts)


def test_a_feature_row_with_missing_features_scores_like_unknown_values(lightgbm):
    scorer, _ = lightgbm
    sparse = _responses(scorer, [None], {"visits_30d": [4]})[0]
    full = _responses(scorer, [None], {"visits_30d": [4], "employees": [None], "opens_90d": [None],
                                         "seniority": [None], "industry": [None]})[0]
    assert sparse == full
    assert sparse.fit_score == 0 and sparse.interest_score == pytest.approx(100 * 20 / 30, abs=0.1)


def test_fit_and_interest_scores_are_the_share_of_rule_points(lightgbm):
    scorer, _ = lightgbm
    row = {"employees": [5000], "seniority": ["vp"], "opens_90d": [0], "visits_30d": [0]}
    response = _responses(scorer, ["P1"], row)[0]
    assert response.fit_score == 100.0 and response.interest_score == 0.0


def test_a_spec_that_does_not_fit_its_model_is_refused(lightgbm):
    scorer, _ = lightgbm
    shuffled = {name: levels[::-1] for name, levels in scorer.spec.levels.items()}
    with pytest.raises(ValueError, match="levels are not the model's"):
        Scorer(scorer.model, scorer.spec.model_copy(update={"levels": shuffled}), "8", SPECS)
    with pytest.raises(ValueError, match="no label horizon"):
        Scorer(scorer.model, scorer.spec.model_copy(update={"horizon_days": None}), "9", SPECS)


def test_rows_as_lists_score_as_the_same_rows_as_arrays_and_a_non_number_as_unknown(lightgbm):
    """The service hands the scorer lists of Python values (None when unknown), the batch job numpy
    columns: the records must not depend on which."""
    scorer, leads = lightgbm
    leads = leads.head(60)
    arrays = {name: leads[name].to_numpy() for name in scorer.feature_names}
    lists = {name: [None if pd.isna(value) else value for value in leads[name]]
             for name in scorer.feature_names}
    pids = list(leads["pid"])
    assert scorer.score_records(pids, lists) == scorer.score_records(pids, arrays)
    one = {name: values[:1] for name, values in lists.items()}
    assert scorer.score_records(pids[:1], {**one, "employees": ["many"]}) == \
        scorer.score_records(pids[:1], {**one, "employees": [None]})


FAMILY_SPECS = [replace(spec, family=family) for spec, family in zip(
    SPECS, ["engagement", "company", "engagement", "", "company"], strict=True)]


def test_reasons_tell_each_behaviour_once_with_its_features_summed_exactly(lightgbm):
    """Visits and opens are one family, employees and industry another, seniority its own:
    no answer has two reasons of one family, and a family's impact is its features' sum."""
    scorer, leads = lightgbm
    grouped = Scorer(scorer.model, scorer.spec, "7", FAMILY_SPECS, family_labels={"company": "the company"})
    columns = {name: leads[name].tolist() for name in FEATURES.all}
    result = grouped.evaluate(columns, len(leads))
    sums = grouped.families.sums(result.contrib)
    assert np.abs(sums.sum(axis=1) - result.contrib.sum(axis=1)).max() < 1e-9
    family = {"engagement": ["visits_30d", "opens_90d"], "company": ["employees", "industry"],
              "seniority": ["seniority"]}
    position = {name: j for j, name in enumerate(grouped.feature_names)}
    records = grouped.score_records(leads["pid"].tolist(), columns)
    for i, record in enumerate(records):
        reasons = record["reasons_up"] + record["reasons_down"]
        assert len({r["family"] for r in reasons}) == len(reasons)
        for reason in reasons:
            exact = sum(result.contrib[i, position[name]] for name in family[reason["family"]])
            assert reason["impact"] == pytest.approx(round(exact, 4), abs=1e-12)
            assert set(reason["features"]) <= set(family[reason["family"]])
            if reason["family"] == "company":
                assert reason["text"].startswith("the company: ") and reason["label"] == "the company"
    for i, record in enumerate(records):  # in score points: the average lead plus every family is the score
        if 0 < record["score"] < 100:
            total = record["average_score"] + grouped._points_per_unit * sums[i].sum()
            assert total == pytest.approx(record["score"], abs=0.11)
            assert all(r["points"] == pytest.approx(r["impact"] * grouped._points_per_unit, abs=0.01)
                       for r in record["reasons_up"] + record["reasons_down"])
    visitor = records[int(np.argmax(leads["visits_30d"].fillna(0).to_numpy()))]
    engagement = [r for r in visitor["reasons_up"] if r["family"] == "engagement"]
    assert engagement and "visited the site" in engagement[0]["text"]


def test_fit_plus_interest_minus_the_average_lead_is_the_score(lightgbm):
    """The two axes: fit is the average lead's score plus the company family's points, interest
    the same plus every other family's; fit + interest - average = score before the clips, and
    the rounded answers say so to their rounding."""
    scorer, leads = lightgbm
    split = Scorer(scorer.model, scorer.spec, "7", FAMILY_SPECS, fit_families=["company"])
    columns = {name: leads[name].tolist() for name in FEATURES.all}
    result = split.evaluate(columns, len(leads))
    axes, ppu = result.axes, split._points_per_unit
    company = [split.feature_names.index(name) for name in ("employees", "industry")]
    assert np.allclose(axes.fit_points, result.contrib[:, company].sum(axis=1) * ppu, atol=1e-9)
    assert np.allclose(axes.fit_points + axes.interest_points, result.contrib.sum(axis=1) * ppu, atol=1e-9)
    unclipped = axes.average + axes.fit_points + axes.interest_points
    inside = (unclipped > 0) & (unclipped < 100)
    assert inside.mean() > 0.9 and axes.fit.std() > 0.5 and axes.interest.std() > 0.5
    assert np.abs(unclipped[inside] - result.score[inside]).max() < 1e-6
    records = split.score_records(leads["pid"].tolist(), columns)
    for record, clipped in zip(records, ~inside, strict=True):
        assert 0 <= record["fit"] <= 100 and 0 <= record["interest"] <= 100
        if not clipped and 0 < record["fit"] < 100 and 0 < record["interest"] < 100:
            assert record["fit"] + record["interest"] - record["average_score"] == pytest.approx(
                record["score"], abs=0.16)  # three roundings to 0.1
    tiny = Scorer(scorer.model, scorer.spec, "7", FAMILY_SPECS)  # no fit family: all is interest
    assert np.allclose(tiny.evaluate(columns, len(leads)).axes.fit_points, 0.0)


def test_a_model_without_score_points_has_no_axes():
    scorer, leads = make_scorer("logistic_regression")
    columns = {name: leads[name].tolist()[:3] for name in FEATURES.all}
    record = scorer.score_records(leads["pid"].tolist()[:3], columns)[0]
    assert record["fit"] is None and record["interest"] is None and record["average_score"] is None


def test_per_feature_reasons_stay_available_with_their_family(lightgbm):
    scorer, leads = lightgbm
    grouped = Scorer(scorer.model, scorer.spec, "7", FAMILY_SPECS)
    columns = {name: leads[name].tolist() for name in FEATURES.all}
    by_feature = grouped.score_records(leads["pid"].tolist(), columns, detail="feature")
    by_family = grouped.score_records(leads["pid"].tolist(), columns)
    assert [r["score"] for r in by_feature] == [r["score"] for r in by_family]
    reasons = [reason for record in by_feature for reason in record["reasons_up"] + record["reasons_down"]]
    assert {r["feature"] for r in reasons} >= {"visits_30d", "opens_90d"}
    family = {"visits_30d": "engagement", "opens_90d": "engagement", "employees": "company",
              "industry": "company", "seniority": "seniority"}
    assert all(r["family"] == family[r["feature"]] for r in reasons)
    assert any(len([r for r in record["reasons_up"] if r["family"] == "engagement"]) == 2
               for record in by_feature)  # told apart here, which the grouped reasons never do


@pytest.mark.parametrize("kind", ["lightgbm", "logistic_regression"])
def test_a_shadow_score_is_the_full_scores_probability_score_and_tier_without_reasons(kind):
    scorer, leads = make_scorer(kind)
    leads = pd.concat([leads, leads.head(3).assign(industry="never-seen-industry", seniority=None)])
    columns = {name: leads[name].to_numpy() for name in scorer.feature_names}
    pids, times = list(leads["pid"]), [f"2026-11-0{i % 9 + 1}" for i in range(len(leads))]
    full, shadow = scorer.score_records(pids, columns, times), scorer.shadow_records(pids, columns, times)
    keys = ["pid", "probability", "score", "tier", "model_version", "feature_timestamp"]
    assert [{k: r[k] for k in keys} for r in shadow] == [{k: r[k] for k in keys} for r in full]
    assert all(r["reasons_up"] == r["reasons_down"] == [] for r in shadow)
    assert len({r["tier"] for r in shadow}) >= 3


@pytest.fixture(scope="module")
def logistic_regression() -> tuple[Scorer, pd.DataFrame]:
    return make_scorer("logistic_regression")


# config/tiers.yaml's kind of table: the score and its two axes, to-nurture before to-verify
AXES_TIERS = TierTable.model_validate({
    "tiers": [{"name": "high-value", "when": {"score_min": {"top_share": 0.05},
                                              "fit_min": {"top_share": 0.3}}},
              {"name": "high-potential", "when": {"score_min": {"top_share": 0.15}}},
              {"name": "to-nurture", "when": {"fit_min": {"top_share": 0.3}}},
              {"name": "to-verify", "when": {"interest_min": {"top_share": 0.5}}},
              {"name": "low-conversion", "when": {}}],
    "routing": TIERS.model_dump()["routing"]})


def _tiered_on_the_axes(scorer: Scorer, columns: dict, n: int) -> Scorer:
    """The scorer with AXES_TIERS fitted on these rows (the company family is the fit side; a
    model without axes reads the rule shares in their place)."""
    split = Scorer(scorer.model, scorer.spec, "7", FAMILY_SPECS, fit_families=["company"])
    result = split.evaluate(columns, n)
    axes = result.axes
    validation = pd.DataFrame({"score": result.score,
                               "fit": result.fit_score if axes is None else axes.fit,
                               "interest": result.interest_score if axes is None else axes.interest})
    spec = scorer.spec.model_copy(update={"tiers": fit_tiers(AXES_TIERS, validation)})
    return Scorer(scorer.model, spec, "7", FAMILY_SPECS, fit_families=["company"])


@pytest.mark.parametrize("tiers", ["rule shares", "score and axes"])
@pytest.mark.parametrize("kind", ["lightgbm", "logistic_regression"])
def test_one_row_alone_scores_as_it_does_among_many(kind, tiers, request):
    """A /score's one row takes the plain-Python score parts and tier; a batch takes numpy's.
    Rows scored alone give the batch's numbers, tier and record: every row of a thousand on
    the LightGBM path; on the general path (its pandas costs ~9 ms a row) one in 25, the
    unusual ones and the first of each tier (the plain-Python parts are tested on every row
    of their own in tests/unit/scoring)."""
    scorer, leads = request.getfixturevalue(kind)  # the module's models, trained once
    leads = pd.concat([leads, leads.head(5).assign(industry="never-seen-industry", seniority=None,
                                                   employees=np.nan, opens_90d=np.nan)])
    columns = {name: leads[name].to_numpy() for name in scorer.feature_names}
    if tiers == "score and axes":
        scorer = _tiered_on_the_axes(scorer, columns, len(leads))
    many, records = scorer.evaluate(columns, len(leads)), scorer.score_records(list(leads["pid"]), columns)
    shadows = scorer.shadow_records(list(leads["pid"]), columns)
    first_of_each_tier = {list(many.tier).index(tier) for tier in set(many.tier)}
    alone = (range(len(leads)) if scorer.fast_path else
             sorted({*range(0, len(leads) - 5, 25), *range(len(leads) - 5, len(leads)), *first_of_each_tier}))
    for i in alone:
        row = {name: column[i:i + 1] for name, column in columns.items()}
        one = scorer.evaluate(row, 1)
        for part in ("probability", "score", "fit_score", "interest_score"):
            assert abs(getattr(one, part)[0] - getattr(many, part)[i]) <= 1e-9, (part, i)
        assert one.tier[0] == many.tier[i], i
        assert scorer.score_records([leads["pid"].iloc[i]], row) == [records[i]]
        assert scorer.shadow_records([leads["pid"].iloc[i]], row) == [shadows[i]]
    assert len(set(many.tier)) >= (3 if tiers == "rule shares" else 5), set(many.tier)  # conditions decide
    assert len(set(many.fit_score)) >= 3  # several rule outcomes
