"""POST /ingest's answer: each record's fate in request order, a re-sent one with its person."""

from __future__ import annotations

from datetime import UTC, datetime

from leadscore.live.ingest import Ingested
from leadscore.serving.ingest import describe


def test_a_duplicate_names_the_person_it_was_first_stored_with():
    done = Ingested(source="opportunities", accepted=[{"source_record_id": "O1", "pid": "P1"}],
                    duplicates=["O2", "O3"], quarantined=[{"source_record_id": "O4", "reason": "no contact"}],
                    duplicate_pids={"O2": "P2"})
    answer = describe(done, ["O4", "O2", "O1", "O3"], datetime(2026, 11, 2, tzinfo=UTC))
    assert answer["records"] == [
        {"source_record_id": "O4", "status": "quarantined", "reason": "no contact"},
        {"source_record_id": "O2", "status": "duplicate", "pid": "P2"},
        {"source_record_id": "O1", "status": "accepted", "pid": "P1"},
        {"source_record_id": "O3", "status": "duplicate", "pid": None}]  # stored without a person
    assert (answer["accepted"], answer["duplicates"], answer["quarantined"]) == (1, 2, 1)
