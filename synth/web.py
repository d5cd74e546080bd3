"""The website: sessions by cookie and the forms people fill there.

Sessions carry no personal data, only a cookie id; a person browses from 1-3
cookies, and a fifth of sessions come from cookies that belong to no one we
will ever know. A form filled on the site usually carries the cookie of its
session, which is how an anonymous cookie becomes a person.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import vocab
from .calendar import next_event
from .clock import business_time, last_instant
from .dirt import (
    EmailMix,
    NameMix,
    PhoneMix,
    present_company_names,
    present_emails,
    present_names,
    present_phones,
    present_titles,
)
from .ids import random_hex
from .people import company_at
from .sampling import choice, or_none
from .touches import KIND

FORM_TYPES = {
    KIND["whitepaper"]: "whitepaper_download",
    KIND["contact_sales"]: "contact_sales",
    KIND["newsletter"]: "newsletter_signup",
    KIND["webinar"]: "webinar_signup",
}
WEBINAR_FORM_SHARE = 0.5  # webinar sign-ups made through the site's form


def slug(values: pd.Series) -> pd.Series:
    return values.str.lower().str.replace(r"[^a-z0-9]+", "-", regex=True).str.strip("-")


def touch_details(rng: np.random.Generator, touches: pd.DataFrame,
                  events: pd.DataFrame) -> pd.DataFrame:
    """Asset, event, landing path and whether a web form was involved, per touch."""
    kind = touches["kind"].to_numpy()
    n = kind.size
    day = touches["day"].to_numpy()
    webinar = next_event(events, "webinar", day, 0.5)
    summit = next_event(events, "summit", day, 5)
    event_row = np.where(kind == KIND["webinar"], webinar,
                         np.where(kind == KIND["summit"], summit, -1))
    asset = np.where(kind == KIND["whitepaper"],
                     choice(rng, vocab.ASSETS, [1] * len(vocab.ASSETS), n),
                     or_none(kind == KIND["contact_sales"], choice(rng, vocab.CONTACT_ASSETS, (5, 3, 2), n)))
    unnamed = (kind == KIND["contact_sales"]) & (rng.random(n) < 0.3)
    asset = or_none(~unnamed, asset)
    event_name = events["event_name"].to_numpy()[np.maximum(event_row, 0)]
    asset = np.where(kind == KIND["webinar"], event_name, asset)
    with_form = np.isin(kind, list(FORM_TYPES)) & (
        (kind != KIND["webinar"]) | (rng.random(n) < WEBINAR_FORM_SHARE))
    return touches.assign(event_row=event_row, asset=asset, with_form=with_form,
                          path=landing_paths(rng, kind, touches["in_cycle"].to_numpy(), asset))


def landing_paths(rng: np.random.Generator, kind: np.ndarray, hot: np.ndarray,
                  asset: np.ndarray) -> np.ndarray:
    """Pages people land on: product and pricing pages lean to buying cycles."""
    paths = np.array([p[0] for p in vocab.PAGES], dtype=object)
    cold = choice(rng, paths, [p[1] for p in vocab.PAGES], kind.size)
    warm = choice(rng, paths, [p[2] for p in vocab.PAGES], kind.size)
    out = np.where(hot, warm, cold)
    asset_slug = slug(pd.Series(asset, dtype=object).fillna("demo")).to_numpy()
    out = np.where(kind == KIND["whitepaper"], "/resources/" + asset_slug, out)
    out = np.where(kind == KIND["contact_sales"], "/contact-sales", out)
    out = np.where(kind == KIND["newsletter"], "/newsletter", out)
    out = np.where(kind == KIND["webinar"], "/webinars/" + asset_slug, out)
    return np.where(kind == KIND["trial"], "/signup", out)


def person_cookies(rng: np.random.Generator, cookies: pd.DataFrame, person_idx: np.ndarray,
                   day: np.ndarray) -> np.ndarray:
    """Row in `cookies` of the browser used: mostly the main one, others once they exist."""
    owner = cookies["person_idx"].to_numpy()
    first = np.searchsorted(owner, person_idx, side="left")
    count = np.searchsorted(owner, person_idx, side="right") - first
    other = np.floor(rng.random(person_idx.size) * count).astype(int)
    rank = np.where(rng.random(person_idx.size) < 0.6, 0, other)
    rank = np.where(cookies["born_day"].to_numpy()[first + rank] > day, 0, rank)
    return first + rank


def session_shape(rng: np.random.Generator, hot: np.ndarray,
                  form: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(pageviews, duration_s): longer visits in a buying cycle; one-page visits bounce."""
    n = hot.size
    pageviews = rng.geometric(np.where(hot, 0.3, 0.45), n) + form
    per_page = rng.lognormal(np.log(45), 0.8, n)
    bounce = rng.integers(0, 40, n)
    duration = np.where(pageviews == 1, bounce, np.round(pageviews * per_page))
    return pageviews.astype(np.int64), duration.astype(np.int64)


def _utm(rng: np.random.Generator, n: int, direct: float) -> np.ndarray:
    source = choice(rng, vocab.UTM_SOURCES, vocab.UTM_WEIGHTS, n)
    return or_none(rng.random(n) >= direct, source)


def known_sessions(rng: np.random.Generator, touches: pd.DataFrame,
                   cookies: pd.DataFrame) -> pd.DataFrame:
    """One session per touch made on the site, on one of the person's cookies."""
    kind = touches["kind"].to_numpy()
    with_form = touches["with_form"].to_numpy()
    t = touches[(kind != KIND["summit"]) & ((kind != KIND["webinar"]) | with_form)]
    cookie_row = person_cookies(rng, cookies, t["person_idx"].to_numpy(), t["day"].to_numpy())
    return pd.DataFrame({
        "person_idx": t["person_idx"].to_numpy(),
        "cookie_id": cookies["cookie_id"].to_numpy()[cookie_row],
        "day": t["day"].to_numpy(),
        "path": t["path"].to_numpy(),
        "utm_source": _utm(rng, len(t), 0.45),
        "hot": t["in_cycle"].to_numpy(),
        "form": t["with_form"].to_numpy(),
        "touch_row": t.index.to_numpy(),
    })


def click_sessions(rng: np.random.Generator, clicks: pd.DataFrame,
                   cookies: pd.DataFrame) -> pd.DataFrame:
    """Nine email clicks in ten open a tracked session on the linked page."""
    c = clicks[rng.random(len(clicks)) < 0.9]
    cookie_row = person_cookies(rng, cookies, c["person_idx"].to_numpy(), c["day"].to_numpy())
    path = c["url"].str.removeprefix(vocab.SITE).str.split("?").str[0]
    return pd.DataFrame({
        "person_idx": c["person_idx"].to_numpy(),
        "cookie_id": cookies["cookie_id"].to_numpy()[cookie_row],
        "day": c["day"].to_numpy(),
        "path": path.to_numpy(),
        "utm_source": "email",
        "hot": False,
        "form": False,
        "touch_row": -1,
        "campaign_id": c["campaign_id"].to_numpy(),
    })


def anonymous_sessions(rng: np.random.Generator, n: int, days: float, weekday0: int,
                       taken: np.ndarray) -> pd.DataFrame:
    """Visitors we never learn about: a few sessions per cookie, heavy-tailed."""
    n_cookies = max(1, n // 2)
    ids = random_hex(rng, n_cookies, 16, taken)
    weights = rng.lognormal(0, 1.0, n_cookies)
    offset = np.where(rng.random(n) < 0.7, 8.0, np.where(rng.random(n) < 0.5, 1.0, -5.0))
    day = business_time(rng, rng.uniform(0, days, n), offset, weekday0)
    paths = np.array([p[0] for p in vocab.PAGES], dtype=object)
    return pd.DataFrame({
        "person_idx": -1,
        "cookie_id": ids[rng.choice(n_cookies, n, p=weights / weights.sum())],
        "day": np.clip(day, 0, last_instant(days)),
        "path": choice(rng, paths, [p[1] for p in vocab.PAGES], n),
        "utm_source": _utm(rng, n, 0.4),
        "hot": False,
        "form": False,
        "touch_row": -1,
    })


def web_sessions(rng: np.random.Generator, parts: list[pd.DataFrame]) -> pd.DataFrame:
    """All sessions in time order with their shape (pageviews, duration)."""
    sessions = pd.concat(parts, ignore_index=True).sort_values("day", kind="stable")
    sessions = sessions.reset_index(drop=True)
    pageviews, duration = session_shape(rng, sessions["hot"].to_numpy(dtype=bool),
                                        sessions["form"].to_numpy(dtype=bool))
    sessions["landing_url"] = vocab.SITE + sessions["path"]
    sessions["landing_url"] = sessions["landing_url"].str.rstrip("/")
    return sessions.assign(pageviews=pageviews, duration_s=duration)


FORM_EMAILS = EmailMix(work=70, personal=11, stale=2, case=6, space=3, typo=1.5, shared=12,
                       missing=1)
FORM_PHONES = PhoneMix(own=55, switchboard=20, missing=35)
FORM_NAMES = NameMix(exact=80, nickname=6, upper_last=5, lower=5, swapped=4)
UNUSABLE_SHARE = 0.002  # rows with nothing to resolve on: the identity stage quarantines them


def form_fills(rng: np.random.Generator, touches: pd.DataFrame, sessions: pd.DataFrame,
               people: pd.DataFrame, companies: pd.DataFrame, company_names: np.ndarray,
               days: float) -> pd.DataFrame:
    """Form submissions as typed by people, minutes into the session (before ids and
    timestamps); a session in the span's last minutes submits before its end."""
    t = touches[touches["with_form"].to_numpy()]
    person = t["person_idx"].to_numpy()
    day = np.minimum(t["day"].to_numpy() + rng.uniform(1, 10, len(t)) / 1440, last_instant(days))
    firm = company_at(people, person, day)
    from_touch = sessions[sessions["touch_row"].to_numpy() >= 0]
    cookie = pd.Series(from_touch["cookie_id"].to_numpy(),
                       index=from_touch["touch_row"].to_numpy()).reindex(t.index).to_numpy()
    cookie = np.where(rng.random(len(t)) < 0.12, None, cookie)
    first, last = present_names(rng, people, person, FORM_NAMES)
    forms = pd.DataFrame({
        "day": day,
        "form_type": pd.Series(t["kind"].to_numpy()).map(FORM_TYPES).to_numpy(),
        "asset": t["asset"].to_numpy(),
        "cookie_id": cookie,
        "first_name": first,
        "last_name": last,
        "email": present_emails(rng, people, companies, person, firm, day, FORM_EMAILS),
        "phone": present_phones(rng, people, companies, person, firm, FORM_PHONES),
        "company_name": present_company_names(rng, company_names, firm, missing=0.08),
        "job_title": present_titles(rng, people, person, retyped=0.25, missing=0.15),
        "person_idx": person,
        "company_idx": firm,
        "touch_row": t.index.to_numpy(),
    })
    return make_unusable(rng, forms, ("email", "phone", "cookie_id"))


def make_unusable(rng: np.random.Generator, rows: pd.DataFrame,
                  columns: tuple[str, ...]) -> pd.DataFrame:
    """Blank every identifier of a small share of rows (at least one row)."""
    if rows.empty:
        return rows
    n = max(1, int(round(UNUSABLE_SHARE * len(rows))))
    picked = rng.choice(len(rows), n, replace=False)
    for column in columns:
        values = rows[column].to_numpy().copy()
        values[picked] = None
        rows[column] = values
    return rows
