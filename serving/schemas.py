"""Request and response models of the score API (their descriptions feed the OpenAPI)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from leadscore.scoring.spec import Routing

FeatureValue = float | int | bool | str | None


class ScoreRequest(BaseModel):
    """Who or what to score: a PID (features are read online) or a feature row."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"pid": "P0001521A22"},
                     {"features": {"seniority": "vp", "company_employees": 2500, "events_30d": 12}},
                     {"cid": "C00000123"}]})

    pid: str | None = Field(None, min_length=1, max_length=64,
                            description="The person to score (One ID PID); features are read online.")
    features: dict[str, FeatureValue] | None = Field(
        None, description="A feature row to score instead of a PID: feature name to value, as in "
                          "the feature service lead_scoring_v1; a feature left out is unknown. "
                          "Give `pid` or `features`, not both.")
    cid: str | None = Field(None, min_length=1, max_length=64,
                            description="A company (One ID CID) to score with the account model instead "
                                        "of a person: the answer is an AccountScoreResponse. Not in a batch.")
    eid: str | None = Field(None, min_length=1, max_length=64,
                            description="A group (One ID EID) to score from its companies' account "
                                        "scores: the answer is an AccountScoreResponse. Not in a batch.")

    @model_validator(mode="after")
    def _pid_or_features(self) -> ScoreRequest:
        given = [f"`{name}`" for name in ("pid", "features", "cid", "eid") if getattr(self, name) is not None]
        if not given:
            raise ValueError("give one of `pid` (a person, features read online), `features` (a feature "
                             "row), `cid` (a company) or `eid` (a group)")
        if len(given) > 1:
            together = (f"both {given[0]} and {given[1]}" if len(given) == 2
                        else ", ".join(given) + " together")
            raise ValueError(f"give only one of `pid`, `features`, `cid` or `eid`, not {together}")
        return self

    @property
    def account(self) -> bool:
        """A company or a group, scored by the account model."""
        return self.cid is not None or self.eid is not None


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[ScoreRequest] = Field(description="The leads to score, each a pid or a feature row; "
                                                  "at most serving.max_batch (1000 by default) per call.")

    @model_validator(mode="after")
    def _people_only(self) -> BatchRequest:
        if any(item.account for item in self.items):
            raise ValueError("a batch scores people (pid or features); score a company (cid) or a group "
                             "(eid) with POST /score")
        return self


class ItemError(BaseModel):
    index: int = Field(description="Position of the item in the request.")
    pid: str | None = Field(description="The item's pid, if it had one.")
    status: int = Field(description="What the single-item endpoint would have answered (404: unknown pid).")
    detail: str = Field(description="What is wrong and how to fix it.")


class Reason(BaseModel):
    feature: str = Field(description="Feature name in the feature service (for a family's reason, "
                                     "the feature that moved the score most).")
    family: str | None = Field(None, description="The behaviour or trait told (reason family of the "
                                                 "feature catalog: website, email, buying committee, "
                                                 "company, ...). By behaviour (the default), no two "
                                                 "reasons of one answer share a family; with "
                                                 "`reasons=feature`, they may (null in scores logged "
                                                 "before families).")
    features: list[str] | None = Field(None, description="The family's features the text tells (absent "
                                                         "with `reasons=feature`).")
    label: str | None = Field(None, description="What the reason is about, in a few words (the "
                                                "family's name, or the text of a one-feature reason): "
                                                "for charts.")
    text: str = Field(description="The reason in a salesperson's words.")
    impact: float = Field(description="Contribution to the score, in the model's units (log-odds "
                                      "for learned models, points for the rule baseline); for a "
                                      "family, the exact sum of its features' contributions.")
    points: float | None = Field(None, description="The same contribution in points of the 0-100 "
                                                   "score (before its clip to 0-100), where the score "
                                                   "is linear in it (LightGBM champions).")


class InOpportunity(BaseModel):
    """An open opportunity of the person (or the account): the models were trained on leads and
    accounts without one, so the score beside it is not a forecast."""

    opportunity_id: str = Field(description="The open opportunity opened first (the CRM's id, or the "
                                            "middle layer's).")
    opened_at: datetime = Field(description="When it was opened (ISO 8601, UTC).")
    stage: str = Field(description="Its stage (`open`, or the stage the CRM last sent).")
    pid: str | None = Field(None, description="Its contact (One ID PID), if it has one.")
    open_opportunities: int = Field(description="How many opportunities are open (of the person; of the "
                                                "account: of any of its people, or its own).")


IN_OPPORTUNITY_FIELD = ("Null, or the open opportunity the lead (the account) is already in: the "
                        "models learn from leads and accounts without one, so `probability`, `score` "
                        "and `tier` are then the model's reading outside its population, kept for data "
                        "scientists, not a forecast; `routing` is `in_opportunity` (sales work it in "
                        "the CRM) and no MQL is pushed for it.")


class ScoreResponse(BaseModel):
    pid: str | None = Field(description="The person scored (One ID PID); null for a feature row.")
    probability: float = Field(description="Calibrated probability of an opportunity within the horizon.")
    score: float = Field(description="0-100, monotone in the probability: 50 = 5% chance, "
                                     "every 8 points double the odds (config; fixed across model versions).")
    fit_score: float = Field(description="0-100: share of the fit points of the hand-written rule set "
                                         "earned (config/scoring_rules.yaml; what the tier table's "
                                         "fit_score_min reads). Not an axis of the score: see `fit`.")
    interest_score: float = Field(description="0-100: share of the rule set's interest points earned "
                                              "(what interest_score_min reads). See `interest`.")
    fit: float | None = Field(None, description="The score's fit axis, 0-100 in score points: the "
                                                "average lead's score plus the points of who the lead "
                                                "is (company, role, profile). fit + interest - "
                                                "average_score = score, before the 0-100 clips. Null "
                                                "where the model does not tell it (LightGBM only).")
    interest: float | None = Field(None, description="The score's interest axis, 0-100 in score points: "
                                                     "the average lead's score plus the points of what "
                                                     "the lead does (engagement, recency, buying "
                                                     "committee).")
    tier: str = Field(description="The lead's tier, from the model version's tier table "
                                   "(config/tiers.yaml; by default high-value, high-potential, to-nurture, "
                                   "to-verify or low-conversion).")
    routing: Routing
    in_opportunity: InOpportunity | None = Field(None, description=IN_OPPORTUNITY_FIELD)
    reasons_up: list[Reason] = Field(description="What raises the score most, strongest first.")
    reasons_down: list[Reason] = Field(description="What lowers the score most, strongest first.")
    average_score: float | None = Field(None, description="The score of the average lead (the model's "
                                                          "expected value), where reasons in points "
                                                          "start; null where the model does not tell it.")
    model_version: str = Field(description="Registered version of lead-propensity that scored.")
    model_kind: str = Field(description="rule_baseline, logistic_regression or lightgbm.")
    horizon_days: int = Field(description="The probability's horizon in days.")
    feature_timestamp: str | None = Field(None, description="When the freshest online feature of this "
                                                            "person was computed (ISO 8601, UTC); null "
                                                            "for a feature row.")


class BatchItem(ScoreResponse):
    index: int = Field(description="Position of the item in the request.")


class BatchResponse(BaseModel):
    results: list[BatchItem] = Field(description="Scores of the items that could be scored, in request "
                                                 "order, each with its position.")
    errors: list[ItemError] = Field(description="Items that could not be scored (e.g. unknown pid).")


class CompanyScore(BaseModel):
    cid: str = Field(description="A company of the group (One ID CID).")
    probability: float = Field(description="Its account probability.")
    score: float = Field(description="Its 0-100 account score.")
    tier: str = Field(description="Its account tier.")
    in_opportunity: InOpportunity | None = Field(None, description="Its open opportunity, if it is in one.")


class AccountScoreResponse(BaseModel):
    """The answer to POST /score for a `cid` or an `eid`."""

    cid: str | None = Field(description="The company scored (One ID CID); null for a group.")
    eid: str | None = Field(description="The group scored (One ID EID); null for a company.")
    probability: float = Field(description="Calibrated probability that the account opens an opportunity "
                                           "within the horizon (a group: that any of its companies does).")
    score: float = Field(description="0-100 on the lead score's scale (50 = 5% chance, every 8 points "
                                     "double the odds): every account with an 80% chance or more reads "
                                     "100, the scale's top; `probability` tells those apart.")
    tier: str = Field(description="The account tier (config/account_tiers.yaml: by default hot-account, "
                                  "warm-account, cold-account).")
    tier_colour: str = Field(description="The tier's colour (config/account_tiers.yaml), for pages.")
    routing: Routing
    in_opportunity: InOpportunity | None = Field(
        None, description=IN_OPPORTUNITY_FIELD + " A group is in one when one of its companies is (the one "
                                                 "opened first).")
    reasons_up: list[Reason] = Field(description="What raises the account's score most, one per family "
                                                 "(buying committee, website, company...).")
    reasons_down: list[Reason] = Field(description="What lowers it most.")
    average_score: float | None = Field(None, description="The average account's score, where reasons in "
                                                          "points start (null for a group).")
    reasons_of: str = Field(description="The company whose reasons these are (a group: its strongest).")
    companies: list[CompanyScore] | None = Field(None, description="A group's companies known online, "
                                                                   "strongest first; null for a company.")
    model_version: str = Field(description="Registered version of the account model that scored.")
    model_kind: str = Field(description="logistic_regression or lightgbm.")
    horizon_days: int = Field(description="The probability's horizon in days.")
