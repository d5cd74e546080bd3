"""config/titles.yaml gives every title the synthetic world writes for a department that
department: an account page's buying committee reads it ("finance or procurement: 0 engaged"
beside an engaged Accountant was the symptom)."""

from __future__ import annotations

from pathlib import Path

import yaml

from leadscore.identity.people import classify_title, title_patterns
from leadscore.synth.vocab import INDIVIDUAL_TITLES

TITLES = Path(__file__).resolve().parents[3] / "config" / "titles.yaml"


def test_every_individual_title_of_the_synthetic_world_has_its_department():
    patterns = title_patterns(yaml.safe_load(TITLES.read_text())["department"], "name")
    wrong = {title: classify_title(title.lower(), patterns)
             for department, titles in INDIVIDUAL_TITLES.items() for title in titles
             if classify_title(title.lower(), patterns) != department}
    assert wrong == {}
