"""`leadscore serve`'s banner: requests worth trying on the world being served, a portrait with
the key of its rep, and an account page and an account score with a CID of the world."""

from __future__ import annotations

import io
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from rich.console import Console

from leadscore.cli import serve


def _world(data_dir: Path) -> None:
    """P1 (most engaged) has no company; P2 works at C1 (rep R7); P3 at C2, which no rep owns;
    P4 and P5 (more engaged still) are in an open opportunity, P4's own and one of P5's company C3."""
    interest = data_dir / "features" / "person_interest.parquet"
    interest.mkdir(parents=True)
    at = pd.Timestamp("2026-11-30", tz="UTC")
    rows = pd.DataFrame({"pid": ["P1", "P2", "P3", "P1", "P4", "P5"], "events_30d": [40, 30, 20, 99, 80, 70],
                         "event_timestamp": [at, at, at, at - pd.Timedelta(days=1), at, at]})
    rows.to_parquet(interest / "0.parquet")
    with duckdb.connect(str(data_dir / "middle.duckdb")) as con:
        con.execute("CREATE TABLE person AS SELECT * FROM (VALUES ('P1', NULL, 'R1'), ('P2', 'C1', NULL), "
                    "('P3', 'C2', 'R3'), ('P4', NULL, 'R4'), ('P5', 'C3', 'R5'), ('P6', 'C3', 'R5')) "
                    "t(pid, cid, owner_rep_id)")
        con.execute("CREATE TABLE company AS SELECT * FROM (VALUES ('C1', 'R7'), ('C2', NULL), ('C3', 'R5')) "
                    "t(cid, owner_rep_id)")
        con.execute("CREATE TABLE outcome AS SELECT * FROM (VALUES "
                    "('O1', 'P4', NULL, 'open', NULL), ('O2', 'P6', 'C3', 'open', NULL), "
                    "('O3', 'P2', 'C1', 'lost', TIMESTAMP '2026-10-01'), ('O4', 'P3', 'C2', 'won', NULL)) "
                    "t(opportunity_id, pid, cid, stage, closed_at)")


@pytest.fixture
def printed(tmp_path, settings, monkeypatch) -> str:
    _world(tmp_path)
    out = io.StringIO()
    monkeypatch.setattr(serve, "console", Console(file=out, width=400))
    serve._print_banner(settings.with_data_dir(tmp_path), "http://127.0.0.1:3000")
    return out.getvalue()


def test_the_banner_names_an_account_page_and_an_account_score_by_cid(printed):
    assert "/login?next=/portrait/P1 with the key demo-sales-R1" in printed
    assert "/login?next=/account/C1 with the key demo-sales-R7" in printed  # C2 has no rep to open it
    assert """-d '{"cid": "C1"}'""" in printed and "/account/C2" not in printed
    scored = [line.split('"pid": "')[1][:2] for line in printed.splitlines() if '"pid"' in line]
    assert scored == ["P1", "P2", "P3"]  # the most engaged at the latest feature time first


def test_the_replay_it_suggests_goes_to_the_port_served(tmp_path, settings, monkeypatch):
    _world(tmp_path)
    (tmp_path / "future").mkdir()  # the world has a future to replay
    out = io.StringIO()
    monkeypatch.setattr(serve, "console", Console(file=out, width=400))
    serve._print_banner(settings.with_data_dir(tmp_path), "http://127.0.0.1:3101")
    assert "leadscore replay --days 1 --speed 3600 --url http://127.0.0.1:3101`" in out.getvalue()
