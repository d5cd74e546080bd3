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

What contradicts is a cluster's *own* identifiers: an address or phone the exact pass held
back as shared (a team inbox such as marketing@, a switchboard: `shared_identifier`) says
which company filled a form, not who, so it contradicts no one (the model still compares the
columns as they are). Two phones contradict only when their digits differ beyond the country
code: a number written without one is read in the default region, so one mobile can be
+49 160 12744626 on a form and +86 16012744626 in the CRM.

One more kind of pair merges below the model's threshold: a name at an employer that is not
ambiguous (`bare_at_employer`). A CRM contact that sales typed with a name and an account
but no address or phone (or a form filled from a team inbox) carries nothing for the model
beyond the name and the employer, too little against its prior; yet a name at an account is
how a CRM itself matches a lead to a contact. Such a *bare* cluster joins the cluster of the
same name at the same employer when exactly one cluster there has an address or phone of its
own; with two or more it stays apart (namesakes at one firm).
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import phonenumbers

from leadscore.identity.link import NAME_AT_EMPLOYER, node_components
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

MERGE_COLUMNS = ["pid_a", "pid_b", "match_probability", "rule"]
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


def profile_table(profiles: pd.DataFrame, mapping_path: Path, rules: StandardiseRules,
                  shared_keys: Collection[str] = ()) -> pd.DataFrame:
    """Profiles standardised by the mapping file, plus the derived `org` and `email_local`, and
    for the guards `own_email`, `own_phone` and `work_email`: the cluster's address and phone
    unless `shared_keys` ('email:...', 'phone:...', the exact pass's `shared_identifier`) hold
    them, and its own address where it is a work one."""
    table = standardise_table(profiles, load_mapping(mapping_path), rules, "person_profiles")
    own_email = _unless_shared(table["email"], "email", shared_keys)
    return table.assign(
        org=employer(profiles).to_numpy(),
        email_local=table["email"].str.split("@").str[0],
        own_email=own_email,
        own_phone=_unless_shared(table["phone"], "phone", shared_keys),
        work_email=own_email.where(profiles["work_domain"].notna().to_numpy()),
    )


def _unless_shared(values: pd.Series, kind: str, shared_keys: Collection[str]) -> pd.Series:
    """`values` with those held back as shared identifiers of `kind` missing."""
    return values.mask((kind + ":" + values.astype("string")).isin(list(shared_keys)).fillna(False))


def _other_address(left: pd.DataFrame, right: pd.DataFrame) -> np.ndarray:
    """Both clusters have a work address of their own and they differ other than by one typo,
    or any two addresses of their own are one edit apart in their digits. Namesakes get
    numbered addresses ('lei.ye@' and 'lei.ye2@' at one firm, 'phill@' beside 'phil2@',
    'matthewwalker22@gmail' beside 'matthewwalker26@gmail'): an edit that changes the digits is
    never a typo."""
    pairs = pd.DataFrame({"a": left["work_email"].to_numpy(), "b": right["work_email"].to_numpy(),
                          "x": left["own_email"].to_numpy(), "y": right["own_email"].to_numpy(),
                          "i": range(len(left))})
    digits = "regexp_replace({}, '[^0-9]', '', 'g')"
    with duckdb.connect() as con:
        con.register("pairs", pairs)
        conflict = con.sql(f"""
            SELECT coalesce(a <> b AND NOT (damerau_levenshtein(a, b) = 1
                                            AND {digits.format('a')} = {digits.format('b')}), false)
                   OR coalesce(x <> y AND damerau_levenshtein(x, y) = 1
                               AND {digits.format('x')} <> {digits.format('y')}, false) AS conflict
            FROM pairs ORDER BY i""").df()["conflict"]
    return conflict.to_numpy(dtype=bool)


def _national_number(phone: str) -> str:
    """The digits of an E.164 number after its country code ('+8616012744626' -> '16012744626')."""
    try:
        return str(phonenumbers.parse(phone).national_number)
    except phonenumbers.NumberParseException:
        return phone


def _other_phone(left: pd.DataFrame, right: pd.DataFrame) -> np.ndarray:
    """Both clusters have a phone of their own and the numbers differ beyond the country code."""
    a, b = left["own_phone"].astype("string"), right["own_phone"].astype("string")
    phones = pd.unique(pd.concat([a, b]).dropna())
    national = pd.Series([_national_number(phone) for phone in phones], index=phones, dtype="string")
    return _differ(a, b) & _differ(a.map(national), b.map(national))


def _differ(left: pd.Series, right: pd.Series) -> pd.Series:
    return (left.notna().to_numpy() & right.notna().to_numpy()
            & (left.fillna("").to_numpy() != right.fillna("").to_numpy()))


def guarded(pairs: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """Pairs with the same order-free name key whose employers, own phones and own addresses do
    not contradict each other (`profile_table`). A near name ('pete' / 'peter') is not enough:
    short Chinese given names ('hao' / 'chao', 'jian' / 'jiang') are different people as often
    as typos."""
    by_id = table.set_index(RECORD_ID)
    left, right = by_id.loc[pairs["id_l"]], by_id.loc[pairs["id_r"]]
    keep = ((left["name_key"].to_numpy() == right["name_key"].to_numpy())
            & ~_differ(left["org"], right["org"]) & ~_other_phone(left, right)
            & ~_other_address(left, right))
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


def identified_pids(records: pd.DataFrame, shared_keys: Collection[str] = ()) -> pd.Index:
    """Fresh PIDs with an address or a phone of their own (not held back as shared) on some
    record; a cookie, a CRM contact id or a name alone do not count."""
    own = pd.Series(False, index=records.index)
    for kind in ("email", "phone"):
        values = records[kind].astype("string")
        own |= (values.notna() & ~(kind + ":" + values).isin(list(shared_keys))).fillna(False)
    return pd.Index(records.loc[own.to_numpy(), "pid"].dropna().unique())


def bare_at_employer(table: pd.DataFrame, identified: pd.Index) -> pd.DataFrame:
    """Pairs (id_l, id_r): each bare cluster (not in `identified`) and the one identified cluster
    of the same name key and employer, where there is exactly one (see the module docstring)."""
    named = table.dropna(subset=["name_key", "org"])[[RECORD_ID, "name_key", "org"]]
    named = named.assign(identified=named[RECORD_ID].isin(identified).to_numpy())
    groups = named.groupby(["name_key", "org"])["identified"]
    unambiguous = named[(groups.transform("sum") == 1).to_numpy() & (groups.transform("size") > 1).to_numpy()]
    anchor = unambiguous[unambiguous["identified"]].set_index(["name_key", "org"])[RECORD_ID]
    bare = unambiguous[~unambiguous["identified"]]
    at = pd.MultiIndex.from_frame(bare[["name_key", "org"]])
    return pd.DataFrame({"id_l": anchor.reindex(at).to_numpy(), "id_r": bare[RECORD_ID].to_numpy()})


@dataclass(frozen=True)
class FuzzyMerges:
    """Pairs of fresh PIDs to merge (pid_a, pid_b, match_probability, rule: 'fuzzy' for the
    model's, `NAME_AT_EMPLOYER` for a bare cluster's), and why: one row per pair and comparison
    (pid_a, pid_b, comparison, level, match_weight)."""

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
                 account_names: pd.Series | None = None, shared_keys: Collection[str] = ()) -> FuzzyMerges:
    """Pairs of fresh PIDs (records' `pid` column, from resolve_people) to merge, with the
    model's match_probability. Records are standardised records (identity/records.py);
    `config_path` is a mapping file with `mapping:` and `model:` sections; `account_names`
    the CRM accounts' standardised names by account id (see `with_account_names`);
    `shared_keys` the identifiers the exact pass held back as shared ('email:...', 'phone:...')."""
    profiles = cluster_profiles(with_account_names(records, account_names))
    if len(profiles) < 2:
        return FuzzyMerges(pd.DataFrame(columns=MERGE_COLUMNS), pd.DataFrame(columns=WHY_COLUMNS))
    table = profile_table(profiles, config_path, rules, shared_keys)
    config = load_model_config(config_path)
    linker = fit([table], config)
    scored = predict_pairs(linker, None, with_comparisons=True)
    over = scored.loc[scored["match_probability"] >= config.threshold, PAIR_COLUMNS]
    likely = best_partners(guarded(over, table))
    bare = bare_at_employer(table, identified_pids(records, shared_keys))
    merges = pd.concat([likely.assign(rule="fuzzy"),
                        guarded(_scored_pairs(bare, scored), table).assign(rule=NAME_AT_EMPLOYER)],
                       ignore_index=True).drop_duplicates(["id_l", "id_r"])
    logger.info("fuzzy pass: %d named clusters, %d pairs over threshold, %d merges, %d more of bare "
                "clusters at an unambiguous name and employer", len(profiles), len(over),
                len(merges), len(merges) - len(likely))
    why = comparison_weights(linker, scored.merge(merges[["id_l", "id_r"]], on=["id_l", "id_r"]))
    names = {"id_l": "pid_a", "id_r": "pid_b"}
    return FuzzyMerges(merges.rename(columns=names)[MERGE_COLUMNS].reset_index(drop=True),
                       why.rename(columns=names)[WHY_COLUMNS])


def _scored_pairs(pairs: pd.DataFrame, scored: pd.DataFrame) -> pd.DataFrame:
    """The rows of `scored` (PAIR_COLUMNS) of `pairs` (id_l, id_r, either way round)."""
    def either_way(frame: pd.DataFrame) -> pd.Series:
        left, right = frame["id_l"].astype(str), frame["id_r"].astype(str)
        return left.where(left < right, right) + "|" + right.where(left < right, left)

    rows = scored[PAIR_COLUMNS]
    return rows[either_way(rows).isin(either_way(pairs)).to_numpy()]


def merge_pids(pids: pd.Series, merges: pd.DataFrame) -> pd.Series:
    """Each record's PID after the merges: every merged group takes its smallest PID."""
    labels = node_components(merges["pid_a"], merges["pid_b"])
    survivor = pd.Series(labels.index, index=labels.index).groupby(labels.to_numpy()).transform("min")
    return pids.map(survivor).fillna(pids).astype("string")
