"""Matured cohorts: a score is judged only once its horizon has passed, on the outcomes after it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from leadscore.monitoring.cohorts import matured_cohorts
from leadscore.monitoring.metrics import cohort_metrics

DAY0 = datetime(2026, 11, 1, 9, tzinfo=UTC)
HORIZON = 90


def score(pid: str, day: float, probability: float = 0.1, trigger: str = "ingest",
          version: str = "3") -> dict:
    return {"at": DAY0 + timedelta(days=day), "pid": pid, "model_version": version,
            "probability": probability, "score": 50.0, "tier": "to-nurture", "trigger": trigger}


def opportunity(pid: str, created_day: float, closed_day: float | None = None) -> dict:
    closed = DAY0 + timedelta(days=closed_day) if closed_day is not None else None
    return {"opportunity_id": f"O-{pid}", "pid": pid,
            "opportunity_created_at": DAY0 + timedelta(days=created_day), "stage": "open",
            "won_at": None, "closed_at": closed, "amount_usd": None}


def frame(rows: list[dict]) -> pd.DataFrame:
    out = pd.DataFrame(rows)
    for column in ("at", "opportunity_created_at", "closed_at"):
        if column in out:
            out[column] = pd.to_datetime(out[column], utc=True)
    return out


def test_a_score_whose_horizon_has_not_passed_is_in_no_cohort():
    scores = frame([score("A", 0), score("B", 50)])
    labels = frame([opportunity("B", 60)])
    now = DAY0 + timedelta(days=100)
    cohort = matured_cohorts(scores, labels, now, HORIZON)
    assert cohort["pid"].tolist() == ["A"]  # B's score matures on day 140
    assert matured_cohorts(scores, labels, DAY0 + timedelta(days=89), HORIZON).empty
    assert matured_cohorts(scores, labels, DAY0 + timedelta(days=HORIZON), HORIZON)["pid"].tolist() == ["A"]


def test_converted_means_an_opportunity_within_the_horizon_after_the_score():
    scores = frame([score(pid, 0) for pid in "ABCDE"])
    labels = frame([opportunity("A", 10), opportunity("B", 95),  # B: too late
                    opportunity("C", -5), opportunity("D", -30, closed_day=-1),  # C open at the score
                    opportunity("E", 0)])  # E: created at the very instant scored, not after it
    labels.loc[labels["pid"] == "E", "opportunity_created_at"] = scores["at"].iloc[0]
    cohort = matured_cohorts(scores, labels, DAY0 + timedelta(days=200), HORIZON).set_index("pid")
    assert cohort["converted"].to_dict() == {"A": 1, "B": 0, "D": 0}  # C and E had one open


def test_a_person_counts_once_a_day_per_model_and_shadow_scores_are_their_own():
    scores = frame([score("A", 0, 0.9), score("A", 0.1, 0.2), score("A", 1, 0.3),
                    score("A", 0.2, 0.4, trigger="shadow", version="4")])
    cohort = matured_cohorts(scores, frame([opportunity("Z", 1)]), DAY0 + timedelta(days=200), HORIZON)
    champion = cohort[cohort["role"] == "champion"]
    assert champion["probability"].tolist() == [0.9, 0.3]  # the first of each day
    assert cohort.loc[cohort["role"] == "shadow", "model_version"].tolist() == ["4"]


def test_cohort_metrics_per_version_with_a_hand_computed_ece():
    cohort = pd.DataFrame({"model_version": ["3"] * 4 + ["4"] * 2, "role": ["champion"] * 4 + ["shadow"] * 2,
                           "converted": [0, 0, 1, 1, 0, 0], "probability": [0.1, 0.3, 0.6, 0.8, 0.2, 0.4]})
    figures = cohort_metrics(cohort, bins=2)
    # bins of two: predicted 0.2 observed 0, predicted 0.7 observed 1: (2 * 0.2 + 2 * 0.3) / 4
    assert figures["3"]["ece"] == pytest.approx(0.25)
    assert figures["3"]["roc_auc"] == 1.0 and figures["3"]["pr_auc"] == 1.0
    assert (figures["3"]["n"], figures["3"]["positives"], figures["3"]["role"]) == (4, 2, "champion")
    assert figures["4"] == {"role": "shadow", "n": 2, "positives": 0, "roc_auc": None, "pr_auc": None,
                            "ece": None}  # one outcome only: nothing to rank
