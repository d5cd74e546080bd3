"""The vendor's marketing calendar: webinars, summits and email campaigns.

These are the vendor's own schedule, the same whatever the world's size; people
register for the next event after they decide to, and campaigns go out on
weekday mornings (Beijing time).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import vocab
from .clock import Period
from .ids import sequential_ids

WEBINAR_EVERY_DAYS = 9
SUMMIT_EVERY_DAYS = 95
CAMPAIGNS_PER_MONTH = 17  # newsletters, announcements and nurture-track emails: about four a week


def _weekday_day(period: Period, day: np.ndarray, weekday: int) -> np.ndarray:
    """Shift whole days forward to the next given weekday (Monday = 0)."""
    current = (np.floor(day) + period.start.weekday()) % 7
    return np.floor(day) + (weekday - current) % 7


def make_events(rng: np.random.Generator, period: Period) -> pd.DataFrame:
    """Webinars every ~9 days and summits every ~3 months, running past the window end."""
    horizon = period.days + 90
    webinar_day = _weekday_day(period, np.arange(3, horizon, WEBINAR_EVERY_DAYS), 3) + 6 / 24
    summit_day = _weekday_day(period, np.arange(40, horizon, SUMMIT_EVERY_DAYS), 2) + 1 / 24
    topics = np.asarray(vocab.WEBINAR_TOPICS, dtype=object)
    summits = np.asarray(vocab.SUMMITS, dtype=object)
    years = (period.start + pd.to_timedelta(summit_day, unit="D")).year.astype(str)
    events = pd.DataFrame({
        "day": np.r_[webinar_day, summit_day],
        "event_kind": ["webinar"] * webinar_day.size + ["summit"] * summit_day.size,
        "event_name": np.r_[
            "Webinar: " + topics[rng.integers(0, topics.size, webinar_day.size)],
            summits[np.arange(summit_day.size) % summits.size] + " " + years.to_numpy(),
        ],
    }).sort_values("day", kind="stable").reset_index(drop=True)
    events.insert(0, "event_id", sequential_ids("EV", len(events), 4))
    return events


def next_event(events: pd.DataFrame, kind: str, day: np.ndarray, notice: float) -> np.ndarray:
    """Row of the first event of `kind` at least `notice` days after each day."""
    rows = np.flatnonzero(events["event_kind"].to_numpy() == kind)
    dates = events["day"].to_numpy()[rows]
    at = np.searchsorted(dates, day + notice)
    return rows[np.minimum(at, rows.size - 1)]


def make_campaigns(rng: np.random.Generator, period: Period, months: float,
                   events: pd.DataFrame) -> pd.DataFrame:
    """Email campaigns on Tuesday-Thursday mornings, each with a subject, a link and a reach;
    `months` is the drawn span in months (the observed window's, stretched by the future)."""
    n = max(1, int(round(CAMPAIGNS_PER_MONTH * months)))
    spacing = period.days / n
    raw = np.arange(n) * spacing + rng.uniform(0, spacing * 0.8, n)
    day = _weekday_day(period, raw, 1) + rng.integers(0, 3, n) + 1.5 / 24
    day = np.where(day < period.days, day, day - 7)
    # the newsletter goes out once a month; the other kinds rotate at random
    others = rng.choice(np.arange(1, len(vocab.CAMPAIGN_SUBJECTS)), n)
    template = np.where(np.arange(n) % CAMPAIGNS_PER_MONTH == 0, 0, others)
    subjects = campaign_subjects(rng, period, day, template, events)
    paths = np.array([c[1] for c in vocab.CAMPAIGN_SUBJECTS], dtype=object)[template]
    campaigns = pd.DataFrame({
        "campaign_id": sequential_ids("CMP", n, 4),
        "day": day,
        "subject": subjects,
        "url": vocab.SITE + paths,
        "reach": np.array([c[2] for c in vocab.CAMPAIGN_SUBJECTS])[template],
    })
    campaigns["url"] = campaigns["url"] + "?utm_source=email&utm_campaign=" + campaigns[
        "campaign_id"].str.lower()
    return campaigns.sort_values("day", kind="stable").reset_index(drop=True)


def campaign_subjects(rng: np.random.Generator, period: Period, day: np.ndarray,
                      template: np.ndarray, events: pd.DataFrame) -> np.ndarray:
    """Fill each subject template with the month, a release number or the next event.

    A loop over campaigns (a few dozen, whatever the world's size) reads best here.
    """
    months = (period.start + pd.to_timedelta(day, unit="D")).strftime("%B %Y")
    summit = events["event_name"].to_numpy()[next_event(events, "summit", day, 7)]
    webinar = events["event_name"].to_numpy()[next_event(events, "webinar", day, 2)]
    asset = rng.choice(np.asarray(vocab.ASSETS, dtype=object), day.size)
    fields = zip(template, months, summit, webinar, asset, day, strict=True)
    return np.array([
        vocab.CAMPAIGN_SUBJECTS[t][0].format(
            month=m, summit=s, topic=w.removeprefix("Webinar: "), asset=a,
            minor=1 + int(d // 60))
        for t, m, s, w, a, d in fields
    ], dtype=object)
