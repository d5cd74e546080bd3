"""Probabilistic person matching with Splink (Fellegi-Sunter, DuckDB or Spark backend).

Deterministic linking (identity/link.py) needs a shared identifier; this module
scores pairs that share none, from how their names, dates, addresses and
contacts agree. Everything a user tunes (comparisons and their levels, blocking
rules, training sample sizes, thresholds) is data in a YAML file: see
config/mappings/febrl.yaml. The input tables are standardised by
identity/mapping.py, so one model describes any person table.

Training is unsupervised: u (how often non-matches agree) from random pairs,
m (how often matches agree) by expectation maximisation, the prior from a few
near-certain deterministic rules, or, when those find nothing in a user's table (their
columns are not mapped), from the EM sessions' blocked pairs. Rules on columns a table
leaves empty are set aside with a warning. Pairs come only from the blocking rules,
which keeps the work near-linear in the number of records.

The same model runs in process on DuckDB (the default) or, once the data outgrow
one machine, on Spark (`backend: spark`); what differs between the two (SQL
function names, date patterns, the Spark session) is data in the `backends:`
section of the same file.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import pandas as pd
import yaml
from splink import DuckDBAPI, Linker, SettingsCreator, block_on
from splink import comparison_level_library as cll
from splink import comparison_library as cl
from splink.blocking_rule_library import CustomRule

from leadscore.config import SparkSettings
from leadscore.identity.link import label_components
from leadscore.identity.mapping import DERIVED, RECORD_ID, ROLES

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from splink.internals.comparison_level_creator import ComparisonLevelCreator
    from splink.internals.database_api import DatabaseAPI

logger = logging.getLogger(__name__)

PAIR_COLUMNS = ["id_l", "id_r", "match_weight", "match_probability"]
# Link mode: the left table's records are always id_l, the right table's id_r.
SOURCES = ("left", "right")
_COLUMN_KINDS = ("missing", "exact", "jaro_winkler", "jaro", "levenshtein", "damerau_levenshtein")
_PAIR_KINDS = ("swapped", "swapped_jaro_winkler", "crossed")
_COMPOSITE_KINDS = ("all_of", "any_of")
_LEVEL_KINDS = (*_COLUMN_KINDS, *_PAIR_KINDS, *_COMPOSITE_KINDS, "sql")

BlockingRule = str | list[str]
BACKENDS = ("duckdb", "spark")
# Hand-written SQL (`sql:` levels, string blocking rules, the swapped_jaro_winkler level)
# names backend-specific parts as `{placeholder}`; only names the backend defines are
# replaced, so other braces (regex quantifiers) are left alone.
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
# Hand-written SQL is in DuckDB's dialect ("quoted" identifiers); Splink translates it
# (sqlglot) for Spark, where "x" is a string literal. Function names sqlglot does not
# know (Splink's Spark UDFs) and date patterns are placeholders instead.
_SQL_DIALECT = "duckdb"
# Splink's own levels already speak each dialect; these are the names our SQL needs.
_DEFAULT_SQL = {"duckdb": {"jaro_winkler": "jaro_winkler_similarity"},
                "spark": {"jaro_winkler": "jaro_winkler"}}


@dataclass(frozen=True)
class BackendConfig:
    """Where Splink runs; see the `backend:` and `backends:` keys of a mapping file.
    `sql` fills the `{placeholders}` of hand-written SQL. The spark_* fields shape the
    Spark session (created on first use, then shared) and are ignored on DuckDB."""

    name: str = "duckdb"
    sql: Mapping[str, str] = field(default_factory=lambda: dict(_DEFAULT_SQL["duckdb"]))
    spark_master: str = "local[2]"
    spark_shuffle_partitions: int = 8
    spark_break_lineage: str = "persist"

    @classmethod
    def from_config(cls, name: str, raw: dict[str, Any]) -> BackendConfig:
        if name not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {name!r}")
        spark = raw.get("spark_session", {})
        return cls(
            name=name,
            sql={**_DEFAULT_SQL[name], **raw.get("sql", {})},
            spark_master=str(spark.get("master", "local[2]")),
            spark_shuffle_partitions=int(spark.get("shuffle_partitions", 8)),
            spark_break_lineage=str(spark.get("break_lineage", "persist")),
        )

    def fill(self, sql: str) -> str:
        """The SQL with this backend's `{placeholders}` filled in."""
        return _PLACEHOLDER.sub(lambda m: self.sql.get(m.group(1), m.group(0)), sql)


DUCKDB = BackendConfig()


@dataclass(frozen=True)
class TrainingConfig:
    """How the model learns its parameters; see the `training:` section of a mapping file."""

    prior_rules: tuple[BlockingRule, ...] = ()
    prior_recall: float = 0.8
    u_max_pairs: float = 5e5
    u_seed: int = 42
    u_num_chunks: int = 10
    u_min_count_per_level: int | None = 100
    em_rules: tuple[BlockingRule, ...] = ()
    em_without_term_frequencies: bool = False

    @classmethod
    def from_config(cls, raw: dict[str, Any]) -> TrainingConfig:
        prior, u, em = raw.get("prior", {}), raw.get("u", {}), raw.get("em", {})
        return cls(
            prior_rules=tuple(prior.get("deterministic_rules", ())),
            prior_recall=float(prior.get("recall", 0.8)),
            u_max_pairs=float(u.get("max_pairs", 5e5)),
            u_seed=int(u.get("seed", 42)),
            u_num_chunks=int(u.get("num_chunks", 10)),
            u_min_count_per_level=u.get("min_count_per_level", 100),
            em_rules=tuple(em.get("blocking_rules", ())),
            em_without_term_frequencies=bool(em.get("without_term_frequencies", False)),
        )


@dataclass(frozen=True)
class ClusterConfig:
    """Connected components at `threshold`; a component larger than `max_cluster_size`
    is split again with only the edges above each stricter threshold in turn, so that
    one weak link cannot chain two people's records together."""

    threshold: float = 0.5
    max_cluster_size: int | None = None
    stricter_thresholds: tuple[float, ...] = ()

    @classmethod
    def from_config(cls, raw: dict[str, Any]) -> ClusterConfig:
        return cls(
            threshold=float(raw.get("threshold", 0.5)),
            max_cluster_size=raw.get("max_cluster_size"),
            stricter_thresholds=tuple(float(t) for t in raw.get("stricter_thresholds", ())),
        )


@dataclass(frozen=True)
class ModelConfig:
    """The whole model as data: comparisons, blocking rules, training and clustering."""

    comparisons: tuple[dict[str, Any], ...]
    blocking_rules: tuple[BlockingRule, ...]
    training: TrainingConfig = field(default_factory=TrainingConfig)
    clustering: ClusterConfig = field(default_factory=ClusterConfig)
    threshold: float = 0.5
    em_max_iterations: int = 25
    backend: BackendConfig = field(default_factory=BackendConfig)
    # Every backend's section, so that `on_backend` can switch without re-reading the file.
    backends: Mapping[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_config(cls, raw: dict[str, Any]) -> ModelConfig:
        backends = raw.get("backends", {})
        name = raw.get("backend", "duckdb")
        return cls(
            comparisons=tuple(raw["comparisons"]),
            blocking_rules=tuple(raw["blocking_rules"]),
            training=TrainingConfig.from_config(raw.get("training", {})),
            clustering=ClusterConfig.from_config(raw.get("clustering", {})),
            threshold=float(raw.get("threshold", 0.5)),
            em_max_iterations=int(raw.get("em_max_iterations", 25)),
            backend=BackendConfig.from_config(name, backends.get(name, {})),
            backends=backends,
        )

    def on_backend(self, name: str) -> ModelConfig:
        """The same model, run on another backend (its settings from `backends:`)."""
        return replace(self, backend=BackendConfig.from_config(name, self.backends.get(name, {})))


def load_model_config(path: Path) -> ModelConfig:
    """Read the `model:` section of a mapping file (the I/O edge of this module)."""
    raw = yaml.safe_load(Path(path).read_text()) or {}
    if "model" not in raw:
        raise ValueError(f"{path} has no `model:` section")
    return ModelConfig.from_config(raw["model"])


def _level_kind(spec: dict[str, Any]) -> str:
    kinds = [key for key in spec if key in _LEVEL_KINDS]
    if len(kinds) != 1:
        raise ValueError(f"a comparison level needs exactly one of {_LEVEL_KINDS}, got {spec}")
    return kinds[0]


def _pair_level_sql(kind: str, first: str, second: str, threshold: float | None) -> str:
    """Name or address parts written in each other's field ('masno madeline' vs
    'madeline mason'): plain Splink only compares a column with itself."""
    if kind == "crossed":  # one part found in the other's field, either way round
        return f'"{first}_l" = "{second}_r" OR "{second}_l" = "{first}_r"'
    if kind == "swapped":
        return f'"{first}_l" = "{second}_r" AND "{second}_l" = "{first}_r"'
    return (f'{{jaro_winkler}}("{first}_l", "{second}_r") >= {threshold} AND '
            f'{{jaro_winkler}}("{second}_l", "{first}_r") >= {threshold}')


def _column_level(kind: str, column: str, spec: dict[str, Any]) -> ComparisonLevelCreator:
    if kind == "missing":
        return cll.NullLevel(column)
    if kind == "exact":
        return cll.ExactMatchLevel(column)
    if kind == "jaro_winkler":
        return cll.JaroWinklerLevel(column, spec["threshold"])
    if kind == "jaro":
        return cll.JaroLevel(column, spec["threshold"])
    if kind == "levenshtein":
        return cll.LevenshteinLevel(column, spec["distance"])
    return cll.DamerauLevenshteinLevel(column, spec["distance"])


def build_level(spec: str | dict[str, Any], backend: BackendConfig = DUCKDB) -> ComparisonLevelCreator:
    """One comparison level from its YAML form, e.g. `{jaro_winkler: surname, threshold: 0.92}`,
    `{exact: surname, tf: true}`, `{swapped: [given_name, surname]}`, `{all_of: [...]}`, `else`;
    hand-written SQL gets the backend's `{placeholders}` filled in."""
    if spec == "else":
        return cll.ElseLevel()
    if not isinstance(spec, dict):
        raise ValueError(f"a comparison level is 'else' or a mapping, got {spec!r}")
    kind = _level_kind(spec)
    if kind in _COLUMN_KINDS:
        level = _column_level(kind, spec[kind], spec)
    elif kind in _COMPOSITE_KINDS:
        parts = [build_level(part, backend) for part in spec[kind]]
        level = cll.And(*parts) if kind == "all_of" else cll.Or(*parts)
    elif kind in _PAIR_KINDS:
        first, second = spec[kind]
        level = cll.CustomLevel(backend.fill(_pair_level_sql(kind, first, second, spec.get("threshold"))),
                                label_for_charts=f"{kind} {first} / {second}", base_dialect_str=_SQL_DIALECT)
    else:
        level = cll.CustomLevel(backend.fill(spec["sql"]), label_for_charts=spec.get("label", spec["sql"]),
                                base_dialect_str=_SQL_DIALECT)
    if spec.get("tf"):  # `tf: true` adjusts on the level's column, `tf: <column>` on that one
        level = level.configure(tf_adjustment_column=spec[kind] if spec["tf"] is True else spec["tf"])
    return level.configure(label_for_charts=spec["label"]) if "label" in spec else level


def _level_columns(level: str | dict[str, Any]) -> set[str]:
    if not isinstance(level, dict):
        return set()
    kind = _level_kind(level)
    if kind in _COMPOSITE_KINDS:
        return set().union(*(_level_columns(part) for part in level[kind]))
    named = level.get("columns", []) if kind == "sql" else level[kind]
    return {named} if isinstance(named, str) else set(named)


def comparison_columns(spec: dict[str, Any]) -> set[str]:
    """Standardised columns a comparison reads (for `sql` levels: their `columns` list)."""
    return set().union(*(_level_columns(level) for level in spec["levels"]))


def build_comparison(spec: dict[str, Any], backend: BackendConfig = DUCKDB) -> cl.CustomComparison:
    return cl.CustomComparison(
        comparison_levels=[build_level(level, backend) for level in spec["levels"]],
        output_column_name=spec["name"],
        comparison_description=spec.get("description", spec["name"]),
    )


def build_rule(rule: BlockingRule, backend: BackendConfig = DUCKDB) -> Any:
    """A list of columns or SQL expressions that must all be equal (`block_on`), or a
    raw SQL condition on `l.` and `r.` as a string; `{placeholders}` filled for the backend."""
    if isinstance(rule, list):
        return block_on(*(backend.fill(part) for part in rule))
    return CustomRule(backend.fill(rule), sql_dialect=_SQL_DIALECT)


def _populated(column: str, tables: Sequence[pd.DataFrame]) -> bool:
    return all(column in table and table[column].notna().any() for table in tables)


def active_comparisons(config: ModelConfig, tables: Sequence[pd.DataFrame]) -> list[dict[str, Any]]:
    """Comparisons whose columns hold some value in every table: a role a table does not
    map (email in FEBRL) carries no evidence and would leave its levels untrainable."""
    active = [spec for spec in config.comparisons
              if all(_populated(column, tables) for column in comparison_columns(spec))]
    skipped = sorted({spec["name"] for spec in config.comparisons} - {spec["name"] for spec in active})
    if skipped:
        logger.info("comparisons skipped, their columns are empty: %s", skipped)
    return active


_STANDARD_COLUMN = re.compile(r"\b(" + "|".join(sorted((*ROLES, *DERIVED), key=len, reverse=True)) + r")\b")


def rule_columns(rule: BlockingRule) -> set[str]:
    """Standardised columns a blocking rule reads (named in its parts or its SQL)."""
    text = " ".join(rule) if isinstance(rule, list) else rule
    return set(_STANDARD_COLUMN.findall(text))


def usable_rules(rules: Sequence[BlockingRule], tables: Sequence[pd.DataFrame],
                 purpose: str) -> list[BlockingRule]:
    """The rules whose columns hold values in every table; the others (on roles the
    tables do not map) could only find nothing, and are set aside with a warning."""
    usable = [rule for rule in rules if all(_populated(column, tables) for column in rule_columns(rule))]
    unusable = [rule for rule in rules if rule not in usable]
    if unusable:
        logger.warning("%s set aside, their columns are empty in the table(s): %s", purpose, unusable)
    return usable


def unused_roles(config: ModelConfig, tables: Sequence[pd.DataFrame]) -> list[str]:
    """Roles that hold values but that no comparison and no blocking rule reads: evidence
    the model ignores (a mapped `email` with no email comparison)."""
    read = set().union(*(comparison_columns(spec) for spec in config.comparisons),
                       *(rule_columns(rule) for rule in config.blocking_rules))
    derived_from = {"full_name": {"given_name", "surname"}}
    for column in list(read):
        read |= derived_from.get(column, set())
    return [role for role in ROLES if role not in read and _populated(role, tables)]


def build_settings(config: ModelConfig, tables: Sequence[pd.DataFrame]) -> SettingsCreator:
    return SettingsCreator(
        link_type="dedupe_only" if len(tables) == 1 else "link_only",
        unique_id_column_name=RECORD_ID,
        comparisons=[build_comparison(spec, config.backend) for spec in active_comparisons(config, tables)],
        blocking_rules_to_generate_predictions=[build_rule(rule, config.backend)
                                                for rule in config.blocking_rules],
        max_iterations=config.em_max_iterations,
        retain_intermediate_calculation_columns=True,
    )


def spark_session(master: str, shuffle_partitions: int) -> SparkSession:
    """The process's Spark session (leadscore/spark.py: Splink's similarity functions such as
    jaro_winkler on the classpath, created on first use and shared after: starting one takes
    tens of seconds). Uses the machine's Java (JAVA_HOME or `java` on the PATH)."""
    from leadscore.spark import spark_session as shared_session

    return shared_session(SparkSettings(master=master, shuffle_partitions=shuffle_partitions),
                          app_name="leadscore-identity")


def database_api(backend: BackendConfig) -> DatabaseAPI:
    """A fresh Splink database API for the backend (DuckDB in process, or Spark)."""
    if backend.name == "duckdb":
        return DuckDBAPI()
    from splink.backends.spark import SparkAPI  # pyspark only when Spark is asked for

    session = spark_session(backend.spark_master, backend.spark_shuffle_partitions)
    return SparkAPI(spark_session=session, break_lineage_method=backend.spark_break_lineage,
                    num_partitions_on_repartition=backend.spark_shuffle_partitions)


def _register(tables: Sequence[pd.DataFrame], backend: BackendConfig) -> list[Any]:
    if len(tables) not in (1, 2):
        raise ValueError(f"give one table to deduplicate or two to link, not {len(tables)}")
    api = database_api(backend)
    # 'left' is an SQL keyword: the physical table names must differ from the source names.
    return [api.register(table, dataset_display_name=name, table_name=f"input_{name}")
            for table, name in zip(tables, SOURCES, strict=False)]


def _linker(tables: Sequence[pd.DataFrame], config: ModelConfig) -> Linker:
    frames = _register(tables, config.backend)
    return Linker(frames if len(frames) == 2 else frames[0], build_settings(config, tables),
                  log_level=None)


def _prior(linker: Linker) -> float:
    return linker.misc.save_model_to_json()["probability_two_random_records_match"]


def _em_rules(config: ModelConfig, tables: Sequence[pd.DataFrame]) -> list[BlockingRule]:
    """The configured EM rules that can find pairs, else the first three blocking rules
    that can; none at all is an error that says what to map."""
    rules = (usable_rules(config.training.em_rules, tables, "EM training rules")
             or usable_rules(config.blocking_rules, tables, "blocking rules")[:3])
    if not rules:
        raise ValueError(
            "no blocking rule reads a column the table(s) fill in, so no pair can be compared: "
            f"map the roles the rules use ({sorted(set().union(*map(rule_columns, config.blocking_rules)))})"
            " or add blocking rules on the mapped roles under model.blocking_rules")
    return rules


def fit(tables: Sequence[pd.DataFrame], config: ModelConfig) -> Linker:
    """A trained Splink linker for one table (dedupe) or two (link), standardised by
    `mapping.standardise_table`. The seed makes the u sample, hence the model, repeatable.

    The prior comes from the deterministic rules when they find pairs; when none can
    (their columns are not mapped) or they find none, each EM session derives it from its
    blocked pairs instead (Splink's `populate_probability_two_random_records_match_from_
    trained_values`), starting from Splink's default."""
    training = config.training
    em_rules = _em_rules(config, tables)
    prior_rules = usable_rules(training.prior_rules, tables, "deterministic rules for the prior")
    linker = _linker(tables, config)
    prior_from_em = not prior_rules
    if prior_rules:
        linker.training.estimate_probability_two_random_records_match(
            [build_rule(rule, config.backend) for rule in prior_rules], recall=training.prior_recall)
        if _prior(linker) <= 0:  # unusable: a zero prior forbids every match
            prior_from_em, linker = True, _linker(tables, config)
    if prior_from_em:
        logger.warning("the deterministic rules found no matching pair: the prior is estimated "
                       "from the EM sessions' blocked pairs instead")
    linker.training.estimate_u_using_random_sampling(
        max_pairs=training.u_max_pairs, seed=training.u_seed, num_chunks=training.u_num_chunks,
        min_count_per_level=training.u_min_count_per_level)
    for rule in em_rules:
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(
                build_rule(rule, config.backend),
                estimate_without_term_frequencies=training.em_without_term_frequencies,
                populate_probability_two_random_records_match_from_trained_values=prior_from_em)
        except ValueError as error:
            if "m_probability" not in str(error):
                raise
            raise ValueError(
                f"EM training blocked on {rule} found a comparison level that never occurs between "
                "matching records, so its weight would be minus infinity (Splink: "
                f"{error}). Usually a column that never differs between duplicates in this table "
                "(a gender, a birth place) compared with an `else` level: drop that comparison, or "
                "train on a table where it varies") from error
    return linker


def _orient(pairs: pd.DataFrame) -> pd.DataFrame:
    """Link mode: put the left table's record in id_l whichever way Splink wrote the pair."""
    if "source_dataset_l" not in pairs:
        return pairs
    flip = (pairs["source_dataset_l"] == SOURCES[1]).to_numpy()
    pairs.loc[flip, ["id_l", "id_r"]] = pairs.loc[flip, ["id_r", "id_l"]].to_numpy()
    return pairs


def predict_pairs(linker: Linker, threshold: float | None = None,
                  with_comparisons: bool = False) -> pd.DataFrame:
    """Every pair some blocking rule compares, scored: id_l, id_r, match_weight,
    match_probability, best first; only pairs with match_probability >= threshold if given.
    In link mode id_l is always from the left table and id_r from the right. With
    `with_comparisons`, Splink's per-comparison columns (gamma_*, mw_*) are kept too."""
    scored = linker.inference.predict(threshold_match_probability=threshold, warning_mode="never")
    pairs = scored.as_pandas_dataframe().rename(
        columns={f"{RECORD_ID}_l": "id_l", f"{RECORD_ID}_r": "id_r"})
    pairs = _orient(pairs)
    if not with_comparisons:
        pairs = pairs[PAIR_COLUMNS]
    return pairs.sort_values(["match_weight", "id_l", "id_r"], ascending=[False, True, True],
                             ignore_index=True)


def comparison_weights(linker: Linker, scored: pd.DataFrame) -> pd.DataFrame:
    """The explanation of many scored pairs at once (rows of `predict_pairs(...,
    with_comparisons=True)`): id_l, id_r, comparison, level, match_weight, one row per
    comparison, as `explain_pair` gives for one pair."""
    rows = []
    for name, by_gamma in _level_labels(linker).items():
        weight = scored[f"mw_{name}"] + (scored[f"mw_tf_adj_{name}"] if f"mw_tf_adj_{name}" in scored
                                         else 0.0)
        rows.append(pd.DataFrame({"id_l": scored["id_l"], "id_r": scored["id_r"], "comparison": name,
                                  "level": scored[f"gamma_{name}"].astype(int).map(by_gamma),
                                  "match_weight": weight.astype(float)}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["id_l", "id_r", "comparison", "level", "match_weight"])


def _nodes(pairs: pd.DataFrame, link: bool) -> tuple[pd.Series, pd.Series]:
    """Node keys of both ends: the id itself, or (source, id) in link mode."""
    if not link:
        return pairs["id_l"], pairs["id_r"]
    return (pd.Series([(SOURCES[0], rid) for rid in pairs["id_l"]], index=pairs.index, dtype=object),
            pd.Series([(SOURCES[1], rid) for rid in pairs["id_r"]], index=pairs.index, dtype=object))


def _split_oversized(labels: np.ndarray, edges: pd.DataFrame, config: ClusterConfig, cap: int) -> np.ndarray:
    """Re-cluster components above `cap` (max_cluster_size) with ever stricter edges, saying so:
    a true group larger than the cap (a family, a shared office) is cut too."""
    sizes = np.bincount(labels)
    oversized = sizes[sizes > cap]
    if len(oversized):
        logger.warning("%d group(s) of more than max_cluster_size (%d) records were split with stricter "
                       "thresholds %s (the largest had %d records); if such groups are real in your data, "
                       "raise model.clustering.max_cluster_size", len(oversized), cap,
                       list(config.stricter_thresholds), oversized.max())
    for stricter in config.stricter_thresholds:
        sizes = np.bincount(labels)
        big = sizes[labels] > cap
        if not big.any():
            break
        strong = edges[(edges["probability"] >= stricter) & big[edges["left"].to_numpy()]]
        sub = label_components(strong["left"].to_numpy(), strong["right"].to_numpy(), len(labels))
        labels = np.where(big, sub + labels.max() + 1, labels)
        labels = pd.factorize(labels)[0]
    return labels


def cluster(
    pairs: pd.DataFrame, threshold: float | None = None, ids: Sequence[Any] | None = None,
    config: ClusterConfig | None = None, link: bool = False,
) -> pd.DataFrame:
    """Connected components of the pairs at match_probability >= threshold, as columns
    id, cluster_id (plus `source` first in link mode). Records in `ids` without any
    such pair become singletons; cluster_id is the smallest node key in the cluster."""
    config = config or ClusterConfig()
    threshold = config.threshold if threshold is None else threshold
    kept = pairs[pairs["match_probability"] >= threshold]
    ends = _nodes(kept, link)
    extra = list(ids) if ids is not None else []
    codes, uniques = pd.factorize(pd.concat([*ends, pd.Series(extra, dtype=object)], ignore_index=True))
    n_pairs = len(kept)
    edges = pd.DataFrame({"left": codes[:n_pairs], "right": codes[n_pairs:2 * n_pairs],
                          "probability": kept["match_probability"].to_numpy()})
    labels = label_components(edges["left"].to_numpy(), edges["right"].to_numpy(), len(uniques))
    if config.max_cluster_size is not None:
        labels = _split_oversized(labels, edges, config, config.max_cluster_size)
    return _cluster_frame(pd.Series(uniques, dtype=object), labels, link)


def _cluster_frame(nodes: pd.Series, labels: np.ndarray, link: bool) -> pd.DataFrame:
    frame = pd.DataFrame({"node": nodes, "label": labels})
    frame["cluster_id"] = frame.groupby("label")["node"].transform("min")
    if link:
        frame["source"], frame["id"] = frame["node"].str[0], frame["node"].str[1]
        frame["cluster_id"] = frame["cluster_id"].map(lambda node: f"{node[0]}:{node[1]}")
        return frame[["source", "id", "cluster_id"]].sort_values(["cluster_id", "source", "id"],
                                                                 ignore_index=True)
    frame["id"] = frame["node"]
    return frame[["id", "cluster_id"]].sort_values(["cluster_id", "id"], ignore_index=True)


def _level_labels(linker: Linker) -> dict[str, dict[int, str]]:
    """Comparison -> gamma value -> level label. Splink numbers the null level -1 and the
    other levels from n-1 (first listed) down to 0 (the last, usually 'else')."""
    labels: dict[str, dict[int, str]] = {}
    for comparison in linker.misc.save_model_to_json()["comparisons"]:
        levels = comparison["comparison_levels"]
        non_null = [level for level in levels if not level.get("is_null_level")]
        by_gamma = {len(non_null) - 1 - i: level["label_for_charts"] for i, level in enumerate(non_null)}
        by_gamma[-1] = "null"
        labels[comparison["output_column_name"]] = by_gamma
    return labels


def explain_pair(linker: Linker, record_a: Mapping[str, Any], record_b: Mapping[str, Any]) -> pd.DataFrame:
    """Why the model scores two standardised records as it does: one row per comparison
    with the level reached and its match weight (log2 Bayes factor, term-frequency
    adjustment included), after a `prior` row and before a `total` row. The rows sum
    to the total; match_probability is given on the total row."""
    scored = linker.inference.score_pair(dict(record_a), dict(record_b)).as_pandas_dataframe()
    comparisons = comparison_weights(linker, scored.assign(id_l=0, id_r=1))
    prior = {"comparison": "prior", "level": "", "match_weight": _prior_weight(linker)}
    total = {"comparison": "total", "level": "", "match_weight": scored["match_weight"].iloc[0],
             "match_probability": scored["match_probability"].iloc[0]}
    return pd.concat([pd.DataFrame([prior]), comparisons.drop(columns=["id_l", "id_r"]),
                      pd.DataFrame([total])], ignore_index=True).reindex(
        columns=["comparison", "level", "match_weight", "match_probability"])


def _prior_weight(linker: Linker) -> float:
    prior = _prior(linker)
    return math.log2(prior / (1 - prior))


def resolve(
    tables: Sequence[pd.DataFrame], config: ModelConfig
) -> tuple[pd.DataFrame, pd.DataFrame, Linker | None]:
    """Fit, score and cluster in one call: (pairs at the threshold, clusters, linker).
    An empty table gives empty results and a warning rather than a Splink error."""
    link = len(tables) == 2
    if any(table.empty for table in tables):
        logger.warning("an input table is empty: no pairs to predict")
        columns = ["source", "id", "cluster_id"] if link else ["id", "cluster_id"]
        return pd.DataFrame(columns=PAIR_COLUMNS), pd.DataFrame(columns=columns), None
    linker = fit(tables, config)
    pairs = predict_pairs(linker, config.threshold)
    ids = record_keys(tables)
    return pairs, cluster(pairs, config.clustering.threshold, ids, config.clustering, link), linker


def record_keys(tables: Sequence[pd.DataFrame]) -> list[Any]:
    """Every record's node key, as `cluster` uses them: its id, or (source, id) when linking."""
    if len(tables) == 1:
        return list(tables[0][RECORD_ID])
    return [(source, rid) for table, source in zip(tables, SOURCES, strict=False) for rid in table[RECORD_ID]]
