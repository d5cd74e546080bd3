"""`leadscore identity match` on real third-party data (FEBRL4, first rows of each file)."""

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from leadscore.cli import app

FEBRL_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "datasets" / "febrl"


@pytest.mark.skipif(not FEBRL_DIR.is_dir(), reason=f"FEBRL data not found at {FEBRL_DIR}")
def test_match_links_two_tables_into_clusters(tmp_path, settings):
    paths = []
    for name in ("dataset4a.csv", "dataset4b.csv"):
        frame = pd.read_csv(FEBRL_DIR / name, skipinitialspace=True, dtype=str)
        frame = frame[frame["rec_id"].str.extract(r"rec-(\d+)-", expand=False).astype(int) < 1500]
        paths.append(tmp_path / name)
        frame.drop(columns="rec_id").to_csv(paths[-1], index=False)
    out = tmp_path / "clusters.csv"
    result = CliRunner().invoke(app, ["identity", "match",
                                      str(settings.config_file("mappings/febrl.yaml")),
                                      *map(str, paths), "--out", str(out)])
    assert result.exit_code == 0, result.output
    clusters = pd.read_csv(out)
    assert set(clusters["source"]) == {"left", "right"}
    sizes = clusters.groupby("cluster_id").size()
    assert (sizes == 2).mean() > 0.95  # nearly every record found its one counterpart


def test_match_names_a_missing_mapping():
    result = CliRunner().invoke(app, ["identity", "match", "no-such.yaml", "t.csv"])
    assert result.exit_code != 0
    assert "no-such.yaml" in result.output
