"""Which observed scores cross the MQL threshold, and the message each crossing sends.

A lead *crosses* the MQL threshold (``settings.serving.webhook.mql_threshold``, default 60) when
its new score is at or above the threshold and its previous known score was below it, or it was
never seen before. The first crossing of a pid gets a message; later crossings (a lead that fell
below and came back) are counted in ``lead_state.crossings`` but not pushed again, as the design
says an MQL is pushed to the CRM *once* (``repush_on_recross=True`` changes that: every crossing
then gets its own message and key). Re-observing a high score, or re-running the batch job,
enqueues nothing.

Everything here is pure: the outbox (outbox.py) supplies the previous states and stores the new
ones with the messages. A message's key, also sent as the ``Idempotency-Key`` header, is a UUID
derived from the pid and the crossing number, so stable even if the state file is lost.

The payload (``Content-Type: application/json``), schema version 1::

    {
      "event": "lead.mql",
      "schema_version": 1,
      "idempotency_key": "5b0c...-...",        # same as the Idempotency-Key header
      "pid": "P000123",
      "score": 72.4,                           # 0-100
      "previous_score": 41.0,                  # null when the lead was never seen before
      "threshold": 60.0,
      "crossing": 1,                           # 1 = first time this pid became an MQL
      "probability": 0.23,
      "tier": "high-value",
      "routing": {"action": "route_to_sales", "channel": "crm",
                  "description": "direct contact by the owning rep"},
      "reasons": ["Visited the pricing page 3 times in the last 7 days", "..."],
      "model_version": "7",
      "crossed_at": "2025-01-31T12:00:00.123456+00:00"
    }

``routing`` is the row's own (from the model version's routing table, as the scorer returns it),
else ``routing_table[tier]`` when the caller gives the table (batch rows carry no routing).
Fields the caller did not provide are null (``routing`` fields, ``tier``...); ``reasons`` is then
an empty list.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any, NamedTuple

PAYLOAD_VERSION = 1
_KEY_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/leadscore/leadscore/mql")


class Scored(NamedTuple):
    """An observed row with a pid and a finite score; `row` is the caller's own, for the payload."""

    pid: str
    score: float
    row: Any


class LeadState(NamedTuple):
    """What is known of a lead: its last score, upward crossings so far, and the key of the last
    message enqueued for it (in this call: a stored state's key stays in the store)."""

    score: float | None  # None: never seen
    above: bool
    crossings: int
    mql_key: str | None = None


NEVER_SEEN = LeadState(score=None, above=False, crossings=0)


class Crossing(NamedTuple):
    """A crossing that gets a message: the lead's `number`-th, from `previous`, under `key`."""

    lead: Scored
    previous: float | None  # None when the lead was never seen before
    number: int
    key: str


def idempotency_key(pid: str, crossing: int = 1) -> str:
    """The message key of a pid's `crossing`-th MQL crossing: deterministic, header-safe."""
    return str(uuid.uuid5(_KEY_NAMESPACE, f"{pid}\x1f{crossing}"))


def scored_rows(rows: Iterable[Any]) -> tuple[list[Scored], int]:
    """The rows (mappings or objects) with a pid and a finite score, and how many lacked either."""
    scored: list[Scored] = []
    skipped = 0
    for row in rows:
        pid, score = _field(row, "pid"), _float_or_none(_field(row, "score"))
        if pid is None or pid == "" or score is None:
            skipped += 1
        else:
            scored.append(Scored(str(pid), score, row))
    return scored, skipped


def may_cross(scored: Iterable[Scored], threshold: float) -> list[str]:
    """The pids whose stored state matters: only a score at or above the threshold can cross."""
    return list({lead.pid for lead in scored if lead.score >= threshold})


def detect_crossings(scored: Iterable[Scored], known: Mapping[str, LeadState], threshold: float,
                     repush_on_recross: bool = False) -> tuple[dict[str, LeadState], list[Crossing]]:
    """Each lead's new state (a pid seen twice keeps the latest) and the crossings that get a
    message, in row order. `known` holds the stored states of (at least) the pids that may cross."""
    states: dict[str, LeadState] = {}
    crossings: list[Crossing] = []
    for lead in scored:
        before = states[lead.pid] if lead.pid in states else known.get(lead.pid, NEVER_SEEN)
        states[lead.pid], crossing = _next_state(lead, before, threshold, repush_on_recross)
        if crossing is not None:
            crossings.append(crossing)
    return states, crossings


def _next_state(lead: Scored, before: LeadState, threshold: float,
                repush_on_recross: bool) -> tuple[LeadState, Crossing | None]:
    above = lead.score >= threshold
    if not above or (before.score is not None and before.score >= threshold):
        return LeadState(lead.score, above, before.crossings, before.mql_key), None
    number = before.crossings + 1
    if number > 1 and not repush_on_recross:
        return LeadState(lead.score, above, number, before.mql_key), None
    key = idempotency_key(lead.pid, number)
    return LeadState(lead.score, above, number, key), Crossing(lead, before.score, number, key)


def mql_payload(crossing: Crossing, threshold: float, routing_table: Mapping[str, Any], now: float) -> str:
    """The message of a crossing as JSON (the schema above); `now` (Unix seconds) is `crossed_at`."""
    row = crossing.lead.row
    version = _field(row, "model_version")
    return json.dumps({
        "event": "lead.mql",
        "schema_version": PAYLOAD_VERSION,
        "idempotency_key": crossing.key,
        "pid": crossing.lead.pid,
        "score": crossing.lead.score,
        "previous_score": crossing.previous,
        "threshold": threshold,
        "crossing": crossing.number,
        "probability": _float_or_none(_field(row, "probability")),
        "tier": _field(row, "tier"),
        "routing": _routing(row, routing_table),
        "reasons": [text for text in map(_reason_text, _field(row, "reasons_up") or []) if text],
        "model_version": None if version is None else str(version),
        "crossed_at": datetime.fromtimestamp(now, timezone.utc).isoformat(),
    }, separators=(",", ":"), default=str)


def _routing(row: Any, routing_table: Mapping[str, Any]) -> dict[str, Any]:
    """The row's own routing (a `routing` object, or top-level fields), else its tier's in the table."""
    tier = _field(row, "tier")
    routing = _field(row, "routing")
    if routing is None and _field(row, "action") is None:
        routing = routing_table.get(tier) if isinstance(tier, str) else None
    source = row if routing is None else routing
    return {name: _field(source, name) for name in ("action", "channel", "description")}


def _field(row: Any, name: str) -> Any:
    if isinstance(row, Mapping):
        return row.get(name)
    return getattr(row, name, None)


def _reason_text(reason: Any) -> str | None:
    if reason is None or isinstance(reason, str):
        return reason
    text = _field(reason, "text")
    return None if text is None else str(text)


def _float_or_none(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
