"""An account's people's chance in serving is what training gives the same company; a group's
forecast leaves out its companies in an opportunity."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from leadscore.features.store import OnlineRows
from leadscore.scoring.estimators import chance_of_any
from leadscore.serving.account_scorer import AccountScorer

PEOPLE = {"C-NONE": [], "C-OFFLINE": ["P9"], "C-TWO": ["P1", "P2"]}
PROBABILITY = {"P1": 0.2, "P2": 0.5}


class _People:
    def read_rows(self, pids: list[str]) -> OnlineRows:
        known = [pid in PROBABILITY for pid in pids]
        return OnlineRows(pids, {"x": [PROBABILITY.get(pid) for pid in pids]}, known, [None] * len(pids))


def _scorer() -> AccountScorer:
    lead = SimpleNamespace(feature_names=["x"], version="1",
                           path=SimpleNamespace(predict=lambda columns, n: (np.array(columns["x"]), None)))
    scorer = AccountScorer.__new__(AccountScorer)
    scorer.people, scorer.lead, scorer.people_of = _People(), lambda: lead, PEOPLE.__getitem__
    scorer._tell_versions = lambda account, lead: None
    return scorer


def test_no_people_is_no_chance_as_in_training_and_people_not_online_are_unknown():
    chances = _scorer().people_chances(None, list(PEOPLE))
    assert chances[0] == 0.0  # training: an account with no leads at a snapshot has chance 0
    assert math.isnan(chances[1])  # its people exist but are not online: unknown, not cold
    assert chances[2] == chance_of_any(np.array([0.2, 0.5])) == pytest.approx(0.6)


def _company(cid: str, probability: float, in_opportunity: dict | None = None) -> dict:
    return {"cid": cid, "eid": None, "probability": probability, "score": 100 * probability, "tier": "t",
            "in_opportunity": in_opportunity, "routing": {"action": "call"}, "reasons": [cid]}


OPEN = {"opportunity_id": "O1", "opened_at": "2026-05-01T00:00:00+00:00", "stage": "open", "pid": None,
        "open_opportunities": 1}


@pytest.fixture
def grouped(monkeypatch) -> AccountScorer:
    from leadscore.serving import account_scorer

    monkeypatch.setattr(account_scorer, "probability_to_score", lambda p, spec: 100 * p)
    monkeypatch.setattr(account_scorer, "tier_array", lambda columns, tiers: np.array(["t"]))
    scorer = _scorer()
    tiers = SimpleNamespace(colours={"t": "#000"})
    scorer.watcher = SimpleNamespace(scorer=SimpleNamespace(spec=SimpleNamespace(score=None, tiers=tiers),
                                                            routing={"t": {"action": "call"}}))
    return scorer


def test_a_group_is_forecast_from_its_companies_not_in_an_opportunity(grouped):
    companies = {"C1": _company("C1", 0.97, OPEN), "C2": _company("C2", 0.2), "C3": _company("C3", 0.1)}
    grouped.score_companies = lambda cids, detail: companies
    group = grouped.score_group("E1", list(companies))
    assert group["probability"] == pytest.approx(1 - 0.8 * 0.9)  # C1 is outside the model's population
    assert group["reasons_of"] == "C2" and group["in_opportunity"] is None
    assert group["routing"] == {"action": "call"}
    assert [c["in_opportunity"] for c in group["companies"]] == [OPEN, None, None]


def test_a_group_all_of_whose_companies_are_in_an_opportunity_is_in_one(grouped):
    companies = {"C1": _company("C1", 0.97, OPEN),
                 "C2": _company("C2", 0.5, {**OPEN, "opportunity_id": "O2"})}
    grouped.score_companies = lambda cids, detail: companies
    group = grouped.score_group("E1", list(companies))
    assert group["in_opportunity"]["open_opportunities"] == 2
    assert group["routing"]["action"] == "in_opportunity"
