"""Buying cycles: the hidden process that makes some leads worth calling.

A company with a need opens a buying cycle: a committee of 1-4 of its people
becomes active for some weeks, leaning to high-intent actions. The cycle turns
into an opportunity with a probability that rises with the committee's fit and
with how engaged it was *before* the opportunity (so features seen at a
snapshot carry real, causal signal), and the opportunity lands on its most
engaged member. Cycles come more often to companies that fit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import vocab
from .people import company_at, company_fit
from .sampling import rank_within, sigmoid

LEAD_IN_DAYS = 90  # cycles may start before the window; their tail is observed
OPPORTUNITY_LAG_DAYS = (14, 56)  # a cycle's opportunity comes this many days after its start (uniform)
Adjust = Callable[[np.ndarray, pd.DataFrame], np.ndarray]  # (p per cycle, cycles) -> p


@dataclass(frozen=True)
class OpportunityModel:
    """p = sigmoid(a + b*fit + c*log1p(E) + d*fit*log1p(E) + noise), E = pre-opportunity touches."""

    intercept: float = -5.6
    fit: float = 3.5
    engagement: float = 0.25
    interaction: float = 1.5
    noise: float = 0.5

    def probability(self, rng: np.random.Generator, fit: np.ndarray,
                    touches: np.ndarray) -> np.ndarray:
        """Probability per cycle from the committee's mean fit and pre-opportunity touches."""
        e = np.log1p(touches)
        logit = (self.intercept + self.fit * fit + self.engagement * e
                 + self.interaction * fit * e + rng.normal(0, self.noise, fit.size))
        return sigmoid(logit)


def cycle_weights(companies: pd.DataFrame, people: pd.DataFrame) -> np.ndarray:
    """Relative cycle rate per company: rises with firmographic fit and known headcount."""
    staff = np.bincount(people["company_idx"].to_numpy(), minlength=len(companies))
    return np.exp(1.0 * company_fit(companies)) * staff.astype(float) ** 0.6


def draw_cycles(rng: np.random.Generator, companies: pd.DataFrame, people: pd.DataFrame,
                days: float, expected: float) -> pd.DataFrame:
    """Cycle starts, lengths, intensities and opportunity lags, `expected` of them in all."""
    weights = cycle_weights(companies, people)
    counts = rng.poisson(expected * weights / weights.sum())
    n = int(counts.sum())
    return pd.DataFrame({
        "company_idx": np.repeat(np.arange(len(companies)), counts),
        "start": rng.uniform(-LEAD_IN_DAYS, days - 7, n),
        "duration": rng.uniform(30, 120, n),
        "intensity": rng.gamma(2.0, 0.5, n),
        "lag": rng.uniform(*OPPORTUNITY_LAG_DAYS, n),
        "size": 1 + rng.binomial(3, 0.3, n),
    })


def staff_at_start(cycles: pd.DataFrame, people: pd.DataFrame) -> pd.DataFrame:
    """(cycle, person) pairs of people who worked at the cycle's company when it started."""
    current = people["company_idx"].to_numpy()
    previous = people["prev_company_idx"].to_numpy()
    movers = np.flatnonzero(previous >= 0)
    staff = pd.DataFrame({
        "company_idx": np.r_[current, previous[movers]],
        "person_idx": np.r_[np.arange(len(people)), movers],
    })
    cycle_rows = pd.DataFrame({"cycle_idx": np.arange(len(cycles)),
                               "company_idx": cycles["company_idx"].to_numpy(),
                               "start": cycles["start"].to_numpy()})
    pairs = cycle_rows.merge(staff, on="company_idx")
    where = company_at(people, pairs["person_idx"].to_numpy(), pairs["start"].to_numpy())
    return pairs[where == pairs["company_idx"].to_numpy()].reset_index(drop=True)


def draw_committees(rng: np.random.Generator, cycles: pd.DataFrame,
                    people: pd.DataFrame) -> pd.DataFrame:
    """1-4 members per cycle, decision makers (by role) more likely, leader first."""
    pairs = staff_at_start(cycles, people)
    role = (people["seniority"].map(vocab.SENIORITY_FIT).to_numpy()
            + people["department"].map(vocab.DEPARTMENT_FIT).to_numpy())
    key = 1.5 * role[pairs["person_idx"].to_numpy()] + rng.gumbel(size=len(pairs))
    pairs = pairs.assign(key=key).sort_values(["cycle_idx", "key"], ascending=[True, False])
    rank = rank_within(pairs["cycle_idx"].to_numpy())
    size = cycles["size"].to_numpy()[pairs["cycle_idx"].to_numpy()]
    members = pairs[rank < size].assign(rank=rank[rank < size])
    return members[["cycle_idx", "person_idx", "rank"]].reset_index(drop=True)


def cycle_touches(rng: np.random.Generator, cycles: pd.DataFrame, members: pd.DataFrame,
                  total: float) -> pd.DataFrame:
    """Activity of committee members inside their cycle, about `total` touches in all.

    Times follow a Beta(2, 3) bump over the cycle: interest rises fast, then fades.
    Touches before the window are kept here (they drive the outcome) and dropped later.
    """
    cycle_idx = members["cycle_idx"].to_numpy()
    weight = np.where(members["rank"].to_numpy() == 0, 1.0, 0.6)
    raw = (cycles["intensity"].to_numpy()[cycle_idx] * weight
           * cycles["duration"].to_numpy()[cycle_idx])
    counts = rng.poisson(raw * total / max(raw.sum(), 1e-9))
    member_idx = np.repeat(np.arange(len(members)), counts)
    owner = cycle_idx[member_idx]
    bump = rng.beta(2.0, 3.0, member_idx.size)
    return pd.DataFrame({
        "person_idx": members["person_idx"].to_numpy()[member_idx],
        "day": cycles["start"].to_numpy()[owner] + cycles["duration"].to_numpy()[owner] * bump,
        "cycle_idx": owner,
        "member_idx": member_idx,
    })


def member_engagement(members: pd.DataFrame, touches: pd.DataFrame,
                      cycles: pd.DataFrame) -> np.ndarray:
    """Touches of each member before the cycle's opportunity date."""
    opp_day = (cycles["start"] + cycles["lag"]).to_numpy()
    early = touches["day"].to_numpy() < opp_day[touches["cycle_idx"].to_numpy()]
    return np.bincount(touches["member_idx"].to_numpy()[early], minlength=len(members))


def decide_cycles(rng: np.random.Generator, cycles: pd.DataFrame, members: pd.DataFrame,
                  touches: pd.DataFrame, people: pd.DataFrame,
                  model: OpportunityModel, adjust: Adjust | None = None
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Opportunity probability and draw per cycle; the most engaged member gets it. `adjust`
    changes the probabilities (a drift, see drift.py) before the same draws decide."""
    engaged = member_engagement(members, touches, cycles)
    members = members.assign(events=engaged, fit=people["fit"].to_numpy()[members["person_idx"]])
    per_cycle = members.groupby("cycle_idx").agg(events=("events", "sum"), fit=("fit", "mean"))
    per_cycle = per_cycle.reindex(np.arange(len(cycles)), fill_value=0)
    undrifted = model.probability(rng, per_cycle["fit"].to_numpy(), per_cycle["events"].to_numpy())
    p = undrifted if adjust is None else adjust(undrifted, cycles)
    cycles = cycles.assign(events=per_cycle["events"].to_numpy(), p_opportunity=p, p_without_drift=undrifted,
                           opportunity=rng.random(len(cycles)) < p)
    lead = members.sort_values(["cycle_idx", "events", "rank"], ascending=[True, False, True])
    lead = lead.drop_duplicates("cycle_idx")
    has_lead = np.zeros(len(cycles), dtype=bool)
    has_lead[lead["cycle_idx"].to_numpy()] = True
    cycles["opportunity"] &= has_lead
    chosen = lead[cycles["opportunity"].to_numpy()[lead["cycle_idx"].to_numpy()]]
    members["opportunity"] = False
    members.loc[chosen.index, "opportunity"] = True
    return cycles, members


def in_cycle(members: pd.DataFrame, cycles: pd.DataFrame, person_idx: np.ndarray,
             day: np.ndarray) -> np.ndarray:
    """Whether each (person, day) falls inside one of that person's cycles."""
    spans = pd.DataFrame({
        "person_idx": members["person_idx"].to_numpy(),
        "start": cycles["start"].to_numpy()[members["cycle_idx"].to_numpy()],
        "end": (cycles["start"] + cycles["duration"]).to_numpy()[members["cycle_idx"].to_numpy()],
    })
    query = pd.DataFrame({"row": np.arange(person_idx.size), "person_idx": person_idx,
                          "day": day})
    hits = query.merge(spans, on="person_idx")
    inside = (hits["start"].to_numpy() <= hits["day"].to_numpy()) & (
        hits["day"].to_numpy() < hits["end"].to_numpy())
    out = np.zeros(person_idx.size, dtype=bool)
    out[hits["row"].to_numpy()[inside]] = True
    return out
