"""The feature views on Spark (`engine: spark`): the SQL of features/build.py, transpiled
by sqlglot (leadscore/spark.py), writing the same Parquet parts.

The middle layer reaches Spark as Parquet (`middle_to_spark`, the tables and columns the
views read); each view is computed once and cached, since later views read earlier ones.
Spark writes a folder of part files per query; they are moved into the view's staged
folder as `<part>-<n>.parquet` and `asof-<n>.parquet`, beside which Feast reads them alike.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from leadscore.features.build import REQUIRED_COLUMNS, as_of_rows
from leadscore.spark import spark_sql

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def middle_to_spark(con: duckdb.DuckDBPyConnection, spark: SparkSession, folder: Path) -> None:
    """The middle-layer tables the views read, written to `folder` as Parquet (interactions
    without their properties) and registered as Spark views of the same names."""
    folder.mkdir(parents=True, exist_ok=True)
    for table in REQUIRED_COLUMNS:
        columns = ", ".join(REQUIRED_COLUMNS[table]) if table == "interaction" else "*"
        path = folder / f"{table}.parquet"
        con.execute(f"COPY (SELECT {columns} FROM {table}) TO '{path}' (FORMAT parquet)")
        spark.read.parquet(str(path)).createOrReplaceTempView(table)


@dataclass(frozen=True)
class SparkViews:
    """The views as cached Spark temporary views (features/build.py's ViewEngine)."""

    spark: SparkSession
    asof_join: bool = False  # Spark SQL has no ASOF join

    def compute(self, name: str, sql: str, params: dict) -> int:
        frame = self.spark.sql(spark_sql(sql, params)).cache()
        frame.createOrReplaceTempView(name)
        return frame.count()

    def write(self, name: str, folder: Path, part: str, as_of: datetime | None) -> None:
        """View `name` into `folder`, its rows at `as_of` apart (as DuckDBViews writes them)."""
        folder.mkdir(parents=True)
        split = as_of_rows(as_of)
        self._write(f"SELECT * FROM {name} WHERE NOT ({split})", folder, Path(part).stem)
        if as_of:
            self._write(f"SELECT * FROM {name} WHERE {split}", folder, "asof")

    def _write(self, sql: str, folder: Path, stem: str) -> None:
        written = folder / f".{stem}.spark"
        self.spark.sql(spark_sql(sql)).write.parquet(str(written))
        for number, path in enumerate(sorted(written.glob("part-*.parquet"))):
            os.replace(path, folder / f"{stem}-{number:05d}.parquet")
        shutil.rmtree(written)
