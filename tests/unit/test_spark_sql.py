"""DuckDB SQL for Spark (leadscore/spark.py): parameters bound as literals, DuckDB's
constructs in Spark's words; no JVM needed."""

from datetime import datetime, timezone

import pytest

from leadscore.spark import spark_sql


def test_parameters_become_timestamp_literals():
    sql = spark_sql("SELECT * FROM t WHERE event_time < $as_of AND n > $n",
                    {"as_of": datetime(2026, 11, 1, tzinfo=timezone.utc), "n": 3})
    assert "CAST('2026-11-01 00:00:00+00:00' AS TIMESTAMP)" in sql
    assert "n > 3" in sql
    assert "$" not in sql


def test_a_parameter_without_a_value_is_named():
    with pytest.raises(KeyError, match=r"\$since"):
        spark_sql("SELECT * FROM t WHERE t > $since", {})


def test_duckdb_casts_and_series_read_as_spark():
    sql = spark_sql("SELECT unnest(generate_series($a, $b, INTERVAL 7 DAY)) AS t, x::BIGINT FROM y",
                    {"a": datetime(2026, 1, 5), "b": datetime(2026, 2, 2)})
    assert "EXPLODE(SEQUENCE(" in sql and "CAST(x AS BIGINT)" in sql
