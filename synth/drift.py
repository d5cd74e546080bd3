"""Drift: the world's rules change from a moment on (`world.drift`, `leadscore synth --drift`).

A buying cycle is decided at its opportunity date (start + lag, see `cycles.decide_cycles`).
A drift changes how the cycles decided from its moment on turn into opportunities:

- `industry`: a new product line makes `industry` convert: the odds that a cycle at a company
  of that industry becomes an opportunity are multiplied by `factor` (default 8).
- `channel`: `channel` (a touch kind: web_visit, whitepaper, contact_sales, newsletter,
  webinar, summit, trial) stops working: a cycle whose committee used it since the moment
  (before the cycle is decided) converts with its odds multiplied by `factor` (default 0.1):
  the channel still brings people, no longer buyers.
- `base_rate`: every cycle's probability is multiplied by `factor` (default 2, at most 1).

The same uniform draws decide every cycle, with or without drift, so the opportunities
decided before the moment are those of the world without it (same seed). The moment is a date
or days from the world's start or end: `end+90d` lies in the future that a replay sends, which
is drawn by the same rules. Without drift nothing here draws or changes anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from leadscore.config import DriftSettings

from . import vocab
from .clock import Period
from .sampling import rows_choice
from .touches import CYCLE_MIX, KIND, KINDS

DEFAULT_FACTOR = {"industry": 8.0, "channel": 0.1, "base_rate": 2.0}
OFFSET = re.compile(r"^(start|end)([+-]\d+)d$")


@dataclass(frozen=True)
class Drift:
    """A drift resolved against the world: its moment in float days since the start."""

    kind: str
    day: float
    factor: float
    industry: str | None = None
    channel: str | None = None


def drift_day(at: str, period: Period) -> float:
    """`at` (a date, or `start+Nd` / `end-Nd`) in float days since the world's start."""
    offset = OFFSET.match(at)
    if offset:
        anchor = period.start if offset[1] == "start" else period.world_end
        moment = anchor + pd.Timedelta(days=int(offset[2]))
    else:
        moment = pd.Timestamp(at, tz="UTC")
    return (moment - period.start) / pd.Timedelta(days=1)


def resolve(settings: list[DriftSettings], period: Period) -> list[Drift]:
    """Check each drift's target and place it in the world's days; errors say what is valid."""
    drifts = []
    for drift in settings:
        if drift.kind == "industry" and drift.industry not in vocab.INDUSTRIES:
            raise ValueError(f"drift industry {drift.industry!r} is not one of {', '.join(vocab.INDUSTRIES)}")
        if drift.kind == "channel" and drift.channel not in KINDS:
            raise ValueError(f"drift channel {drift.channel!r} is not one of {', '.join(KINDS)}")
        factor = DEFAULT_FACTOR[drift.kind] if drift.factor is None else drift.factor
        drifts.append(Drift(drift.kind, drift_day(drift.at, period), factor, drift.industry, drift.channel))
    return drifts


def mark_channels(rng: np.random.Generator, touches: pd.DataFrame, drifts: list[Drift]) -> pd.DataFrame:
    """With a channel drift, give each cycle touch its kind now, before the cycles are decided
    (settle_touches keeps it); otherwise `touches` as it is."""
    if not any(drift.kind == "channel" for drift in drifts):
        return touches
    kind = rows_choice(rng, np.broadcast_to(CYCLE_MIX, (len(touches), len(CYCLE_MIX))))
    return touches.assign(kind=kind)


def used_channel(cycles: pd.DataFrame, touches: pd.DataFrame, drift: Drift) -> np.ndarray:
    """Whether each cycle's committee touched the drift's channel between its moment and the
    cycle's decision."""
    assert drift.channel is not None, "resolve() checks that a channel drift names a touch kind"
    decided = (cycles["start"] + cycles["lag"]).to_numpy()
    cycle, day = touches["cycle_idx"].to_numpy(), touches["day"].to_numpy()
    on_channel = ((touches["kind"].to_numpy() == KIND[drift.channel]) & (day >= drift.day)
                  & (day < decided[cycle]))
    return np.bincount(cycle[on_channel], minlength=len(cycles)) > 0


def _times_odds(p: np.ndarray, where: np.ndarray, factor: float) -> np.ndarray:
    """`p` with the odds multiplied by `factor` where `where` holds (exactly `p` elsewhere)."""
    q = np.minimum(p, 1 - 1e-12)  # a doubled base rate may have reached 1
    odds = q / (1 - q) * factor
    return np.where(where, odds / (1 + odds), p)


def adjust_probability(p: np.ndarray, cycles: pd.DataFrame, companies: pd.DataFrame,
                       touches: pd.DataFrame, drifts: list[Drift]) -> np.ndarray:
    """Each cycle's opportunity probability under the drifts that hold at its decision."""
    decided = (cycles["start"] + cycles["lag"]).to_numpy()
    industry = companies["industry"].to_numpy()[cycles["company_idx"].to_numpy()]
    for drift in drifts:
        after = decided >= drift.day
        if drift.kind == "industry":
            p = _times_odds(p, after & (industry == drift.industry), drift.factor)
        elif drift.kind == "channel":
            p = _times_odds(p, used_channel(cycles, touches, drift), drift.factor)
        else:
            p = np.where(after, np.minimum(p * drift.factor, 1.0), p)
    return p
