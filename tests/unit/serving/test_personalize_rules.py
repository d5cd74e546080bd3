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


def test_rules_naming_tiers_the_model_lacks_are_said_with_the_tiers_there_are():
    said = RULES.unknown_tiers(["hot", "cold"])
    assert "['high-potential', 'high-value', 'to-nurture']" in said and "['hot', 'cold']" in said
    assert RULES.unknown_tiers(["high-value", "high-potential", "to-nurture", "low-conversion"]) is None


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
    tiers = TierTable.model_validate(load_yaml(settings.config_file("tiers.yaml"))).best_first
    assert rules.unknown_tiers(tiers) is None
    assert rules.rules and rules.anonymous != rules.default and rules.show_tag_kinds == ["mined"]


def test_a_visitor_who_cannot_be_read_gets_content_not_an_error(caplog):
    import threading

    from leadscore.serving.personalize import Personalizer

    def broken(_: str) -> None:
        raise OSError("the event log is locked")

    failing_lookup = Personalizer(RULES, engine=None, person_of_cookie=broken,
                                  tier_now=lambda pid: "high-value")
    assert failing_lookup.answer(" ck-1 ").content == "hello"
    failing_score = Personalizer(RULES, engine=None, person_of_cookie=lambda cookie: "P1", tier_now=broken)
    answer = failing_score.answer("ck-1")
    assert (answer.known, answer.tier, answer.content) == (True, None, "welcome-back")
    for reading in [t for t in threading.enumerate() if t.name == "personalize-audience"]:
        reading.join(10)  # its audience, read behind the answer, failed too (no segment engine)
    assert "could not read saved segments and tags" in caplog.text
