"""`leadscore bench segments` on the tiny world: the figures' shape, and a true 10x world."""

from __future__ import annotations

from leadscore.benchmarks import segments as benchmark
from leadscore.segments.world import load_world


def test_replicate_copies_every_table_under_new_ids(world_settings):
    world = load_world(world_settings)
    before = {t: world.con.execute(f"SELECT count(*), count(DISTINCT pid) FROM {t}").fetchone()
              for t in ("person", "interaction", "person_tag", "latest_score")}
    benchmark.replicate(world, 3)
    for table, (rows, pids) in before.items():
        assert world.con.execute(f"SELECT count(*), count(DISTINCT pid) FROM {table}").fetchone() == (
            3 * rows, 3 * pids), table
    assert world.con.execute("SELECT count(DISTINCT cid) FROM company").fetchone()[0] == 9


def test_run_benchmark_reports_both_segments_at_both_scales(world_settings, monkeypatch):
    monkeypatch.setattr(benchmark, "RUNS", 5)
    figures = benchmark.run_benchmark(world_settings)
    for name in ("seed_example", "ten_conditions"):
        for scale in ("default", "x10"):
            timing = figures[name][scale]
            assert 0 < timing["p50_ms"] <= timing["p95_ms"]
            assert timing["meets_goal"] == (timing["p95_ms"] <= figures["goals"][f"{scale}_p95_ms"])
        assert figures[name]["x10"]["count"] == 10 * figures[name]["default"]["count"]
    assert figures["seed_example"]["default"]["count"] == 5
    assert figures["goals"] == {"default_p95_ms": 200.0, "x10_p95_ms": 1000.0}
    assert figures["worlds"]["x10"]["persons"] == 10 * figures["worlds"]["default"]["persons"]
    assert figures["scores"] == "latest scoring"
