"""The Spark session of the heavy stages (`engine: spark`), and how their SQL reaches it.

A stage writes its SQL once, in DuckDB's dialect, with `$name` parameters; on Spark the
same text is transpiled by sqlglot (`spark_sql`), the parameters bound as literals. One
session serves the whole process: a JVM takes seconds to start, and Splink's matcher
shares it (its similarity functions are on the classpath from the start), as does Feast's
Spark offline store (given `session_conf`, it starts the session itself when none runs).
Nothing is downloaded: the jar ships with Splink, the JVM is the machine's (`java`).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlglot
from sqlglot import exp

from leadscore.config import SparkSettings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def session_conf(spark: SparkSettings, app_name: str = "leadscore") -> dict[str, str]:
    """The session's settings: the configured ones over the ones every stage relies on
    (UTC, Parquet timestamps that DuckDB and Feast read as instants, no UI)."""
    from splink.backends.spark import similarity_jar_location

    return {"spark.master": spark.master, "spark.app.name": app_name,
            "spark.jars": similarity_jar_location(), "spark.driver.memory": spark.driver_memory,
            "spark.sql.shuffle.partitions": str(spark.shuffle_partitions),
            "spark.sql.session.timeZone": "UTC",
            "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
            "spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false",
            **{key: str(value) for key, value in spark.options.items()}}


def spark_session(spark: SparkSettings, app_name: str = "leadscore") -> SparkSession:
    """The process's Spark session, started on first use with `spark`'s settings."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    builder = SparkSession.builder
    for key, value in session_conf(spark, app_name).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def _literal(value: object) -> exp.Expression:
    if value is None:
        return exp.Null()
    if isinstance(value, datetime):
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), exp.DataType.Type.TIMESTAMPTZ)
    if isinstance(value, (int, float)):
        return exp.Literal.number(value)
    return exp.Literal.string(str(value))


def spark_sql(duckdb_sql: str, params: dict[str, object] | None = None) -> str:
    """DuckDB SQL as Spark SQL, each `$name` replaced by `params[name]` as a literal."""
    params = params or {}

    def bind(node: exp.Expression) -> exp.Expression:
        if isinstance(node, (exp.Placeholder, exp.Parameter)):
            name = node.name
            if name not in params:
                raise KeyError(f"SQL parameter ${name} has no value")
            return _literal(params[name])
        return node

    tree = sqlglot.parse_one(duckdb_sql, read="duckdb").transform(bind)
    return tree.sql(dialect="spark")
