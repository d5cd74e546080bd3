"""Outcomes from the CRM: validation, durable and idempotent storage, labels as of a time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from pydantic import TypeAdapter, ValidationError

from leadscore.live.labels import dispositions, fold_opportunities, opportunity_labels
from leadscore.live.log import EventLog
from leadscore.live.outcomes import Outcome, ahead_problems, append_outcomes, reason_problems

RECEIVED = datetime(2026, 11, 5, tzinfo=UTC)
REASONS = ["no_budget", "no_need"]
parse = TypeAdapter(list[Outcome]).validate_python


@pytest.fixture
def log(tmp_path):
    log = EventLog(tmp_path / "events.db")
    yield log
    log.close()


def _opportunity(kind: str, at: str, crm_id: str = "OPP-1", pid: str = "P1", **extra) -> dict:
    return {"kind": kind, "crm_id": crm_id, "pid": pid, "at": at, **extra}


def _disposition(disposition: str, at: str, reason: str | None = None) -> dict:
    return {"kind": "disposition", "crm_id": "LEAD-9", "pid": "P2", "at": at, "disposition": disposition,
            "reason": reason}


HISTORY = [
    _opportunity("opportunity_created", "2026-11-01T09:00:00Z", amount_usd=10_000),
    _opportunity("stage_changed", "2026-11-02T09:00:00Z", stage="proposal"),
    _opportunity("won", "2026-11-03T09:00:00+08:00", amount_usd=12_000),  # 01:00 UTC
    _opportunity("opportunity_created", "2026-11-02T12:00:00Z", crm_id="OPP-2", pid="P3"),
    _opportunity("lost", "2026-11-04T12:00:00Z", crm_id="OPP-2", pid="P3"),
    _disposition("accepted", "2026-11-01T10:00:00Z"),
    _disposition("rejected", "2026-11-02T10:00:00Z", reason="no_budget"),
]


def test_only_outcomes_dated_more_than_the_allowance_after_the_clock_are_named():
    """A day after the clock's now (RECEIVED) is still taken: a CRM's clock a little ahead."""
    outcomes = parse([HISTORY[0], _opportunity("won", "2026-11-06T00:00:00Z"),
                      _opportunity("won", "2026-11-06T00:00:00.000001Z")])
    [(position, message)] = ahead_problems(outcomes, RECEIVED, 24)
    assert position == 2 and "live.max_ahead_hours (24 h)" in message
    assert [i for i, _ in ahead_problems(outcomes, RECEIVED, 0)] == [1, 2]  # none allowed ahead


def test_a_resent_outcome_changes_nothing(log):
    assert append_outcomes(log, parse(HISTORY), RECEIVED) == [True] * len(HISTORY)
    before = log.outcomes()
    resent = [HISTORY[2] | {"at": "2026-11-03T01:00:00Z"}, HISTORY[0]]  # the same instant, spelt in UTC
    assert append_outcomes(log, parse(resent), datetime(2026, 11, 6, tzinfo=UTC)) == [False, False]
    assert log.outcomes().equals(before)


def test_the_same_crm_id_at_another_time_or_of_another_kind_is_a_new_outcome(log):
    append_outcomes(log, parse(HISTORY[:1]), RECEIVED)
    later = _opportunity("stage_changed", "2026-11-01T09:00:00Z", stage="qualified")  # same instant
    assert append_outcomes(log, parse([later, HISTORY[1]]), RECEIVED) == [True, True]
    assert len(log.outcomes()) == 3


def test_stored_outcomes_outlive_the_connection(tmp_path):
    first = EventLog(tmp_path / "events.db")
    append_outcomes(first, parse(HISTORY), RECEIVED)
    first.close()
    again = EventLog(tmp_path / "events.db")
    assert len(again.outcomes()) == len(HISTORY)
    assert again.outcomes(pids=["P2"])["disposition"].tolist() == ["accepted", "rejected"]


@pytest.mark.parametrize("outcome, field", [
    (_opportunity("stage_changed", "2026-11-02T09:00:00Z"), "stage"),
    (_opportunity("won", "2026-11-02T09:00:00"), "at"),  # no time zone
    (_opportunity("won", "9999-11-02T09:00:00Z"), "at"),
    (_opportunity("won", "2026-11-02T09:00:00Z", amount_usd=-5), "amount_usd"),
    (_opportunity("signed", "2026-11-02T09:00:00Z"), "kind"),
    (_disposition("rejected", "2026-11-02T09:00:00Z"), "reason"),
    (_disposition("accepted", "2026-11-02T09:00:00Z", reason="no_budget"), "reason"),
    (_disposition("ignored", "2026-11-02T09:00:00Z"), "disposition"),
    ({**_disposition("accepted", "2026-11-02T09:00:00Z"), "pid": ""}, "pid"),
    ({**_opportunity("won", "2026-11-02T09:00:00Z"), "crm_id": "OPP-1\x00"}, "crm_id"),  # NUL
])
def test_a_malformed_outcome_is_refused_naming_the_field(outcome, field):
    with pytest.raises(ValidationError, match=field):
        parse([outcome])


def test_a_reason_outside_the_configured_list_is_named_with_the_allowed_ones():
    outcomes = parse([HISTORY[6], _disposition("rejected", "2026-11-03T10:00:00Z", reason="too_small")])
    [(position, message)] = reason_problems(outcomes, REASONS)
    assert position == 1 and "'too_small'" in message and "no_budget, no_need" in message


def test_labels_fold_each_opportunity_as_known_at_a_time(log):
    append_outcomes(log, parse(HISTORY), RECEIVED)
    now = opportunity_labels(log, datetime(2026, 11, 5, tzinfo=UTC)).set_index("opportunity_id")
    assert now.loc["OPP-1", "stage"] == "won" and now.loc["OPP-1", "amount_usd"] == 12_000
    assert now.loc["OPP-1", "won_at"] == now.loc["OPP-1", "closed_at"] == datetime(2026, 11, 3, 1, tzinfo=UTC)
    assert now.loc["OPP-1", "opportunity_created_at"] == datetime(2026, 11, 1, 9, tzinfo=UTC)
    assert now.loc["OPP-2", "stage"] == "lost" and now.loc["OPP-2", "pid"] == "P3"
    assert pd.isna(now.loc["OPP-2", "won_at"])
    assert now.loc["OPP-2", "closed_at"] == RECEIVED - timedelta(hours=12)
    then = opportunity_labels(log, datetime(2026, 11, 2, 9, tzinfo=UTC)).set_index("opportunity_id")
    assert then.loc["OPP-1", "stage"] == "proposal" and then.loc["OPP-1", "amount_usd"] == 10_000
    assert then["closed_at"].isna().all() and list(then.index) == ["OPP-1"]  # OPP-2 not yet opened


def test_a_reopened_opportunity_is_open_again(log):
    reopened = [_opportunity("lost", "2026-11-01T00:00:00Z"),
                _opportunity("stage_changed", "2026-11-02T00:00:00Z", stage="open")]
    append_outcomes(log, parse(reopened), RECEIVED)
    folded = fold_opportunities(log.outcomes())
    assert folded["stage"].tolist() == ["open"] and folded["closed_at"].isna().all()


def test_dispositions_up_to_a_time(log):
    append_outcomes(log, parse(HISTORY), RECEIVED)
    every = dispositions(log, datetime(2026, 11, 9, tzinfo=UTC))
    assert every[["disposition", "reason"]].values.tolist() == [["accepted", None], ["rejected", "no_budget"]]
    assert dispositions(log, datetime(2026, 11, 1, 12, tzinfo=UTC))["disposition"].tolist() == ["accepted"]
    assert fold_opportunities(log.outcomes(pids=["P2"])).empty
