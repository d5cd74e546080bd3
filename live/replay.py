"""Replay the world's future into a running service, as its source systems would send it.

`leadscore synth` draws the world `world.future_days` past its end (data/future). A replay
moves the world's clock forward at `speed` (world seconds per wall second) and, as the
clock passes each record's time, posts it to `POST /ingest/{source}` with the `ingest`
role's key, the records of one source due together in one call. The world's opportunities
come back as the CRM would report them: each one ingest bound to a person is posted to
`POST /outcomes` as `opportunity_created` (with the `crm` role's key), the labels that
monitoring and promotion judge matured scores by. It starts where the last
replay stopped (`since`, kept by the CLI in `<live_dir>/replay.json`; else the clock's now),
sending at once what fell due in between, and a record sent twice changes nothing (ingest
is idempotent). The clock stands still while a tick's records are sent, so it never runs
ahead of them (a slow service only slows the replay); when it ends, the clock keeps moving
at normal speed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
import pandas as pd

from leadscore.clock import WorldClock
from leadscore.live.sources import ID_COLUMN, TIME_COLUMN
from leadscore.synth.future import future_records

Send = Callable[[str, list[dict]], dict]
OPPORTUNITIES = "opportunities"


@dataclass
class ReplayStats:
    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    quarantined: int = 0
    outcomes: int = 0  # opportunity_created outcomes posted back
    calls: int = 0
    by_source: dict[str, int] = field(default_factory=dict)
    world_from: datetime | None = None
    world_to: datetime | None = None

    def add(self, source: str, records: int, answer: dict) -> None:
        self.sent += records
        self.calls += 1
        self.by_source[source] = self.by_source.get(source, 0) + records
        self.accepted += answer.get("accepted", 0)
        self.duplicates += answer.get("duplicates", 0)
        self.quarantined += answer.get("quarantined", 0)
        self.outcomes += answer.get("outcomes", 0)


def _timed(future: dict[str, pd.DataFrame], since: datetime,
           until: datetime) -> Iterator[tuple[datetime, str, dict]]:
    for source, record in future_records(future, pd.Timestamp(since), pd.Timestamp(until)):
        yield datetime.fromisoformat(record[TIME_COLUMN[source]].replace("Z", "+00:00")), source, record


def due_calls(pending: Sequence[tuple[datetime | None, str, dict]], max_records: int
              ) -> list[tuple[str, list[dict]]]:
    """The records due together, one call per source (at most `max_records` each), in the
    order each source's first record is due, each call's records in time order. (A source
    system sends what it has in one call: a call costs more than a record.)"""
    by_source: dict[str, list[dict]] = {}
    for _, source, record in pending:
        by_source.setdefault(source, []).append(record)
    return [(source, records[start:start + max_records]) for source, records in by_source.items()
            for start in range(0, len(records), max_records)]


def replay(future: dict[str, pd.DataFrame], clock: WorldClock, days: float, speed: float, send: Send,
           max_records: int = 200, tick_s: float = 0.05, since: datetime | None = None,
           progress: Callable[[ReplayStats, datetime], None] | None = None) -> ReplayStats:
    """Send `days` of the future from `since` (default: the clock's now) as the clock passes
    them, at `speed`. `world_to` of the answer is where it stopped: everything due before it
    was sent, whatever ended the run."""
    start = since or clock.now()
    until = start + timedelta(days=days)
    stats = ReplayStats(world_from=start, world_to=start)
    stream = _timed(future, start, until)
    waiting = next(stream, None)
    clock.set_speed(speed)
    try:
        while True:
            now = min(clock.now(), until)
            pending = []
            while waiting is not None and waiting[0] < now:
                pending.append(waiting)
                waiting = next(stream, None)
            if pending:  # the world waits while its records are sent: it never runs ahead of them
                clock.set_speed(0)
                for source, records in due_calls(pending, max_records):
                    stats.add(source, len(records), send(source, records))
                clock.set_speed(speed)
            stats.world_to = now
            if progress is not None:
                progress(stats, now)
            if now >= until:
                break
            time.sleep(tick_s)
    finally:
        clock.set_speed(1.0)
    return stats


def opportunity_outcomes(records: list[dict], answer: dict) -> list[dict]:
    """The CRM's `opportunity_created` outcome of each ingested opportunity that found its person."""
    return [{"kind": "opportunity_created", "crm_id": str(record[ID_COLUMN[OPPORTUNITIES]]),
             "pid": fate["pid"], "at": record[TIME_COLUMN[OPPORTUNITIES]]}
            for record, fate in zip(records, answer["records"], strict=True) if fate.get("pid")]


def post_outcomes(client: httpx.Client, outcomes: list[dict], crm_key: str, max_outcomes: int) -> int:
    """`outcomes` posted to `POST /outcomes`, at most `max_outcomes` a call: how many."""
    for start in range(0, len(outcomes), max_outcomes):
        response = client.post("/outcomes", json=outcomes[start:start + max_outcomes],
                               headers={"X-API-Key": crm_key})
        if response.status_code != 200:
            raise RuntimeError(f"POST /outcomes answered {response.status_code}: {response.text[:500]}")
    return len(outcomes)


def sender(client: httpx.Client, key: str, crm_key: str | None = None, max_outcomes: int = 1000) -> Send:
    """A sender posting each call's records to the service's ingest API with the ingest `key`,
    and with `crm_key` the outcomes of the opportunities it sent (counted in the answer's
    `outcomes`)."""

    def send(source: str, records: list[dict]) -> dict:
        response = client.post(f"/ingest/{source}", json=records, headers={"X-API-Key": key})
        if response.status_code != 200:
            raise RuntimeError(f"POST /ingest/{source} answered {response.status_code}: "
                               f"{response.text[:500]}")
        answer = response.json()
        if crm_key is not None and source == OPPORTUNITIES:
            answer["outcomes"] = post_outcomes(client, opportunity_outcomes(records, answer), crm_key,
                                               max_outcomes)
        return answer

    return send


def http_sender(base_url: str, key: str, timeout_s: float = 60, crm_key: str | None = None,
                max_outcomes: int = 1000) -> tuple[Send, httpx.Client]:
    """`sender` on a kept-alive connection of its own to `base_url` (close the client after)."""
    client = httpx.Client(base_url=base_url, headers={"X-API-Key": key}, timeout=timeout_s)
    return sender(client, key, crm_key, max_outcomes), client
