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


_ACCOUNT_COLUMNS = ["account_id", "cid", "account_name", "name_std", "domain", *ACCOUNT_ATTRIBUTES]

# Per CID: its first CRM account (by account id); else the name its records give most often
# (the smallest of equally frequent ones) and the standardised name of its first record.
_COMPANY_SQL = f"""
    WITH account AS (
        SELECT *, row_number() OVER (PARTITION BY cid ORDER BY account_id) AS pick
        FROM company_account),
    named AS (
        SELECT record, cid, name, name_std FROM company_record
        WHERE cid IS NOT NULL AND name IS NOT NULL AND name_std IS NOT NULL),
    frequent_name AS (
        SELECT cid, name, row_number() OVER (PARTITION BY cid ORDER BY count(*) DESC, name) AS pick
        FROM named GROUP BY cid, name),
    first_name_std AS (
        SELECT cid, arg_min(name_std, record) AS name_std FROM named GROUP BY cid)
    SELECT c.cid, coalesce(a.account_name, f.name) AS name,
           coalesce(a.name_std, s.name_std, lower(c.cid)) AS name_std, a.domain,
           {", ".join(f"a.{column}" for column in ACCOUNT_ATTRIBUTES)}
    FROM company_cid c
    LEFT JOIN account a ON a.cid = c.cid AND a.pick = 1
    LEFT JOIN frequent_name f ON f.cid = c.cid AND f.pick = 1
    LEFT JOIN first_name_std s ON s.cid = c.cid
    ORDER BY c.cid"""


def company_table(
    accounts: pd.DataFrame, records: pd.DataFrame, rec_cids: pd.Series, nodes: pd.Series,
    rules: StandardiseRules, sql: IdentitySql,
) -> pd.DataFrame:
    """One row per CID with the attributes of its first CRM account, and its EID; chosen on
    `sql`'s engine."""
    account_rows = accounts.assign(cid=("account:" + accounts["account_id"]).map(nodes))
    sql.put("company_account", account_rows.reindex(columns=_ACCOUNT_COLUMNS))
    sql.put("company_record", pd.DataFrame({
        "record": records.index.to_numpy().astype("int64"), "cid": rec_cids.astype("string"),
        "name": records["company_name"].astype("string"),
        "name_std": records["company_name_std"].astype("string")}))
    sql.put("company_cid", pd.DataFrame({"cid": nodes.dropna().unique()}).astype("string"))
    companies = sql.fetch(_COMPANY_SQL)
    types = accounts.dtypes.reindex(ACCOUNT_ATTRIBUTES).to_dict()
    companies = companies.astype({"cid": "string", "name": "string", "name_std": "string",
                                  "domain": "string"}).astype(types)
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
