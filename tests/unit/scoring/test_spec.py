"""The scoring spec: typed, versioned, and the tier table entirely from config."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from leadscore.config import ScoreSettings, load_typed, load_yaml
from leadscore.scoring.spec import FeatureSet, RuleSet, ScoringSpec, TierTable
from leadscore.scoring.tiers import tier_array

ROUTE = {"action": "a", "channel": "c", "description": "d"}


def _table(tiers: list[dict], **more) -> TierTable:
    return TierTable.model_validate({"tiers": tiers, "routing": {t["name"]: ROUTE for t in tiers}, **more})


def _spec(**changes) -> ScoringSpec:
    spec = {"model_kind": "lightgbm", "features": FeatureSet(["visits"], ["seniority"], ["visits"]),
            "levels": {"seniority": ["manager", "vp"]}, "calibration": {"a": -1.2, "b": 3.4},
            "rules": {"fit": [{"feature": "seniority", "op": "in", "value": ["vp"], "points": 10}]},
            "tiers": _table([{"name": "hot", "when": {"score_min": 70}}, {"name": "rest"}]),
            "score": ScoreSettings(), "horizon_days": 90}
    return ScoringSpec.model_validate({**spec, **changes})


def test_a_spec_survives_its_json_artifact_unchanged():
    spec = _spec()
    text = spec.model_dump_json()
    assert '"spec_version":1' in text
    again = ScoringSpec.model_validate_json(text)
    assert again == spec
    assert again.features.all == ["visits", "seniority"] and again.calibration.a == -1.2


def test_an_unknown_spec_version_or_key_is_refused():
    text = _spec().model_dump_json()
    with pytest.raises(ValidationError, match="spec_version"):
        ScoringSpec.model_validate_json(text.replace('"spec_version":1', '"spec_version":2'))
    with pytest.raises(ValidationError, match="Extra inputs"):
        _spec(colour_of_the_sky="blue")


def test_a_spec_holds_fitted_thresholds_only():
    unfitted = _table([{"name": "hot", "when": {"score_min": {"top_share": 0.1}}}, {"name": "rest"}])
    with pytest.raises(ValidationError, match="top_share"):
        _spec(tiers=unfitted)


def test_tiers_are_renamed_and_added_in_the_config_alone():
    table = _table([{"name": "whale", "colour": "#000001", "when": {"score_min": 90, "fit_score_min": 50}},
                    {"name": "warm", "when": {"score_min": 60}},
                    {"name": "curious", "when": {"interest_score_min": 40}},
                    {"name": "cold"}], order=["whale", "warm", "curious", "cold"])
    values = {"score": np.array([95, 95, 65, 10, 10]), "fit_score": np.array([60, 10, 0, 0, 0]),
              "interest_score": np.array([0, 0, 0, 50, 0]), "completeness": np.ones(5)}
    assert list(tier_array(values, table)) == ["whale", "warm", "warm", "curious", "cold"]
    assert table.colours["whale"] == "#000001" and table.best_first[0] == "whale"


@pytest.mark.parametrize("change, message", [
    ({"routing": {"hot": ROUTE}}, "routing must name every tier"),
    ({"order": ["hot"]}, "order must list every tier"),
    ({"tiers": [{"name": "hot", "when": {"score_min": 1}}, {"name": "hot"}]}, "unique names"),
    ({"tiers": [{"name": "hot", "when": {"score_max": 1}}, {"name": "rest"}]}, "score_max"),
])
def test_a_broken_tier_table_says_what_is_wrong(change, message):
    config = {"tiers": [{"name": "hot", "when": {"score_min": 1}}, {"name": "rest"}],
              "routing": {"hot": ROUTE, "rest": ROUTE}, **change}
    with pytest.raises(ValidationError, match=message):
        TierTable.model_validate(config)


def test_the_shipped_rules_and_tiers_are_valid(settings):
    rules = RuleSet.model_validate(load_yaml(settings.config_file("scoring_rules.yaml")))
    tiers = TierTable.model_validate(load_yaml(settings.config_file("tiers.yaml")))
    assert rules.mql_threshold == 60 and {rule.op for rule in rules.all} <= {">", ">=", "==", "in"}
    assert tiers.best_first == ["high-value", "high-potential", "to-nurture", "to-verify", "low-conversion"]
    assert len(set(tiers.colours.values())) == len(tiers.tiers)


@pytest.mark.parametrize("change, message", [
    ({"features": FeatureSet(["visits", "visits"], ["seniority"])}, "features named twice"),
    ({"features": FeatureSet(["visits"], ["seniority"], ["seniority"])}, "zero_when_missing"),
    ({"rules": {"fit": [{"feature": "shoe_size", "op": ">", "value": 1, "points": 5}]}}, "shoe_size"),
    ({"levels": {}}, "no levels for the categorical features"),
])
def test_a_spec_whose_parts_disagree_is_refused(change, message):
    with pytest.raises(ValidationError, match=message):
        _spec(**change)


def test_whole_numbers_stay_whole():
    """Thresholds and rule values written as integers are logged and stored as integers."""
    spec = _spec(tiers=_table([{"name": "hot", "when": {"fit_score_min": 50, "completeness_max": 0.6}},
                               {"name": "rest"}]))
    assert spec.tiers.tiers[0].when == {"fit_score_min": 50, "completeness_max": 0.6}
    assert isinstance(spec.tiers.tiers[0].when["fit_score_min"], int)


def test_a_broken_tiers_file_is_an_error_naming_the_file_and_the_missing_tier(tmp_path):
    path = tmp_path / "tiers.yaml"
    path.write_text("tiers: [{name: hot, when: {score_min: 60}}, {name: warm, when: {score_min: 40}}, "
                    "{name: rest}]\nrouting: {hot: {action: a, channel: c, description: d}, "
                    "rest: {action: a, channel: c, description: d}}\n")
    with pytest.raises(ValueError) as error:
        load_typed(path, TierTable)
    assert str(error.value) == (f"{path}: routing must name every tier exactly: missing ['warm'] "
                                "(tiers: hot, warm, rest)")
