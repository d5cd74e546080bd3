"""Resolve raw sources into the middle layer (One ID), written to one DuckDB file.

Steps: standardise every raw row into a record (or quarantine it), link people
by exact identifiers, resolve companies and groups, keep the last run's IDs
where they still stand (identity/stable.py), then build the tables of
DESIGN.md: person, company, entity, interaction, outcome, id_map, quarantine,
plus id_audit (merges and splits across runs), company_node, record and
shared_identifier (what `leadscore identity explain` reads).
The file is written next to its final place and renamed over it, so a crash
mid-run leaves the last good middle layer intact.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from leadscore.config import Settings, load_yaml
from leadscore.identity import companies as comp
from leadscore.identity.demand import DemandTags, build_demand_tables
from leadscore.identity.engine import DuckDBSql, IdentitySql
from leadscore.identity.link import resolve_people, shared_identifier_table
from leadscore.identity.middle import (
    build_campaigns,
    build_interaction,
    build_outcome,
    check_vocabulary,
    read_plans,
    with_optional_columns,
)
from leadscore.identity.people import person_table
from leadscore.identity.records import SOURCE_LAYOUT, all_records
from leadscore.identity.stable import AUDIT_COLUMNS, PreviousIds, inherit_ids, read_previous
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
    fuzzy_config: Path | None = None  # the profile model of the probabilistic pass; None: off
    demand_tags: DemandTags = DemandTags((), ())  # config/demand_tags.yaml


def rules_from_settings(settings: Settings) -> IdentityRules:
    """The identity rules of a project: config/identity.yaml, titles.yaml, event_types.yaml."""
    return IdentityRules(
        standardise=StandardiseRules.from_config(load_yaml(settings.config_file("identity.yaml"))),
        titles=load_yaml(settings.config_file("titles.yaml")),
        event_types=set(load_yaml(settings.config_file("event_types.yaml"))["event_types"]),
        shared_identifier_max_names=settings.identity.shared_identifier_max_names,
        fuzzy_config=(settings.config_file("mappings/person_profiles.yaml")
                      if settings.identity.fuzzy_merge else None),
        demand_tags=DemandTags.load(settings.config_file("demand_tags.yaml")),
    )


def read_sources(raw_dir: Path) -> dict[str, pd.DataFrame]:
    """The raw source tables; a missing one is an error that names it."""
    missing = [name for name in RAW_SOURCES if not (raw_dir / f"{name}.parquet").is_file()]
    if missing:
        raise FileNotFoundError(f"raw sources missing in {raw_dir}: {missing} (run `leadscore synth`)")
    return {name: pd.read_parquet(raw_dir / f"{name}.parquet") for name in RAW_SOURCES}


@dataclass(frozen=True)
class LoggedRecords:
    """Records ingested live since the last batch (the event log, live/log.py), compacted
    into this run: extra rows per raw source, the PID each record got live (kept where it
    still stands, like the last run's IDs), and the event log's rows this run covers (the
    `live_watermark` table: readers add only later rows of the log to the middle layer)."""

    sources: dict[str, pd.DataFrame]
    pids: pd.Series  # 'source:record_id' -> pid
    watermark: dict  # 'log': the event log's id; 'record', 'interaction': last row numbers covered


RECORD_TABLE_COLUMNS = ["source", "source_record_id", "pid", "cid", "rule", "email", "phone",
                       "cookie_id", "contact_id", "user_id", "account_id", "name_key",
                       "company_name_std", "work_domain", "seen_at", "field_issue", "probability"]


def _link_evidence(records: pd.DataFrame) -> pd.Series:
    """Per fresh PID: the identifier kinds that hold its records together ('email, phone')."""
    rules = records[["pid", "rule"]].dropna().drop_duplicates()
    rules = rules[rules["rule"] != "singleton"].sort_values("rule")
    return rules.groupby("pid")["rule"].agg(", ".join)


def apply_fuzzy_merges(records: pd.DataFrame, rules: IdentityRules, account_names: pd.Series | None = None,
                       shared_keys: Collection[str] = ()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The probabilistic second pass: merge exact clusters that are one person; the records
    that move carry the pair's rule ('fuzzy', or 'name_at_employer' for a bare cluster: see
    identity/fuzzy.py) and its match probability. Also returns, per merged
    pair of fresh PIDs, each comparison's level and match weight (for `identity explain`).
    `shared_keys`: the identifiers the exact pass held back as shared, which contradict no one."""
    from leadscore.identity.fuzzy import fuzzy_merges, merge_pids  # Splink: only when it runs

    if rules.fuzzy_config is None:
        raise ValueError("the probabilistic pass is off (identity.fuzzy_merge: false): no profile model")
    fuzzy = fuzzy_merges(records, rules.fuzzy_config, rules.standardise, account_names, shared_keys)
    merges = fuzzy.pairs
    if merges.empty:
        return records, fuzzy.comparisons
    merged = merge_pids(records["pid"], merges)
    moved = (merged != records["pid"]).fillna(False)
    by_pid = pd.concat([merges.set_index(side)[["match_probability", "rule"]] for side in ("pid_a", "pid_b")])
    strongest = by_pid.sort_values("match_probability", ascending=False, kind="stable")
    strongest = strongest[~strongest.index.duplicated()]  # a PID's most probable pair
    log.info("probabilistic pass: %d merges moved %d records", len(merges), int(moved.sum()))
    records = records.assign(
        pid=merged, rule=records["rule"].mask(moved, records["pid"].map(strongest["rule"])),
        probability=records["probability"].mask(moved, records["pid"].map(by_pid["match_probability"]
                                                                          .groupby(level=0).max())))
    firsts = merges["pid_a"].drop_duplicates()  # one cluster may merge with several bare ones
    return records, fuzzy.comparisons.assign(pid=fuzzy.comparisons["pid_a"].map(
        merge_pids(pd.Series(firsts.to_numpy(), index=firsts.to_numpy()), merges)))


def stable_people(records: pd.DataFrame, previous: PreviousIds,
                  sql: IdentitySql) -> tuple[pd.Series, pd.DataFrame]:
    """Each record's PID, inherited from the last run where it still stands, and the audit."""
    keys = records["source"] + ":" + records["source_record_id"]
    fresh = pd.Series(records["pid"].to_numpy(), index=keys.to_numpy())
    final, audit = inherit_ids(fresh, previous.pids, "person", _link_evidence(records), sql)
    return records["pid"].map(final).astype("string"), audit


def previous_ids(resolved: dict[str, pd.DataFrame]) -> PreviousIds:
    """What a later run inherits from this one (the same as reading its middle layer back)."""
    records = resolved["records"].dropna(subset=["pid"])
    keys = (records["source"] + ":" + records["source_record_id"]).to_numpy()
    nodes = resolved["company_node"]
    return PreviousIds(pids=pd.Series(records["pid"].to_numpy(), index=keys, dtype="string"),
                       cids=pd.Series(nodes["cid"].to_numpy(), index=nodes["node"].to_numpy(),
                                      dtype="string"),
                       audit=resolved["id_audit"])


def resolve_records(sources: dict[str, pd.DataFrame], rules: IdentityRules,
                    previous: PreviousIds | None = None,
                    sql: IdentitySql | None = None) -> dict[str, pd.DataFrame]:
    """Pure resolution: records with pid/cid/eid, the person, company, entity tables, the
    audit of ID changes against `previous`, and what `identity explain` needs. Exact links,
    components and stable IDs run on `sql`'s engine (DuckDB in memory if none; Spark:
    engine.py)."""
    previous, sql = previous or PreviousIds.empty(), sql or DuckDBSql()
    records, quarantine = all_records(sources, rules.standardise, sql)
    log.info("standardised %d records, quarantined %d", len(records), len(quarantine))
    records = records.join(resolve_people(records, rules.shared_identifier_max_names, sql))
    shared = shared_identifier_table(sql)
    fuzzy_links = pd.DataFrame(columns=["pid", "pid_a", "pid_b", "comparison", "level", "match_weight"])
    accounts = comp.standardise_accounts(sources["crm_accounts"], rules.standardise)
    if rules.fuzzy_config is not None:
        records, fuzzy_links = apply_fuzzy_merges(records, rules,
                                                  accounts.set_index("account_id")["name_std"],
                                                  frozenset(shared["key"].dropna()))
    fresh_pid = records["pid"]
    records["pid"], person_audit = stable_people(records, previous, sql)
    stable = pd.Series(records["pid"].to_numpy(), index=fresh_pid.to_numpy())
    fuzzy_links["pid"] = fuzzy_links["pid"].map(stable[~stable.index.duplicated()])
    fresh_nodes = comp.company_nodes(accounts, records["company_name_std"], sql)
    stable_cids, company_audit = inherit_ids(fresh_nodes, previous.cids, "company", sql=sql)
    nodes = fresh_nodes.map(stable_cids)
    records["cid"] = comp.record_cids(records, nodes, comp.domain_to_cid(accounts, nodes))
    companies = comp.company_table(accounts, records, records["cid"], nodes, rules.standardise, sql)
    people = person_table(records, rules.titles, sql)
    people["owner_rep_id"] = people["owner_rep_id"].fillna(
        people["cid"].map(companies.set_index("cid")["owner_rep_id"]))
    # A person's records all carry the person's current company.
    records["cid"] = records["pid"].map(people.set_index("pid")["cid"]).fillna(records["cid"])
    sql.drop_tables()  # all fetched: what the engine held is not needed any more
    return {"records": records, "quarantine": quarantine, "person": people,
            "company": companies, "entity": comp.entity_table(companies),
            "accounts": accounts.assign(cid=("account:" + accounts["account_id"]).map(nodes)),
            "company_node": pd.DataFrame({"node": nodes.index, "cid": nodes.to_numpy()}),
            "id_audit": pd.concat([previous.audit, person_audit, company_audit],
                                  ignore_index=True).reindex(columns=AUDIT_COLUMNS),
            "record": records.reindex(columns=RECORD_TABLE_COLUMNS),
            "fuzzy_link": fuzzy_links,
            "shared_identifier": shared}


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
                       event_types: set[str], watermark: dict | None = None,
                       plans: dict[str, pd.DataFrame] | None = None,
                       demand_tags: DemandTags | None = None,
                       duckdb_config: dict[str, str] | None = None) -> None:
    """All middle-layer tables into one DuckDB file, replaced atomically (with the campaigns
    and demand tags of `plans` and `demand_tags`, empty without). `duckdb_config`
    (Settings.duckdb_config) holds DuckDB to a memory limit: without one it takes up to 80% of
    the machine's memory while it builds the interactions (the peak of identity on the default
    world, README "Memory")."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.duckdb")
    tmp.unlink(missing_ok=True)
    # duckdb's stub takes only a dict of its value union (dict is invariant), not our dict[str, str]
    with duckdb.connect(str(tmp), config=duckdb_config or {}) as con:  # type: ignore[arg-type]
        for name, frame in sources.items():
            con.register(f"raw_{name}", with_optional_columns(name, frame))
        record_map = resolved["records"][["source", "source_record_id", "pid", "cid", "cookie_id"]]
        con.register("record_map_df", record_map)
        con.execute("CREATE TABLE record_map AS SELECT * FROM record_map_df")
        for table in ["person", "company", "entity", "quarantine", "company_node", "id_audit",
                      "record", "shared_identifier", "fuzzy_link"]:
            con.register(f"{table}_df", resolved[table])
            con.execute(f"CREATE TABLE {table} AS SELECT * FROM {table}_df")
        con.register("id_map_df", mapped)
        con.execute("CREATE TABLE id_map AS SELECT * FROM id_map_df")
        build_interaction(con)
        build_outcome(con)
        check_vocabulary(con, event_types)
        build_campaigns(con, plans or read_plans(None))
        build_demand_tables(con, demand_tags or DemandTags((), ()))
        con.execute("DROP TABLE record_map")
        marks = watermark or {"log": "", "record": 0, "interaction": 0}
        con.execute("CREATE TABLE live_watermark AS SELECT $log::VARCHAR AS log, $record::BIGINT AS record, "
                    "$interaction::BIGINT AS interaction", marks)
    os.replace(tmp, path)


def with_live(sources: dict[str, pd.DataFrame], previous: PreviousIds,
              live: LoggedRecords) -> tuple[dict[str, pd.DataFrame], PreviousIds]:
    """The raw sources with the live records appended, and the last run's IDs with the live
    PIDs added (the last batch's win where both know a record)."""
    grown = {name: pd.concat([frame, _not_in(live.sources[name], frame).astype(frame.dtypes.to_dict(),
                                                                           errors="ignore")],
                             ignore_index=True) if len(live.sources.get(name, ())) else frame
             for name, frame in sources.items()}
    pids = pd.concat([previous.pids, live.pids[~live.pids.index.isin(previous.pids.index)]])
    return grown, PreviousIds(pids.astype("string"), previous.cids, previous.audit)


def _not_in(live: pd.DataFrame, raw: pd.DataFrame) -> pd.DataFrame:
    """The live rows whose id the raw source does not hold already (a record sent twice)."""
    key = live.columns[0]  # every source's id comes first
    return live[~live[key].isin(raw[key])]


def resolve(raw_dir: Path, middle_db: Path, rules: IdentityRules,
            live: LoggedRecords | None = None, sql: IdentitySql | None = None,
            duckdb_config: dict[str, str] | None = None) -> pd.DataFrame:
    """Read raw sources (and the live records, if given), resolve (links, components and
    survivorship on `sql`'s engine), write the middle layer (DuckDB held to `duckdb_config`);
    returns per-source record counts."""
    sources, previous = read_sources(raw_dir), read_previous(middle_db)
    if live is not None:
        sources, previous = with_live(sources, previous, live)
    resolved = resolve_records(sources, rules, previous, sql)
    mapped = id_map(resolved)
    counts = check_conservation(sources, mapped, resolved["quarantine"])
    write_middle_layer(middle_db, sources, resolved, mapped, rules.event_types,
                       live.watermark if live is not None else None,
                       read_plans(raw_dir), rules.demand_tags, duckdb_config)
    log.info("people %d, companies %d, groups %d", len(resolved["person"]),
             len(resolved["company"]), len(resolved["entity"]))
    return counts
