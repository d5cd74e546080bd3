"""Resolve raw sources into the middle layer (One ID), written to one DuckDB file.

Steps: standardise every raw row into a record (or quarantine it), link people
by exact identifiers, resolve companies and groups, then build the tables of
DESIGN.md: person, company, entity, interaction, outcome, id_map, quarantine.
The file is written next to its final place and renamed over it, so a crash
mid-run leaves the last good middle layer intact.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from leadscore.identity import companies as comp
from leadscore.identity.link import resolve_people
from leadscore.identity.middle import build_interaction, build_outcome, check_vocabulary
from leadscore.identity.people import person_table
from leadscore.identity.records import SOURCE_LAYOUT, all_records
from leadscore.identity.standardise import StandardiseRules

log = logging.getLogger(__name__)

RAW_SOURCES = [*SOURCE_LAYOUT, "crm_accounts"]
ID_MAP_COLUMNS = ["source", "source_record_id", "pid", "cid", "eid", "uid", "cookie_id", "rule",
                  "probability"]


@dataclass(frozen=True)
class IdentityRules:
    standardise: StandardiseRules
    titles: dict
    event_types: set[str]
    shared_identifier_max_names: int


def read_sources(raw_dir: Path) -> dict[str, pd.DataFrame]:
    """The raw source tables; a missing one is an error that names it."""
    missing = [name for name in RAW_SOURCES if not (raw_dir / f"{name}.parquet").is_file()]
    if missing:
        raise FileNotFoundError(f"raw sources missing in {raw_dir}: {missing} (run `leadscore synth`)")
    return {name: pd.read_parquet(raw_dir / f"{name}.parquet") for name in RAW_SOURCES}


def resolve_records(sources: dict[str, pd.DataFrame], rules: IdentityRules) -> dict[str, pd.DataFrame]:
    """Pure resolution: records with pid/cid/eid, and the person, company, entity tables."""
    records, quarantine = all_records(sources, rules.standardise)
    log.info("standardised %d records, quarantined %d", len(records), len(quarantine))
    records = records.join(resolve_people(records, rules.shared_identifier_max_names))
    accounts = comp.standardise_accounts(sources["crm_accounts"], rules.standardise)
    nodes = comp.company_nodes(accounts, records["company_name_std"])
    records["cid"] = comp.record_cids(records, nodes, comp.domain_to_cid(accounts, nodes))
    companies = comp.company_table(accounts, records, records["cid"], nodes, rules.standardise)
    people = person_table(records, rules.titles)
    people["owner_rep_id"] = people["owner_rep_id"].fillna(
        people["cid"].map(companies.set_index("cid")["owner_rep_id"]))
    # A person's records all carry the person's current company.
    records["cid"] = records["pid"].map(people.set_index("pid")["cid"]).fillna(records["cid"])
    return {"records": records, "quarantine": quarantine, "person": people,
            "company": companies, "entity": comp.entity_table(companies),
            "accounts": accounts.assign(cid=("account:" + accounts["account_id"]).map(nodes))}


def id_map(resolved: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The lineage of every kept raw record to its IDs."""
    records = resolved["records"]
    eids = resolved["company"].set_index("cid")["eid"]
    uids = resolved["person"].set_index("pid")["uid"]
    rows = records.assign(eid=records["cid"].map(eids), uid=records["pid"].map(uids))
    accounts = resolved["accounts"]
    account_rows = pd.DataFrame({
        "source": "crm_accounts", "source_record_id": accounts["account_id"], "cid": accounts["cid"],
        "eid": accounts["cid"].map(eids), "rule": "crm_account", "probability": 1.0})
    return pd.concat([rows, account_rows], ignore_index=True).reindex(columns=ID_MAP_COLUMNS)


def check_conservation(sources: dict[str, pd.DataFrame], mapped: pd.DataFrame,
                       quarantine: pd.DataFrame) -> pd.DataFrame:
    """records in = records mapped + records quarantined, per source; raises if not."""
    counts = pd.DataFrame({
        "raw": pd.Series({name: len(frame) for name, frame in sources.items()}),
        "mapped": mapped.groupby("source").size(),
        "quarantined": quarantine.groupby("source").size(),
    }).fillna(0).astype(int)
    broken = counts[counts["raw"] != counts["mapped"] + counts["quarantined"]]
    if not broken.empty:
        raise RuntimeError(f"records lost in identity resolution:\n{broken}")
    return counts


def write_middle_layer(path: Path, sources: dict[str, pd.DataFrame],
                       resolved: dict[str, pd.DataFrame], mapped: pd.DataFrame,
                       event_types: set[str]) -> None:
    """All middle-layer tables into one DuckDB file, replaced atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.duckdb")
    tmp.unlink(missing_ok=True)
    with duckdb.connect(str(tmp)) as con:
        for name, frame in sources.items():
            con.register(f"raw_{name}", frame)
        record_map = resolved["records"][["source", "source_record_id", "pid", "cid", "cookie_id"]]
        con.register("record_map_df", record_map)
        con.execute("CREATE TABLE record_map AS SELECT * FROM record_map_df")
        for table in ["person", "company", "entity", "quarantine"]:
            con.register(f"{table}_df", resolved[table])
            con.execute(f"CREATE TABLE {table} AS SELECT * FROM {table}_df")
        con.register("id_map_df", mapped)
        con.execute("CREATE TABLE id_map AS SELECT * FROM id_map_df")
        build_interaction(con)
        build_outcome(con)
        check_vocabulary(con, event_types)
        con.execute("DROP TABLE record_map")
    os.replace(tmp, path)


def resolve(raw_dir: Path, middle_db: Path, rules: IdentityRules) -> pd.DataFrame:
    """Read raw sources, resolve, write the middle layer; returns per-source record counts."""
    sources = read_sources(raw_dir)
    resolved = resolve_records(sources, rules)
    mapped = id_map(resolved)
    counts = check_conservation(sources, mapped, resolved["quarantine"])
    write_middle_layer(middle_db, sources, resolved, mapped, rules.event_types)
    log.info("people %d, companies %d, groups %d", len(resolved["person"]),
             len(resolved["company"]), len(resolved["entity"]))
    return counts
