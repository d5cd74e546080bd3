"""The CRM: accounts, contacts and opportunities, as sales keep them.

Cleaner than marketing data but not clean: ~10% of companies have no account,
~3% have a second account under a variant name, ~5% of contacts are duplicated
(nickname, another phone format, a personal address), movers keep a stale
contact at their old company, and firmographic fields are rounded, stale or
empty. Every opportunity's person has a contact (created with it if need be).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import vocab
from .dirt import (
    EmailMix,
    NameMix,
    PhoneMix,
    present_company_names,
    present_emails,
    present_names,
    present_phones,
    present_titles,
    website_variants,
)
from .firms import rep_ids
from .people import company_at
from .sampling import sigmoid

ACCOUNT_SHARE = 0.9
DUPLICATE_ACCOUNT_SHARE = 0.03
DUPLICATE_CONTACT_SHARE = 0.05
CONTACT_EMAILS = EmailMix(work=84, personal=6, stale=0, case=4, space=1.5, typo=0.8, shared=0,
                          missing=3)
CONTACT_PHONES = PhoneMix(own=85, switchboard=6, missing=9)
CONTACT_NAMES = NameMix(exact=90, nickname=3, upper_last=4, lower=1, swapped=2)


def first_opportunity_day(opps: pd.DataFrame, key: str, n: int) -> np.ndarray:
    """Earliest opportunity day per company or person (inf where none)."""
    first = np.full(n, np.inf)
    np.minimum.at(first, opps[key].to_numpy(), opps["day"].to_numpy())
    return first


def account_rows(rng: np.random.Generator, companies: pd.DataFrame, opps: pd.DataFrame,
                 days: float) -> pd.DataFrame:
    """Primary accounts (90% of companies, all with an opportunity) and ~3% duplicates."""
    n = len(companies)
    opp_day = first_opportunity_day(opps, "company_idx", n)
    has = (rng.random(n) < ACCOUNT_SHARE) | np.isfinite(opp_day)
    created = np.where(rng.random(n) < 0.7, rng.uniform(-1500, 0, n), rng.uniform(0, days, n))
    created = np.minimum(created, opp_day - rng.uniform(0, 1, n))
    primary = pd.DataFrame({"company_idx": np.flatnonzero(has), "day": created[has],
                            "duplicate": False})
    n_dup = min(len(primary), max(1, int(round(DUPLICATE_ACCOUNT_SHARE * n))))
    dup = primary.iloc[rng.choice(len(primary), n_dup, replace=False)]
    later = dup["day"].to_numpy() + rng.uniform(10, 400, n_dup)
    dup = dup.assign(day=np.where(later < days, later,
                                  rng.uniform(np.maximum(dup["day"], 0), days)), duplicate=True)
    rows = pd.concat([primary, dup], ignore_index=True).sort_values("day", kind="stable")
    return rows.reset_index(drop=True)


def crm_accounts(rng: np.random.Generator, rows: pd.DataFrame, companies: pd.DataFrame,
                 company_names: np.ndarray, n_reps: int) -> pd.DataFrame:
    """Account fields as entered: duplicates under a variant name, rounded or empty numbers."""
    firm = rows["company_idx"].to_numpy()
    n = firm.size
    dup = rows["duplicate"].to_numpy()
    exact = present_company_names(rng, company_names, firm, 0.0, (85, 3, 0, 4, 0, 3, 5))
    variant = present_company_names(rng, company_names, firm, 0.0, (0, 30, 15, 25, 5, 0, 25))
    employees = companies["employees"].to_numpy()[firm].astype(float)
    guessed = _two_significant(employees * rng.uniform(0.8, 1.25, n))
    employees = np.where(rng.random(n) < 0.3, _two_significant(employees), employees)
    employees = np.where(dup & (rng.random(n) < 0.5), guessed, employees)
    stage = companies["funding_ord"].to_numpy()[firm]
    stage = np.where(rng.random(n) < 0.1, np.maximum(stage - 1, 0), stage)  # not updated
    owner = companies["owner_rep_id"].to_numpy()[firm]
    other_rep = rep_ids(n_reps)[rng.integers(0, n_reps, n)]
    return pd.DataFrame({
        "account_name": np.where(dup, variant, exact),
        "website": website_variants(rng, companies["domain"].to_numpy()[firm], 0.15),
        "industry": _blank(rng, companies["industry"].to_numpy()[firm], 0.12),
        "employees": pd.array(np.where(rng.random(n) < 0.2, np.nan, employees), dtype="Int64"),
        "funding_stage": _blank(rng, np.asarray(vocab.FUNDING_STAGES, dtype=object)[stage], 0.3),
        "annual_revenue_usd": np.where(rng.random(n) < 0.4, np.nan, np.round(
            companies["annual_revenue_usd"].to_numpy()[firm], -5)),
        "owner_rep_id": np.where(dup & (rng.random(n) < 0.5), other_rep, owner),
        "day": rows["day"].to_numpy(),
        "company_idx": firm,
        "duplicate": dup,
    })


def _two_significant(values: np.ndarray) -> np.ndarray:
    digits = np.maximum(np.floor(np.log10(np.maximum(values, 1))) - 1, 0)
    return np.maximum(np.round(values / 10**digits) * 10**digits, 1)


def _blank(rng: np.random.Generator, values: np.ndarray, share: float) -> np.ndarray:
    out = values.astype(object).copy()
    out[rng.random(out.size) < share] = None
    return out


def contact_rows(rng: np.random.Generator, people: pd.DataFrame, opps: pd.DataFrame,
                 members: pd.DataFrame, days: float) -> pd.DataFrame:
    """Who sales keep as contacts and when: decision makers and cycle members more often."""
    n = len(people)
    opp_day = first_opportunity_day(opps, "person_idx", n)
    role = people["seniority"].map(vocab.SENIORITY_FIT).to_numpy()
    cycled = np.isin(np.arange(n), members["person_idx"].to_numpy())
    has = (rng.random(n) < sigmoid(-0.55 + 1.2 * role + 0.6 * cycled)) | np.isfinite(opp_day)
    created = people["joined_day"].to_numpy() + rng.uniform(0, 90, n)
    created = np.minimum(created, opp_day - rng.uniform(0, 1, n))
    keep = np.flatnonzero(has & (created < days))
    primary = pd.DataFrame({"person_idx": keep, "day": created[keep], "kind": "primary"})
    return pd.concat([primary, refreshed(rng, people, primary, days),
                      duplicated(rng, primary, days)], ignore_index=True)


def refreshed(rng: np.random.Generator, people: pd.DataFrame, primary: pd.DataFrame,
              days: float) -> pd.DataFrame:
    """Movers whose contact predates the move: 40% get a new contact at the new company."""
    moved = people["moved_day"].to_numpy()[primary["person_idx"].to_numpy()]
    stale = primary[(primary["day"].to_numpy() < moved) & (rng.random(len(primary)) < 0.4)]
    day = people["moved_day"].to_numpy()[stale["person_idx"].to_numpy()] + rng.uniform(
        5, 120, len(stale))
    return stale.assign(day=day, kind="refresh")[day < days]


def duplicated(rng: np.random.Generator, primary: pd.DataFrame, days: float) -> pd.DataFrame:
    """~5% of contacts are entered twice, later, by someone else."""
    n_dup = min(len(primary), max(1, int(round(DUPLICATE_CONTACT_SHARE * len(primary)))))
    dup = primary.iloc[rng.choice(len(primary), n_dup, replace=False)]
    day = dup["day"].to_numpy() + rng.uniform(20, 300, n_dup)
    day = np.where(day < days, day, rng.uniform(np.maximum(dup["day"], 0), days))
    return dup.assign(day=day, kind="duplicate")


def account_lookup(accounts: pd.DataFrame, n_companies: int) -> tuple[np.ndarray, np.ndarray]:
    """(primary account row, duplicate account row) per company, -1 where none."""
    primary = np.full(n_companies, -1)
    duplicate = np.full(n_companies, -1)
    is_dup = accounts["duplicate"].to_numpy()
    rows = np.arange(len(accounts))
    primary[accounts["company_idx"].to_numpy()[~is_dup]] = rows[~is_dup]
    duplicate[accounts["company_idx"].to_numpy()[is_dup]] = rows[is_dup]
    return primary, duplicate


DUPLICATE_EMAILS = EmailMix(work=25, personal=55, stale=0, case=20, space=0, typo=0, shared=0,
                            missing=0)
DUPLICATE_NAMES = NameMix(exact=35, nickname=55, upper_last=5, lower=5, swapped=0)


def crm_contacts(rng: np.random.Generator, rows: pd.DataFrame, people: pd.DataFrame,
                 companies: pd.DataFrame, accounts: pd.DataFrame) -> pd.DataFrame:
    """Contact fields as sales typed them (before ids and timestamps)."""
    rows = rows.sort_values("day", kind="stable").reset_index(drop=True)
    person = rows["person_idx"].to_numpy()
    day = rows["day"].to_numpy()
    firm = company_at(people, person, day)
    dup = rows["kind"].to_numpy() == "duplicate"
    primary, duplicate = account_lookup(accounts, len(companies))
    account = np.where((duplicate[firm] >= 0) & (rng.random(firm.size) < 0.25),
                       duplicate[firm], primary[firm])
    account = np.where(rng.random(firm.size) < 0.05, -1, account)
    first, last = present_names(rng, people, person, CONTACT_NAMES)
    dfirst, dlast = present_names(rng, people, person, DUPLICATE_NAMES)
    email = present_emails(rng, people, companies, person, firm, day, CONTACT_EMAILS)
    demail = present_emails(rng, people, companies, person, firm, day, DUPLICATE_EMAILS)
    return pd.DataFrame({
        "account_row": account,
        "first_name": np.where(dup, dfirst, first),
        "last_name": np.where(dup, dlast, last),
        "email": np.where(dup, demail, email),
        "phone": present_phones(rng, people, companies, person, firm, CONTACT_PHONES),
        "title": present_titles(rng, people, person, retyped=0.15, missing=0.1),
        "owner_rep_id": companies["owner_rep_id"].to_numpy()[firm],
        "day": day,
        "person_idx": person,
        "company_idx": firm,
        "kind": rows["kind"].to_numpy(),
    })


def crm_opportunities(opps: pd.DataFrame, contacts: pd.DataFrame, accounts: pd.DataFrame,
                      n_companies: int) -> pd.DataFrame:
    """Opportunities on the company's main account and the person's latest contact by then."""
    primary, _ = account_lookup(accounts, n_companies)
    kept = contacts[contacts["kind"].to_numpy() != "duplicate"]
    kept = kept.assign(contact_row=kept.index.to_numpy())[["person_idx", "day", "contact_row"]]
    ordered = opps.assign(opp_row=np.arange(len(opps))).sort_values("day", kind="stable")
    matched = pd.merge_asof(ordered, kept.sort_values("day"), on="day", by="person_idx",
                            direction="backward", allow_exact_matches=True)
    contact = matched.sort_values("opp_row")["contact_row"].to_numpy()
    return opps.assign(account_row=primary[opps["company_idx"].to_numpy()],
                       contact_row=contact)
