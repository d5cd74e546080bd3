"""config/personalization.yaml: the first rule whose conditions all hold gives the content."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from leadscore.config import Settings
from leadscore.serving.personalize import PersonalizationRules

RULES = PersonalizationRules.model_validate({
    "anonymous": "hello", "default": "welcome-back",
    "rules": [{"when": {"tier": "high-value"}, "content": "call-us"},
              {"when": {"tier": ["high-potential", "to-nurture"], "tag": "interest:pricing"},
               "content": "prices"},
              {"when": {"segment": "webinar fans"}, "content": "webinar"},
              {"when": {"tag": "interest:pricing"}, "content": "pricing-page"}]})


@pytest.mark.parametrize("tier, segments, tags, chosen", [
    ("high-value", ("webinar fans",), ("interest:pricing",), ("call-us", 1)),  # order decides
    ("to-nurture", (), ("interest:pricing",), ("prices", 2)),                  # a tier among a list
    ("to-nurture", ("webinar fans",), (), ("webinar", 3)),                     # every condition must hold
    ("low-conversion", (), ("interest:pricing",), ("pricing-page", 4)),
    (None, (), (), ("welcome-back", None)),                                    # known, no rule fits
])
def test_the_first_rule_that_holds_gives_the_content(tier, segments, tags, chosen):
    assert RULES.choose(tier, segments, tags) == chosen


def test_a_rule_naming_a_tier_the_model_lacks_is_refused_with_the_tiers_there_are():
    named = r"\['high-potential', 'high-value', 'to-nurture'\]"
    with pytest.raises(ValueError, match=rf"unknown tier\(s\) {named}.*\['hot', 'cold'\]"):
        RULES.check_tiers(["hot", "cold"])


def test_an_unknown_condition_or_a_rule_without_content_is_refused():
    with pytest.raises(ValidationError, match="colour"):
        PersonalizationRules.model_validate({"anonymous": "a", "default": "b",
                                             "rules": [{"when": {"colour": "red"}, "content": "x"}]})
    with pytest.raises(ValidationError, match="content"):
        PersonalizationRules.model_validate({"anonymous": "a", "default": "b", "rules": [{"when": {}}]})


def test_the_shipped_rules_load_and_name_only_shipped_tiers(settings: Settings):
    from leadscore.config import load_yaml
    from leadscore.scoring.spec import TierTable

    rules = PersonalizationRules.load(settings.config_file(settings.serving.personalization_file))
    rules.check_tiers(TierTable.model_validate(load_yaml(settings.config_file("tiers.yaml"))).best_first)
    assert rules.rules and rules.anonymous != rules.default
