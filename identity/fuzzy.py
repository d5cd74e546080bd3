"""Probabilistic second pass: merge exact-match clusters (PIDs) that are one person.

Exact linking (identity/link.py) splits a person whose records share no
identifier: a registration with a mistyped address, a form fill or user account
with a personal mailbox, a duplicate CRM contact under a nickname. Here each
*named* cluster becomes one profile row (its most frequent name, email, phone,
employer, title), the Splink model of config/mappings/person_profiles.yaml
scores profile pairs, and only pairs that also pass hard guards are returned:
the names must agree and the two clusters must not name different employers
or phones. Merging two people is worse than missing a link, so the guards veto
what the model cannot see, and each cluster merges with its best partner only,
so that one weak link cannot chain several people together.
"""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb
import pandas as pd

from leadscore.identity.mapping import RECORD_ID, load_mapping, standardise_table
from leadscore.identity.probabilistic import fit, load_model_config, predict_pairs
from leadscore.identity.standardise import StandardiseRules

logger = logging.getLogger(__name__)

MERGE_COLUMNS = ["pid_a", "pid_b", "match_probability"]
PROFILE_SOURCE_COLUMNS = ["first_name_std", "last_name_std", "email", "phone", "company_name_std",
                          "work_domain", "title"]
# A given name this close to the other's, with the same surname, is one name ('pete' / 'peter').
GIVEN_NAME_SIMILARITY = 0.9


def _mode(values: pd.Series) -> object:
    counts = values.dropna().value_counts()
    return counts.index[0] if len(counts) else pd.NA


def cluster_profiles(records: pd.DataFrame) -> pd.DataFrame:
    """One row per fresh PID that has a name: the most frequent value of each field.
    The name is taken from the most frequent name_key so that first and last agree."""
    named = records.dropna(subset=["pid", "name_key"])
    top_key = named.groupby("pid")["name_key"].agg(_mode)
    named = named[named["name_key"] == named["pid"].map(top_key)]
    profiles = named.groupby("pid")[PROFILE_SOURCE_COLUMNS].agg(_mode)
    return profiles.reset_index()


def employer(profiles: pd.DataFrame) -> pd.Series:
    """A comparable employer token: first word of the company name, else of the work
    domain ('dynaent' from 'Dynaent China' and from 'dynaent.com'; 'dexix' from 'dexix-north.cn')."""
    from_company = profiles["company_name_std"].astype("string").str.split().str[0]
    from_domain = profiles["work_domain"].astype("string").str.split(r"[.\-]", regex=True).str[0]
    return from_company.fillna(from_domain).astype("string")


def profile_table(profiles: pd.DataFrame, mapping_path: Path, rules: StandardiseRules) -> pd.DataFrame:
    """Profiles standardised by the mapping file, plus the derived `org` and `email_local`."""
    table = standardise_table(profiles, load_mapping(mapping_path), rules, "person_profiles")
    return table.assign(
        org=employer(profiles).to_numpy(),
        email_local=table["email"].str.split("@").str[0],
    )


def _same_name(left: pd.DataFrame, right: pd.DataFrame) -> pd.Series:
    """Order-free name key equal, or same surname and near-identical given name (either way round)."""
    names = pd.DataFrame({"lg": left["given_name"].to_numpy(), "ls": left["surname"].to_numpy(),
                          "rg": right["given_name"].to_numpy(), "rs": right["surname"].to_numpy(), "i": range(len(left))})
    similar = duckdb.sql(f"""
        SELECT coalesce((ls = rs AND jaro_winkler_similarity(lg, rg) >= {GIVEN_NAME_SIMILARITY})
                     OR (ls = rg AND jaro_winkler_similarity(lg, rs) >= {GIVEN_NAME_SIMILARITY}), false)
        FROM names ORDER BY i""").fetchnumpy()
    agree = next(iter(similar.values())).astype(bool)
    return (left["name_key"].fillna("").to_numpy() == right["name_key"].fillna("#").to_numpy()) | agree


def _differ(left: pd.Series, right: pd.Series) -> pd.Series:
    return (left.notna().to_numpy() & right.notna().to_numpy()
            & (left.fillna("").to_numpy() != right.fillna("").to_numpy()))


def guarded(pairs: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """Pairs whose names agree and whose employers and phones do not contradict each other."""
    by_id = table.set_index(RECORD_ID)
    left, right = by_id.loc[pairs["id_l"]], by_id.loc[pairs["id_r"]]
    keep = (_same_name(left, right) & ~_differ(left["org"], right["org"])
            & ~_differ(left["phone"], right["phone"]))
    return pairs[keep]


def best_partners(pairs: pd.DataFrame) -> pd.DataFrame:
    """Only pairs that are the best partner of both their clusters (mutual best match)."""
    both_ways = pd.concat([
        pairs.rename(columns={"id_l": "me", "id_r": "other"}),
        pairs.rename(columns={"id_r": "me", "id_l": "other"}),
    ])
    best = both_ways.sort_values("match_probability", ascending=False).drop_duplicates("me")
    best_of = best.set_index("me")["other"]
    mutual = (pairs["id_l"].map(best_of) == pairs["id_r"]) & (pairs["id_r"].map(best_of) == pairs["id_l"])
    return pairs[mutual.to_numpy()]


def fuzzy_merges(records: pd.DataFrame, config_path: Path, rules: StandardiseRules) -> pd.DataFrame:
    """Pairs of fresh PIDs (records' `pid` column, from resolve_people) to merge, with the
    model's match_probability. Records are standardised records (identity/records.py);
    `config_path` is a mapping file with `mapping:` and `model:` sections."""
    profiles = cluster_profiles(records)
    if len(profiles) < 2:
        return pd.DataFrame(columns=MERGE_COLUMNS)
    table = profile_table(profiles, config_path, rules)
    config = load_model_config(config_path)
    pairs = predict_pairs(fit([table], config), config.threshold)
    merges = best_partners(guarded(pairs, table))
    logger.info("fuzzy pass: %d named clusters, %d pairs over threshold, %d merges",
                len(profiles), len(pairs), len(merges))
    return merges.rename(columns={"id_l": "pid_a", "id_r": "pid_b"})[MERGE_COLUMNS].reset_index(drop=True)
