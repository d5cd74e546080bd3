"""People (PID): who works where, their role, true contact points and latent traits.

The latent `fit` (is this our kind of buyer?) and `engagement` (how active is
this person anyway?) drive everything that happens later; they are written to
the truth only, never to a source.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import vocab
from .ids import random_hex, sequential_ids
from .phones import KIND_INDEX, draw_unique_nationals, e164
from .sampling import choice, or_none, pick_index, rows_choice, sigmoid

# Mobile phone kind per region: (kinds, weights).
_MOBILE_KINDS: dict[str, tuple[tuple[str, ...], tuple[float, ...]]] = {
    "china": (("cn_mobile", "nanp", "uk_mobile", "de_mobile"), (95, 2, 1.5, 1.5)),
    "north_america": (("nanp", "cn_mobile"), (85, 15)),
    "europe": (("de_mobile", "uk_mobile", "cn_mobile", "nanp"), (45, 40, 10, 5)),
    "apac": (("cn_mobile", "sg_mobile", "nanp"), (60, 30, 10)),
}
_ENGAGEMENT_BY_SENIORITY = np.array([0.6, 0.8, 1.0, 1.1, 1.2])


def assign_companies(rng: np.random.Generator, employees: np.ndarray, n: int) -> np.ndarray:
    """Company index per person: one each first, the rest by (headcount ** 0.55)."""
    first = np.arange(min(n, employees.size))
    weights = employees.astype(float) ** 0.55
    rest = rng.choice(employees.size, n - first.size, p=weights / weights.sum())
    return np.sort(np.r_[first, rest])


def family_region(region: np.ndarray) -> np.ndarray:
    """Collapse Chinese sub-regions to "china" (what drives names, phones and hours)."""
    return np.where(np.isin(region, list(vocab.CHINA_REGIONS)), "china", region)


def draw_names(rng: np.random.Generator, region: np.ndarray) -> pd.DataFrame:
    """Pinyin names mostly in China, Western names mostly elsewhere."""
    n = region.size
    chinese = rng.random(n) < np.where(family_region(region) == "china", 0.85, 0.15)
    western_first = choice(rng, vocab.WESTERN_FIRST, [1] * len(vocab.WESTERN_FIRST), n)
    western_last = choice(rng, vocab.WESTERN_LAST, [1] * len(vocab.WESTERN_LAST), n)
    given = choice(rng, vocab.CHINESE_GIVEN, [1] * len(vocab.CHINESE_GIVEN), n)
    surname = choice(rng, vocab.CHINESE_SURNAMES, [1] * len(vocab.CHINESE_SURNAMES), n)
    return pd.DataFrame({
        "first_name": np.where(chinese, given, western_first),
        "last_name": np.where(chinese, surname, western_last),
        "chinese_name": chinese,
    })


def draw_roles(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Seniority, then department (C-levels mostly run the company or a function)."""
    seniority = pick_index(rng, vocab.SENIORITY_WEIGHTS, n)
    c_level = np.asarray(vocab.C_LEVEL_DEPARTMENT_WEIGHTS, dtype=float)
    others = np.asarray(vocab.DEPARTMENT_WEIGHTS, dtype=float)
    weights = np.where((seniority == 0)[:, None], c_level, others)
    department = rows_choice(rng, weights)
    return pd.DataFrame({"seniority_idx": seniority, "department_idx": department})


def title_table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All titles, flattened: (titles, first index per role combo, count per role combo)."""
    titles: list[str] = []
    starts, counts = [], []
    for seniority in vocab.SENIORITIES:
        for department in vocab.DEPARTMENTS:
            options = _titles_for(seniority, department)
            starts.append(len(titles))
            counts.append(len(options))
            titles.extend(options)
    return np.asarray(titles, dtype=object), np.asarray(starts), np.asarray(counts)


def _titles_for(seniority: str, department: str) -> list[str]:
    if seniority == "c_level":
        return list(vocab.C_LEVEL_TITLES[department])
    label = vocab.DEPARTMENT_LABELS[department]
    if department == "it" and seniority != "individual":
        label = "IT"
    options = [t.format(d=label) for t in vocab.TITLE_TEMPLATES[seniority]]
    if seniority == "individual":
        options += list(vocab.INDIVIDUAL_TITLES[department])
    return options


def draw_titles(rng: np.random.Generator, seniority_idx: np.ndarray,
                department_idx: np.ndarray) -> np.ndarray:
    """A free-text title consistent with the role (also used for dirty re-typings)."""
    titles, starts, counts = title_table()
    combo = seniority_idx * len(vocab.DEPARTMENTS) + department_idx
    pick = starts[combo] + np.floor(rng.random(combo.size) * counts[combo]).astype(int)
    return titles[pick]


def ascii_slug(names: pd.Series) -> pd.Series:
    """Letters only, lower case: what an email local part keeps of a name ("O'Brien")."""
    return names.str.lower().str.replace(r"[^a-z]+", "", regex=True)


def dedupe_addresses(local: pd.Series, domain: pd.Series) -> np.ndarray:
    """local@domain, with 2, 3... appended to the local part where an address repeats."""
    address = local + "@" + domain
    rank = address.groupby(address.to_numpy()).cumcount().to_numpy()
    suffix = np.where(rank > 0, (rank + 1).astype(str), "")
    return (local + suffix + "@" + domain).to_numpy()


def work_addresses(first: pd.Series, last: pd.Series, domain: pd.Series,
                   pattern: np.ndarray) -> np.ndarray:
    """first.last@domain or flast@domain, by the company's convention."""
    f, lname = ascii_slug(first), ascii_slug(last)
    local = pd.Series(np.where(pattern == 0, f + "." + lname, f.str[0] + lname))
    return dedupe_addresses(local, domain.reset_index(drop=True))


def personal_addresses(rng: np.random.Generator, names: pd.DataFrame) -> np.ndarray:
    """About half have a private mailbox: qq.com numbers, pinyin@163.com, first.last@gmail."""
    n = len(names)
    chinese = names["chinese_name"].to_numpy()
    cn = choice(rng, vocab.PERSONAL_DOMAINS_CHINESE, vocab.PERSONAL_DOMAINS_CHINESE_WEIGHTS, n)
    west = choice(rng, vocab.PERSONAL_DOMAINS_WESTERN, vocab.PERSONAL_DOMAINS_WESTERN_WEIGHTS, n)
    domain = np.where(chinese, cn, west)
    f, lname = ascii_slug(names["first_name"]), ascii_slug(names["last_name"])
    numbers = rng.integers(10**5, 10**10, n).astype(str).astype(object)
    digits = rng.integers(1, 100, n).astype(str).astype(object)
    year = rng.integers(1965, 2002, n).astype(str).astype(object)
    style = rng.integers(0, 3, n)
    named = np.where(style == 0, f + "." + lname + digits,
                     np.where(style == 1, f + lname + year, lname + f + digits))
    local = pd.Series(np.where(domain == "qq.com", numbers, named))
    addresses = dedupe_addresses(local, pd.Series(domain))
    return or_none(rng.random(n) < 0.5, addresses)


def mobile_kinds(rng: np.random.Generator, region: np.ndarray) -> np.ndarray:
    """Phone kind per person: Chinese mobiles mostly, some +1/+44/+49/+65."""
    family = family_region(region)
    weights = np.zeros((region.size, len(KIND_INDEX)))
    for name, (kinds, w) in _MOBILE_KINDS.items():
        rows = family == name
        for kind, weight in zip(kinds, w, strict=True):
            weights[rows, KIND_INDEX[kind]] = weight
    return rows_choice(rng, weights)


def company_fit(companies: pd.DataFrame) -> np.ndarray:
    """The firmographic part of fit: big, late-stage companies in making industries."""
    size = (np.log10(companies["employees"].to_numpy()) - 2.3) / 0.8
    funding = companies["funding_ord"].to_numpy() - 2.3
    industry = companies["industry"].map(vocab.INDUSTRY_FIT).to_numpy()
    return 0.55 * size + 0.3 * funding + industry


def person_fit(rng: np.random.Generator, company_part: np.ndarray,
               seniority_idx: np.ndarray, department_idx: np.ndarray) -> np.ndarray:
    """Latent fit in [0, 1]: company part + role part + noise the features cannot see."""
    seniority = np.array([vocab.SENIORITY_FIT[s] for s in vocab.SENIORITIES])[seniority_idx]
    department = np.array([vocab.DEPARTMENT_FIT[d] for d in vocab.DEPARTMENTS])[department_idx]
    noise = rng.normal(0, 0.6, company_part.size)
    return sigmoid(-1.4 + company_part + seniority + department + noise)


def draw_moves(rng: np.random.Generator, company_idx: np.ndarray, n_companies: int,
               days: float) -> tuple[np.ndarray, np.ndarray]:
    """About 5% changed company during the window: (previous company or -1, day or NaN)."""
    n = company_idx.size
    moved = (rng.random(n) < 0.05) & (n_companies > 1)
    other = (company_idx + rng.integers(1, max(n_companies, 2), n)) % max(n_companies, 1)
    previous = np.where(moved, other, -1)
    day = np.where(moved, rng.uniform(30, days - 30, n), np.nan)
    return previous, day


def contact_points(rng: np.random.Generator, people: pd.DataFrame,
                   companies: pd.DataFrame) -> pd.DataFrame:
    """Work email at the current (and previous) company, personal email, mobile phone."""
    movers = np.flatnonzero(people["prev_company_idx"].to_numpy() >= 0)
    rows = np.r_[np.arange(len(people)), movers]
    firm = np.r_[people["company_idx"].to_numpy(), people["prev_company_idx"].to_numpy()[movers]]
    first = people["first_name"].to_numpy()[rows]
    last = people["last_name"].to_numpy()[rows]
    domain = companies["domain"].to_numpy()[firm]
    pattern = companies["email_pattern"].to_numpy()[firm]
    work = work_addresses(pd.Series(first), pd.Series(last), pd.Series(domain), pattern)
    previous = np.full(len(people), None, dtype=object)
    previous[movers] = work[len(people):]
    kinds = mobile_kinds(rng, companies["region"].to_numpy()[people["company_idx"].to_numpy()])
    nationals = draw_unique_nationals(rng, kinds, companies["switchboard_national"].to_numpy())
    return pd.DataFrame({
        "work_email": work[: len(people)],
        "previous_work_email": previous,
        "personal_email": personal_addresses(rng, people),
        "phone_kind": kinds,
        "phone_national": nationals,
        "phone": e164(kinds, nationals),
    }, index=people.index)


def make_people(rng: np.random.Generator, companies: pd.DataFrame, n: int,
                days: float) -> pd.DataFrame:
    """The true people, with internal columns (`*_idx`, `*_day`) the sources are drawn from."""
    company_idx = assign_companies(rng, companies["employees"].to_numpy(), n)
    region = companies["region"].to_numpy()[company_idx]
    people = pd.concat([draw_names(rng, region), draw_roles(rng, n)], axis=1)
    people.insert(0, "person_key", sequential_ids("P", n, 6))
    people["company_idx"] = company_idx
    previous, moved_day = draw_moves(rng, company_idx, len(companies), days)
    people["prev_company_idx"] = previous
    people["moved_day"] = moved_day
    people["seniority"] = np.asarray(vocab.SENIORITIES, dtype=object)[people["seniority_idx"]]
    people["department"] = np.asarray(vocab.DEPARTMENTS, dtype=object)[people["department_idx"]]
    people["title"] = draw_titles(rng, people["seniority_idx"].to_numpy(),
                                  people["department_idx"].to_numpy())
    people = pd.concat([people, contact_points(rng, people, companies)], axis=1)
    people["company_fit"] = company_fit(companies)[company_idx]
    people["fit"] = person_fit(rng, people["company_fit"].to_numpy(),
                               people["seniority_idx"].to_numpy(),
                               people["department_idx"].to_numpy())
    people["engagement_weight"] = (rng.lognormal(0, 0.9, n)
                                   * _ENGAGEMENT_BY_SENIORITY[people["seniority_idx"]])
    known_before = rng.random(n) < 0.55
    people["joined_day"] = np.where(known_before, rng.uniform(-700, 0, n),
                                    rng.uniform(0, days - 5, n))
    people["utc_offset"] = pd.Series(region).map(vocab.REGION_UTC_OFFSET).to_numpy()
    return people


def company_at(people: pd.DataFrame, person_idx: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Where each person worked at `day`: the previous company before a move."""
    previous = people["prev_company_idx"].to_numpy()[person_idx]
    moved = people["moved_day"].to_numpy()[person_idx]
    before = (previous >= 0) & (day < moved)
    return np.where(before, previous, people["company_idx"].to_numpy()[person_idx])


def make_cookies(rng: np.random.Generator, people: pd.DataFrame, days: float) -> pd.DataFrame:
    """1-3 browsers per person; the first one from the start, later ones appear over time."""
    counts = 1 + rng.binomial(2, 0.3, len(people))
    person_idx = np.repeat(np.arange(len(people)), counts)
    rank = np.arange(person_idx.size) - np.repeat(np.cumsum(counts) - counts, counts)
    joined = np.maximum(people["joined_day"].to_numpy()[person_idx], 0)
    born = np.where(rank == 0, -np.inf, rng.uniform(joined, days))
    return pd.DataFrame({
        "cookie_id": random_hex(rng, person_idx.size, 16),
        "person_idx": person_idx,
        "rank": rank,
        "born_day": born,
    })
