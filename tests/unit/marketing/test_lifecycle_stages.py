"""Lifecycle stages on the hand-built tiny world: each entry in order, nurture and back."""

from __future__ import annotations

import pandas as pd
from marketing_tiny_world import day, tiny_world

from leadscore.marketing.lifecycle import current_stages, keep_earlier, stage_history

MQL = 60


def stages_of(history: pd.DataFrame, pid: str) -> list[tuple[str, object]]:
    rows = history[history["pid"] == pid]
    return list(zip(rows["stage"], rows["entered_at"], strict=True))


def test_a_lead_goes_back_to_nurture_and_on_to_customer():
    history = stage_history(tiny_world(), MQL)
    assert stages_of(history, "P1") == [
        ("anonymous_visitor", day(0)), ("known_lead", day(1)), ("mql", day(5)),
        ("nurture", day(6)),  # recycled by sales
        ("mql", day(10)),  # crossed the threshold again after falling below it (day 7)
        ("sales_accepted", day(11)), ("opportunity", day(15)), ("customer", day(30)),
        ("opportunity", day(40)), ("renewal_upsell", day(50))]


def test_accepted_from_the_opportunity_without_a_disposition():
    history = stage_history(tiny_world(), MQL)
    assert stages_of(history, "P2") == [("known_lead", day(2)), ("sales_accepted", day(9)),
                                        ("opportunity", day(9))]


def test_rejected_is_back_to_nurture_and_the_current_stage_is_the_latest():
    history = stage_history(tiny_world(), MQL)
    assert [s for s, _ in stages_of(history, "P3")] == ["known_lead", "mql", "nurture"]
    assert stages_of(history, "P4") == [("known_lead", day(4))]  # a score of 20 is no MQL
    now = current_stages(history).set_index("pid")["stage"].to_dict()
    assert now == {"P1": "renewal_upsell", "P2": "opportunity", "P3": "nurture", "P4": "known_lead"}


def test_the_mql_threshold_decides():
    history = stage_history(tiny_world(), 75)
    assert [t for s, t in stages_of(history, "P1") if s == "mql"] == [day(12)]
    assert "mql" not in [s for s, _ in stages_of(history, "P3")]


def test_history_is_kept_not_overwritten():
    """An entry of an earlier build that today's data no longer shows stays, in its place."""
    earlier = pd.DataFrame({"pid": ["P4"], "stage": ["mql"], "entered_at": [day(5)],
                            "evidence": ["score 65 crossed 60"]})
    history = keep_earlier(stage_history(tiny_world(), MQL), earlier)
    assert stages_of(history, "P4") == [("known_lead", day(4)), ("mql", day(5))]
    assert len(keep_earlier(history, history)) == len(history)
