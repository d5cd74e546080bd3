"""Outcomes the CRM posts reach training's labels: an opportunity sent through the live path
(validated, stored in the event log, folded by live/labels.py) labels that person's snapshot,
and where the batch holds the same opportunity the CRM's latest word wins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import pandas as pd
import pytest
from pydantic import TypeAdapter

from leadscore.live.labels import opportunity_labels
from leadscore.live.log import EventLog
from leadscore.live.outcomes import Outcome, append_outcomes
from leadscore.training.dataset import labelled_entities

T = datetime(2026, 6, 1, tzinfo=UTC)
HORIZON = 90
NEVER = pd.Series([pd.NaT], dtype="datetime64[us, UTC]")
parse = TypeAdapter(list[Outcome]).validate_python


@pytest.fixture
def middle_db(tmp_path):
    """Three people identified before T; the batch knows one opportunity, P2's, 5 days after T."""
    path = tmp_path / "middle.duckdb"
    people = pd.DataFrame({"pid": ["P1", "P2", "P3"], "cid": ["C1", "C2", "C3"],
                           "identified_at": [T - timedelta(days=30)] * 3})
    outcome = pd.DataFrame({"opportunity_id": ["OPP-B"], "pid": ["P2"], "cid": ["C2"],
                            "opportunity_created_at": [T + timedelta(days=5)], "stage": ["open"],
                            "won_at": NEVER, "closed_at": NEVER, "amount_usd": [1000.0]})
    with duckdb.connect(str(path)) as con:
        con.execute("SET TimeZone = 'UTC'")
        for name, frame in {"person": people, "outcome": outcome}.items():
            con.register("frame", frame)
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM frame")
            con.unregister("frame")
    return path


@pytest.fixture
def log(tmp_path):
    log = EventLog(tmp_path / "events.db")
    yield log
    log.close()


def _labels(middle_db, live: pd.DataFrame | None = None) -> dict[str, int]:
    frame = labelled_entities(middle_db, [T], HORIZON, live_outcomes=live)
    return dict(zip(frame["pid"], frame["label"], strict=True))


def _post(log: EventLog, *outcomes: dict) -> pd.DataFrame:
    received = T + timedelta(days=200)
    append_outcomes(log, parse(list(outcomes)), received)
    return opportunity_labels(log, until=received)


def test_an_opportunity_posted_live_labels_the_persons_snapshot(middle_db, log):
    assert _labels(middle_db) == {"P1": 0, "P2": 1, "P3": 0}
    live = _post(log, {"kind": "opportunity_created", "crm_id": "OPP-L", "pid": "P1",
                       "at": (T + timedelta(days=10)).isoformat()})
    assert _labels(middle_db, live) == {"P1": 1, "P2": 1, "P3": 0}


def test_the_live_word_on_an_opportunity_the_batch_also_holds_wins(middle_db, log):
    # the CRM says OPP-B was opened long after the horizon: no longer P2's positive
    live = _post(log, {"kind": "opportunity_created", "crm_id": "OPP-B", "pid": "P2",
                       "at": (T + timedelta(days=HORIZON + 30)).isoformat()})
    assert _labels(middle_db, live) == {"P1": 0, "P2": 0, "P3": 0}


def test_a_live_opportunity_open_at_the_snapshot_takes_the_person_out_of_it(middle_db, log):
    live = _post(log, {"kind": "opportunity_created", "crm_id": "OPP-O", "pid": "P3",
                       "at": (T - timedelta(days=3)).isoformat()})
    assert set(_labels(middle_db, live)) == {"P1", "P2"}


def test_a_live_won_deal_makes_the_company_a_customer(middle_db, log):
    live = _post(log, {"kind": "opportunity_created", "crm_id": "OPP-W", "pid": "P3",
                       "at": (T - timedelta(days=20)).isoformat()},
                 {"kind": "won", "crm_id": "OPP-W", "pid": "P3", "at": (T - timedelta(days=10)).isoformat()})
    frame = labelled_entities(middle_db, [T], HORIZON, exclude_customers=True, live_outcomes=live)
    assert set(frame["pid"]) == {"P1", "P2"}
    assert "P3" in set(labelled_entities(middle_db, [T], HORIZON, live_outcomes=live)["pid"])


def test_labels_known_at_a_moment_count_only_the_outcomes_up_to_it(middle_db):
    # P2's opportunity comes 5 days after T: unknown 3 days after T, known 6 days after
    def known(days: int) -> dict[str, int]:
        frame = labelled_entities(middle_db, [T], HORIZON, known_at=T + timedelta(days=days))
        return dict(zip(frame["pid"], frame["label"], strict=True))

    assert known(3) == {"P1": 0, "P2": 0, "P3": 0}
    assert known(6) == {"P1": 0, "P2": 1, "P3": 0}
