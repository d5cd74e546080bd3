"""Email marketing: the mailing list, campaign sends, opens and clicks.

The email tool knows addresses, not people: a list entry is an address as it
was captured (work or personal, sometimes mistyped or oddly cased). After a
move the old work address keeps receiving mail that nobody opens, and some
movers re-subscribe with the new one. Opens rise with engagement and inside a
buying cycle; clicks follow opens and land on the website.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .cycles import in_cycle
from .dirt import EmailMix, present_emails
from .people import company_at
from .sampling import sigmoid

LIST_MIX = EmailMix(work=80, personal=14, stale=0, case=5, space=0, typo=1, shared=0,
                    missing=0)


def mailing_list(rng: np.random.Generator, people: pd.DataFrame, companies: pd.DataFrame,
                 days: float) -> pd.DataFrame:
    """List entries (person, address, joined, dead after): 3 in 4 people subscribe."""
    subscribed = np.flatnonzero(rng.random(len(people)) < 0.75)
    joined = np.maximum(people["joined_day"].to_numpy()[subscribed], -30.0)
    firm = company_at(people, subscribed, joined)
    address = present_emails(rng, people, companies, subscribed, firm, joined, LIST_MIX)
    entries = pd.DataFrame({"person_idx": subscribed, "address": address, "joined_day": joined})
    entries["dead_day"] = dead_after(people, entries)
    return pd.concat([entries, resubscribed(rng, people, entries, days)], ignore_index=True)


def dead_after(people: pd.DataFrame, entries: pd.DataFrame) -> np.ndarray:
    """Day after which nobody reads an address: the old work box after a move; typos never."""
    idx = entries["person_idx"].to_numpy()
    address = entries["address"].str.strip().str.lower().to_numpy()
    previous = people["previous_work_email"].to_numpy()[idx]
    real = ((address == people["work_email"].to_numpy()[idx])
            | (address == people["personal_email"].to_numpy()[idx])
            | (address == previous))
    dead = np.where(address == previous, people["moved_day"].to_numpy()[idx], np.inf)
    return np.where(real, dead, -np.inf)


def resubscribed(rng: np.random.Generator, people: pd.DataFrame, entries: pd.DataFrame,
                 days: float) -> pd.DataFrame:
    """Half the movers on the list with their old address come back with the new one."""
    stale = entries[np.isfinite(entries["dead_day"].to_numpy())
                    & (entries["dead_day"].to_numpy() > 0)]
    back = stale[rng.random(len(stale)) < 0.5]
    joined = back["dead_day"].to_numpy() + rng.uniform(5, 90, len(back))
    idx = back["person_idx"].to_numpy()
    fresh = pd.DataFrame({"person_idx": idx, "address": people["work_email"].to_numpy()[idx],
                          "joined_day": joined, "dead_day": np.inf})
    return fresh[fresh["joined_day"] < days]


def draw_sends(rng: np.random.Generator, entries: pd.DataFrame, campaigns: pd.DataFrame,
               total: float) -> pd.DataFrame:
    """Each campaign reaches a share of the entries on the list by then (~`total` sends)."""
    joined = entries["joined_day"].to_numpy()
    eligible = np.searchsorted(np.sort(joined), campaigns["day"].to_numpy(), side="right")
    scale = total / max((campaigns["reach"].to_numpy() * eligible).sum(), 1e-9)
    chunks = []
    for c, (day, reach) in enumerate(zip(campaigns["day"], campaigns["reach"], strict=True)):
        # one vectorised draw per campaign (a few dozen campaigns, whatever the size)
        on_list = np.flatnonzero(joined <= day)
        picked = on_list[rng.random(on_list.size) < min(1.0, reach * scale)]
        chunks.append(pd.DataFrame({"entry": picked, "campaign": c}))
    sends = pd.concat(chunks, ignore_index=True)
    sends["day"] = campaigns["day"].to_numpy()[sends["campaign"]] + rng.uniform(
        0, 0.03, len(sends))
    return sends


def draw_responses(rng: np.random.Generator, sends: pd.DataFrame, entries: pd.DataFrame,
                   people: pd.DataFrame, cycles: pd.DataFrame, members: pd.DataFrame,
                   days: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Opens (after sends) and clicks (after opens): likelier when engaged or in a cycle."""
    person = entries["person_idx"].to_numpy()[sends["entry"].to_numpy()]
    alive = sends["day"].to_numpy() < entries["dead_day"].to_numpy()[sends["entry"].to_numpy()]
    hot = in_cycle(members, cycles, person, sends["day"].to_numpy())
    drive = np.log(people["engagement_weight"].to_numpy()[person])
    p_open = sigmoid(-1.75 + 0.5 * drive + 1.6 * hot) * alive
    opened = rng.random(len(sends)) < p_open
    opens = sends[opened].assign(day=sends["day"].to_numpy()[opened]
                                 + rng.exponential(0.6, opened.sum()), hot=hot[opened])
    p_click = sigmoid(-1.6 + 1.3 * opens["hot"].to_numpy()
                      + 0.3 * drive[opened])
    clicked = rng.random(len(opens)) < p_click
    clicks = opens[clicked].assign(day=opens["day"].to_numpy()[clicked]
                                   + rng.exponential(0.003, clicked.sum()))
    return opens[opens["day"] < days], clicks[clicks["day"] < days]


def email_activity(sends: pd.DataFrame, opens: pd.DataFrame, clicks: pd.DataFrame,
                   entries: pd.DataFrame, campaigns: pd.DataFrame) -> pd.DataFrame:
    """Rows of the email tool, in time order, before ids and timestamps."""
    rows = pd.concat([sends.assign(activity="send"), opens.assign(activity="open"),
                      clicks.assign(activity="click")], ignore_index=True)
    rows = rows.sort_values("day", kind="stable").reset_index(drop=True)
    campaign = rows["campaign"].to_numpy()
    return pd.DataFrame({
        "campaign_id": campaigns["campaign_id"].to_numpy()[campaign],
        "subject": campaigns["subject"].to_numpy()[campaign],
        "email_address": entries["address"].to_numpy()[rows["entry"].to_numpy()],
        "activity": rows["activity"].to_numpy(),
        "day": rows["day"].to_numpy(),
        "url": np.where(rows["activity"].to_numpy() == "click",
                        campaigns["url"].to_numpy()[campaign], None),
        "person_idx": entries["person_idx"].to_numpy()[rows["entry"].to_numpy()],
    })
