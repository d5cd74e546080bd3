"""A feature row sent to /score or /score_batch, checked against the champion's scoring spec.

Checked here rather than in the request schema: which names, types and categories are valid
is the champion's business, and the champion changes without a restart (serving/champion.py).
A number is a finite JSON number (not NaN, Infinity or a boolean); a category is text, one
of the levels the spec holds for it. Only a LightGBM spec holds levels (training/spec.py);
for the other models any text is taken, as an unseen category counts for nothing there.
Left out or null, a feature is unknown. Each of these was scored with a 200 before.

Every problem is named by its field. An answer stays small whatever the request: at most
MAX_NAMED unknown names are listed (then how many more), the model's features are named
once, and names echoed back are cut to MAX_SHOWN characters (each unknown name used to
repeat every valid one: a 249 KB request got a 28 MB answer).
"""

from __future__ import annotations

import math
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
    return _unknown_names(features, spec) + _value_problems(features, spec)


def _unknown_names(features: Mapping[str, object], spec: ScoringSpec) -> list[Problem]:
    unknown = sorted(set(features) - set(spec.features.all))
    if not unknown:
        return []
    listed = f"; the first {MAX_NAMED} are listed" if len(unknown) > MAX_NAMED else ""
    return [(shown(name), f"unknown feature {shown(name)!r}") for name in unknown[:MAX_NAMED]] + [
        (None, f"{len(unknown)} unknown feature name(s){listed}; the model's features are: "
               f"{', '.join(spec.features.all)}")]


def _value_problems(features: Mapping[str, object], spec: ScoringSpec) -> list[Problem]:
    problems = [(name, _number_problem(name, features[name])) for name in spec.features.numeric
                if features.get(name) is not None]
    problems += [(name, _category_problem(name, features[name], spec.levels.get(name)))
                 for name in spec.features.categorical if features.get(name) is not None]
    return [(name, message) for name, message in problems if message]


def _number_problem(name: str, value: object) -> str | None:
    """Why `value` is not a number the model can take, or None. A JSON true is no count, and
    NaN or Infinity (which Python's JSON reader accepts) would be scored as something."""
    if isinstance(value, int | float) and not isinstance(value, bool) and _finite(value):
        return None
    return f"{name} is a finite number; got {shown(repr(value))}"


def _finite(value: int | float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer beyond any float
        return False


def _category_problem(name: str, value: object, levels: list[str] | None) -> str | None:
    """Why `value` is not one of the feature's categories, or None."""
    if not isinstance(value, str):
        return f"{name} is a category (text); got {shown(repr(value))}"
    if levels is not None and value not in levels:
        return f"unknown {name} {shown(repr(value))}; the model knows: {', '.join(levels)}"
    return None
