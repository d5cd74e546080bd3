"""Request and response models of the score API (their descriptions feed the OpenAPI)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Reason(BaseModel):
    feature: str = Field(description="Feature name in the feature service.")
    text: str = Field(description="The reason in a salesperson's words.")
    impact: float = Field(description="Contribution to the score, in the model's units "
                                      "(log-odds for learned models, points for the rule baseline).")


class Routing(BaseModel):
    action: str = Field(description="What happens to the lead, e.g. route_to_sales.")
    channel: str = Field(description="Where the lead goes: crm, marketing_automation, ...")
    description: str = Field(description="The action in words.")


class ScoreResponse(BaseModel):
    pid: str = Field(description="The person scored (One ID PID).")
    probability: float = Field(description="Calibrated probability of an opportunity within the horizon.")
    score: float = Field(description="0-100, monotone in the probability: 50 = 5% chance, "
                                     "every 8 points double the odds (config; fixed across model versions).")
    fit_score: float = Field(description="0-100: share of the fit points of the rule set earned.")
    interest_score: float = Field(description="0-100: share of the interest points earned.")
    tier: str = Field(description="high-value, high-potential, to-nurture, to-verify or low-conversion.")
    routing: Routing
    reasons_up: list[Reason] = Field(description="What raises the score most, strongest first.")
    reasons_down: list[Reason] = Field(description="What lowers the score most, strongest first.")
    model_version: str = Field(description="Registered version of lead-propensity that scored.")
    model_kind: str = Field(description="rule_baseline, logistic_regression or lightgbm.")
    horizon_days: int = Field(description="The probability's horizon in days.")
