"""The synthetic B2B world: a vendor's scattered, dirty marketing and sales records.

The demo and most tests run on this world. It is generated from a hidden truth
(groups, companies, people, buying cycles) and then *recorded* by nine source
systems, each with its own ids and its own dirt, as a real company's data is.
A lead is an event, not a person: nothing in the sources says who is who.

    from leadscore.synth import generate_world, write_world, World
    world = generate_world(settings.world)          # pure, deterministic for a seed
    write_world(world, settings.raw_dir, settings.truth_dir, settings.future_dir)

Conventions: ids are strings; every timestamp is ``datetime64[us, UTC]``;
nullable integers are ``Int64``; missing text is ``None``. Each table's rows are
numbered in time order. The observed window is ``months`` months ending with
``end_date`` (inclusive); CRM rows may be older (accounts kept for years). The
world goes on ``future_days`` past it (see "The future" below).

Sources (``world.sources``, written to ``data/raw/<name>.parquet``)
--------------------------------------------------------------------
Every row happened before the world's end (``world_end``: midnight UTC after
``end_date``) and shows only what was known then.

crm_accounts
    account_id ("A0000001"), account_name, website, industry, employees (Int64),
    funding_stage, annual_revenue_usd, owner_rep_id ("R001"), created_at.
    ~90% of companies (all with an opportunity); ~3% of companies have a second
    account under a name variant, sometimes another owner and a guessed headcount.
    Websites as typed ("https://www.veltrix.com", "veltrix.com", "www.veltrix.com/");
    headcount rounded; funding stage sometimes one round behind; blanks.
crm_contacts
    contact_id ("C0000001"), account_id, first_name, last_name, email, phone,
    title, owner_rep_id, created_at. ~52% of people, decision makers and buyers
    more often; ~5% entered twice (nickname, personal address, another phone
    format); movers keep a stale contact at the old account (old work address)
    and 40% get a new one; ~5% not linked to an account; ~25% of contacts of a
    company with a duplicate account hang on the duplicate.
web_sessions
    session_id, cookie_id, started_at, landing_url, utm_source, pageviews,
    duration_s, utm_medium, utm_campaign, utm_term, utm_content. No personal
    data. People browse from 1-3 cookies; 20% of sessions come from anonymous
    cookies of no one. Email clicks open a session with utm_source "email"
    and the email campaign's link (utm_campaign "cmp0012", utm_content the
    landing page); paid sources (google, baidu, bing, linkedin, wechat,
    partner) carry the link of a paid flight running that day
    (`dataplat-search-2026q2`, ad group `dataplat-search-lakehouse`,
    search term); 1% of paid links are mistyped or forgotten campaigns
    ("spring_promo", "DATAPLAT_SEARCH") that no campaign list knows.
form_fills
    form_fill_id, submitted_at, form_type (whitepaper_download, contact_sales,
    webinar_signup, newsletter_signup), asset, cookie_id (88%: the cookie of the
    session the form was filled in), first_name, last_name, email, phone,
    company_name, job_title (all free text), and the UTM parameters of the
    session it was filled in (utm_source ... utm_content).
event_registrations
    registration_id, event_id, event_name, event_kind (webinar, summit),
    event_date, registered_at, attended (bool; False for events after the
    world's end), full_name (one field), email, phone, company_name,
    questions_asked (Int64) and demo_requested (bool) by attendees (people in
    a buying cycle ask and request more; 0 and False when not attended). Half
    of the webinar registrations also have a webinar_signup form fill.
email_activity
    activity_id, campaign_id, subject, email_address, activity (send, open,
    click), occurred_at, url (clicks only). Keyed only by the address on the
    mailing list (work or personal, as captured). Opens follow a send of the
    same campaign to the same address, clicks follow opens. Old work addresses
    of movers keep receiving but never open; mistyped addresses never open.
    About four campaigns a week; one person in five is on a faster nurture
    track (up to 24x the standard cadence), and how often people are mailed
    moves their opens (the frequency effect, truth ``email_frequency``).
opportunities
    opportunity_id, account_id, contact_id, created_at, stage (open, won, lost),
    closed_at, amount_usd (open, without closed_at, if closed after the world's
    end). On the company's main account and the person's
    latest non-duplicate contact by then (created with the opportunity if need be).
orders
    order_id, email, product (Product A/B/C), amount_usd, ordered_at. Placed by
    the buyer or a colleague, often from a team inbox (purchasing@...).
user_accounts
    user_id ("U0000001"), email, full_name, registered_at: trial sign-ups and the
    team seats of new customers; ~3% of users signed up twice (private address).

The marketing team's own records (``world.plans``, written to ``data/raw/``; never replayed)
----------------------------------------------------------------------------------------------
campaigns
    campaign_id, name, channel (paid_search, social, partner, email, webinar,
    summit), campaign_type (the paid program, ``email:<page>``, webinar,
    summit), owner, budget_usd, cost_usd, start_at, end_at, utm_campaign:
    paid programs in quarterly flights (``PC0001``...), the email campaigns
    (``CMP0001``...) and every event (its ``EV`` id), planned by the end.
campaign_invitations
    campaign_id (an event), email, invited_at: most registrants and two to
    four times as many others from the database, three weeks before.
See ``campaigns``: programs are weighted differently for people in a buying
cycle, so campaigns differ in the deals they bring.

Interaction-like rows (web_sessions + form_fills + event_registrations +
email_activity + orders) total ``settings.scaled(settings.interactions)``
within a few percent.

The future (``world.future``, written to ``data/future/<name>.parquet``)
------------------------------------------------------------------------
The same nine sources with the same columns, for the ``future_days`` after the
world's end, in time order: the world is drawn over the longer span (volumes
stretched so the window keeps its density) and cut at the end, so the same
people, companies, cycles, cookies and dirt go on: new sessions on known
cookies, form fills, registrations, email activity, orders, sign-ups, new CRM
contacts and accounts, opportunities weeks after engagement. Each row is as its
system would send it at its own time: opportunities open (closes are not sent),
registrations not attended, a contact without an account not yet created. Ids
go on from the batch world's. ``future_records(future, since, until)`` yields
``(source, record)`` in time order as JSON-ready dicts, ``read_future(dir)``
reads them back, ``world_end(settings)`` is where a replay starts. With
``future_days: 0`` every future table is empty and the world is the same as
before futures existed.

Drift (``world.drift``, ``leadscore synth --drift``)
---------------------------------------------------
The rules can change at a moment (a date, or days from the start or end): a new product line
makes an industry convert, a channel stops bringing buyers, the base rate doubles (see
``drift``). Cycles decided before the moment are decided as without the drift; the future is
drawn by the same drifted rules. Without drift the world is byte for byte the same.

The dirt (what the identity stage must cope with)
-------------------------------------------------
- emails: case variants ("John.Smith@Veltrix.Com", upper case), leading or
  trailing whitespace, typos (two neighbouring characters swapped or one
  dropped in the local part, ~1-1.5% of typed rows), personal (qq.com, 163.com,
  gmail.com, outlook.com) instead of work addresses, the *old* work address of
  someone who changed company, and team inboxes (info@, sales@, purchasing@...)
  used by several people of a company (about a third of companies do this);
- phones: one number in many styles ("+8613800138000", "+86 138-0013-8000",
  "13800138000", "(+86) 138 0013 8000", "0086 138 0013 8000", "138-0013-8000";
  +1/+44/+49/+65 likewise, national styles with a trunk 0), and company
  reception numbers (switchboards) shared by several people;
- names: nicknames (William/Bill, Robert/Bob, Elizabeth/Liz, ... see
  ``vocab.NICKNAMES``), upper- or lower-case, first and last swapped; one-field
  names as "John Smith", "SMITH, John", "zhang wei" or "Zhang Wei" (Chinese
  names are mostly written surname first);
- companies: "Veltrix China", "Veltrix China Co., Ltd.", "VELTRIX (CHINA)",
  "Veltrix China Ltd", "veltrix china", "Veltrix (China) Co., Ltd.", the bare
  group name "Veltrix" for a subsidiary, or nothing; subsidiaries often share
  the group's email domain;
- titles re-typed as another spelling of the same role ("Head of IT",
  "IT Director"), lower case, or missing; missing fields everywhere;
- ~5% of people changed company during the window (old and new work
  addresses, old and new company in the records);
- ~0.2% unusable rows (at least one per table): form fills with no email, no
  phone and no cookie; registrations with no name, no email and no phone.
  They belong to a real person in the truth, but nothing in them can say who.

Truth (``world.truth``, written to ``data/truth/``; evaluation only)
--------------------------------------------------------------------
groups (group_key, name, industry); companies (company_key, group_key, name,
domain, region, industry, employees, funding_stage, annual_revenue_usd,
owner_rep_id, switchboard_phone, shared_inbox); people (person_key,
company_key, previous_company_key, moved_at, first_name, last_name, title,
seniority, department, owner_rep_id, work_email, previous_work_email,
personal_email, phone, fit, engagement = background touches per 30 days);
cycles (one row per cycle member: cycle_id, company_key, person_key,
member_rank, start, end, intensity, events = the member's touches before the
opportunity date, p_opportunity, p_without_drift = the same under the rules
before any drift (equal without one), opportunity = the cycle's draw,
opportunity_at, is_opportunity_contact, opportunity_id = the source row when
it falls inside the drawn span); cookies (cookie_id, person_key or None);
records (source, source_record_id, person_key, company_key, future): every
raw and future row exactly once, company_key being the company at the time of
the row, future True for rows of ``world.future`` (identity figures leave them
out); campaign_deals (opportunity_id, person_key, created_at, won_at,
amount_usd, first_campaign_id, last_campaign_id): each deal won by the end and
the first and last campaign that touched its true person at or before the
opportunity; email_frequency (interest, turning_point_sends_per_week,
turning_point_sends_per_month, log_odds_per_send, recent_days, interest_days,
interest_touches): the planted frequency effect, people who showed interest in a
product (an intent touch in the last 90 days) opening more with every email of the
last 30 days, the others as often up to two a week (8.6 in 30 days) and less past it
(see ``mail``). The truth covers the whole drawn span, future included.

The hidden propensity: fit is a latent mix of company size, funding stage,
industry, seniority, department and noise. Companies open buying cycles at a
rate rising with fit; a committee of 1-4 people gets active for 1-4 months,
leaning to high-intent actions (pricing and product pages, whitepapers,
contact-sales, webinars). A cycle becomes an opportunity on its most engaged
member 2-8 weeks after it starts with p = sigmoid(a + b*fit + c*log1p(E) +
d*fit*log1p(E) + noise), E the committee's touches before that date (see
``cycles.OpportunityModel``); 12% of opportunities are inbound noise. Wins
(likelier with fit) close 30-120 days later with an amount scaled by company
size, then customers order. About 3% of people have an opportunity in a given
90-day window, ~20% of high-fit people in an active cycle.
"""

from .clock import world_end
from .future import future_records, read_future
from .output import write_world
from .world import World, generate_world

__all__ = ["World", "future_records", "generate_world", "read_future", "world_end", "write_world"]
