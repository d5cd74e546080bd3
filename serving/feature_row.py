"""A feature row sent to /score or /score_batch, checked against the champion's scoring spec.

Checked here rather than in the request schema: which names and types are valid is the
champion's business, and the champion changes without a restart (serving/champion.py).

Every problem is named by its field. An answer stays small whatever the request: at most
MAX_NAMED unknown names are listed (then how many more), the model's features are named
once, and names echoed back are cut to MAX_SHOWN characters (each unknown name used to
repeat every valid one: a 249 KB request got a 28 MB answer).
"""

from __future__ import annotations

from collections.abc import Mapping

from leadscore.scoring.spec import ScoringSpec

MAX_NAMED = 20
MAX_SHOWN = 80

Problem = tuple[str | None, str]  # (the field, or None for the row as a whole; message)


def shown(text: str) -> str:
    """A name or value as echoed back: at most MAX_SHOWN characters."""
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + "…"


def row_problems(features: Mapping[str, object], spec: ScoringSpec) -> list[Problem]:
    """What is wrong with the row, field by field; empty when it can be scored."""
    return _unknown_names(features, spec) + _number_problems(features, spec)


def _unknown_names(features: Mapping[str, object], spec: ScoringSpec) -> list[Problem]:
    unknown = sorted(set(features) - set(spec.features.all))
    if not unknown:
        return []
    listed = f"; the first {MAX_NAMED} are listed" if len(unknown) > MAX_NAMED else ""
    return [(shown(name), f"unknown feature {shown(name)!r}") for name in unknown[:MAX_NAMED]] + [
        (None, f"{len(unknown)} unknown feature name(s){listed}; the model's features are: "
               f"{', '.join(spec.features.all)}")]


def _number_problems(features: Mapping[str, object], spec: ScoringSpec) -> list[Problem]:
    return [(name, f"{name} is a number; got {shown(repr(features[name]))}")
            for name in spec.features.numeric if isinstance(features.get(name), str)]
