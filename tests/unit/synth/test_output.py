"""write_world: one Parquet file per table that reads back identical."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from leadscore.synth import World, write_world


def test_write_world_round_trips_through_parquet(world: World, tmp_path: Path):
    raw, truth, future = (tmp_path / "data" / name for name in ("raw", "truth", "future"))
    write_world(world, raw, truth, future)
    for folder, tables in ((raw, {**world.sources, **world.plans}), (truth, world.truth),
                           (future, world.future)):
        assert sorted(p.name for p in folder.iterdir()) == sorted(f"{n}.parquet" for n in tables)
        for name, frame in tables.items():
            back = pd.read_parquet(folder / f"{name}.parquet")
            pd.testing.assert_frame_equal(back, frame, obj=name)


def test_write_world_replaces_existing_files(world: World, tmp_path: Path):
    raw, truth = tmp_path / "raw", tmp_path / "truth"
    raw.mkdir()
    (raw / "orders.parquet").write_text("stale")
    write_world(world, raw, truth, tmp_path / "future")
    back = pd.read_parquet(raw / "orders.parquet")
    assert len(back) == len(world.sources["orders"])
    assert not list(raw.glob(".*tmp"))
