"""How a true person or company shows up in a source row: the dirt.

Each source picks, per row, one way of presenting the truth (work or personal
address, a case or whitespace variant, a typo, the company's team inbox, a
phone in another format or the reception number, a nickname, a re-typed title,
a variant of the company name, nothing at all). The mixes are per source, so
the CRM is cleaner than a webinar sign-up sheet. Every variant is vectorised
over rows; nothing here loops over rows in Python.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass

import numpy as np
import pandas as pd

from . import vocab
from .people import draw_titles
from .phones import draw_styles, format_phones
from .sampling import rows_choice


@dataclass(frozen=True)
class EmailMix:
    """Relative weights of the ways an address is written in one source."""

    work: float = 80
    personal: float = 8
    stale: float = 0  # the old work address of someone who moved (rows after the move)
    case: float = 5
    space: float = 2
    typo: float = 1
    shared: float = 0  # the company's team inbox (companies that share contacts only)
    missing: float = 2


@dataclass(frozen=True)
class PhoneMix:
    own: float = 60
    switchboard: float = 8  # the reception number (companies that share contacts only)
    missing: float = 32


@dataclass(frozen=True)
class NameMix:
    exact: float = 85
    nickname: float = 5
    upper_last: float = 4
    lower: float = 3
    swapped: float = 3


def _weights(mix, n: int) -> np.ndarray:
    return np.tile(np.asarray(astuple(mix), dtype=float), (n, 1))


def case_variant(rng: np.random.Generator, values: np.ndarray) -> np.ndarray:
    """" John.Smith@Veltrix.Com", "JOHN.SMITH@VELTRIX.COM" or "John.smith@veltrix.com"."""
    s = pd.Series(values, dtype=object)
    mode = rng.integers(0, 3, s.size)
    return np.where(mode == 0, s.str.title(),
                    np.where(mode == 1, s.str.upper(), s.str.capitalize()))


def space_variant(rng: np.random.Generator, values: np.ndarray) -> np.ndarray:
    s = pd.Series(values, dtype=object)
    mode = rng.integers(0, 3, s.size)
    return np.where(mode == 0, " " + s, np.where(mode == 1, s + " ", "  " + s + " "))


def typo_variant(rng: np.random.Generator, values: np.ndarray) -> np.ndarray:
    """Swap two neighbouring characters or drop one, inside the local part."""
    s = pd.Series(values, dtype=object)
    local = s.str.find("@").to_numpy()
    pos = np.floor(rng.random(s.size) * np.maximum(local - 1, 1)).astype(int)
    swap = rng.random(s.size) < 0.5
    out = s.to_numpy().copy()
    for p in np.unique(pos):  # one vectorised pass per position, not per row
        rows = np.flatnonzero(pos == p)
        sub = s.iloc[rows]
        swapped = sub.str[:p] + sub.str[p + 1:p + 2] + sub.str[p:p + 1] + sub.str[p + 2:]
        dropped = sub.str[:p] + sub.str[p + 1:]
        out[rows] = np.where(swap[rows], swapped, dropped)
    return out


def work_email_at(people: pd.DataFrame, person_idx: np.ndarray, day: np.ndarray) -> np.ndarray:
    """The work address a person had on `day` (the old one before a move)."""
    moved = people["moved_day"].to_numpy()[person_idx]
    before = day < moved  # NaN compares False: people who never moved
    return np.where(before, people["previous_work_email"].to_numpy()[person_idx],
                    people["work_email"].to_numpy()[person_idx])


def present_emails(rng: np.random.Generator, people: pd.DataFrame, companies: pd.DataFrame,
                   person_idx: np.ndarray, company_idx: np.ndarray, day: np.ndarray,
                   mix: EmailMix) -> np.ndarray:
    """One written address per row, following `mix` where the option exists."""
    n = person_idx.size
    work = work_email_at(people, person_idx, day)
    personal = people["personal_email"].to_numpy()[person_idx]
    weights = _weights(mix, n)
    weights[:, 1] *= pd.notna(personal)
    weights[:, 2] *= day >= people["moved_day"].to_numpy()[person_idx]
    weights[:, 6] *= companies["shares_contacts"].to_numpy()[company_idx]
    pick = rows_choice(rng, weights)
    own = np.where((pick == 1) | ((pick == 3) & pd.notna(personal) & (rng.random(n) < 0.3)),
                   personal, work)
    out = own.astype(object)
    variants = {
        2: lambda r: people["previous_work_email"].to_numpy()[person_idx[r]],
        3: lambda r: case_variant(rng, own[r]),
        4: lambda r: space_variant(rng, own[r]),
        5: lambda r: typo_variant(rng, work[r]),
        6: lambda r: companies["shared_inbox"].to_numpy()[company_idx[r]],
        7: lambda r: np.full(r.size, None, dtype=object),
    }
    for code, make in variants.items():
        rows = np.flatnonzero(pick == code)
        if rows.size:
            out[rows] = make(rows)
    return out


def present_phones(rng: np.random.Generator, people: pd.DataFrame, companies: pd.DataFrame,
                   person_idx: np.ndarray, company_idx: np.ndarray, mix: PhoneMix) -> np.ndarray:
    """The own mobile or the company's reception number, typed in some style, or nothing."""
    weights = _weights(mix, person_idx.size)
    weights[:, 1] *= companies["shares_contacts"].to_numpy()[company_idx]
    pick = rows_choice(rng, weights)
    board = pick == 1
    kinds = np.where(board, companies["switchboard_kind"].to_numpy()[company_idx],
                     people["phone_kind"].to_numpy()[person_idx])
    nationals = np.where(board, companies["switchboard_national"].to_numpy()[company_idx],
                         people["phone_national"].to_numpy()[person_idx])
    out = format_phones(kinds, nationals, draw_styles(rng, kinds))
    out[pick == 2] = None
    return out


def present_names(rng: np.random.Generator, people: pd.DataFrame, person_idx: np.ndarray,
                  mix: NameMix) -> tuple[np.ndarray, np.ndarray]:
    """(first, last) as typed: nicknames, shouted surnames, lower case, swapped order."""
    first = pd.Series(people["first_name"].to_numpy()[person_idx], dtype=object)
    last = pd.Series(people["last_name"].to_numpy()[person_idx], dtype=object)
    nickname = first.map(vocab.NICKNAMES)
    weights = _weights(mix, first.size)
    weights[:, 1] *= nickname.notna().to_numpy()
    pick = rows_choice(rng, weights)
    f = np.where(pick == 1, nickname, first)
    f = np.where(pick == 3, first.str.lower(), f)
    lname = np.where(pick == 2, last.str.upper(), np.where(pick == 3, last.str.lower(), last))
    swapped = pick == 4
    return np.where(swapped, lname, f), np.where(swapped, f, lname)


def present_full_names(rng: np.random.Generator, people: pd.DataFrame, person_idx: np.ndarray,
                       missing: float = 0.0) -> np.ndarray:
    """One-field names: "John Smith", "SMITH, John", "zhang wei", "Zhang Wei", "Bill Smith".

    Chinese names are mostly written surname first, as people write them at home.
    """
    first = pd.Series(people["first_name"].to_numpy()[person_idx], dtype=object)
    last = pd.Series(people["last_name"].to_numpy()[person_idx], dtype=object)
    nickname = first.map(vocab.NICKNAMES)
    chinese = people["chinese_name"].to_numpy()[person_idx]
    weights = np.where(chinese[:, None], [40, 8, 10, 40, 0, 2], [75, 8, 6, 3, 6, 2]).astype(float)
    weights[:, 4] *= nickname.notna().to_numpy()
    weights[:, 5] = missing * 100
    pick = rows_choice(rng, weights)
    styles = [
        first + " " + last,
        last.str.upper() + ", " + first,
        (first + " " + last).str.lower(),
        last + " " + first,
        nickname.fillna(first) + " " + last,
    ]
    out = np.full(first.size, None, dtype=object)
    for code, style in enumerate(styles):
        rows = pick == code
        out[rows] = style.to_numpy()[rows]
    return out


def company_name_variants(companies: pd.DataFrame) -> np.ndarray:
    """Ways a company's name gets written, one column each (0 is the exact name).

    "Veltrix China", "Veltrix China Co., Ltd.", "VELTRIX (CHINA)", "Veltrix China Ltd",
    "veltrix china", "Veltrix" (the group's name: ambiguous for a subsidiary),
    "Veltrix (China) Co., Ltd.".
    """
    name = companies["name"].astype(object)
    base = companies["base_name"].astype(object)
    suffix = companies["suffix"].astype(object)
    has_suffix = suffix != ""
    bracketed = base.str.upper() + np.where(has_suffix, " (" + suffix.str.upper() + ")", "")
    formal = base + np.where(has_suffix, " (" + suffix + ")", "") + " Co., Ltd."
    return np.column_stack([
        name, name + " Co., Ltd.", bracketed, name + " Ltd", name.str.lower(), base, formal,
    ]).astype(object)


COMPANY_NAME_WEIGHTS = (45, 12, 8, 8, 7, 10, 5)


def present_company_names(rng: np.random.Generator, variants: np.ndarray,
                          company_idx: np.ndarray, missing: float,
                          weights: tuple[float, ...] = COMPANY_NAME_WEIGHTS) -> np.ndarray:
    """A free-text company name per row, or None for a share `missing` of rows."""
    p = np.asarray(weights, dtype=float)
    pick = rng.choice(p.size, company_idx.size, p=p / p.sum())
    out = variants[company_idx, pick]
    out[rng.random(company_idx.size) < missing] = None
    return out


def present_titles(rng: np.random.Generator, people: pd.DataFrame, person_idx: np.ndarray,
                   retyped: float, missing: float) -> np.ndarray:
    """The true title, another spelling of the same role ("Head of IT"), lower case, or None."""
    true = pd.Series(people["title"].to_numpy()[person_idx], dtype=object)
    other = draw_titles(rng, people["seniority_idx"].to_numpy()[person_idx],
                        people["department_idx"].to_numpy()[person_idx])
    u = rng.random(true.size)
    out = np.where(u < retyped, other, true)
    out = np.where((u >= retyped) & (u < retyped + 0.05), true.str.lower(), out)
    out[rng.random(true.size) < missing] = None
    return out


def website_variants(rng: np.random.Generator, domains: np.ndarray, missing: float) -> np.ndarray:
    """"https://www.veltrix.com", "veltrix.com", "www.veltrix.com/", or nothing."""
    d = pd.Series(domains, dtype=object)
    styles = np.column_stack(["https://www." + d, "http://" + d, "www." + d, d, "www." + d + "/"])
    out = styles[np.arange(d.size), rng.choice(5, d.size, p=[0.4, 0.15, 0.2, 0.15, 0.1])]
    out[rng.random(d.size) < missing] = None
    return out
