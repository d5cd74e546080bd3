"""Touches: every moment a known person acts on a marketing channel.

A touch is the true event behind one or two raw rows (a whitepaper download is
a web session *and* a form fill). Touches come from a low background rate
(scaled by each person's engagement) and from buying cycles, whose touches lean
to high-intent kinds. Email is driven separately by campaigns (see `mail`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .clock import business_time
from .sampling import rows_choice

KINDS: tuple[str, ...] = (
    "web_visit", "whitepaper", "contact_sales", "newsletter", "webinar", "summit", "trial",
)
KIND = {name: i for i, name in enumerate(KINDS)}
BACKGROUND_MIX = np.array([93.1, 3.0, 0.2, 1.2, 2.0, 0.3, 0.2])
CYCLE_MIX = np.array([72.0, 9.0, 5.0, 0.5, 8.0, 3.0, 2.5])
# Raw interaction rows per touch: a session, plus a form or a registration;
# half of webinar sign-ups go through a web form (form + session + registration).
ROWS_PER_KIND = np.array([1, 2, 2, 2, 2, 1, 1])
SESSIONS_PER_KIND = np.array([1, 1, 1, 1, 0.5, 0, 1])


@dataclass(frozen=True)
class Budget:
    """How the interaction rows are shared out between channels (in expectation)."""

    sends: float  # email sends (opens and clicks follow)
    touches: float  # person touches, cycles included
    cycle_share: float  # part of touches that come from buying cycles
    anonymous_share: float  # part of web sessions from cookies of no one


EMAIL_SHARE = 0.42  # of all interaction rows
EMAIL_ROWS_PER_SEND = 1.27  # a send, ~22% opened, ~20% of opens clicked
CLICKS_PER_SEND = 0.045


def plan_budget(interactions: float, cycle_share: float = 0.3,
                anonymous_share: float = 0.2) -> Budget:
    """Solve the expected row counts for the touch and send volumes."""
    sends = EMAIL_SHARE * interactions / EMAIL_ROWS_PER_SEND
    mix = (1 - cycle_share) * BACKGROUND_MIX / 100 + cycle_share * CYCLE_MIX / 100
    anon = anonymous_share / (1 - anonymous_share)
    click_rows = sends * CLICKS_PER_SEND * (1 + anon)
    rest = interactions * (1 - EMAIL_SHARE) - click_rows
    touches = rest / (mix @ ROWS_PER_KIND + anon * (mix @ SESSIONS_PER_KIND))
    return Budget(sends, touches, cycle_share, anonymous_share)


def background_touches(rng: np.random.Generator, people: pd.DataFrame, total: float,
                       days: float) -> pd.DataFrame:
    """Poisson touches at each person's engagement rate, from when they became known."""
    begin = np.clip(people["joined_day"].to_numpy(), 0, days)
    exposure = people["engagement_weight"].to_numpy() * (days - begin)
    counts = rng.poisson(exposure * total / exposure.sum())
    person_idx = np.repeat(np.arange(len(people)), counts)
    day = begin[person_idx] + rng.random(person_idx.size) * (days - begin[person_idx])
    return pd.DataFrame({"person_idx": person_idx, "day": day, "cycle_idx": -1})


def engagement_rate(people: pd.DataFrame, background: pd.DataFrame, days: float) -> np.ndarray:
    """Background touches per 30 days each person was expected to make (the truth's engagement)."""
    begin = np.clip(people["joined_day"].to_numpy(), 0, days)
    weight = people["engagement_weight"].to_numpy()
    per_weight_day = len(background) / max((weight * (days - begin)).sum(), 1e-9)
    return weight * per_weight_day * 30


def settle_touches(rng: np.random.Generator, touches: pd.DataFrame, people: pd.DataFrame,
                   days: float, weekday0: int) -> pd.DataFrame:
    """Move touches onto local working hours, keep the window, give each a kind (a kind given
    before, by a channel drift, is kept; the draw still happens, so later draws stay the same)."""
    offset = people["utc_offset"].to_numpy()[touches["person_idx"].to_numpy()]
    day = business_time(rng, touches["day"].to_numpy(), offset, weekday0)
    touches = touches.assign(day=day)
    touches = touches[(day >= 0) & (day < days)].reset_index(drop=True)
    in_cycle = touches["cycle_idx"].to_numpy() >= 0
    mix = np.where(in_cycle[:, None], CYCLE_MIX, BACKGROUND_MIX)
    kind = rows_choice(rng, mix)
    if "kind" in touches:
        kind = touches["kind"].to_numpy()
    return touches.assign(kind=kind, in_cycle=in_cycle)
