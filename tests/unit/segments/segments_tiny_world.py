"""A hand-made world of seven people for the segment tests (unit and page).

The seed example's members, checked by hand against EVENTS (as of 2026-10-31 12:00 UTC):

- P1 opened "Product A: what's new in 3.9" 3 days ago (email, 7 days)          -> member
- P2 opened a Product A email 10 days ago (too old), visited /pricing 20 days ago -> member
- P3 visited /careers (not one of the 3 pages), bought Product B                  -> not
- P4 bought Product A 6 days ago                                                  -> member
- P5 bought Product A 8 days ago (too old), opened a newsletter, visited
  /product-a 31 days ago (too old)                                                 -> not
- P6 (no company) visited /contact-sales 29 days ago                              -> member
- P7 opened "PRODUCT A deep dive" yesterday (contains ignores case)               -> member

An anonymous visitor (pid NULL) visited /pricing yesterday and belongs to no segment.
"""

from __future__ import annotations

import importlib.util
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd

from leadscore.clock import CLOCK_FILE, WorldClock

AS_OF = datetime(2026, 10, 31, 12, 0, tzinfo=UTC)
SEED_MEMBERS = {"P1", "P2", "P4", "P6", "P7"}
EVERYONE = {"P1", "P2", "P3", "P4", "P5", "P6", "P7"}
SITE = "https://www.ourproduct.com"
HISTORY_FILE = Path(__file__).resolve().parents[1] / "marketing" / "frequency_history.py"

PERSONS = pd.DataFrame({
    "pid": ["P1", "P2", "P3", "P4", "P5", "P6", "P7"],
    "first_name": ["Alice", "Bob", "Carol", "Dan", "Eve", "Frank", "Grace"],
    "last_name": ["Archer", "Baker", "Chen", "Diaz", "Evans", "Fox", "Green"],
    "name": ["Alice Archer", "Bob Baker", "Carol Chen", "Dan Diaz", "Eve Evans", "Frank Fox", "Grace Green"],
    "email": ["alice@acme.com", "bob@bolt.io", "carol@acme.com", "dan@nowhere.org", "eve@bolt.io",
              "frank@gmail.com", "grace@cubic.net"],
    "phone": ["+8613812345678", "+4915112345678", None, None, "13912345678", None, "+12025550143"],
    "owner_rep_id": ["R001", "R002", "R001", "R003", "R002", None, "R003"],
    "title": ["IT Director", "Plant Manager", "VP Engineering", None, "Analyst", "Consultant", "Engineer"],
    "cid": ["C1", "C2", "C1", "C3", "C2", None, "C3"],
    "uid": [None] * 7,
    "seniority": ["director", "manager", "vp", None, "individual", None, "individual"],
    "department": ["it", "operations", "engineering", None, "finance", None, "engineering"],
    "first_seen": pd.to_datetime(["2025-01-10", "2026-06-01", "2024-03-01", "2026-10-01", "2025-07-07",
                                  "2026-02-02", "2026-09-09"], utc=True),
})
COMPANIES = pd.DataFrame({
    "cid": ["C1", "C2", "C3"],
    "name": ["Acme Software", "Bolt Manufacturing", "Cubic"],
    "domain": ["acme.com", "bolt.io", "cubic.net"],
    "industry": ["software", "manufacturing", None],
    "employees": [5000, 200, None],
    "funding_stage": ["series_d", "series_a", None],
    "annual_revenue_usd": [9.0e8, 3.0e7, None],
    "owner_rep_id": ["R001", "R002", "R003"],
    "eid": ["E1", "E2", "E3"],
    "group_name": ["Acme Group", "Bolt", "Cubic"],
})


def _visit(url: str, pageviews: int = 1) -> dict:
    return {"url": f"{SITE}{url}", "utm_source": None, "pageviews": pageviews, "duration_s": 30 * pageviews}


def _days_ago(days: float) -> datetime:
    return AS_OF - timedelta(days=days)


EVENTS = [  # pid, event_type, event_time, properties
    ("P1", "email_open", _days_ago(3), {"campaign_id": "CMP1", "subject": "Product A: what's new in 3.9",
                                        "url": None}),
    ("P2", "email_open", _days_ago(10), {"campaign_id": "CMP2", "subject": "Product A: what's new in 3.8",
                                         "url": None}),
    ("P2", "web_visit", _days_ago(20), _visit("/pricing", 3)),
    ("P3", "web_visit", AS_OF, _visit("/careers")),
    ("P3", "purchase", _days_ago(2), {"product": "Product B", "amount_usd": 35000.0}),
    ("P4", "purchase", _days_ago(6), {"product": "Product A", "amount_usd": 20000.0}),
    ("P5", "purchase", _days_ago(8), {"product": "Product A", "amount_usd": 12000.0}),
    ("P5", "email_open", _days_ago(1), {"campaign_id": "CMP3", "subject": "Monthly newsletter: October 2026",
                                        "url": None}),
    ("P5", "web_visit", _days_ago(31), _visit("/product-a", 2)),
    ("P6", "web_visit", _days_ago(29), _visit("/contact-sales")),
    ("P7", "email_open", _days_ago(1), {"campaign_id": "CMP4", "subject": "PRODUCT A deep dive",
                                        "url": None}),
    (None, "web_visit", _days_ago(1), _visit("/pricing", 9)),
    ("P1", "web_visit", _days_ago(40), _visit("/pricing")),
    ("P1", "web_visit", _days_ago(35), _visit("/pricing")),
    ("P3", "whitepaper_download", datetime(2026, 9, 15, 10, 0, tzinfo=UTC),
     {"form_type": "whitepaper_download", "asset": "ROI calculator for Product A"}),
    ("P7", "event_attend", _days_ago(100), {"event_id": "EV0017", "event_name": "Product A World Tour"}),
    ("P2", "email_send", _days_ago(1), {"campaign_id": "CMP5", "subject": "Product A: last call",
                                        "url": None}),
]
TAGS = [  # pid, tag, kind, label
    ("P1", "industry:software", "attribute", "industry: software"),
    ("P1", "decision_maker", "attribute", "decision maker"),
    ("P3", "decision_maker", "attribute", "decision maker"),
    ("P3", "dormant", "statistical", "dormant"),
    ("P5", "dormant", "statistical", "dormant"),
]
SCORES = [  # pid, scored_at, probability, score, tier
    ("P1", datetime(2026, 10, 1, tzinfo=UTC), 0.01, 20.0, "low-conversion"),
    ("P1", datetime(2026, 10, 31, tzinfo=UTC), 0.60, 90.0, "high-value"),
    ("P2", datetime(2026, 10, 31, tzinfo=UTC), 0.05, 40.0, "to-nurture"),
    ("P3", datetime(2026, 10, 31, tzinfo=UTC), 0.30, 75.0, "high-potential"),
    ("P4", datetime(2026, 10, 31, tzinfo=UTC), 0.01, 10.0, "low-conversion"),
    ("P6", datetime(2026, 10, 31, tzinfo=UTC), 0.04, 30.0, "to-verify"),
]


def _interactions() -> pd.DataFrame:
    rows = [{"lid": f"L{i}", "pid": pid, "cid": None, "event_type": event_type, "event_time": when,
             "channel": "web", "source": "test", "cookie_id": None, "properties": json.dumps(props)}
            for i, (pid, event_type, when, props) in enumerate(EVENTS)]
    frame = pd.DataFrame(rows)
    frame["event_time"] = pd.to_datetime(frame["event_time"], utc=True)
    return frame


def write_middle(path: Path) -> None:
    with duckdb.connect(str(path)) as con:
        for table, frame in (("person", PERSONS), ("company", COMPANIES), ("interaction", _interactions()),
                             ("entity", pd.DataFrame({"eid": ["E1"], "name": ["Acme Group"]}))):
            con.register("frame", frame)
            con.execute(f"CREATE TABLE {table} AS SELECT * FROM frame")
            con.unregister("frame")


def write_tags(path: Path) -> None:
    frame = pd.DataFrame(TAGS, columns=["pid", "tag", "kind", "label"])
    frame["evidence"], frame["as_of"] = "by hand", AS_OF
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path)


def write_scores(path: Path, rows: list[tuple] = SCORES, axes: bool = True) -> None:
    """The score history; with `axes`, fit = 30 + score / 2 and interest the rest (without: a
    file written before the score's two axes)."""
    frame = pd.DataFrame(rows, columns=["pid", "scored_at", "probability", "score", "tier"])
    frame["fit_score"], frame["interest_score"], frame["model_version"] = 50.0, 50.0, "1"
    if axes:
        frame["fit"] = 30 + frame["score"] / 2
        frame["interest"] = frame["score"] + 40 - frame["fit"]  # the average lead's score: 40
    frame["scored_at"] = pd.to_datetime(frame["scored_at"], utc=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path)


def build(data_dir: Path, tags: bool = True, scores: bool = True) -> Path:
    """The tiny world under `data_dir` (middle layer; tags and scores unless told not to), its
    clock paused at AS_OF."""
    data_dir.mkdir(parents=True, exist_ok=True)
    write_middle(data_dir / "middle.duckdb")
    WorldClock(data_dir / "live" / CLOCK_FILE, AS_OF).place(AS_OF, speed=0)
    if tags:
        write_tags(data_dir / "features" / "person_tags.parquet")
    if scores:
        write_scores(data_dir / "scores" / "score_history.parquet")
    return data_dir


def frequency_history():
    """tests/unit/marketing/frequency_history.py, loaded by path (test folders are not packages)."""
    spec = importlib.util.spec_from_file_location("frequency_history", HISTORY_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def add_frequency_history(middle_db: Path) -> None:
    """Add frequency_history.py's emails up to AS_OF, its recent people as P1 (over the cap),
    P4 (under it) and P6 (interested): with `marketing.frequency.min_sends` 20, P1 is the one
    member of a segment an export within the frequency cap leaves out."""
    hist = frequency_history()
    as_people = {hist.OVER: "P1", hist.UNDER: "P4", hist.KEEN: "P6"}
    frame = hist.history(AS_OF).replace({"pid": as_people})
    with duckdb.connect(str(middle_db)) as con:
        con.register("frame", frame)
        con.execute("INSERT INTO interaction (lid, pid, event_type, event_time, channel, source, properties) "
                    "SELECT 'H' || row_number() OVER (), pid, event_type, event_time, 'email', 'test', "
                    "properties FROM frame")
