"""write_world: one Parquet file per table that reads back identical."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from leadscore.synth import World, write_world


def test_write_world_round_trips_through_parquet(world: World, tmp_path: Path):
    raw, truth = tmp_path / "data" / "raw", tmp_path / "data" / "truth"
    write_world(world, raw, truth)
    for folder, tables in ((raw, world.sources), (truth, world.truth)):
        assert sorted(p.name for p in folder.iterdir()) == sorted(f"{n}.parquet" for n in tables)
        for name, frame in tables.items():
            back = pd.read_parquet(folder / f"{name}.parquet")
            pd.testing.assert_frame_equal(back, frame, obj=name)


def test_write_world_replaces_existing_files(world: World, tmp_path: Path):
    raw, truth = tmp_path / "raw", tmp_path / "truth"
    raw.mkdir()
    (raw / "orders.parquet").write_text("stale")
    write_world(world, raw, truth)
    back = pd.read_parquet(raw / "orders.parquet")
    assert len(back) == len(world.sources["orders"])
    assert not list(raw.glob(".*tmp"))
