"""Generate the whole synthetic world: the truth, then the sources drawn from it.

`generate_world` is pure (no I/O): seeded generators in, data frames out. Each
stage draws from its own child generator of `default_rng(seed)`, so a change in
one stage's draws does not reshuffle the others.

The world is drawn `future_days` past its end (volumes stretched to match, so the
observed window keeps its density), then every source is cut at the end: the
batch world and its future (`future.split_at`). With no future days nothing is
cut and the world is the one drawn before futures existed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from leadscore.config import WorldSettings

from . import campaigns as marketing
from . import commerce, crm, drift, mail, registrations, web
from .calendar import make_campaigns, make_events
from .clock import Period, world_period
from .cycles import LEAD_IN_DAYS, OpportunityModel, cycle_touches, decide_cycles, draw_committees
from .cycles import draw_cycles as draw_buying_cycles
from .dirt import company_name_variants
from .firms import make_companies, make_groups
from .future import split_at
from .outcomes import draw_opportunities, draw_orders, draw_signups
from .people import make_cookies, make_people
from .tables import order_by_time, records_table, source_tables, truth_tables
from .touches import (
    Budget,
    background_touches,
    engagement_rate,
    plan_budget,
    settle_touches,
)

logger = logging.getLogger(__name__)

# New streams go last: a child generator depends only on its place in this list.
STREAMS = ("firms", "people", "cycles", "touches", "outcomes", "calendar", "mail", "web",
           "events", "crm", "commerce", "drift", "campaigns")
CYCLES_PER_PERSON_YEAR = 0.3


@dataclass
class World:
    """Raw source tables up to the world's end (what the pipeline reads), the same sources
    after it (what a replay sends, see `future`) and the truth of both (evaluation only)."""

    sources: dict[str, pd.DataFrame] = field(default_factory=dict)
    truth: dict[str, pd.DataFrame] = field(default_factory=dict)
    future: dict[str, pd.DataFrame] = field(default_factory=dict)
    # the marketing team's own records (campaigns, invitation lists): read by marketing/, not
    # by identity, and never replayed
    plans: dict[str, pd.DataFrame] = field(default_factory=dict)


@dataclass
class Draft:
    """Everything drawn so far, in internal form (row indices and float days)."""

    period: Period
    groups: pd.DataFrame
    companies: pd.DataFrame
    people: pd.DataFrame
    cookies: pd.DataFrame
    budget: Budget
    parts: dict[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def days(self) -> float:
        return self.period.days


def generate_world(settings: WorldSettings) -> World:
    """Draw the world for `settings`: same settings, same world, frame for frame."""
    rng = dict(zip(STREAMS, np.random.default_rng(settings.seed).spawn(len(STREAMS)),
                   strict=True))
    draft = draw_population(rng, settings)
    draw_behaviour(rng, draft, drift.resolve(settings.drift, draft.period))
    draw_sources(rng, settings, draft)
    order_by_time(draft)
    drawn = source_tables(draft)
    sources, future = split_at(drawn, draft.period.world_end)
    plans = plan_tables(draft)
    records = records_table(draft, drawn)
    world = World(sources=sources, future=future, plans=plans,
                  truth={**truth_tables(draft), "records": records,
                         "campaign_deals": marketing.deal_truth(sources, plans["campaigns"], records),
                         "email_frequency": mail.frequency_truth()})
    logger.info("generated world: %s", {k: len(v) for k, v in world.sources.items()})
    if settings.future_days:
        logger.info("and its next %d days: %s", settings.future_days,
                    {k: len(v) for k, v in world.future.items()})
    return world


def draw_population(rng: dict[str, np.random.Generator], settings: WorldSettings) -> Draft:
    """Groups, companies, people and their browsers; the interaction budget."""
    period = world_period(settings)
    n_groups = settings.scaled(settings.groups)
    groups = make_groups(rng["firms"], n_groups)
    companies = make_companies(rng["firms"], groups,
                               max(settings.scaled(settings.companies), n_groups),
                               settings.sales_reps)
    people = make_people(rng["people"], companies, settings.scaled(settings.people), period.days)
    cookies = make_cookies(rng["people"], people, period.days)
    budget = plan_budget(settings.scaled(settings.interactions) * period.stretch)
    return Draft(period, groups, companies, people, cookies, budget)


def draw_behaviour(rng: dict[str, np.random.Generator], draft: Draft,
                   drifts: list[drift.Drift] | None = None) -> None:
    """Buying cycles, touches, opportunities and their consequences (under `drifts`, if any)."""
    days, weekday0 = draft.days, draft.period.start.weekday()
    budget = draft.budget
    expected = CYCLES_PER_PERSON_YEAR * len(draft.people) * (days + LEAD_IN_DAYS) / 365.25
    cycles = draw_buying_cycles(rng["cycles"], draft.companies, draft.people, days, expected)
    members = draw_committees(rng["cycles"], cycles, draft.people)
    raw = cycle_touches(rng["cycles"], cycles, members, budget.touches * budget.cycle_share)
    drifts = drifts or []
    raw = drift.mark_channels(rng["drift"], raw, drifts)
    adjust = (lambda p, c: drift.adjust_probability(p, c, draft.companies, raw, drifts)) if drifts else None
    cycles, members = decide_cycles(rng["cycles"], cycles, members, raw, draft.people,
                                    OpportunityModel(), adjust)
    in_cycle = settle_touches(rng["touches"], raw, draft.people, days, weekday0)
    background = background_touches(rng["touches"], draft.people,
                                    max(budget.touches - len(in_cycle), 0.0), days)
    draft.people["engagement"] = engagement_rate(draft.people, background, days)
    background = settle_touches(rng["touches"], background, draft.people, days, weekday0)
    touches = pd.concat([in_cycle, background], ignore_index=True)
    touches = touches.sort_values("day", kind="stable").reset_index(drop=True)
    opps = draw_opportunities(rng["outcomes"], cycles, members, draft.people, draft.companies,
                              days)
    draft.parts.update(cycles=cycles, members=members, touches=touches, opps=opps)


def draw_sources(rng: dict[str, np.random.Generator], settings: WorldSettings,
                 draft: Draft) -> None:
    """What each source system recorded of the behaviour, dirt included."""
    p, days = draft.parts, draft.days
    people, companies = draft.people, draft.companies
    names = company_name_variants(companies)
    events = make_events(rng["calendar"], draft.period)
    campaigns = make_campaigns(rng["calendar"], draft.period, settings.months * draft.period.stretch,
                               events)
    touches = web.touch_details(rng["web"], p["touches"], events)
    email = draw_email(rng["mail"], draft, campaigns)
    sessions = draw_sessions(rng["web"], draft, touches, email)
    forms = web.form_fills(rng["web"], touches, sessions, people, companies, names, days)
    regs = registrations.event_registrations(rng["events"], touches, events, people, companies,
                                             names, days)
    orders = commerce.orders(rng["commerce"],
                             draw_orders(rng["outcomes"], p["opps"], people, days),
                             people, companies)
    signups = draw_signups(rng["outcomes"], touches, p["opps"], people, days)
    users = commerce.user_accounts(rng["commerce"], signups, people, companies, days)
    account_rows = crm.account_rows(rng["crm"], companies, p["opps"], days)
    accounts = crm.crm_accounts(rng["crm"], account_rows, companies, names, settings.sales_reps)
    contact_rows = crm.contact_rows(rng["crm"], people, p["opps"], p["members"], days)
    contacts = crm.crm_contacts(rng["crm"], contact_rows, people, companies, accounts)
    opps = crm.crm_opportunities(p["opps"], contacts, accounts, len(companies))
    p.update(events=events, campaigns=campaigns, email=email, sessions=sessions, forms=forms,
             registrations=regs, orders=orders, users=users, accounts=accounts,
             contacts=contacts, opportunities=opps)
    draw_campaigns(rng["campaigns"], draft)


def draw_campaigns(rng: np.random.Generator, draft: Draft) -> None:
    """Every campaign (paid flights, emails, events), the UTM links of sessions and forms,
    invitation lists and what attendees did at events (see `campaigns`)."""
    p = draft.parts
    paid = marketing.paid_campaigns(rng, draft.period)
    email = marketing.email_campaigns(rng, p["campaigns"])
    events = marketing.event_campaigns(rng, p["events"])
    p["sessions"] = p["sessions"].join(marketing.session_utm(rng, p["sessions"], paid, email))
    p["forms"] = p["forms"].join(marketing.form_utm(p["forms"], p["sessions"]))
    p["registrations"] = marketing.event_engagement(rng, p["registrations"])
    p["marketing_campaigns"] = marketing.all_campaigns(paid, email, events)
    p["invitations"] = marketing.invitations(rng, p["registrations"], p["events"], draft.people)


def plan_tables(draft: Draft) -> dict[str, pd.DataFrame]:
    """`campaigns` and `campaign_invitations` as planned and sent by the world's end."""
    return {"campaigns": marketing.campaign_table(draft.parts["marketing_campaigns"], draft.period),
            "campaign_invitations": marketing.invitation_table(draft.parts["invitations"], draft.period)}


def draw_email(rng: np.random.Generator, draft: Draft, campaigns: pd.DataFrame) -> pd.DataFrame:
    """The email tool's log: sends to list entries, then opens and clicks."""
    p = draft.parts
    entries = mail.mailing_list(rng, draft.people, draft.companies, draft.days)
    cadence = mail.mailing_cadence(rng, len(draft.people))
    sends = mail.draw_sends(rng, entries, campaigns, draft.budget.sends, cadence)
    opens, clicks = mail.draw_responses(rng, sends, entries, draft.people, p["cycles"],
                                        p["members"], p["touches"], draft.days)
    return mail.email_activity(sends, opens, clicks, entries, campaigns)


def draw_sessions(rng: np.random.Generator, draft: Draft, touches: pd.DataFrame,
                  email: pd.DataFrame) -> pd.DataFrame:
    """Sessions of known touches and email clicks, topped up with anonymous visitors."""
    clicks = email[email["activity"].to_numpy() == "click"]
    known = web.known_sessions(rng, touches, draft.cookies)
    from_email = web.click_sessions(rng, clicks, draft.cookies)
    share = draft.budget.anonymous_share
    n_anon = int(round((len(known) + len(from_email)) * share / (1 - share)))
    anonymous = web.anonymous_sessions(rng, n_anon, draft.days, draft.period.start.weekday(),
                                       draft.cookies["cookie_id"].to_numpy())
    return web.web_sessions(rng, [known, from_email, anonymous])
