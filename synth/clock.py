"""Time inside the world: days since the start as floats, converted at the edge.

Generators work in float days since `Period.start` (cheap to add, compare and
sample); `to_timestamps` turns them into the `datetime64[us, UTC]` the sources
carry (nanoseconds break Feast's DuckDB store).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from leadscore.config import WorldSettings

US_PER_DAY = 86_400_000_000


@dataclass(frozen=True)
class Period:
    """The drawn span [start, end): the observed window [start, world_end), `months` months
    ending with `end_date`, then `future_days` of the world's future."""

    start: pd.Timestamp
    end: pd.Timestamp
    world_end: pd.Timestamp

    @property
    def days(self) -> float:
        return (self.end - self.start) / pd.Timedelta(days=1)

    @property
    def stretch(self) -> float:
        """Drawn span over observed window: volumes grow with it so the window keeps its density."""
        return self.days / ((self.world_end - self.start) / pd.Timedelta(days=1))


def world_end(settings: WorldSettings) -> pd.Timestamp:
    """The world's end, midnight UTC after `end_date`: rows from then on are its future."""
    return pd.Timestamp(settings.end_date, tz="UTC") + pd.Timedelta(days=1)


def world_period(settings: WorldSettings) -> Period:
    end = world_end(settings)
    return Period(start=end - pd.DateOffset(months=settings.months),
                  end=end + pd.Timedelta(days=settings.future_days), world_end=end)


def to_timestamps(period: Period, days: np.ndarray) -> pd.Series:
    """Float days since the start to `datetime64[us, UTC]`; NaN becomes NaT."""
    days = np.asarray(days, dtype=float)
    missing = np.isnan(days)
    offsets = np.round(np.where(missing, 0.0, days) * US_PER_DAY).astype(np.int64)
    micros = (period.start.value // 1000 + offsets).astype("datetime64[us]")
    micros[missing] = np.datetime64("NaT")
    return pd.Series(micros).dt.tz_localize("UTC")


def last_instant(days: float) -> float:
    """The last microsecond of a span of `days` (in float days, later instants round onto
    its end, which belongs to the next span)."""
    return days - 1 / US_PER_DAY


def business_time(
    rng: np.random.Generator, days: np.ndarray, utc_offset: np.ndarray, weekday0: int
) -> np.ndarray:
    """Move instants onto local working hours, mostly on weekdays.

    B2B people act at work: an instant keeps its calendar day (weekends are
    mostly pushed to the nearest weekday) and gets a local time of day around
    10:00 or 15:00. `weekday0` is the weekday of day 0 (Monday = 0).
    """
    day = np.floor(days)
    weekday = (day + weekday0) % 7
    move = rng.random(days.size) < 0.8
    day = day - ((weekday == 5) & move) + ((weekday == 6) & move)
    peak = np.where(rng.random(days.size) < 0.55, 10.0, 15.0)
    local_hour = np.clip(peak + rng.normal(0, 2.2, days.size), 0, 23.99)
    return day + (local_hour - utc_offset) / 24
