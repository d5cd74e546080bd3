"""`leadscore bench scale` → `engines`: the heavy stages of the current world on each engine,
DuckDB in process and Spark (`engine: spark`, the settings' session: local[2] here), in the
same run: seconds per stage, seconds per million interactions (the unit of the README's
plan past one machine), and whether the outputs are the same rows.

Only the feature views run on Spark so far (README, "Spark"); identity and the training set
run on DuckDB whatever the engine, so they are not measured twice: `on_spark` says which
stages were.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import duckdb
import pandas as pd

from leadscore.config import Settings, load_yaml
from leadscore.features.build import FitRules, build_features
from leadscore.features.catalog import settings_catalog
from leadscore.spark import spark_session

FEATURE_OUTPUTS = ["person_fit", "person_interest", "company_profile", "company_engagement",
                   "person_account", "person_tags"]


def parquet_rows(path: Path) -> pd.DataFrame:
    """Every row of a Parquet file or folder of parts (as Feast reads them), in one order."""
    files = f"{path}/*.parquet" if path.is_dir() else str(path)
    return duckdb.sql(f"SELECT * FROM read_parquet('{files}') ORDER BY ALL").df()


def same_rows(left: Path, right: Path) -> bool:
    """The same rows and columns in both, floats equal to 12 digits."""
    try:
        pd.testing.assert_frame_equal(parquet_rows(left), parquet_rows(right), check_exact=False, rtol=1e-12)
    except AssertionError:
        return False
    return True


def _feature_build(settings: Settings, out_dir: Path, spark=None) -> float:
    config = load_yaml(settings.config_file("features.yaml"))
    started = time.perf_counter()
    build_features(settings.middle_db, out_dir, settings_catalog(settings),
                   FitRules(config["decision_maker_levels"], config["employee_bands"]),
                   settings.features.step_days, load_yaml(settings.config_file("tags.yaml")),
                   duckdb_config=settings.duckdb_config, spark=spark)
    return time.perf_counter() - started


def _interactions(settings: Settings) -> int:
    with duckdb.connect(str(settings.middle_db), read_only=True) as con:
        return con.execute("SELECT count(*) FROM interaction").fetchone()[0]


def engines(settings: Settings, work: Path) -> dict:
    """The current world's feature build on DuckDB and on Spark, into `work` (removed after)."""
    if not settings.middle_db.is_file():
        raise FileNotFoundError(f"no middle layer at {settings.middle_db}: run `leadscore pipeline` first")
    shutil.rmtree(work, ignore_errors=True)
    duckdb_s = _feature_build(settings, work / "duckdb")
    started = time.perf_counter()
    spark = spark_session(settings.spark)
    session_s = time.perf_counter() - started
    spark_s = _feature_build(settings, work / "spark", spark)
    equal = {name: same_rows(work / "duckdb" / f"{name}.parquet", work / "spark" / f"{name}.parquet")
             for name in FEATURE_OUTPUTS}
    millions = _interactions(settings) / 1e6
    shutil.rmtree(work, ignore_errors=True)
    return {"interactions": round(millions * 1e6), "spark_master": settings.spark.master,
            "on_spark": ["features"],
            "duckdb": {"features_s": duckdb_s, "features_s_per_m_interactions": duckdb_s / millions},
            "spark": {"session_s": session_s, "features_s": spark_s,
                      "features_s_per_m_interactions": spark_s / millions},
            "equal": all(equal.values()), "equal_by_output": equal}
