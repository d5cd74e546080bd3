"""The marketing team's own records: campaigns, their UTM links, invitation lists, engagement.

Every campaign is one row of `campaigns` (name, channel, type, owner, budget and cost, dates):

- **paid programs** (search, social, partner) run in quarterly flights, each flight its own
  campaign with a `utm_campaign` such as `dataplat-search-2026q2`; their ad groups are the
  `utm_content`, search keywords the `utm_term`;
- **email campaigns** of the calendar (`calendar.make_campaigns`): `utm_campaign` is the
  campaign id in lower case, `utm_content` the landing page's name;
- **events** (webinars, summits): the campaign id is the event id; `campaign_invitations`
  lists who was invited, registrations carry the questions asked and demo requests.

Paid sessions get the campaign of their source (google, baidu, bing: search; linkedin, wechat:
social; partner: partner) that runs on their day, with programs weighted differently for
people in a buying cycle, so campaigns differ in what they bring. A few links are mistyped
(`UNKNOWN_SHARE`): a demand-tag config must report them, not guess. All draws come from the
world's last stream (`campaigns`), so the rest of the world is the same as without them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .clock import Period, to_timestamps
from .ids import sequential_ids
from .sampling import or_none

# (code, name, channel, utm sources, ad groups, search terms, weight cold, weight hot,
#  budget per quarter in USD, owner)
PROGRAMS: tuple[tuple, ...] = (
    ("dataplat-search", "Data platform search", "paid_search", ("google", "baidu", "bing"),
     ("lakehouse", "warehouse"), ("data platform", "cloud data warehouse"), 3.0, 6.0, 250_000, "Mei Lin"),
    ("ecom-search", "E-commerce analytics search", "paid_search", ("google", "baidu", "bing"),
     ("retail", "marketplace"), ("ecommerce analytics", "shop data"), 3.0, 3.0, 200_000, "Mei Lin"),
    ("mfg-search", "Manufacturing analytics search", "paid_search", ("google", "baidu", "bing"),
     ("factory", "quality"), ("manufacturing analytics", "oee dashboard"), 2.0, 2.5, 120_000, "Tom Berg"),
    ("security-search", "Security and compliance search", "paid_search", ("google", "baidu", "bing"),
     ("compliance", "audit"), ("data compliance", "gdpr tool"), 2.0, 1.0, 100_000, "Tom Berg"),
    ("dataplat-social", "Data platform on social", "social", ("linkedin", "wechat"),
     ("video", "carousel"), (), 2.0, 2.0, 150_000, "Ana Ruiz"),
    ("brand-social", "Brand awareness on social", "social", ("linkedin", "wechat"),
     ("video", "banner"), (), 4.0, 1.0, 200_000, "Ana Ruiz"),
    ("partner-referral", "Partner referrals", "partner", ("partner",),
     ("ecom", "mfg"), (), 1.0, 1.0, 80_000, "Sam Okafor"),
)
UNKNOWN_LINKS = ("spring_promo", "test-campaign", "DATAPLAT_SEARCH", "webinar-reminder-old")
UNKNOWN_SHARE = 0.01  # of paid sessions: a mistyped or forgotten utm_campaign
UTM_COLUMNS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
MEDIUM = {"google": "cpc", "baidu": "cpc", "bing": "cpc", "linkedin": "social", "wechat": "social",
          "partner": "referral", "email": "email"}
# at one instant: the visit (the link that brought them), its form, a registration, a click
TOUCH_RANK = {"web_sessions": 0, "form_fills": 1, "event_registrations": 2, "email_activity": 3}
EVENT_COST = {"webinar": (2_000, 6_000), "summit": (80_000, 200_000)}
EVENT_LEAD_DAYS = {"webinar": 28, "summit": 60}
INVITED_PER_REGISTRANT = (2.0, 4.0)
INVITED_REGISTRANTS = 0.85  # registrants who came from the invitation list


def quarter_flights(period: Period) -> pd.DataFrame:
    """One flight of every paid program per calendar quarter of the drawn span."""
    first = period.start.tz_convert(None).to_period("Q").start_time.tz_localize("UTC")
    starts = pd.date_range(first, period.end, freq="QS", tz="UTC")
    rows = [(p, max(s, period.start), min(s + pd.offsets.QuarterBegin(1), period.end), s)
            for s in starts for p in range(len(PROGRAMS))]
    frame = pd.DataFrame(rows, columns=["program", "start", "end", "quarter"])
    frame["start_day"] = (frame["start"] - period.start) / pd.Timedelta(days=1)
    frame["end_day"] = (frame["end"] - period.start) / pd.Timedelta(days=1)
    return frame[frame["end_day"] > frame["start_day"]].reset_index(drop=True)


def paid_campaigns(rng: np.random.Generator, period: Period) -> pd.DataFrame:
    """The paid flights as campaigns (internal: with program row and float days)."""
    f = quarter_flights(period)
    program = f["program"].to_numpy()
    share = ((f["end_day"] - f["start_day"]) / 91.3).clip(upper=1).to_numpy()
    budget = np.round(np.array([p[8] for p in PROGRAMS])[program] * share * rng.uniform(0.8, 1.2, len(f)), -2)
    code = np.array([p[0] for p in PROGRAMS], dtype=object)[program]
    label = f["quarter"].dt.year.astype(str) + "q" + f["quarter"].dt.quarter.astype(str)
    return pd.DataFrame({
        "name": np.array([p[1] for p in PROGRAMS], dtype=object)[program] + " " + label.str.upper(),
        "channel": np.array([p[2] for p in PROGRAMS], dtype=object)[program],
        "campaign_type": code, "owner": np.array([p[9] for p in PROGRAMS], dtype=object)[program],
        "budget_usd": budget, "cost_usd": np.round(budget * rng.uniform(0.75, 1.02, len(f)), 2),
        "start_day": f["start_day"].to_numpy(), "end_day": f["end_day"].to_numpy(),
        "utm_campaign": code + "-" + label.to_numpy(), "program": program,
    })


def email_campaigns(rng: np.random.Generator, campaigns: pd.DataFrame) -> pd.DataFrame:
    """The calendar's email campaigns; the type is the landing page they promote."""
    page = landing_page(campaigns["url"])
    return pd.DataFrame({
        "campaign_id": campaigns["campaign_id"].to_numpy(), "name": campaigns["subject"].to_numpy(),
        "channel": "email", "campaign_type": "email:" + page, "owner": "Li Na",
        "budget_usd": 2_000.0, "cost_usd": np.round(rng.uniform(500, 2_000, len(campaigns)), 2),
        "start_day": campaigns["day"].to_numpy(), "end_day": campaigns["day"].to_numpy() + 14,
        "utm_campaign": campaigns["campaign_id"].str.lower().to_numpy(),
    })


def landing_page(urls: pd.Series) -> pd.Series:
    """The page a link lands on, as a slug (`https://site/product-a?utm...` -> `product-a`)."""
    path = urls.str.split("?").str[0].str.rstrip("/").str.rsplit("/", n=1).str[-1]
    return path.str.lower().str.replace(r"[^a-z0-9]+", "-", regex=True)


def event_campaigns(rng: np.random.Generator, events: pd.DataFrame) -> pd.DataFrame:
    """Every webinar and summit as a campaign, promoted for weeks before the day."""
    kind = events["event_kind"].to_numpy()
    low = np.array([EVENT_COST[k][0] for k in kind])
    high = np.array([EVENT_COST[k][1] for k in kind])
    cost = np.round(rng.uniform(low, high), -1)
    lead = np.array([EVENT_LEAD_DAYS[k] for k in kind])
    return pd.DataFrame({
        "campaign_id": events["event_id"].to_numpy(), "name": events["event_name"].to_numpy(),
        "channel": kind, "campaign_type": kind, "owner": np.where(kind == "summit", "Ana Ruiz", "Li Na"),
        "budget_usd": np.round(cost * 1.1, -2), "cost_usd": cost,
        "start_day": events["day"].to_numpy() - lead, "end_day": events["day"].to_numpy(),
        "utm_campaign": None,
    })


def all_campaigns(paid: pd.DataFrame, email: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """Paid flights (ids `PC0001`...), email campaigns and events in one table."""
    paid = paid.drop(columns=["program"]).assign(campaign_id=sequential_ids("PC", len(paid), 4))
    frame = pd.concat([paid, email, events], ignore_index=True)
    return frame.sort_values(["start_day", "campaign_id"], kind="stable").reset_index(drop=True)


def pick_program(rng: np.random.Generator, source: np.ndarray, hot: np.ndarray) -> np.ndarray:
    """Row in PROGRAMS behind each session (-1 for none): a program of the session's source,
    weighted by whether the visitor is in a buying cycle."""
    serves = np.array([np.isin(source, p[3]) for p in PROGRAMS]).T
    weight = np.where(hot[:, None], [p[7] for p in PROGRAMS], [p[6] for p in PROGRAMS]) * serves
    total = weight.sum(axis=1)
    cumulative = weight.cumsum(axis=1) / np.where(total > 0, total, 1)[:, None]
    picked = (cumulative < rng.random(source.size)[:, None]).sum(axis=1)
    return np.where(total > 0, np.minimum(picked, len(PROGRAMS) - 1), -1)


def flight_of(paid: pd.DataFrame, program: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Row in `paid` of the program's flight running on each day (-1 for no program)."""
    out = np.full(program.size, -1)
    for p in np.unique(program[program >= 0]):
        rows = np.flatnonzero(paid["program"].to_numpy() == p)
        at = np.searchsorted(paid["start_day"].to_numpy()[rows], day[program == p], side="right") - 1
        out[program == p] = rows[np.clip(at, 0, rows.size - 1)]
    return out


def session_utm(rng: np.random.Generator, sessions: pd.DataFrame, paid: pd.DataFrame,
                email: pd.DataFrame) -> pd.DataFrame:
    """utm_medium, utm_campaign, utm_term, utm_content of each session: a paid flight's, or
    the email campaign's for a session opened by a click."""
    source = sessions["utm_source"].to_numpy(dtype=object)
    source = np.where(pd.isna(source), "", source).astype(str)
    program = pick_program(rng, source, sessions["hot"].to_numpy(dtype=bool))
    flight = flight_of(paid, program, sessions["day"].to_numpy())
    campaign = or_none(flight >= 0, paid["utm_campaign"].to_numpy()[np.maximum(flight, 0)])
    unknown = (flight >= 0) & (rng.random(flight.size) < UNKNOWN_SHARE)
    campaign = np.where(unknown, rng.choice(np.asarray(UNKNOWN_LINKS, dtype=object), flight.size), campaign)
    content, term = ad_groups(rng, program)
    clicked = sessions["campaign_id"].to_numpy(dtype=object)
    by_id = email.set_index("campaign_id")
    from_email = pd.notna(clicked)
    email_id = np.where(from_email, clicked, email["campaign_id"].iloc[0])
    campaign = np.where(from_email, by_id["utm_campaign"].reindex(email_id).to_numpy(), campaign)
    page = by_id["campaign_type"].str.removeprefix("email:").reindex(email_id).to_numpy()
    return pd.DataFrame({"utm_medium": pd.Series(source).map(MEDIUM).to_numpy(dtype=object),
                         "utm_campaign": campaign, "utm_term": term,
                         "utm_content": np.where(from_email, page, content)}, index=sessions.index)


def ad_groups(rng: np.random.Generator, program: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(utm_content, utm_term): one of the program's two ad groups, a search keyword."""
    pick = rng.integers(0, 2, program.size)
    groups = np.array([[f"{p[0]}-{g}" for g in p[4]] for p in PROGRAMS], dtype=object)
    terms = np.array([list(p[5]) or [None, None] for p in PROGRAMS], dtype=object)
    valid = program >= 0
    content = or_none(valid, groups[np.maximum(program, 0), pick])
    term = or_none(valid, terms[np.maximum(program, 0), pick])
    return content, term


def form_utm(forms: pd.DataFrame, sessions: pd.DataFrame) -> pd.DataFrame:
    """A form carries the UTM parameters of the session it was filled in (none without one)."""
    of_touch = sessions[sessions["touch_row"].to_numpy() >= 0].drop_duplicates("touch_row")
    utm = of_touch.set_index("touch_row")[list(UTM_COLUMNS)]
    return utm.reindex(forms["touch_row"].to_numpy()).set_index(forms.index)


def event_engagement(rng: np.random.Generator, regs: pd.DataFrame) -> pd.DataFrame:
    """questions_asked and demo_requested of attendees: buyers ask and request more."""
    hot = regs["hot"].to_numpy(dtype=bool)
    attended = regs["attended"].to_numpy(dtype=bool)
    questions = rng.poisson(np.where(hot, 1.1, 0.25)) * attended
    demo = (rng.random(len(regs)) < np.where(hot, 0.18, 0.03)) & attended
    return regs.assign(questions_asked=pd.array(questions, dtype="Int64"), demo_requested=demo)


def invitations(rng: np.random.Generator, regs: pd.DataFrame, events: pd.DataFrame,
                people: pd.DataFrame) -> pd.DataFrame:
    """Invitation lists: most registrants plus others from the database, three weeks ahead."""
    rows = []
    for event_row, event_id in enumerate(events["event_id"].to_numpy()):
        registrants = regs["person_idx"].to_numpy()[regs["event_id"].to_numpy() == event_id]
        invited = registrants[rng.random(registrants.size) < INVITED_REGISTRANTS]
        extra = rng.integers(0, len(people), int(registrants.size * rng.uniform(*INVITED_PER_REGISTRANT)))
        person = np.unique(np.r_[invited, extra])
        rows.append(pd.DataFrame({"campaign_id": event_id, "person_idx": person,
                                  "day": events["day"].to_numpy()[event_row] - 21}))
    frame = pd.concat(rows, ignore_index=True)
    return frame.assign(email=people["work_email"].to_numpy()[frame["person_idx"].to_numpy()])


def campaign_table(campaigns: pd.DataFrame, period: Period) -> pd.DataFrame:
    """The campaigns planned by the world's end, with timestamps (`campaigns.parquet`)."""
    planned = campaigns[campaigns["start_day"] < (period.world_end - period.start).days]
    return pd.DataFrame({
        "campaign_id": planned["campaign_id"].to_numpy(), "name": planned["name"].to_numpy(),
        "channel": planned["channel"].to_numpy(), "campaign_type": planned["campaign_type"].to_numpy(),
        "owner": planned["owner"].to_numpy(), "budget_usd": planned["budget_usd"].to_numpy(float),
        "cost_usd": planned["cost_usd"].to_numpy(float),
        "start_at": to_timestamps(period, planned["start_day"].to_numpy()).array,
        "end_at": to_timestamps(period, planned["end_day"].to_numpy()).array,
        "utm_campaign": planned["utm_campaign"].to_numpy(dtype=object),
    })


def invitation_table(invited: pd.DataFrame, period: Period) -> pd.DataFrame:
    """Invitations sent by the world's end (`campaign_invitations.parquet`)."""
    at = to_timestamps(period, invited["day"].to_numpy())
    sent = (at < period.world_end).to_numpy()
    return pd.DataFrame({"campaign_id": invited["campaign_id"].to_numpy()[sent],
                         "email": invited["email"].to_numpy(dtype=object)[sent],
                         "invited_at": at[sent].array})


def campaign_touches(sources: dict[str, pd.DataFrame], campaigns: pd.DataFrame) -> pd.DataFrame:
    """(source, source_record_id, at, campaign_id) of every raw row that names a campaign: a
    session or form by its utm_campaign, an email click, an event registration."""
    by_link = campaigns.dropna(subset=["utm_campaign"]).set_index("utm_campaign")["campaign_id"]
    frames = []
    for name, id_col, time_col in (("web_sessions", "session_id", "started_at"),
                                   ("form_fills", "form_fill_id", "submitted_at")):
        frame = sources[name]
        frames.append(pd.DataFrame({"source": name, "source_record_id": frame[id_col],
                                    "at": frame[time_col],
                                    "campaign_id": frame["utm_campaign"].map(by_link)}))
    clicks = sources["email_activity"][sources["email_activity"]["activity"] == "click"]
    frames.append(pd.DataFrame({"source": "email_activity", "source_record_id": clicks["activity_id"],
                                "at": clicks["occurred_at"], "campaign_id": clicks["campaign_id"]}))
    regs = sources["event_registrations"]
    frames.append(pd.DataFrame({"source": "event_registrations", "source_record_id": regs["registration_id"],
                                "at": regs["registered_at"], "campaign_id": regs["event_id"]}))
    return pd.concat(frames, ignore_index=True).dropna(subset=["campaign_id"])


def deal_touches(sources: dict[str, pd.DataFrame], campaigns: pd.DataFrame,
                 records: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(deals, touches): each deal won by the world's end with its contact (the true person),
    and every campaign touch of that person at or before the opportunity was created, one row
    per deal and touch in touch order (time, then TOUCH_RANK at one instant, then record id)."""
    person = records.set_index(["source", "source_record_id"])["person_key"]
    touches = campaign_touches(sources, campaigns)
    touches["person_key"] = person.reindex(pd.MultiIndex.from_frame(
        touches[["source", "source_record_id"]])).to_numpy()
    opps = sources["opportunities"]
    won = opps[opps["stage"] == "won"]
    deals = pd.DataFrame({"opportunity_id": won["opportunity_id"].to_numpy(),
                          "person_key": person.reindex(pd.MultiIndex.from_arrays(
                              [["opportunities"] * len(won), won["opportunity_id"]])).to_numpy(),
                          "created_at": won["created_at"].array, "won_at": won["closed_at"].array,
                          "amount_usd": won["amount_usd"].to_numpy()})
    pairs = deals.merge(touches.dropna(subset=["person_key"]), on="person_key")
    rank = pairs["source"].map(TOUCH_RANK)
    pairs = pairs.assign(rank=rank)[pairs["at"] <= pairs["created_at"]].sort_values(
        ["at", "rank", "source_record_id"])
    return deals, pairs


def deal_truth(sources: dict[str, pd.DataFrame], campaigns: pd.DataFrame,
               records: pd.DataFrame) -> pd.DataFrame:
    """Where each deal won by the world's end came from: the first and last campaign that
    touched its contact (the true person) at or before the opportunity was created
    (`deal_touches`; `campaign_deals`)."""
    deals, pairs = deal_touches(sources, campaigns, records)
    first = pairs.groupby("opportunity_id")["campaign_id"].first()
    last = pairs.groupby("opportunity_id")["campaign_id"].last()
    def of_deal(campaign: pd.Series) -> np.ndarray:  # None, not NaN, for a deal without touches
        values = campaign.reindex(deals["opportunity_id"]).to_numpy(dtype=object)
        return or_none(pd.notna(values), values)

    return deals.assign(first_campaign_id=of_deal(first), last_campaign_id=of_deal(last))
