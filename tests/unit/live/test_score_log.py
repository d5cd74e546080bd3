"""The score log: appends are whole or nothing, reads filter by person, time and shadow."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from leadscore.live.score_log import SHADOW, ScoreLog


def _score(pid: str, probability: float | None = 0.25) -> dict:
    return {"pid": pid, "model_version": "3", "probability": probability, "score": 25.0,
            "tier": "nurture", "reasons_up": ["visited the pricing page"], "reasons_down": [],
            "feature_timestamp": None}


def test_a_batch_is_logged_whole_or_not_at_all(tmp_path):
    log = ScoreLog(tmp_path)
    at = datetime(2026, 12, 1, 9, tzinfo=UTC)
    with pytest.raises(sqlite3.IntegrityError):
        log.append([_score("P1"), _score("P2", probability=None)], at, "score_batch")
    assert log.read().empty
    assert log.append([_score("P1"), _score("P2"), {"pid": None}], at, "score_batch") == 2
    assert log.read()["pid"].tolist() == ["P1", "P2"]


def test_reads_filter_by_person_instant_and_shadow(tmp_path):
    log = ScoreLog(tmp_path)
    day = datetime(2026, 12, 1, 9, tzinfo=UTC)
    log.append([_score("P1")], day, "score")
    log.append([_score("P1"), _score("P2")], day + timedelta(days=1), "ingest")
    log.append([_score("P1")], day + timedelta(days=1), SHADOW)
    assert log.days() == ["2026-12-01", "2026-12-02"]
    since = log.read(pids=["P1"], since=day + timedelta(hours=1))
    assert since["trigger"].tolist() == ["ingest", SHADOW]
    served = log.read(pids=["P1"], shadow=False)
    assert served["trigger"].tolist() == ["score", "ingest"]
    reasons = json.loads(served.iloc[0]["reasons"])
    assert (reasons["up"], reasons["down"]) == (["visited the pricing page"], [])


def test_scores_served_at_their_own_instants_go_to_their_days_files(tmp_path):
    """What several /score calls served, and the challenger's shadow scores, are logged in
    batches (serving/shadow.py), each at the instant it was served, and a batch can straddle
    midnight."""
    log = ScoreLog(tmp_path)
    late, early = datetime(2026, 12, 1, 23, 59, 59, tzinfo=UTC), datetime(2026, 12, 2, 0, 0, 1, tzinfo=UTC)
    triggers = ["score", SHADOW]
    with pytest.raises(sqlite3.IntegrityError):
        log.append_each([_score("P1"), _score("P2", probability=None)], [early, early], triggers)
    assert log.read().empty
    assert log.append_each([_score("P1"), _score("P2", probability=0.5)], [late, early], triggers) == 2
    assert log.days() == ["2026-12-01", "2026-12-02"]
    logged = log.read()
    assert logged["pid"].tolist() == ["P1", "P2"] and logged["at"].tolist() == [late, early]
    assert logged["probability"].tolist() == [0.25, 0.5] and logged["trigger"].tolist() == ["score", SHADOW]
