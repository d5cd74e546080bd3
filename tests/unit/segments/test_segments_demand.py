"""UTM demand tags in segments: person attributes a condition names and an export shows."""

from __future__ import annotations

import duckdb
from segments_tiny_world import build as tiny_segment_world

from leadscore.config import Settings
from leadscore.identity.demand import DemandTags, build_demand_tables
from leadscore.segments.engine import SegmentEngine


def test_a_segment_finds_people_by_their_demand(settings: Settings, tmp_path):
    """The demand tags are person attributes of the segment world (a condition, an export column)."""
    data_dir = tiny_segment_world(tmp_path / "data")
    with duckdb.connect(str(data_dir / "middle.duckdb")) as con:
        con.execute("DROP TABLE interaction")
        add_demand(con)
    engine = SegmentEngine(settings.with_data_dir(data_dir))
    segment = {"where": {"kind": "attribute", "field": "person.demand_latest", "op": "=",
                         "value": "e-commerce"}}
    assert engine.count(segment)["count"] == 1
    exported = "".join(engine.export_csv(segment)).splitlines()
    header = exported[0].split(",")
    assert len(exported) == 2 and exported[1].split(",")[header.index("demand_first")] == "data platform"


def add_demand(con: duckdb.DuckDBPyConnection) -> None:
    """Two tagged sessions of P1 (data platform, then e-commerce) in the tiny world's middle layer."""
    con.execute("""CREATE TABLE interaction AS SELECT * FROM (VALUES
        ('L1', 'P1', NULL, 'c1', 'web_visit', TIMESTAMPTZ '2026-10-01', '{"utm_campaign": "dataplat-q4"}'),
        ('L2', 'P1', NULL, 'c1', 'web_visit', TIMESTAMPTZ '2026-10-20', '{"utm_campaign": "ecom-q4"}'),
        ('L3', 'P2', NULL, 'c2', 'email_open', TIMESTAMPTZ '2026-10-20', '{"subject": "hello"}'))
        t(lid, pid, cid, cookie_id, event_type, event_time, properties)""")
    con.execute("CREATE TABLE campaign (campaign_id VARCHAR, utm_campaign VARCHAR)")
    build_demand_tables(con, DemandTags.from_config({
        "tags": ["data platform", "e-commerce"],
        "campaigns": {"dataplat-*": "data platform", "ecom-*": "e-commerce"}}))
