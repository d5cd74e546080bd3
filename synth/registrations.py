"""Event registrations: the webinar and summit platform's sign-up sheets.

One free-text name field, so names arrive as "John Smith", "SMITH, John",
"zhang wei" or "Zhang Wei"; attendance is likelier for people in a buying cycle.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .dirt import (
    EmailMix,
    PhoneMix,
    present_company_names,
    present_emails,
    present_full_names,
    present_phones,
)
from .people import company_at
from .touches import KIND
from .web import make_unusable

REGISTRATION_EMAILS = EmailMix(work=72, personal=12, stale=2, case=6, space=3, typo=1.5,
                               shared=6, missing=2)
REGISTRATION_PHONES = PhoneMix(own=60, switchboard=10, missing=30)


def attendance(rng: np.random.Generator, kind: np.ndarray, hot: np.ndarray,
               held: np.ndarray) -> np.ndarray:
    """Who shows up: summits more than webinars, buyers more than browsers; none in future."""
    p = np.where(kind == KIND["summit"], 0.55, 0.35) + np.where(hot, 0.25, 0.0)
    return (rng.random(kind.size) < p) & held


def event_registrations(rng: np.random.Generator, touches: pd.DataFrame, events: pd.DataFrame,
                        people: pd.DataFrame, companies: pd.DataFrame,
                        company_names: np.ndarray, days: float) -> pd.DataFrame:
    """One registration per webinar or summit touch (before ids and timestamps)."""
    kind = touches["kind"].to_numpy()
    t = touches[(kind == KIND["webinar"]) | (kind == KIND["summit"])]
    person = t["person_idx"].to_numpy()
    day = t["day"].to_numpy()
    firm = company_at(people, person, day)
    event = t["event_row"].to_numpy()
    event_day = events["day"].to_numpy()[event]
    rows = pd.DataFrame({
        "event_id": events["event_id"].to_numpy()[event],
        "event_name": events["event_name"].to_numpy()[event],
        "event_kind": events["event_kind"].to_numpy()[event],
        "event_day": event_day,
        "day": day,
        "attended": attendance(rng, t["kind"].to_numpy(), t["in_cycle"].to_numpy(),
                               event_day < days),
        "full_name": present_full_names(rng, people, person, missing=0.01),
        "email": present_emails(rng, people, companies, person, firm, day, REGISTRATION_EMAILS),
        "phone": present_phones(rng, people, companies, person, firm, REGISTRATION_PHONES),
        "company_name": present_company_names(rng, company_names, firm, missing=0.1),
        "person_idx": person,
        "company_idx": firm,
        "hot": t["in_cycle"].to_numpy(),
    })
    return make_unusable(rng, rows, ("full_name", "email", "phone"))
