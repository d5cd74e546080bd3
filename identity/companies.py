"""Companies (CID) and groups (EID) from CRM accounts, company names and domains.

A CID is a connected component of CRM accounts and standardised company names
(duplicate accounts with name variants fall together). A record's company is
its CRM account, else the company it names, else the one company whose website
has its email domain. An EID groups companies whose names differ only by a
regional qualifier ("Acme East China" -> "acme") or that share a website.
"""

from __future__ import annotations

import pandas as pd

from leadscore.identity import standardise as std
from leadscore.identity.components import node_labels
from leadscore.identity.engine import IdentitySql
from leadscore.identity.link import mint_id
from leadscore.identity.standardise import StandardiseRules

ACCOUNT_ATTRIBUTES = ["industry", "employees", "funding_stage", "annual_revenue_usd", "owner_rep_id"]


def _components(pairs: pd.DataFrame, sql: IdentitySql) -> pd.Series:
    """Component label (its smallest node) of every node in an undirected edge list with
    columns a, b, labelled on `sql`'s engine."""
    return node_labels(sql, pairs["a"], pairs["b"])


def standardise_accounts(accounts: pd.DataFrame, rules: StandardiseRules) -> pd.DataFrame:
    return accounts.assign(
        name_std=std.company_name(accounts["account_name"], rules),
        domain=std.website_domain(accounts["website"]),
    )


def company_nodes(accounts: pd.DataFrame, record_names: pd.Series, sql: IdentitySql) -> pd.Series:
    """CID of every 'account:<id>' and 'name:<standardised name>' node, minted from the
    smallest node of its component (the component's label)."""
    named = accounts.dropna(subset=["name_std"])
    account_nodes = "account:" + accounts["account_id"]
    pairs = pd.concat([
        pd.DataFrame({"a": account_nodes, "b": account_nodes}),
        pd.DataFrame({"a": "account:" + named["account_id"], "b": "name:" + named["name_std"]}),
    ])
    lone_names = "name:" + record_names.dropna().drop_duplicates()
    pairs = pd.concat([pairs, pd.DataFrame({"a": lone_names, "b": lone_names})], ignore_index=True)
    return mint_id("C", _components(pairs, sql))


def domain_to_cid(accounts: pd.DataFrame, nodes: pd.Series) -> pd.Series:
    """Website domain -> CID, only for domains that belong to exactly one company."""
    cids = ("account:" + accounts["account_id"]).map(nodes)
    pairs = pd.DataFrame({"domain": accounts["domain"], "cid": cids}).dropna().drop_duplicates()
    unique = pairs.groupby("domain")["cid"].transform("size") == 1
    return pairs[unique].set_index("domain")["cid"]


def record_cids(records: pd.DataFrame, nodes: pd.Series, domains: pd.Series) -> pd.Series:
    """Each record's company: its account, else the name it gives, else its email domain."""
    by_account = ("account:" + records["account_id"]).map(nodes)
    by_name = ("name:" + records["company_name_std"]).map(nodes)
    by_domain = records["work_domain"].map(domains)
    return by_account.fillna(by_name).fillna(by_domain).astype("string")


def company_table(
    accounts: pd.DataFrame, records: pd.DataFrame, rec_cids: pd.Series, nodes: pd.Series,
    rules: StandardiseRules, sql: IdentitySql,
) -> pd.DataFrame:
    """One row per CID with the attributes of its first CRM account, and its EID."""
    account_rows = accounts.assign(cid=("account:" + accounts["account_id"]).map(nodes))
    from_accounts = account_rows.sort_values("account_id").drop_duplicates("cid").set_index("cid")
    named = pd.DataFrame({"cid": rec_cids, "name": records["company_name"],
                          "name_std": records["company_name_std"]}).dropna()
    from_records = named.groupby("cid").agg(
        name=("name", lambda names: names.mode().iloc[0]), name_std=("name_std", "first"))
    companies = pd.DataFrame(index=pd.Index(nodes.unique(), name="cid"))
    companies["name"] = from_accounts["account_name"].reindex(companies.index).fillna(
        from_records["name"].reindex(companies.index))
    companies["name_std"] = (
        from_accounts["name_std"].reindex(companies.index)
        .fillna(from_records["name_std"].reindex(companies.index))
        .fillna(companies.index.to_series().str.lower())
    )
    companies["domain"] = from_accounts["domain"].reindex(companies.index)
    for column in ACCOUNT_ATTRIBUTES:
        companies[column] = from_accounts[column].reindex(companies.index)
    companies = companies.reset_index()
    return companies.assign(**entity_ids(companies, rules, sql))


def entity_ids(companies: pd.DataFrame, rules: StandardiseRules, sql: IdentitySql) -> dict[str, pd.Series]:
    """EID and group name per company: same group name, or a shared website, is one group."""
    group = std.group_name(companies["name_std"], rules)
    pairs = pd.DataFrame({"a": "cid:" + companies["cid"], "b": "group:" + group})
    with_domain = companies["domain"].notna()
    pairs = pd.concat([pairs, pd.DataFrame({"a": "cid:" + companies.loc[with_domain, "cid"],
                                            "b": "domain:" + companies.loc[with_domain, "domain"]})])
    labels = _components(pairs, sql)
    group_nodes = pd.Series(labels.index, index=labels.index)
    anchors = group_nodes[group_nodes.str.startswith("group:")].groupby(
        labels[group_nodes.str.startswith("group:")].to_numpy()).min()
    eid = ("cid:" + companies["cid"]).map(labels).map(mint_id("E", anchors))
    group_label = ("cid:" + companies["cid"]).map(labels).map(anchors).str.removeprefix("group:")
    return {"eid": eid.astype("string"), "group_name": group_label.astype("string")}


def entity_table(companies: pd.DataFrame) -> pd.DataFrame:
    """One row per EID, named after its group."""
    groups = companies.groupby("eid")["group_name"].first().reset_index()
    return pd.DataFrame({"eid": groups["eid"], "name": groups["group_name"].str.title()})
