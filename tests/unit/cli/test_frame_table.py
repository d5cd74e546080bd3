"""The CLI's tables: counts as counts and no `nan`, whatever dtype a row mixes."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from rich.console import Console

from leadscore.cli.common import frame_table, table_cell


def test_cells_read_as_a_person_writes_them():
    assert [table_cell(v) for v in (np.int64(6441), 6441.0, 0.125, np.float64(0.5), 2.0004, 1234.5678,
                                    -0.0004, float("nan"), None, pd.NA, True, "email")] == [
        "6,441", "6,441", "0.125", "0.5", "2", "1,234.568", "-0.0004", "-", "-", "-", "True", "email"]


def test_a_row_mixing_counts_and_rates_keeps_its_counts_whole():
    frame = pd.DataFrame({"leads": [6441, 12], "rate": [0.25, np.nan]},
                         index=pd.Index(["web", "mail"], name="channel"))
    out = io.StringIO()
    Console(file=out, width=120).print(frame_table("funnel", frame))
    printed = out.getvalue()
    assert "6,441" in printed and "0.25" in printed and "6441.0" not in printed and "nan" not in printed
