"""`leadscore bench identity` on FEBRL: the probabilistic matcher against the issue's goals."""

from pathlib import Path

import pytest

from leadscore.benchmarks import identity as benchmark
from leadscore.identity.mapping import load_mapping
from leadscore.identity.probabilistic import load_model_config

PROJECT_ROOT = Path(__file__).resolve().parents[2]
FEBRL_DIR = PROJECT_ROOT.parent / "shared" / "datasets" / "febrl"


@pytest.mark.skipif(not FEBRL_DIR.is_dir(), reason=f"FEBRL data not found at {FEBRL_DIR}")
def test_febrl3_dedupe_reaches_f1_099(settings, std_rules):
    config = settings.config_file("mappings/febrl.yaml")
    figures = benchmark.run_benchmark([FEBRL_DIR / "dataset3.csv"], load_mapping(config),
                                      load_model_config(config), std_rules)
    assert figures["f1"] >= 0.99
    assert figures["cluster_precision"] >= 0.99


@pytest.mark.slow
@pytest.mark.skipif(not FEBRL_DIR.is_dir(), reason=f"FEBRL data not found at {FEBRL_DIR}")
def test_febrl_benchmark_meets_the_issue_goals(settings):
    results = benchmark.febrl_benchmark(FEBRL_DIR, settings.config_file("mappings/febrl.yaml"),
                                        settings.config_file("identity.yaml"))
    assert results["febrl3"]["f1"] >= 0.998
    assert results["febrl4"]["f1"] >= 0.9997
