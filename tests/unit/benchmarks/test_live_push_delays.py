"""bench live's webhook delays: from the start of the last call that named the pushed person."""

from __future__ import annotations

import pytest

from leadscore.benchmarks.live import push_delays_ms


def test_a_push_counts_from_the_last_call_before_it_that_named_its_person():
    started = {"P1": [100.0, 200.0], "P2": [150.0]}
    received = [{"at": 200.25, "body": {"pid": "P1"}},  # after P1's second call
                {"at": 150.5, "body": {"pid": "P2"}},
                {"at": 120.0, "body": {"pid": "P1"}},  # after P1's first call only
                {"at": 99.0, "body": {"pid": "P1"}},  # before any call named P1: not counted
                {"at": 300.0, "body": {"pid": "P9"}},  # nobody called for P9
                {"at": 300.0, "body": {"type": "daily_digest"}}]
    assert push_delays_ms(started, received) == pytest.approx([250.0, 500.0, 20_000.0])
