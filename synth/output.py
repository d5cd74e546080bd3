"""Writing a world to Parquet: one file per table, each written atomically."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pandas as pd

from .world import World

logger = logging.getLogger(__name__)


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """Write to a temporary file beside `path`, then rename: readers never see half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    frame.to_parquet(tmp, index=False, engine="pyarrow")
    os.replace(tmp, path)


def write_world(world: World, raw_dir: Path, truth_dir: Path, future_dir: Path) -> None:
    """`<name>.parquet` for every source in `raw_dir`, every truth table in `truth_dir` and
    every source's future in `future_dir` (empty tables when the world has no future)."""
    for folder, tables in ((Path(raw_dir), world.sources), (Path(raw_dir), world.plans),
                           (Path(truth_dir), world.truth), (Path(future_dir), world.future)):
        folder.mkdir(parents=True, exist_ok=True)
        for name, frame in tables.items():
            write_table(frame, folder / f"{name}.parquet")
        logger.info("wrote %d tables to %s", len(tables), folder)
