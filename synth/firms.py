"""Groups (EID) and their companies (CID): the true firmographics.

A group is a brand ("Veltrix") with a headquarters company of the same name and
regional subsidiaries named after it ("Veltrix East China"). Size is a group
trait (subsidiaries of a giant are big too), which is what makes firmographics
correlated inside a group, as they are in real CRM data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import vocab
from .ids import sequential_ids
from .phones import KIND_INDEX, draw_unique_nationals, e164
from .sampling import choice, pick_index

SUFFIX_COUNT = len(vocab.SUBSIDIARIES)


def brand_names(rng: np.random.Generator, n: int) -> np.ndarray:
    """`n` distinct brand-like names from syllables; two words once one word runs out."""
    heads, middles, tails = (np.asarray(v, dtype=object) for v in
                             (vocab.NAME_HEADS, vocab.NAME_MIDDLES, vocab.NAME_TAILS))
    words = (heads[:, None, None] + middles[None, :, None] + tails[None, None, :]).ravel()
    _, first = np.unique(np.char.lower(words.astype(str)), return_index=True)
    words = words[np.sort(first)]
    if n <= words.size:
        return words[rng.permutation(words.size)[:n]]
    pairs = words[rng.integers(0, words.size, size=(2 * n, 2))]
    two_words = pd.unique(pairs[:, 0] + " " + pairs[:, 1])
    one_word = words[rng.permutation(words.size)]
    return np.concatenate([one_word, two_words[: n - words.size]]).astype(object)


def make_groups(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Groups with a size trait (`size_z`), funding stage and home region."""
    size_z = rng.normal(0, 1, n)
    funding = np.clip(np.round(2.3 + 1.3 * size_z + rng.normal(0, 1.0, n)), 0, 6).astype(int)
    return pd.DataFrame({
        "group_key": sequential_ids("G", n, 5),
        "name": brand_names(rng, n),
        "industry": choice(rng, vocab.INDUSTRIES, vocab.INDUSTRY_WEIGHTS, n),
        "size_z": size_z,
        "funding_ord": funding,
        "home_region": choice(rng, vocab.HOME_REGIONS, vocab.HOME_REGION_WEIGHTS, n),
    })


def subsidiary_counts(rng: np.random.Generator, size_z: np.ndarray, extra: int) -> np.ndarray:
    """How many subsidiaries each group has: big groups have more, none more than the suffixes."""
    weights = np.exp(1.1 * size_z)
    counts = np.zeros(size_z.size, dtype=int)
    remaining = min(extra, SUFFIX_COUNT * size_z.size)
    while remaining > 0:
        room = counts < SUFFIX_COUNT
        p = np.where(room, weights, 0.0)
        counts += rng.multinomial(remaining, p / p.sum())
        overflow = np.maximum(counts - SUFFIX_COUNT, 0)
        counts -= overflow
        remaining = int(overflow.sum())
    return counts


def suffix_preferences(home_region: np.ndarray) -> np.ndarray:
    """Weight of each subsidiary suffix per group: Chinese groups open Chinese regions first."""
    regions = np.array([s[1] for s in vocab.SUBSIDIARIES])
    in_china = np.isin(regions, list(vocab.CHINA_REGIONS))
    china_home = np.isin(home_region, ["china"])[:, None]
    return np.where(china_home, np.where(in_china, 4.0, 1.0), np.where(in_china, 2.0, 1.0))


def pick_suffixes(rng: np.random.Generator, groups: pd.DataFrame, counts: np.ndarray):
    """Distinct suffix indices for each subsidiary (weighted order via Gumbel keys)."""
    weights = suffix_preferences(groups["home_region"].to_numpy())
    keys = np.log(weights) + rng.gumbel(size=weights.shape)
    order = np.argsort(-keys, axis=1)
    group_idx = np.repeat(np.arange(len(groups)), counts)
    rank = np.arange(group_idx.size) - np.repeat(np.cumsum(counts) - counts, counts)
    return group_idx, order[group_idx, rank]


def _domain_slug(names: pd.Series) -> pd.Series:
    return names.str.lower().str.replace(r"[^a-z]+", "", regex=True)


def company_frame(groups: pd.DataFrame, group_idx: np.ndarray, suffix_idx: np.ndarray):
    """Names, regions and parent attributes of each company (suffix -1 = headquarters)."""
    suffixes = np.array([s[0] for s in vocab.SUBSIDIARIES] + [""], dtype=object)
    regions = np.array([s[1] for s in vocab.SUBSIDIARIES] + [""], dtype=object)
    hq = suffix_idx < 0
    base = groups["name"].to_numpy()[group_idx]
    suffix = suffixes[suffix_idx]
    return pd.DataFrame({
        "group_idx": group_idx,
        "group_key": groups["group_key"].to_numpy()[group_idx],
        "base_name": base,
        "suffix": suffix,
        "suffix_idx": suffix_idx,
        "is_hq": hq,
        "name": np.where(hq, base, base + " " + suffix),
        "region": np.where(hq, groups["home_region"].to_numpy()[group_idx], regions[suffix_idx]),
        "industry": groups["industry"].to_numpy()[group_idx],
        "funding_ord": groups["funding_ord"].to_numpy()[group_idx],
    })


def company_domains(rng: np.random.Generator, companies: pd.DataFrame) -> np.ndarray:
    """veltrix.com for headquarters; a subsidiary shares it or has its own (veltrix-east.cn)."""
    slug = _domain_slug(companies["base_name"]).to_numpy()
    group_idx = companies["group_idx"].to_numpy()
    hq = companies["is_hq"].to_numpy()
    china_hq = companies["region"].to_numpy() == "china"
    hq_domain = slug + np.where(china_hq & (rng.random(slug.size) < 0.3), ".com.cn", ".com")
    parent = np.empty(group_idx.max() + 1, dtype=object)
    parent[group_idx[hq]] = hq_domain[hq]
    own = _own_domains(slug, companies["suffix_idx"].to_numpy())
    shares = rng.random(slug.size) < 0.5
    return np.where(hq, hq_domain, np.where(shares, parent[group_idx], own))


def _own_domains(slug: np.ndarray, suffix_idx: np.ndarray) -> np.ndarray:
    out = slug + ".com"
    for s, (_, _, pattern) in enumerate(vocab.SUBSIDIARIES):
        rows = suffix_idx == s
        head, tail = pattern.split("{b}")
        out[rows] = head + slug[rows] + tail
    return out


def company_sizes(rng: np.random.Generator, size_z: np.ndarray, hq: np.ndarray) -> np.ndarray:
    """Heavy-tailed headcount: log-normal around the group's size, subsidiaries smaller."""
    log10 = np.where(hq, 2.3, 2.0) + 0.8 * size_z + rng.normal(0, np.where(hq, 0.3, 0.45))
    return np.clip(np.round(10**log10), 3, 300_000).astype(np.int64)


def switchboard_kinds(rng: np.random.Generator, region: np.ndarray) -> np.ndarray:
    """Landline kind of a company's reception number, from its region."""
    europe = np.where(rng.random(region.size) < 0.5, KIND_INDEX["de_landline"],
                      KIND_INDEX["uk_landline"])
    kinds = np.full(region.size, KIND_INDEX["cn_landline"])
    kinds = np.where(region == "north_america", KIND_INDEX["nanp"], kinds)
    kinds = np.where(region == "europe", europe, kinds)
    return np.where(region == "apac", KIND_INDEX["sg_landline"], kinds)


def rep_ids(n_reps: int) -> np.ndarray:
    return sequential_ids("R", n_reps, 3)


def make_companies(rng: np.random.Generator, groups: pd.DataFrame, n_companies: int,
                   n_reps: int) -> pd.DataFrame:
    """Every group's headquarters plus subsidiaries, adjacent per group."""
    counts = subsidiary_counts(rng, groups["size_z"].to_numpy(), n_companies - len(groups))
    sub_group, sub_suffix = pick_suffixes(rng, groups, counts)
    group_idx = np.r_[np.arange(len(groups)), sub_group]
    suffix_idx = np.r_[np.full(len(groups), -1), sub_suffix]
    order = np.lexsort((suffix_idx, group_idx))
    companies = company_frame(groups, group_idx[order], suffix_idx[order])
    n = len(companies)
    hq = companies["is_hq"].to_numpy()
    companies.insert(0, "company_key", sequential_ids("CO", n, 5))
    companies["domain"] = company_domains(rng, companies)
    size_z = groups["size_z"].to_numpy()[companies["group_idx"].to_numpy()]
    companies["employees"] = company_sizes(rng, size_z, hq)
    companies["funding_stage"] = np.asarray(vocab.FUNDING_STAGES, dtype=object)[
        companies["funding_ord"].to_numpy()]
    per_head = 10 ** rng.normal(5.1, 0.25, n)
    companies["annual_revenue_usd"] = np.round(companies["employees"] * per_head, -3)
    companies["owner_rep_id"] = rep_ids(n_reps)[rng.integers(0, n_reps, n)]
    kinds = switchboard_kinds(rng, companies["region"].to_numpy())
    companies["switchboard_kind"] = kinds
    companies["switchboard_national"] = draw_unique_nationals(rng, kinds)
    companies["switchboard_phone"] = e164(kinds, companies["switchboard_national"].to_numpy())
    inbox = choice(rng, vocab.SHARED_INBOXES, [1] * len(vocab.SHARED_INBOXES), n)
    companies["shared_inbox"] = inbox + "@" + companies["domain"]
    # a third of companies habitually fill forms with a team inbox or the reception number
    companies["shares_contacts"] = rng.random(n) < 0.3
    companies["email_pattern"] = pick_index(rng, [65, 35], n)
    return companies
