"""`leadscore bench identity`: the child processes of the speed figures, and the probabilistic
matcher on FEBRL against the issue's goals."""

import os
from pathlib import Path

import pytest

from leadscore.benchmarks import identity as benchmark
from leadscore.identity.mapping import load_mapping
from leadscore.identity.probabilistic import load_model_config

PROJECT_ROOT = Path(__file__).resolve().parents[2]
FEBRL_DIR = PROJECT_ROOT.parent / "shared" / "datasets" / "febrl"


def noisy_double(value: int) -> dict:
    os.write(1, b"noise on stdout\n")
    return {"double": 2 * value, "pid": os.getpid()}


def test_a_child_returns_its_result_writes_to_its_log_and_raises_here(tmp_path, capfd):
    log = tmp_path / "world" / "bench.log"
    result = benchmark.in_child(noisy_double, 21, log=log)
    assert result["double"] == 42 and result["pid"] != os.getpid()
    assert "noise on stdout" in log.read_text()
    assert capfd.readouterr().out == ""
    with pytest.raises(FileNotFoundError):
        benchmark.in_child(benchmark.generate, tmp_path / "missing.yaml", tmp_path, 0.01, log=log)


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
