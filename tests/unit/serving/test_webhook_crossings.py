"""MQL crossings as pure functions: which scores cross, with which key, and the message they send."""

from __future__ import annotations

import json

from leadscore.serving.webhook.crossings import (
    LeadState,
    Scored,
    detect_crossings,
    idempotency_key,
    may_cross,
    mql_payload,
    scored_rows,
)

THRESHOLD = 60.0


def scored(*pairs: tuple[str, float]) -> list[Scored]:
    leads, skipped = scored_rows([{"pid": pid, "score": score} for pid, score in pairs])
    assert skipped == 0
    return leads


def test_rows_without_a_pid_or_a_finite_score_are_skipped() -> None:
    leads, skipped = scored_rows([{"pid": "A", "score": "71"}, {"pid": "", "score": 90},
                                  {"pid": "B", "score": float("inf")}, {"score": 90}])
    assert [(lead.pid, lead.score) for lead in leads] == [("A", 71.0)] and skipped == 3


def test_only_scores_at_or_above_the_threshold_may_cross() -> None:
    assert sorted(may_cross(scored(("A", 60), ("B", 59.9), ("A", 80)), THRESHOLD)) == ["A"]


def test_a_new_lead_above_crosses_once_even_if_seen_twice() -> None:
    states, crossings = detect_crossings(scored(("A", 70), ("A", 75), ("B", 10)), {}, THRESHOLD)
    assert [(c.lead.pid, c.previous, c.number, c.key) for c in crossings] == [
        ("A", None, 1, idempotency_key("A", 1))]
    assert states["A"] == LeadState(75, True, 1, idempotency_key("A", 1))
    assert states["B"] == LeadState(10, False, 0)


def test_a_known_lead_crosses_from_below_but_not_from_above() -> None:
    known = {"A": LeadState(40, False, 0), "B": LeadState(65, True, 1)}
    states, crossings = detect_crossings(scored(("A", 61), ("B", 90)), known, THRESHOLD)
    assert [(c.lead.pid, c.previous) for c in crossings] == [("A", 40)]
    assert states["B"] == LeadState(90, True, 1)  # the stored key stays in the store


def test_crossing_again_is_counted_and_pushed_only_when_asked() -> None:
    known = {"A": LeadState(30, False, 1)}
    states, crossings = detect_crossings(scored(("A", 70)), known, THRESHOLD)
    assert crossings == [] and states["A"] == LeadState(70, True, 2)
    states, crossings = detect_crossings(scored(("A", 70)), known, THRESHOLD, repush_on_recross=True)
    assert [c.key for c in crossings] == [idempotency_key("A", 2)] and states["A"].mql_key == crossings[0].key


def test_the_payload_takes_the_tiers_routing_when_the_row_has_none() -> None:
    [lead] = scored_rows([{"pid": "A", "score": 70, "tier": "high-value", "reasons_up": [None, "why"]}])[0]
    _, [crossing] = detect_crossings([lead], {}, THRESHOLD)
    table = {"high-value": {"action": "route_to_sales", "channel": "crm", "description": "call"}}
    body = json.loads(mql_payload(crossing, THRESHOLD, table, now=0.0))
    assert body["routing"] == table["high-value"] and body["reasons"] == ["why"]
    assert body["idempotency_key"] == idempotency_key("A")
    assert body["crossed_at"] == "1970-01-01T00:00:00+00:00"
