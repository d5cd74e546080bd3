"""`leadscore bench scale` → `engines`: the heavy stages of the current world on each engine,
DuckDB in process and Spark (`engine: spark`, the settings' session: local[2] here), in the
same run: seconds per stage, seconds per million interactions (the unit of the README's
plan past one machine), and whether the outputs are the same rows.

Each engine gets a world of its own under `work` (a copy of the config with `engine` set,
the raw sources linked, its own Feast registry), and runs the stages as the pipeline does:
identity (the middle layer: links and components on the engine), the feature views (from
that engine's middle layer), `feast apply` (apart: the sources differ by engine), and the
training set through Feast's offline store of that engine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pandas as pd
import yaml

from leadscore.config import DATA_DIR_ENV_VAR, SETTINGS_ENV_VAR, Settings, load_settings, load_yaml
from leadscore.duckdb_rows import one_row
from leadscore.features.build import FitRules, build_features, read_manifest
from leadscore.features.catalog import settings_catalog
from leadscore.features.store import open_store
from leadscore.identity.engine import identity_sql
from leadscore.identity.resolve import resolve, rules_from_settings
from leadscore.spark import spark_session
from leadscore.training.train import training_frame

ENGINES = ("duckdb", "spark")
AUDIT_TIME = 'EXCLUDE ("at")'  # the audit's wall-clock time differs by run
FEATURE_OUTPUTS = ["person_fit", "person_interest", "company_profile", "company_engagement",
                   "person_account", "person_tags"]


def parquet_rows(path: Path) -> pd.DataFrame:
    """Every row of a Parquet file or folder of parts (as Feast reads them), in one order."""
    files = f"{path}/*.parquet" if path.is_dir() else str(path)
    return duckdb.execute(f"SELECT * FROM read_parquet('{files}') ORDER BY ALL").df()


def middle_rows(middle_db: Path) -> dict[str, pd.DataFrame]:
    """Every table of a middle layer in one order; the audit without its wall-clock time."""
    with duckdb.connect(str(middle_db), read_only=True) as con:
        tables = [row[0] for row in con.execute("SHOW TABLES").fetchall()]
        return {table: con.execute(f"SELECT * {AUDIT_TIME if table == 'id_audit' else ''} "
                                   f"FROM {table} ORDER BY ALL").df() for table in tables}


def same_frames(left: pd.DataFrame, right: pd.DataFrame) -> bool:
    """The same rows and columns in both, floats equal to 12 digits."""
    try:
        pd.testing.assert_frame_equal(left, right, check_exact=False, rtol=1e-12)
    except AssertionError:
        return False
    return True


def same_middle_layer(left: Path, right: Path) -> bool:
    """The same tables, each with the same rows."""
    one, other = middle_rows(left), middle_rows(right)
    return one.keys() == other.keys() and all(same_frames(one[t], other[t]) for t in one)


def engine_world(settings: Settings, root: Path, engine: str) -> Settings:
    """A world under `root` on `engine`: the config copied, the raw sources linked."""
    shutil.copytree(settings.config_dir, root / "config")
    raw = yaml.safe_load(settings.source_file.read_text())
    raw["engine"] = engine
    raw["paths"] = {"data_dir": str(root / "data"), "mlflow_dir": str(root / "mlflow"),
                    "feature_repo": str(settings.feature_repo), "datasets_dir": str(settings.datasets_dir)}
    (root / "config" / "leadscore.yaml").write_text(yaml.safe_dump(raw))
    (root / "data").mkdir(parents=True)
    (root / "data" / "raw").symlink_to(settings.raw_dir.resolve())
    return load_settings(root / "config" / "leadscore.yaml")


def _timed(stage, *args) -> tuple[float, object]:
    started = time.perf_counter()
    result = stage(*args)
    return time.perf_counter() - started, result


def _identity(world: Settings) -> None:
    resolve(world.raw_dir, world.middle_db, rules_from_settings(world), sql=identity_sql(world))


def _features(world: Settings) -> None:
    config = load_yaml(world.config_file("features.yaml"))
    build_features(world.middle_db, world.feature_data_dir, settings_catalog(world),
                   FitRules(config["decision_maker_levels"], config["employee_bands"]),
                   world.features.step_days, load_yaml(world.config_file("tags.yaml")),
                   duckdb_config=world.duckdb_config,
                   spark=spark_session(world.spark) if world.engine == "spark" else None)


def _feast_apply(world: Settings) -> None:
    """`leadscore features apply` on the world, as a user runs it (its own registry)."""
    env = {key: value for key, value in os.environ.items() if key not in {DATA_DIR_ENV_VAR, SETTINGS_ENV_VAR}}
    cli = str(Path(sys.executable).parent / "leadscore")
    done = subprocess.run([cli, "-c", str(world.source), "features", "apply"], env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"features apply on the {world.engine} world failed:\n{done.stderr[-3000:]}")


def _training_set(world: Settings) -> pd.DataFrame:
    return training_frame(world, open_store(world), read_manifest(world.feature_data_dir))


def run_engine(settings: Settings, root: Path, engine: str) -> tuple[Settings, dict, pd.DataFrame]:
    """The stages on one engine: (its world, seconds per stage, the training set)."""
    world = engine_world(settings, root, engine)
    seconds = {}
    if engine == "spark":
        seconds["session_s"], _ = _timed(spark_session, world.spark)
    seconds["identity_s"], _ = _timed(_identity, world)
    seconds["features_s"], _ = _timed(_features, world)
    seconds["feast_apply_s"], _ = _timed(_feast_apply, world)
    seconds["training_set_s"], frame = _timed(_training_set, world)
    return world, seconds, frame


def _interactions(middle_db: Path) -> int:
    with duckdb.connect(str(middle_db), read_only=True) as con:
        return one_row(con, "SELECT count(*) FROM interaction")[0]


PER_RECORD_STAGES = ("identity_s", "features_s", "training_set_s")  # the others: a fixed cost


def _per_million(seconds: dict, millions: float) -> dict:
    return {**seconds, **{key.removesuffix("_s") + "_s_per_m_interactions": seconds[key] / millions
                          for key in PER_RECORD_STAGES}}


def engines(settings: Settings, work: Path) -> dict:
    """The current world's identity, feature views and training set on DuckDB and on Spark,
    each in a world of its own under `work` (removed after)."""
    if not settings.raw_dir.is_dir():
        raise FileNotFoundError(f"no raw sources at {settings.raw_dir}: run `leadscore synth` first")
    shutil.rmtree(work, ignore_errors=True)
    runs = {engine: run_engine(settings, work / engine, engine) for engine in ENGINES}
    (duck, _, duck_set), (spark, _, spark_set) = runs["duckdb"], runs["spark"]
    equal = {"identity": same_middle_layer(duck.middle_db, spark.middle_db),
             **{name: same_frames(parquet_rows(duck.feature_data_dir / f"{name}.parquet"),
                                  parquet_rows(spark.feature_data_dir / f"{name}.parquet"))
                for name in FEATURE_OUTPUTS},
             "training_set": len(duck_set) > 0 and same_frames(duck_set, spark_set)}
    millions = _interactions(duck.middle_db) / 1e6
    shutil.rmtree(work, ignore_errors=True)
    return {"interactions": round(millions * 1e6), "training_rows": len(duck_set),
            "spark_master": settings.spark.master, "on_spark": ["identity", "features", "training_set"],
            **{engine: _per_million(runs[engine][1], millions) for engine in ENGINES},
            "equal": all(equal.values()), "equal_by_output": equal}
