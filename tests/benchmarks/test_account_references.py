"""The account benchmark's references from the people's scores: the best person's, and the
chance that any of them converts."""

import numpy as np
import pandas as pd
import pytest

from leadscore.benchmarks.training import people_any, people_max

T = pd.Timestamp("2026-03-02", tz="UTC")


def test_each_account_reads_its_own_people_at_the_same_snapshot_and_zero_without_any():
    accounts = pd.DataFrame({"cid": ["C1", "C2", "C3"], "event_timestamp": [T, T, T]})
    people = pd.DataFrame({"cid": ["C1", "C1", "C2", "C3"],
                           "event_timestamp": [T, T, T, T + pd.Timedelta(days=14)]})
    probability = np.array([0.5, 0.2, 0.3, 0.9])  # C3's person is a lead at another snapshot
    assert people_max(accounts, people, probability) == pytest.approx([0.5, 0.3, 0.0])
    assert people_any(accounts, people, probability) == pytest.approx([1 - 0.5 * 0.8, 0.3, 0.0])
