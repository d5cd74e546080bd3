"""The scoring spec: everything besides the fitted model that turns a feature row into a score.

Training writes one with every model version (`scoring_spec.json`, an MLflow artifact beside
the model); serving reads it and the model, and nothing else of training. It is versioned
(`spec_version`): a reader refuses a spec it does not know rather than guess.

What it holds: the features in model order with their types, categorical levels and which
counts are zero when missing; the sigmoid calibration that turns the model's raw score into a
probability; the rule points behind fit and interest; the tier table with its thresholds as
fitted on the validation window, its order, colours and routing; the fixed score scale; the
model's kind and shape; for a stacked account model, its offset (the lead model whose scores of
the account's people it starts from).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from pydantic import Field, model_validator

from leadscore.config import ScoreSettings, StrictModel

SPEC_VERSION: Literal[1] = 1
ModelKind = Literal["rule_baseline", "logistic_regression", "lightgbm", "stacked"]
Condition = Literal["score_min", "fit_min", "interest_min", "fit_score_min", "interest_score_min",
                    "completeness_max"]
Operator = Literal[">", ">=", "<", "<=", "==", "in"]
DEFAULT_TIER_COLOUR = "#374151"


@dataclass(frozen=True)
class FeatureSet:
    """The model's input columns, in model order: numerics, then categoricals."""

    numeric: list[str]
    categorical: list[str]
    zero_when_missing: list[str] = field(default_factory=list)  # counts: no row means none happened

    @property
    def all(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    def without(self, columns: set[str]) -> FeatureSet:
        return FeatureSet([c for c in self.numeric if c not in columns],
                          [c for c in self.categorical if c not in columns],
                          [c for c in self.zero_when_missing if c not in columns])


class Rule(StrictModel):
    """One hand-written rule of the points model (config/scoring_rules.yaml)."""

    feature: str
    op: Operator
    value: int | float | str | list[int | float | str]
    points: int | float
    reason: str = ""

    @model_validator(mode="before")
    @classmethod
    def _no_yaml_booleans(cls, raw: object) -> object:
        """YAML reads an unquoted yes/no/on/off/true/false as a boolean, which would compare as 1
        or 0: a rule on the word must quote it."""
        if isinstance(raw, dict):
            given = raw.get("value")
            values = given if isinstance(given, list) else [given]
            if any(isinstance(value, bool) for value in values):
                raise ValueError(f"rule on {raw.get('feature')!r}: value {raw.get('value')!r} was read as a "
                                 "boolean (YAML reads an unquoted yes, no, on, off, true or false so): "
                                 "quote the word (value: \"yes\"), or write 1 or 0 for a flag")
        return raw

    @model_validator(mode="after")
    def _value_fits_the_operator(self) -> Rule:
        """`==` compares text with text and numbers with numbers; `in` takes a list; an order
        (`<`, `>=`...) needs a number: a rule that could never hold is refused, not kept."""
        numeric = isinstance(self.value, int | float) and not isinstance(self.value, bool)
        if self.op in ("<", "<=", ">", ">=") and not numeric:
            raise ValueError(f"rule on {self.feature!r}: {self.op} needs a number, not {self.value!r} "
                             "(text is compared with `==` or `in`)")
        if self.op == "==" and isinstance(self.value, list):
            raise ValueError(f"rule on {self.feature!r}: == takes one value; use `in` for a list")
        return self


class RuleSet(StrictModel):
    """Fit and interest points; a lead with at least `mql_threshold` points is an MQL."""

    fit: list[Rule] = []
    interest: list[Rule] = []
    mql_threshold: float = 60

    @property
    def all(self) -> list[Rule]:
        return [*self.fit, *self.interest]

    def without_features(self, excluded: set[str]) -> RuleSet:
        return self.model_copy(update={
            "fit": [r for r in self.fit if r.feature not in excluded],
            "interest": [r for r in self.interest if r.feature not in excluded]})


class TopShare(StrictModel):
    """A minimum fitted at training time: the threshold that puts at most this share of the
    validation window's leads at or above it."""

    top_share: float = Field(gt=0, lt=1)


class Tier(StrictModel):
    name: str
    meaning: str = ""
    colour: str = DEFAULT_TIER_COLOUR
    when: dict[Condition, int | float | TopShare] = {}

    @property
    def fitted(self) -> bool:
        return not any(isinstance(value, TopShare) for value in self.when.values())


class Routing(StrictModel):
    action: str = Field(description="What happens to the lead, e.g. route_to_sales.")
    channel: str = Field(description="Where the lead goes: crm, marketing_automation, ...")
    description: str = Field(description="The action in words.")


class TierTable(StrictModel):
    """config/tiers.yaml: tiers in the order they are checked (the first whose conditions all
    hold wins, the last is the catch-all), `order` from best to worst for display (default:
    the check order), and the routing of each tier."""

    tiers: list[Tier]
    order: list[str] = []
    routing: dict[str, Routing]

    @model_validator(mode="after")
    def _consistent(self) -> TierTable:
        names = [tier.name for tier in self.tiers]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"tiers need unique names, found {names}")
        if self.tiers[-1].when:
            raise ValueError("the last tier in tiers.yaml must have no conditions (the catch-all)")
        if set(self.routing) != set(names):
            raise ValueError(f"routing must name every tier exactly: {_difference(names, self.routing)}")
        if self.order and sorted(self.order) != sorted(names):
            raise ValueError(f"order must list every tier once: {_difference(names, self.order)}")
        return self

    @property
    def best_first(self) -> list[str]:
        return self.order or [tier.name for tier in self.tiers]

    @property
    def colours(self) -> dict[str, str]:
        """Tier name to colour, best tier first."""
        colour = {tier.name: tier.colour for tier in self.tiers}
        return {name: colour[name] for name in self.best_first}


def _difference(tiers: list[str], named: Iterable[str]) -> str:
    named = list(named)
    parts = [f"missing {sorted(set(tiers) - set(named))}" if set(tiers) - set(named) else "",
             f"not a tier {sorted(set(named) - set(tiers))}" if set(named) - set(tiers) else "",
             "named twice" if len(set(named)) != len(named) else ""]
    return "; ".join(part for part in parts if part) + f" (tiers: {', '.join(tiers)})"


class Calibration(StrictModel):
    """Platt's sigmoid on the model's raw score: p = 1 / (1 + exp(a * raw + b))."""

    method: Literal["sigmoid"] = "sigmoid"
    a: float
    b: float


class ModelShape(StrictModel):
    """What the serving cost depends on (LightGBM's trees, leaves and depth)."""

    trees: int | None = None
    num_leaves: int | None = None
    max_depth_seen: int | None = None


class Offset(StrictModel):
    """What a stacked model (`model_kind: stacked`) adds to its trees' raw score: the log-odds of
    the chance that any of the account's people converts, 1 - prod(1 - p) over their lead scores
    (the input column `column`), that chance clipped to [edge, 1 - edge]. Its scores come from
    the lead model `lead_model`; `lead_version` is the one it was trained with. `reference` is
    the mean log-odds of the rows the model was stopped on (the validation window's): where the
    reasons start (the average account's)."""

    column: str
    lead_model: str
    lead_version: str
    aggregate: Literal["any"] = "any"
    edge: float = Field(gt=0, lt=0.5)
    reference: float


class ScoringSpec(StrictModel):
    spec_version: Literal[1] = SPEC_VERSION
    model_kind: ModelKind
    features: FeatureSet
    levels: dict[str, list[str]] = Field(
        default_factory=dict, description="Categorical levels seen in training, in code order.")
    calibration: Calibration | None = None
    rules: RuleSet | None = None
    tiers: TierTable
    score: ScoreSettings
    shape: ModelShape = ModelShape()
    horizon_days: int | None = None
    feature_service: str | None = None
    test_window: str | None = None
    excluded_by_leakage_guard: list[str] = []
    extra: dict[str, str] = Field(default_factory=dict, description="More about the data trained on.")
    offset: Offset | None = None  # a stacked model's starting log-odds: its people's scores

    @model_validator(mode="after")
    def _consistent(self) -> ScoringSpec:
        """The parts agree with each other: what a scorer relies on without looking again."""
        problems = list(_disagreements(self))
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _disagreements(spec: ScoringSpec) -> Iterator[str]:
    features = spec.features
    names = features.all
    if duplicates := sorted({name for name in names if names.count(name) > 1}):
        yield f"features named twice: {duplicates}"
    if not_numeric := sorted(set(features.zero_when_missing) - set(features.numeric)):
        yield f"zero_when_missing names features that are not numeric: {not_numeric}"
    if spec.rules and (unknown := sorted({rule.feature for rule in spec.rules.all} - set(names))):
        yield f"rules read features the model does not have: {unknown}"
    if spec.model_kind in ("lightgbm", "stacked") and (
            no_levels := sorted(set(features.categorical) - set(spec.levels))):
        yield f"no levels for the categorical features {no_levels}"
    if (spec.model_kind == "stacked") != (spec.offset is not None):
        yield "a stacked model needs its offset, and only a stacked model has one"
    if spec.offset is not None and spec.offset.column in names:
        yield f"the offset's column {spec.offset.column!r} is also a feature"
    if unfitted := [tier.name for tier in spec.tiers.tiers if not tier.fitted]:
        yield f"tiers {unfitted} still hold top_share conditions: a spec holds fitted thresholds only"
