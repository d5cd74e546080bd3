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
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from leadscore.identity.link import node_components
from leadscore.identity.mapping import RECORD_ID, load_mapping, standardise_table
from leadscore.identity.probabilistic import (
    PAIR_COLUMNS,
    comparison_weights,
    fit,
    load_model_config,
    predict_pairs,
)
from leadscore.identity.standardise import StandardiseRules

logger = logging.getLogger(__name__)

MERGE_COLUMNS = ["pid_a", "pid_b", "match_probability"]
WHY_COLUMNS = ["pid_a", "pid_b", "comparison", "level", "match_weight"]
PROFILE_SOURCE_COLUMNS = ["first_name_std", "last_name_std", "email", "phone", "company_name_std",
                          "work_domain", "title"]


def _most_frequent(records: pd.DataFrame, column: str) -> pd.Series:
    """Per PID, the most frequent non-missing value of `column` (ties: the smallest)."""
    counts = records.groupby(["pid", column]).size().rename("n").reset_index()
    top = counts.sort_values(["n", column], ascending=[False, True]).drop_duplicates("pid")
    return top.set_index("pid")[column]


def cluster_profiles(records: pd.DataFrame) -> pd.DataFrame:
    """One row per fresh PID that has a name: the most frequent value of each field.
    The name is taken from the most frequent name_key so that first and last agree."""
    named = records.dropna(subset=["pid", "name_key"])
    named = named[named["name_key"] == named["pid"].map(_most_frequent(named, "name_key"))]
    profiles = pd.DataFrame({column: _most_frequent(named, column) for column in PROFILE_SOURCE_COLUMNS},
                            index=pd.Index(named["pid"].unique(), name="pid"))
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
        work_email=table["email"].where(profiles["work_domain"].notna().to_numpy()),
    )


def _other_work_address(left: pd.DataFrame, right: pd.DataFrame) -> pd.Series:
    """Both clusters have a work address and they differ other than by one typo. Namesakes
    at one firm get 'lei.ye@' and 'lei.ye2@': a difference in digits only is never a typo."""
    pairs = pd.DataFrame({"a": left["work_email"].to_numpy(), "b": right["work_email"].to_numpy(),
                          "i": range(len(left))})
    with duckdb.connect() as con:
        con.register("pairs", pairs)
        conflict = con.sql("""
            SELECT coalesce(a <> b AND NOT (damerau_levenshtein(a, b) = 1
                            AND regexp_replace(a, '[0-9]', '', 'g') <> regexp_replace(b, '[0-9]', '', 'g')),
                            false) AS conflict
            FROM pairs ORDER BY i""").df()["conflict"]
    return conflict.to_numpy(dtype=bool)


def _differ(left: pd.Series, right: pd.Series) -> pd.Series:
    return (left.notna().to_numpy() & right.notna().to_numpy()
            & (left.fillna("").to_numpy() != right.fillna("").to_numpy()))


def guarded(pairs: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """Pairs with the same order-free name key whose employers, phones and work addresses do not
    contradict each other. A near name ('pete' / 'peter') is not enough: short Chinese given
    names ('hao' / 'chao', 'jian' / 'jiang') are different people as often as typos."""
    by_id = table.set_index(RECORD_ID)
    left, right = by_id.loc[pairs["id_l"]], by_id.loc[pairs["id_r"]]
    keep = ((left["name_key"].to_numpy() == right["name_key"].to_numpy())
            & ~_differ(left["org"], right["org"]) & ~_differ(left["phone"], right["phone"])
            & ~_other_work_address(left, right))
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


@dataclass(frozen=True)
class FuzzyMerges:
    """Pairs of fresh PIDs to merge (pid_a, pid_b, match_probability), and why: one row per
    pair and comparison (pid_a, pid_b, comparison, level, match_weight)."""

    pairs: pd.DataFrame
    comparisons: pd.DataFrame


def with_account_names(records: pd.DataFrame, account_names: pd.Series | None) -> pd.DataFrame:
    """Records whose company name is missing take their CRM account's (`account_names`:
    standardised name by account id). A CRM contact names its employer only through its
    account, so without this a contact with no address or phone is a bare name to the model,
    and the CRM's duplicate of a web-identified person at the same account is never merged."""
    if account_names is None or "account_id" not in records:
        return records
    names = account_names.dropna()
    names = names[~names.index.duplicated()]
    from_account = records["account_id"].map(names)
    return records.assign(company_name_std=records["company_name_std"].fillna(from_account))


def fuzzy_merges(records: pd.DataFrame, config_path: Path, rules: StandardiseRules,
                 account_names: pd.Series | None = None) -> FuzzyMerges:
    """Pairs of fresh PIDs (records' `pid` column, from resolve_people) to merge, with the
    model's match_probability. Records are standardised records (identity/records.py);
    `config_path` is a mapping file with `mapping:` and `model:` sections; `account_names`
    the CRM accounts' standardised names by account id (see `with_account_names`)."""
    profiles = cluster_profiles(with_account_names(records, account_names))
    if len(profiles) < 2:
        return FuzzyMerges(pd.DataFrame(columns=MERGE_COLUMNS), pd.DataFrame(columns=WHY_COLUMNS))
    table = profile_table(profiles, config_path, rules)
    config = load_model_config(config_path)
    linker = fit([table], config)
    scored = predict_pairs(linker, config.threshold, with_comparisons=True)
    merges = best_partners(guarded(scored[PAIR_COLUMNS], table))
    logger.info("fuzzy pass: %d named clusters, %d pairs over threshold, %d merges",
                len(profiles), len(scored), len(merges))
    why = comparison_weights(linker, scored.merge(merges[["id_l", "id_r"]], on=["id_l", "id_r"]))
    names = {"id_l": "pid_a", "id_r": "pid_b"}
    return FuzzyMerges(merges.rename(columns=names)[MERGE_COLUMNS].reset_index(drop=True),
                       why.rename(columns=names)[WHY_COLUMNS])


def merge_pids(pids: pd.Series, merges: pd.DataFrame) -> pd.Series:
    """Each record's PID after the merges: every merged group takes its smallest PID."""
    labels = node_components(merges["pid_a"], merges["pid_b"])
    survivor = pd.Series(labels.index, index=labels.index).groupby(labels.to_numpy()).transform("min")
    return pids.map(survivor).fillna(pids).astype("string")
