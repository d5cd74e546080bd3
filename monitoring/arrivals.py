"""Arrivals: is the rate at which opportunities come in the rate they came at before?

A drift in who converts (the base rate doubles, a new product line makes another industry
buy) changes neither who comes nor how they behave, so drift's PSI cannot see it, and a matured
cohort sees it a horizon (90 days) late. What it changes at once is how many opportunities the
CRM reports a day. This watch counts them, day by day, over the clock's last `window_days`
against the rate of the `reference_days` before that window (the live history only: from the
first score served), and sums the evidence as a Poisson CUSUM (Page, 1954; Lucas, 1985) tuned
to a rate `ratio` times the reference:

    S_t = max(0, S_{t-1} + x_t ln(ratio) - (ratio - 1) * rate)

the log-likelihood ratio of the day's count x_t under the moved rate against the reference,
reset at zero, so that a lasting change adds up day after day while a busy day is forgotten.
`ratio` above 1 watches for more opportunities, below 1 for fewer. S is computed afresh at each
report over the window (no state kept between runs): the usual CUSUM, started at the window's
first day. A breach is S beyond `monitoring.thresholds.max_arrival_cusum`, the usual decision
interval h: a larger h alarms later and less often without a change; how often this world
alarms without one is what the loop benchmark's control (`bench loop`, no drift) shows.

It needs no model and no matured label: the price is that it sees only changes in how many
convert, not in which people do (an industry that buys more while another buys less in the
same number is the matured cohorts' to see).
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from leadscore.config import ArrivalSettings

DAY = pd.Timedelta(days=1)


def days_before(times: pd.Series, now: datetime) -> np.ndarray:
    """Whole days from each time to `now` (0: within the last 24 hours); times after `now`
    are dropped."""
    at = pd.to_datetime(times, utc=True)
    age = (pd.Timestamp(now) - at[at <= pd.Timestamp(now)]) / DAY
    return np.floor(age.to_numpy(float)).astype(int)


def poisson_cusum(counts: np.ndarray, rate: float, ratio: float) -> float:
    """The CUSUM statistic after the daily `counts` (oldest first), for a Poisson `rate` a day
    moved to `ratio` times it (see the module's docstring)."""
    steps = np.asarray(counts, dtype=float) * np.log(ratio) - (ratio - 1) * rate
    statistic = 0.0
    for step in steps:
        statistic = max(0.0, statistic + step)
    return statistic


def arrival_watch(opportunity_times: pd.Series, now: datetime, live_since: datetime | None,
                  config: ArrivalSettings) -> dict:
    """The window's daily opportunity counts against the reference rate, with the CUSUM for
    more (`up`) and fewer (`down`) opportunities. `up` and `down` are None while the live
    history holds fewer than `min_reference_days` before the window (or no opportunity)."""
    window = config.window_days
    history = 0 if live_since is None else int((pd.Timestamp(now) - pd.Timestamp(live_since)) // DAY)
    reference_days = min(config.reference_days, history - window)
    ages = days_before(opportunity_times, now)
    counts = np.bincount(ages[ages < window], minlength=window)[::-1]  # oldest day first
    figures = {"window_days": window, "reference_days": max(reference_days, 0), "observed": int(counts.sum()),
               "reference_rate": None, "expected": None, "up": None, "down": None}
    if reference_days < config.min_reference_days:
        return figures
    reference = int(((ages >= window) & (ages < window + reference_days)).sum())
    rate = reference / reference_days
    if rate <= 0:
        return figures
    return {**figures, "reference_rate": rate, "expected": rate * window,
            "up": poisson_cusum(counts, rate, config.ratio_up),
            "down": poisson_cusum(counts, rate, config.ratio_down)}
