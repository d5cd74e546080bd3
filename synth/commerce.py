"""Orders and product accounts: the e-commerce and product systems.

Both know a person only by an email address (and a name, for sign-ups): orders
are often placed from a team inbox, and ~3% of users signed up twice, the
second time with a private address.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .dirt import EmailMix, present_emails, present_full_names
from .people import company_at

ORDER_EMAILS = EmailMix(work=80, personal=3, stale=0, case=5, space=2, typo=1, shared=25,
                        missing=0)
SIGNUP_EMAILS = EmailMix(work=78, personal=15, stale=0, case=5, space=1, typo=1, shared=0,
                         missing=0)
SECOND_SIGNUP_EMAILS = EmailMix(work=0, personal=80, stale=0, case=20, space=0, typo=0,
                                shared=0, missing=0)
SECOND_SIGNUP_SHARE = 0.03


def orders(rng: np.random.Generator, rows: pd.DataFrame, people: pd.DataFrame,
           companies: pd.DataFrame) -> pd.DataFrame:
    """Order rows keyed by the email typed at checkout (before ids and timestamps)."""
    person = rows["person_idx"].to_numpy()
    firm = rows["company_idx"].to_numpy()
    day = rows["day"].to_numpy()
    return pd.DataFrame({
        "email": present_emails(rng, people, companies, person, firm, day, ORDER_EMAILS),
        "product": rows["product"].to_numpy(),
        "amount_usd": rows["amount"].to_numpy(),
        "day": day,
        "person_idx": person,
        "company_idx": firm,
    })


def user_accounts(rng: np.random.Generator, signups: pd.DataFrame, people: pd.DataFrame,
                  companies: pd.DataFrame, days: float) -> pd.DataFrame:
    """One product account per sign-up, plus a few second accounts under another address."""
    again = signups[rng.random(len(signups)) < SECOND_SIGNUP_SHARE]
    later = again["day"].to_numpy() + rng.uniform(1, 200, len(again))
    again = again.assign(day=later, second=True)[later < days]
    rows = pd.concat([signups.assign(second=False), again], ignore_index=True)
    rows = rows.sort_values("day", kind="stable").reset_index(drop=True)
    person = rows["person_idx"].to_numpy()
    day = rows["day"].to_numpy()
    firm = company_at(people, person, day)
    first = present_emails(rng, people, companies, person, firm, day, SIGNUP_EMAILS)
    second = present_emails(rng, people, companies, person, firm, day, SECOND_SIGNUP_EMAILS)
    return pd.DataFrame({
        "email": np.where(rows["second"].to_numpy(), second, first),
        "full_name": present_full_names(rng, people, person),
        "day": day,
        "person_idx": person,
        "company_idx": firm,
    })
