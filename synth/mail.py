"""Email marketing: the mailing list, campaign sends, opens and clicks.

The email tool knows addresses, not people: a list entry is an address as it
was captured (work or personal, sometimes mistyped or oddly cased). After a
move the old work address keeps receiving mail that nobody opens, and some
movers re-subscribe with the new one. Opens rise with engagement and inside a
buying cycle; clicks follow opens and land on the website.

How often people are mailed differs: most of the list gets the standard cadence, one
person in five is put on a faster nurture track (up to `NURTURE_MAX` times as often, a few
sends a week). And how often matters (the planted frequency effect, `frequency_truth`):
people who showed interest in a product (a whitepaper, a demo request, a webinar or an
event in the last `INTEREST_DAYS`) open more the more they received in the last
`RECENT_DAYS`; the others open as often up to `FATIGUE_SENDS_PER_WEEK` sends a week, and
less with every send beyond.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .cycles import in_cycle
from .dirt import EmailMix, present_emails
from .people import company_at
from .sampling import sigmoid
from .touches import KIND

LIST_MIX = EmailMix(work=80, personal=14, stale=0, case=5, space=0, typo=1, shared=0,
                    missing=0)
NURTURE_SHARE, NURTURE_MAX = 0.2, 24.0  # people on faster tracks, at up to 24x the standard cadence
# The frequency effect. A person's "recent sends" are those to their live addresses in the
# trailing RECENT_DAYS, the one being opened included.
RECENT_DAYS = 30.0
FATIGUE_SENDS_PER_WEEK = 2.0  # the turning point of people with no product interest
FATIGUE_PER_SEND = 0.15  # log-odds of opening they lose per recent send beyond it
INTEREST_PER_SEND = 0.05  # log-odds of opening people interested in a product gain per recent send
INTEREST_DAYS = 90.0
INTENT_KINDS = ("whitepaper", "contact_sales", "webinar", "summit")  # touches that show product interest
PERSON_STRIDE = 1e5  # key = person * stride + day sorts sends by person, then time (days < stride)


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


def mailing_cadence(rng: np.random.Generator, n_people: int) -> np.ndarray:
    """How often marketing mails each person, relative to the standard cadence (1): one in
    five is on a nurture track, log-uniform up to NURTURE_MAX."""
    nurtured = rng.random(n_people) < NURTURE_SHARE
    return np.where(nurtured, np.exp(rng.uniform(0, np.log(NURTURE_MAX), n_people)), 1.0)


def draw_sends(rng: np.random.Generator, entries: pd.DataFrame, campaigns: pd.DataFrame,
               total: float, cadence: np.ndarray) -> pd.DataFrame:
    """Each campaign reaches a share of the entries on the list by then, in proportion to their
    person's `cadence` (~`total` sends in all)."""
    joined = entries["joined_day"].to_numpy()
    weight = cadence[entries["person_idx"].to_numpy()]
    by_join = np.argsort(joined, kind="stable")
    eligible = np.searchsorted(joined[by_join], campaigns["day"].to_numpy(), side="right")
    eligible_weight = np.r_[0.0, np.cumsum(weight[by_join])][eligible]
    scale = total / max((campaigns["reach"].to_numpy() * eligible_weight).sum(), 1e-9)
    chunks = []
    for c, (day, reach) in enumerate(zip(campaigns["day"], campaigns["reach"], strict=True)):
        # one vectorised draw per campaign (a few hundred campaigns, whatever the size)
        on_list = np.flatnonzero(joined <= day)
        picked = on_list[rng.random(on_list.size) < np.minimum(1.0, reach * scale * weight[on_list])]
        chunks.append(pd.DataFrame({"entry": picked, "campaign": c}))
    sends = pd.concat(chunks, ignore_index=True)
    sends["day"] = campaigns["day"].to_numpy()[sends["campaign"]] + rng.uniform(
        0, 0.03, len(sends))
    return sends


def recent_sends(person: np.ndarray, day: np.ndarray, counted: np.ndarray) -> np.ndarray:
    """For each send, the `counted` sends to the same person in the trailing RECENT_DAYS, itself
    included when counted."""
    key = person * PERSON_STRIDE + day
    order = np.argsort(key, kind="stable")
    before = np.r_[0, np.cumsum(counted[order])]
    first = np.searchsorted(key[order], key[order] - RECENT_DAYS, side="right")
    counts = np.empty(key.size, dtype=np.int64)
    counts[order] = before[np.arange(key.size) + 1] - before[first]
    return counts


def showed_interest(touches: pd.DataFrame, person: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Whether each (person, day) follows one of the person's intent touches (INTENT_KINDS)
    by at most INTEREST_DAYS."""
    intent = touches[touches["kind"].isin([KIND[k] for k in INTENT_KINDS])]
    touch_key = np.sort(intent["person_idx"].to_numpy() * PERSON_STRIDE + intent["day"].to_numpy())
    key = person * PERSON_STRIDE + day
    latest = np.searchsorted(touch_key, key, side="right") - 1
    found = touch_key[np.maximum(latest, 0)]
    return (latest >= 0) & (found > key - INTEREST_DAYS) & (found >= person * PERSON_STRIDE)


def frequency_effect(recent: np.ndarray, interested: np.ndarray) -> np.ndarray:
    """Log-odds of opening added by the number of recent sends (see the module docstring)."""
    turning_point = FATIGUE_SENDS_PER_WEEK * RECENT_DAYS / 7
    fatigue = -FATIGUE_PER_SEND * np.maximum(recent - turning_point, 0.0)
    return np.where(interested, INTEREST_PER_SEND * recent, fatigue)


def frequency_truth() -> pd.DataFrame:
    """The planted frequency effect, one row per kind of person, for checks: the sends a
    month (the RECENT_DAYS up to an email) past which opens fall (None: they never do), and
    what defines each kind."""
    per_month = FATIGUE_SENDS_PER_WEEK * RECENT_DAYS / 7
    return pd.DataFrame({
        "interest": ["not_interested", "interested"],
        "turning_point_sends_per_week": [FATIGUE_SENDS_PER_WEEK, None],
        "turning_point_sends_per_month": [per_month, None],
        "log_odds_per_send": [-FATIGUE_PER_SEND, INTEREST_PER_SEND],
        "recent_days": RECENT_DAYS,
        "interest_days": INTEREST_DAYS,
        "interest_touches": ", ".join(INTENT_KINDS),
    })


def draw_responses(rng: np.random.Generator, sends: pd.DataFrame, entries: pd.DataFrame,
                   people: pd.DataFrame, cycles: pd.DataFrame, members: pd.DataFrame,
                   touches: pd.DataFrame, days: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Opens (after sends) and clicks (after opens): likelier when engaged or in a cycle, and
    moved by how many emails the person received lately (`frequency_effect`)."""
    person = entries["person_idx"].to_numpy()[sends["entry"].to_numpy()]
    day = sends["day"].to_numpy()
    alive = day < entries["dead_day"].to_numpy()[sends["entry"].to_numpy()]
    hot = in_cycle(members, cycles, person, day)
    drive = np.log(people["engagement_weight"].to_numpy()[person])
    frequency = frequency_effect(recent_sends(person, day, alive), showed_interest(touches, person, day))
    p_open = sigmoid(-1.75 + 0.5 * drive + 1.6 * hot + frequency) * alive
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
