"""Final tables: ids, timestamps and exact column names of sources and truth.

Internal frames use row indices and float days; here they become the string
ids and `datetime64[us, UTC]` columns other stages rely on. Behaviour tables are
sorted by time before ids are given, as a real system numbers rows as they come.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .clock import Period, to_timestamps
from .ids import sequential_ids
from .people import company_at

if TYPE_CHECKING:
    from .world import Draft

SOURCE_IDS: dict[str, tuple[str, str, int]] = {
    # source: (id column, prefix, digits)
    "crm_accounts": ("account_id", "A", 7),
    "crm_contacts": ("contact_id", "C", 7),
    "web_sessions": ("session_id", "WS", 9),
    "form_fills": ("form_fill_id", "FF", 7),
    "event_registrations": ("registration_id", "REG", 7),
    "email_activity": ("activity_id", "EA", 9),
    "opportunities": ("opportunity_id", "OP", 6),
    "orders": ("order_id", "ORD", 7),
    "user_accounts": ("user_id", "U", 7),
}
# when each source's row happened: the time the source system recorded it
SOURCE_TIMES = {
    "crm_accounts": "created_at",
    "crm_contacts": "created_at",
    "web_sessions": "started_at",
    "form_fills": "submitted_at",
    "event_registrations": "registered_at",
    "email_activity": "occurred_at",
    "opportunities": "created_at",
    "orders": "ordered_at",
    "user_accounts": "registered_at",
}
# internal part behind each source table
PARTS = {
    "crm_accounts": "accounts",
    "crm_contacts": "contacts",
    "web_sessions": "sessions",
    "form_fills": "forms",
    "event_registrations": "registrations",
    "email_activity": "email",
    "opportunities": "opportunities",
    "orders": "orders",
    "user_accounts": "users",
}
TIME_ORDERED = ("sessions", "forms", "registrations", "email", "orders", "users")


def ids_for(source: str, n: int) -> np.ndarray:
    _, prefix, digits = SOURCE_IDS[source]
    return sequential_ids(prefix, n, digits)


def keys(frame: pd.DataFrame, column: str, idx: np.ndarray) -> np.ndarray:
    """Keys of `frame` at row `idx`, None where idx is negative."""
    idx = np.asarray(idx)
    values = frame[column].to_numpy()[np.maximum(idx, 0)].astype(object)
    values[idx < 0] = None
    return values


def order_by_time(draft: Draft) -> None:
    """Sort the behaviour parts by time, once, before ids are given and records taken."""
    for name in TIME_ORDERED:
        draft.parts[name] = draft.parts[name].sort_values("day", kind="stable").reset_index(
            drop=True)


def source_tables(draft: Draft) -> dict[str, pd.DataFrame]:
    """The nine raw source tables, exactly as the identity stage expects them.

    Rows follow the internal parts one for one (see `order_by_time`), so that
    `records_table` can label them.
    """
    p = draft.parts
    ts = partial(_timestamps, draft.period)
    accounts_ids = ids_for("crm_accounts", len(p["accounts"]))
    contact_ids = ids_for("crm_contacts", len(p["contacts"]))
    tables = {
        "crm_accounts": p["accounts"].drop(columns=["day", "company_idx", "duplicate"]).assign(
            created_at=ts(p["accounts"]["day"])),
        "crm_contacts": p["contacts"].assign(
            account_id=_lookup(accounts_ids, p["contacts"]["account_row"]),
            created_at=ts(p["contacts"]["day"]),
        )[["account_id", "first_name", "last_name", "email", "phone", "title", "owner_rep_id",
           "created_at"]],
        "web_sessions": p["sessions"].assign(started_at=ts(p["sessions"]["day"]))[
            ["cookie_id", "started_at", "landing_url", "utm_source", "pageviews",
             "duration_s", "utm_medium", "utm_campaign", "utm_term", "utm_content"]],
        "form_fills": form_table(p["forms"], ts),
        "event_registrations": registration_table(p["registrations"], ts),
        "email_activity": p["email"].assign(occurred_at=ts(p["email"]["day"]))[
            ["campaign_id", "subject", "email_address", "activity", "occurred_at", "url"]],
        "opportunities": opportunity_table(p["opportunities"], accounts_ids, contact_ids, ts),
        "orders": p["orders"].assign(ordered_at=ts(p["orders"]["day"]))[
            ["email", "product", "amount_usd", "ordered_at"]],
        "user_accounts": p["users"].assign(registered_at=ts(p["users"]["day"]))[
            ["email", "full_name", "registered_at"]],
    }
    given = {"crm_accounts": accounts_ids, "crm_contacts": contact_ids}
    return {name: _with_id(name, frame, given.get(name)) for name, frame in tables.items()}


def _timestamps(period: Period, days) -> pd.api.extensions.ExtensionArray:
    return to_timestamps(period, np.asarray(days, dtype=float)).array


def _lookup(ids: np.ndarray, rows: pd.Series) -> np.ndarray:
    rows = rows.to_numpy()
    valid = pd.notna(rows) & (np.nan_to_num(rows.astype(float), nan=-1) >= 0)
    out = np.full(rows.size, None, dtype=object)
    out[valid] = ids[rows[valid].astype(int)]
    return out


def _with_id(source: str, frame: pd.DataFrame, ids: np.ndarray | None) -> pd.DataFrame:
    column = SOURCE_IDS[source][0]
    ids = ids_for(source, len(frame)) if ids is None else ids
    frame = frame.reset_index(drop=True)
    frame.insert(0, column, ids)
    return _tidy(frame)


def _tidy(frame: pd.DataFrame) -> pd.DataFrame:
    """Object columns keep None (not NaN) for missing strings."""
    for column in frame.columns:
        if frame[column].dtype == object:
            values = frame[column].to_numpy()
            frame[column] = np.where(pd.isna(values), None, values)
    return frame


def form_table(forms: pd.DataFrame, ts: Callable) -> pd.DataFrame:
    return forms.assign(submitted_at=ts(forms["day"]))[
        ["submitted_at", "form_type", "asset", "cookie_id", "first_name", "last_name", "email",
         "phone", "company_name", "job_title", "utm_source", "utm_medium", "utm_campaign", "utm_term",
         "utm_content"]]


def registration_table(regs: pd.DataFrame, ts: Callable) -> pd.DataFrame:
    return regs.assign(event_date=ts(regs["event_day"]), registered_at=ts(regs["day"]))[
        ["event_id", "event_name", "event_kind", "event_date", "registered_at", "attended",
         "full_name", "email", "phone", "company_name", "questions_asked", "demo_requested"]]


def opportunity_table(opps: pd.DataFrame, account_ids: np.ndarray, contact_ids: np.ndarray,
                      ts: Callable) -> pd.DataFrame:
    """Opportunity rows with the CRM ids of their account and contact."""
    return pd.DataFrame({
        "account_id": _lookup(account_ids, opps["account_row"]),
        "contact_id": _lookup(contact_ids, opps["contact_row"]),
        "created_at": ts(opps["day"]),
        "stage": opps["stage"].to_numpy(),
        "closed_at": ts(opps["close_day"]),
        "amount_usd": opps["amount"].to_numpy(),
    })


def records_table(draft: Draft, sources: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per source row: which true person and company it refers to.

    company_key is the company at the time of the row (a mover's old company
    before the move); crm_accounts rows refer to a company only; anonymous web
    sessions to no one. `future` marks the rows at or after the world's end.
    """
    people, companies = draft.people, draft.companies
    frames = []
    for source, part in PARTS.items():
        internal = draft.parts[part]
        person = internal.get("person_idx", pd.Series(-1, index=internal.index)).to_numpy()
        if "company_idx" in internal:
            company = internal["company_idx"].to_numpy()
        else:  # sessions and email know no company: the person's at the time
            day = internal["day"].to_numpy()
            company = np.where(person >= 0, company_at(people, np.maximum(person, 0), day), -1)
        frames.append(pd.DataFrame({
            "source": source,
            "source_record_id": sources[source][SOURCE_IDS[source][0]].to_numpy(),
            "person_key": keys(people, "person_key", person),
            "company_key": keys(companies, "company_key", company),
            "future": (sources[source][SOURCE_TIMES[source]] >= draft.period.world_end).to_numpy(),
        }))
    return pd.concat(frames, ignore_index=True)


def truth_tables(draft: Draft) -> dict[str, pd.DataFrame]:
    """The true world, except `records` (see `records_table`)."""
    ts = partial(_timestamps, draft.period)
    companies = draft.companies
    return {
        "groups": draft.groups[["group_key", "name", "industry"]].copy(),
        "companies": companies[[
            "company_key", "group_key", "name", "domain", "region", "industry", "employees",
            "funding_stage", "annual_revenue_usd", "owner_rep_id", "switchboard_phone",
            "shared_inbox"]].copy(),
        "people": people_table(draft, ts),
        "cycles": cycles_table(draft, ts),
        "cookies": cookies_table(draft),
    }


def people_table(draft: Draft, ts: Callable) -> pd.DataFrame:
    """True people; `engagement` is background touches per 30 days, `fit` is in [0, 1]."""
    people, companies = draft.people, draft.companies
    company = people["company_idx"].to_numpy()
    return _tidy(pd.DataFrame({
        "person_key": people["person_key"].to_numpy(),
        "company_key": keys(companies, "company_key", company),
        "previous_company_key": keys(companies, "company_key", people["prev_company_idx"]),
        "moved_at": ts(people["moved_day"]),
        "first_name": people["first_name"].to_numpy(),
        "last_name": people["last_name"].to_numpy(),
        "title": people["title"].to_numpy(),
        "seniority": people["seniority"].to_numpy(),
        "department": people["department"].to_numpy(),
        "owner_rep_id": companies["owner_rep_id"].to_numpy()[company],
        "work_email": people["work_email"].to_numpy(),
        "previous_work_email": people["previous_work_email"].to_numpy(),
        "personal_email": people["personal_email"].to_numpy(),
        "phone": people["phone"].to_numpy(),
        "fit": people["fit"].to_numpy(),
        "engagement": people["engagement"].to_numpy(),
    }))


def cycles_table(draft: Draft, ts: Callable) -> pd.DataFrame:
    """One row per (cycle, committee member); cycle-level columns repeat on each row."""
    cycles, members = draft.parts["cycles"], draft.parts["members"]
    opps = draft.parts["opportunities"]
    cycle_ids = sequential_ids("CY", len(cycles), 6)
    opp_ids = ids_for("opportunities", len(opps))
    from_cycle = opps["cycle_idx"].to_numpy() >= 0
    opp_of_cycle = np.full(len(cycles), -1)
    opp_of_cycle[opps["cycle_idx"].to_numpy()[from_cycle]] = np.flatnonzero(from_cycle)
    c = members["cycle_idx"].to_numpy()
    start = cycles["start"].to_numpy()
    return _tidy(pd.DataFrame({
        "cycle_id": cycle_ids[c],
        "company_key": keys(draft.companies, "company_key", cycles["company_idx"].to_numpy()[c]),
        "person_key": keys(draft.people, "person_key", members["person_idx"].to_numpy()),
        "member_rank": members["rank"].to_numpy(),
        "start": ts(start[c]),
        "end": ts((start + cycles["duration"].to_numpy())[c]),
        "intensity": cycles["intensity"].to_numpy()[c],
        "events": members["events"].to_numpy(),
        "p_opportunity": cycles["p_opportunity"].to_numpy()[c],
        "p_without_drift": cycles["p_without_drift"].to_numpy()[c],
        "opportunity": cycles["opportunity"].to_numpy()[c],
        "opportunity_at": ts(np.where(cycles["opportunity"], start + cycles["lag"], np.nan)[c]),
        "is_opportunity_contact": members["opportunity"].to_numpy(),
        "opportunity_id": _lookup(opp_ids, pd.Series(opp_of_cycle[c])),
    }))


def cookies_table(draft: Draft) -> pd.DataFrame:
    """Every cookie seen or owned: its true person, or None for anonymous visitors."""
    owned, sessions = draft.cookies, draft.parts["sessions"]
    anonymous = pd.unique(sessions["cookie_id"][sessions["person_idx"].to_numpy() < 0])
    return pd.DataFrame({
        "cookie_id": np.r_[owned["cookie_id"].to_numpy(), anonymous].astype(object),
        "person_key": np.r_[draft.people["person_key"].to_numpy()[owned["person_idx"]],
                            np.full(anonymous.size, None, dtype=object)],
    })
