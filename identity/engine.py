"""Where identity's set-based steps run: DuckDB in process, or Spark (`engine: spark`).

Exact linking, the connected components of people and companies, the stable IDs' matching
and the person and company tables' survivorship are written once, in DuckDB's dialect
(identity/link.py, components.py, stable.py, people.py, companies.py); on Spark the same text
is transpiled by sqlglot (leadscore/spark.py), as the feature views are. A step puts pandas
frames in as tables, materialises queries as tables, and fetches results as frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import duckdb
import pandas as pd
import pyarrow as pa

from leadscore.config import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


class IdentitySql(Protocol):
    """Tables by name on one engine; `$name` parameters in the SQL."""

    def put(self, name: str, frame: pd.DataFrame) -> None: ...

    def create(self, name: str, sql: str, params: dict | None = None) -> None: ...

    def fetch(self, sql: str, params: dict | None = None) -> pd.DataFrame: ...

    def fetch_arrow(self, sql: str) -> pa.Table: ...

    def drop(self, name: str) -> None: ...

    def drop_tables(self) -> None: ...


@dataclass
class DuckDBSql:
    """An in-process DuckDB (in memory unless given a connection)."""

    con: duckdb.DuckDBPyConnection = field(default_factory=duckdb.connect)
    tables: set[str] = field(default_factory=set)  # the ones put or created here

    def put(self, name: str, frame: pd.DataFrame) -> None:
        self.con.register(f"{name}_df", frame)
        self.con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM {name}_df")
        self.con.unregister(f"{name}_df")
        self.tables.add(name)

    def create(self, name: str, sql: str, params: dict | None = None) -> None:
        self.con.execute(f"CREATE OR REPLACE TABLE {name} AS {sql}", params or {})
        self.tables.add(name)

    def drop(self, name: str) -> None:
        """Drop a table put or created here (its memory goes back)."""
        self.con.execute(f"DROP TABLE IF EXISTS {name}")
        self.tables.discard(name)

    def drop_tables(self) -> None:
        """Drop the tables put or created here: their memory goes back before the middle
        layer is written (on the 10x world, up to `duckdb.memory_limit`)."""
        for name in list(self.tables):
            self.drop(name)

    def fetch(self, sql: str, params: dict | None = None) -> pd.DataFrame:
        return self.con.execute(sql, params or {}).df()

    def fetch_arrow(self, sql: str) -> pa.Table:
        """A query's rows as Arrow: text stays in Arrow's buffers, not one Python object per value."""
        return self.con.sql(sql).to_arrow_table()


def spark_type(dtype: object) -> str:
    """Spark's type for a pandas column: integers, floats, booleans and times as such,
    everything else as text (identity's inputs are mostly identifiers)."""
    if pd.api.types.is_bool_dtype(dtype):
        return "BOOLEAN"
    if pd.api.types.is_integer_dtype(dtype):
        return "BIGINT"
    if pd.api.types.is_float_dtype(dtype):
        return "DOUBLE"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "TIMESTAMP"
    return "STRING"


def spark_schema(frame: pd.DataFrame) -> str:
    """A DDL schema for `frame` (`spark_type` per column), so that all-missing columns need
    no inference."""
    return ", ".join(f"`{column}` {spark_type(dtype)}" for column, dtype in frame.dtypes.items())


@dataclass
class SparkSql:
    """A Spark session; each created table is checkpointed, which cuts the lineage that
    iterative steps (label propagation) would otherwise grow without end.

    Each is repartitioned (round robin) before its checkpoint, so that it claims no hash
    partitioning: a checkpoint keeps its plan's claim in the expression ids of the day, and
    where a query reads it twice (label propagation's round joins `component_label` to itself)
    Spark renews one side's ids but not its claim, which then names the other side's column.
    With adaptive execution off, an aggregation believed its input already partitioned by the
    wrong column, skipped its exchange, and gave nodes two labels (tests/integration/
    test_spark_engine.py); adaptive execution happened to plan around it."""

    spark: SparkSession
    tables: set[str] = field(default_factory=set)  # the views put or created here

    def __post_init__(self) -> None:
        # pandas frames cross to the JVM as Arrow batches, not row by row through Python
        self.spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")

    def put(self, name: str, frame: pd.DataFrame) -> None:
        self.spark.createDataFrame(frame, schema=spark_schema(frame)).createOrReplaceTempView(name)
        self.tables.add(name)

    def create(self, name: str, sql: str, params: dict | None = None) -> None:
        from leadscore.spark import spark_sql

        self.spark.sql(spark_sql(sql, params)).repartition(self._partitions()).localCheckpoint() \
            .createOrReplaceTempView(name)
        self.tables.add(name)

    def _partitions(self) -> int:
        return int(self.spark.conf.get("spark.sql.shuffle.partitions") or 1)

    def fetch(self, sql: str, params: dict | None = None) -> pd.DataFrame:
        from leadscore.spark import spark_sql

        return self.spark.sql(spark_sql(sql, params)).toPandas()

    def fetch_arrow(self, sql: str) -> pa.Table:
        from leadscore.spark import spark_sql

        return self.spark.sql(spark_sql(sql)).toArrow()

    def drop(self, name: str) -> None:
        """Drop a view put or created here (its checkpoint goes with it)."""
        self.spark.catalog.dropTempView(name)
        self.tables.discard(name)

    def drop_tables(self) -> None:
        """Drop the views put or created here (their checkpoints go with them)."""
        for name in list(self.tables):
            self.drop(name)


def identity_sql(settings: Settings) -> IdentitySql:
    """The engine of the settings: Spark's session with `engine: spark`, else an in-memory
    DuckDB held to `duckdb.memory_limit` (spilling beyond it, as the feature build does)."""
    if settings.engine == "spark":
        from leadscore.spark import spark_session

        return SparkSql(spark_session(settings.spark))
    # duckdb's stub takes only a dict of its value union (dict is invariant), not our dict[str, str]
    return DuckDBSql(duckdb.connect(config=settings.identity_duckdb_config))  # type: ignore[arg-type]
