"""The rule points and the tier table, read from their config files into typed objects.

Typed once here, at the edge: an unknown operator, a tier without routing or a missing
catch-all is an error that names the file, before any model is fitted.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from leadscore.config import load_yaml
from leadscore.scoring.spec import RuleSet, TierTable

Model = TypeVar("Model", bound=BaseModel)


def _load(path: Path, model: type[Model]) -> Model:
    try:
        return model.model_validate(load_yaml(path))
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'file'}: {e['msg']}" for e in error.errors())
        raise ValueError(f"{path}: {problems}") from None


def load_rules(path: Path) -> RuleSet:
    """config/scoring_rules.yaml (or a table's rules file)."""
    return _load(path, RuleSet)


def load_tiers(path: Path) -> TierTable:
    """config/tiers.yaml."""
    return _load(path, TierTable)
