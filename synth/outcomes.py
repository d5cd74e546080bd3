"""Outcomes: opportunities, wins, orders and product sign-ups.

Opportunities come from buying cycles (on the most engaged member, some weeks
after interest rose) and, as noise, from inbound requests with no cycle behind
them. Wins are likelier for good fits and come 30-120 days later, with an
amount that grows with company size; customers then place orders and their
colleagues sign up for the product.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import vocab
from .people import company_at
from .sampling import choice, sigmoid
from .touches import KIND

INBOUND_SHARE = 0.12  # opportunities with no buying cycle behind them
REORDER_EVERY_DAYS = 75.0


def cycle_opportunities(cycles: pd.DataFrame, members: pd.DataFrame,
                        days: float) -> pd.DataFrame:
    """One opportunity per successful cycle, dated start + lag, if inside the window."""
    chosen = members[members["opportunity"].to_numpy()]
    cycle_idx = chosen["cycle_idx"].to_numpy()
    day = (cycles["start"] + cycles["lag"]).to_numpy()[cycle_idx]
    opps = pd.DataFrame({"person_idx": chosen["person_idx"].to_numpy(), "day": day,
                         "cycle_idx": cycle_idx,
                         "company_idx": cycles["company_idx"].to_numpy()[cycle_idx]})
    return opps[(day >= 0) & (day < days)]


def inbound_opportunities(rng: np.random.Generator, people: pd.DataFrame, n: int,
                          days: float) -> pd.DataFrame:
    """Opportunities out of nowhere (a referral, a call): weakly tied to fit."""
    weights = 0.3 + people["fit"].to_numpy()
    person_idx = rng.choice(len(people), n, p=weights / weights.sum())
    day = rng.uniform(0, days, n)
    return pd.DataFrame({"person_idx": person_idx, "day": day, "cycle_idx": -1,
                         "company_idx": company_at(people, person_idx, day)})


def close_opportunities(rng: np.random.Generator, opps: pd.DataFrame, people: pd.DataFrame,
                        companies: pd.DataFrame, days: float) -> pd.DataFrame:
    """Stage, close date and amount: wins likelier with fit; amount scales with size."""
    n = len(opps)
    fit = people["fit"].to_numpy()[opps["person_idx"].to_numpy()]
    won = rng.random(n) < sigmoid(-1.2 + 3.0 * (fit - 0.5))
    close = opps["day"].to_numpy() + np.where(won, rng.uniform(30, 120, n),
                                              rng.uniform(20, 150, n))
    closed = close < days
    employees = companies["employees"].to_numpy()[opps["company_idx"].to_numpy()]
    amount = np.round(20_000 * (employees / 200) ** 0.45 * rng.lognormal(0, 0.4, n), -2)
    stage = np.where(~closed, "open", np.where(won, "won", "lost")).astype(object)
    return opps.assign(stage=stage, close_day=np.where(closed, close, np.nan),
                       amount=np.maximum(amount, 1000.0))


def draw_opportunities(rng: np.random.Generator, cycles: pd.DataFrame, members: pd.DataFrame,
                       people: pd.DataFrame, companies: pd.DataFrame,
                       days: float) -> pd.DataFrame:
    """All opportunities, in time order."""
    from_cycles = cycle_opportunities(cycles, members, days)
    n_inbound = int(round(len(from_cycles) * INBOUND_SHARE / (1 - INBOUND_SHARE)))
    inbound = inbound_opportunities(rng, people, n_inbound, days)
    opps = pd.concat([from_cycles, inbound], ignore_index=True)
    opps = close_opportunities(rng, opps, people, companies, days)
    return opps.sort_values("day", kind="stable").reset_index(drop=True)


def colleagues(rng: np.random.Generator, people: pd.DataFrame,
               company_idx: np.ndarray) -> np.ndarray:
    """A random current employee of each company (people are sorted by company)."""
    staff = people["company_idx"].to_numpy()
    first = np.searchsorted(staff, company_idx, side="left")
    count = np.searchsorted(staff, company_idx, side="right") - first
    return first + np.floor(rng.random(company_idx.size) * np.maximum(count, 1)).astype(int)


def draw_orders(rng: np.random.Generator, opps: pd.DataFrame, people: pd.DataFrame,
                days: float) -> pd.DataFrame:
    """A first order soon after each win, then repeat orders every ~75 days."""
    won = opps[opps["stage"].to_numpy() == "won"]
    first = won["close_day"].to_numpy() + rng.uniform(0, 14, len(won))
    repeats = rng.poisson(np.clip(days - first, 0, None) / REORDER_EVERY_DAYS)
    owner = np.r_[np.arange(len(won)), np.repeat(np.arange(len(won)), repeats)]
    day = np.r_[first, first[owner[len(won):]] + rng.random(repeats.sum())
                * (days - first[owner[len(won):]])]
    share = np.r_[np.ones(len(won)), rng.uniform(0.05, 0.3, repeats.sum())]
    company_idx = won["company_idx"].to_numpy()[owner]
    buyer = won["person_idx"].to_numpy()[owner]
    by_colleague = rng.random(owner.size) < 0.3
    person_idx = np.where(by_colleague, colleagues(rng, people, company_idx), buyer)
    orders = pd.DataFrame({
        "person_idx": person_idx,
        "company_idx": company_idx,
        "day": day,
        "product": choice(rng, vocab.PRODUCTS, vocab.PRODUCT_WEIGHTS, owner.size),
        "amount": np.round(won["amount"].to_numpy()[owner] * share, 2),
    })
    return orders[orders["day"] < days].sort_values("day").reset_index(drop=True)


def draw_signups(rng: np.random.Generator, touches: pd.DataFrame, opps: pd.DataFrame,
                 people: pd.DataFrame, days: float) -> pd.DataFrame:
    """Product accounts: trial sign-ups, then seats for the team of each new customer."""
    trials = touches[touches["kind"].to_numpy() == KIND["trial"]][["person_idx", "day"]]
    won = opps[opps["stage"].to_numpy() == "won"]
    seats = rng.poisson(2.0, len(won))
    owner = np.repeat(np.arange(len(won)), seats)
    colleague = colleagues(rng, people, won["company_idx"].to_numpy()[owner])
    team = pd.DataFrame({
        "person_idx": np.r_[won["person_idx"].to_numpy(), colleague],
        "day": np.r_[won["close_day"].to_numpy(), won["close_day"].to_numpy()[owner]]
        + rng.uniform(1, 60, len(won) + owner.size),
    })
    signups = pd.concat([trials, team], ignore_index=True).sort_values("day", kind="stable")
    signups = signups[signups["day"] < days].drop_duplicates("person_idx")
    return signups.reset_index(drop=True)
