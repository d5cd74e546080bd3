"""Champion against challenger: paired matured cohorts decide; too few of them, one test window."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score
from test_cohorts import frame, opportunity, score

from leadscore.monitoring.cohorts import matured_cohorts
from leadscore.monitoring.promotion import (
    _ranked,
    decide,
    live_evidence,
    offline_evidence,
    paired_cohorts,
    pool_lineage,
    weighted_average_precision,
)

HORIZON = 90


def _shadowed_world(people: int, challenger_sees: float, seed: int = 0,
                    shadows: tuple[str, ...] = ("2",)) -> pd.DataFrame:
    """Each person scored once by the champion (v1, noise) and in shadow by a challenger (v2, or
    one of `shadows` in turn, whose probability follows the outcome with strength
    `challenger_sees`); a third converts."""
    rng = np.random.default_rng(seed)
    converts = rng.random(people) < 0.3
    scores, labels = [], []
    for i in range(people):
        pid = f"P{i}"
        scores.append(score(pid, 0, float(rng.uniform(0.05, 0.4)), version="1"))
        signal = challenger_sees * converts[i] + (1 - challenger_sees) * rng.random()
        scores.append(score(pid, 0, float(0.05 + 0.35 * signal), trigger="shadow",
                            version=shadows[i % len(shadows)]))
        if converts[i]:
            labels.append(opportunity(pid, 30))
    scores.append(score("ALONE", 0, version="1"))  # the challenger never scored this one
    now = scores[0]["at"] + pd.Timedelta(days=HORIZON + 1)
    return matured_cohorts(frame(scores), frame(labels), now, HORIZON)


def test_only_the_person_days_both_versions_scored_are_compared():
    matured = _shadowed_world(40, 0.8)
    paired = paired_cohorts(matured, "1", "2")
    assert "ALONE" in set(matured["pid"]) and "ALONE" not in set(paired["pid"])
    assert paired.groupby("model_version").size().to_dict() == {"1": 40, "2": 40}


def test_a_challenger_that_ranks_better_on_live_evidence_is_promoted():
    live = live_evidence(_shadowed_world(300, 0.8), "1", "2", bins=10)
    assert live.basis == "live" and live.rows == 300 and 60 < live.positives < 120
    assert live.figures["2"]["pr_auc"] > live.figures["1"]["pr_auc"]
    decision = decide(live, None, min_matured=100, ece_tolerance=1.0)
    assert decision.promote and decision.evidence is live and "live evidence" in decision.reason


def test_a_better_ranking_with_a_worse_calibration_keeps_the_champion():
    live = live_evidence(_shadowed_world(300, 0.8), "1", "2", bins=10)
    worse = live.figures["2"]["ece"] - live.figures["1"]["ece"]
    decision = decide(live, None, min_matured=100, ece_tolerance=worse - 0.01 if worse > 0.01 else -1.0)
    assert not decision.promote and "calibrated worse" in decision.reason


def test_a_challenger_no_better_is_not_promoted():
    live = live_evidence(_shadowed_world(300, 0.0), "1", "2", bins=10)  # noise against noise
    live.figures["2"]["pr_auc"] = live.figures["1"]["pr_auc"]
    assert not decide(live, None, min_matured=100, ece_tolerance=1.0).promote


def test_without_enough_live_evidence_one_test_window_decides_or_nothing_does():
    live = live_evidence(_shadowed_world(30, 0.8), "1", "2", bins=10)
    same = {"1": {"pr_auc": "0.20", "ece": "0.010", "test_window": "2026-05-01..2026-06-01"},
            "2": {"pr_auc": "0.25", "ece": "0.012", "test_window": "2026-05-01..2026-06-01"}}
    offline = offline_evidence("1", "2", same, "pr_auc")
    decision = decide(live, offline, min_matured=100, ece_tolerance=0.005)
    assert decision.promote and decision.evidence.basis == "offline"
    assert "not enough live evidence yet: 30 matured scores" in decision.reason
    other_window = {**same, "2": {**same["2"], "test_window": "2026-06-01..2026-07-01"}}
    assert offline_evidence("1", "2", other_window, "pr_auc") is None
    refit = {**same, "2": {**same["2"], "refit": "true"}}  # its figures are its candidate's
    assert offline_evidence("1", "2", refit, "pr_auc") is None
    kept = decide(live, None, min_matured=100, ece_tolerance=0.005)
    assert not kept.promote and "no offline figures of both on one test window" in kept.reason


def test_a_version_scoring_a_person_day_twice_counts_once_and_few_conversions_are_no_evidence():
    matured = _shadowed_world(200, 0.8)
    promoted_day = matured[matured["model_version"] == "2"].assign(role="champion")  # served too
    doubled = pd.concat([matured, promoted_day], ignore_index=True)
    assert paired_cohorts(doubled, "1", "2").groupby("model_version").size().to_dict() == {"1": 200, "2": 200}
    live = live_evidence(matured, "1", "2", bins=10)
    short = decide(live, None, min_matured=100, ece_tolerance=1.0, min_converted=live.converted_people + 1)
    assert not short.promote and "monitoring.min_converted" in short.reason


def test_a_lineage_of_weekly_challengers_pools_its_shadow_scores_into_the_latest_ones_evidence():
    # v2, v3, v4 each shadowed a third of the people before the next retrain replaced it; v5,
    # the latest of the same policy, has no matured score of its own yet
    matured = _shadowed_world(300, 0.8, shadows=("2", "3", "4"))
    alone = live_evidence(matured, "1", "5", bins=10)
    assert alone.rows == 0 and not decide(alone, None, min_matured=100, ece_tolerance=1.0).promote
    pooled = live_evidence(matured, "1", "5", bins=10, lineage=["2", "3", "4", "5"])
    assert pooled.rows == 300 and pooled.lineage == ["2", "3", "4", "5"]
    assert pooled.figures["5"]["pr_auc"] > pooled.figures["1"]["pr_auc"]
    decision = decide(pooled, None, min_matured=100, ece_tolerance=1.0)
    assert decision.promote and "lineage (v2, v3, v4, v5)" in decision.reason
    part = live_evidence(matured, "1", "5", bins=10, lineage=["3", "5"])  # another policy's v2, v4
    assert part.rows == 100


def test_only_shadow_scores_of_a_lineage_are_pooled_never_the_champions_own():
    matured = _shadowed_world(60, 0.8, shadows=("2", "3"))
    served = matured[matured["model_version"] == "3"].assign(role="champion")  # v3 served once
    pooled = pool_lineage(pd.concat([matured, served], ignore_index=True), "1", "4", ["2", "3", "4"])
    assert (pooled[pooled["role"] == "champion"]["model_version"] != "4").all()
    assert set(pooled[pooled["role"] == "shadow"]["model_version"]) == {"4"}
    # the champion of the same lineage stays the champion
    assert set(pool_lineage(matured, "2", "4", ["2", "3", "4"])["model_version"]) == {"1", "2", "4"}


def test_a_clearly_better_challenger_is_ahead_in_nearly_every_resample_of_the_people():
    live = live_evidence(_shadowed_world(300, 0.8), "1", "2", bins=10, resamples=100)
    assert live.resamples == 100 and live.confidence >= 0.95
    decision = decide(live, None, min_matured=100, ece_tolerance=1.0, min_confidence=0.9)
    assert decision.promote and "of 100 resamples of the people" in decision.reason


def _one_busy_person_decides(people: int = 200, busy_days: int = 40) -> pd.DataFrame:
    """Both versions score everyone alike, but one busy person, scored on `busy_days` days and
    converted, the challenger ranks first and the champion low."""
    rng = np.random.default_rng(1)
    scores, labels = [], []
    for i in range(people):
        p = float(rng.uniform(0.05, 0.4))
        scores += [score(f"P{i}", 0, p, version="1"), score(f"P{i}", 0, p, trigger="shadow", version="2")]
        if rng.random() < 0.3:
            labels.append(opportunity(f"P{i}", 30))
    for day in range(busy_days):
        scores += [score("BUSY", day, 0.1, version="1"),
                   score("BUSY", day, 0.9, trigger="shadow", version="2")]
    labels.append(opportunity("BUSY", busy_days + 5))
    now = scores[0]["at"] + pd.Timedelta(days=busy_days + HORIZON + 1)
    return matured_cohorts(frame(scores), frame(labels), now, HORIZON)


def test_one_busy_person_is_one_persons_evidence_not_forty_days_worth():
    live = live_evidence(_one_busy_person_decides(), "1", "2", bins=10, resamples=200)
    assert live.figures["2"]["pr_auc"] > live.figures["1"]["pr_auc"] + 0.05  # the rows alone say better
    # the busy person is drawn in about 1 - 1/e of the resamples; without them the two tie
    assert 0.5 < live.confidence < 0.75
    assert decide(live, None, min_matured=100, ece_tolerance=1.0).promote  # no confidence asked
    kept = decide(live, None, min_matured=100, ece_tolerance=1.0, min_confidence=0.9)
    assert not kept.promote and "not surely better" in kept.reason


def test_one_converted_busy_person_alone_is_no_evidence_however_many_days_they_fill():
    # nobody else converts: a resample without them holds one outcome only and is no win
    matured = _one_busy_person_decides()
    alone = matured[(matured["pid"] == "BUSY") | (matured["converted"] == 0)]
    live = live_evidence(alone, "1", "2", bins=10, resamples=200)
    assert live.positives == 40 and live.figures["2"]["pr_auc"] == 1.0
    assert live.confidence < 0.75 and live.resamples == 200
    assert not decide(live, None, min_matured=100, ece_tolerance=1.0, min_confidence=0.9).promote
    # forty converted person-days are one converted person: short of two, whatever the rows say
    assert (live.people, live.converted_people) == (alone["pid"].nunique(), 1)
    short = decide(live, None, min_matured=100, ece_tolerance=1.0, min_converted=2)
    assert not short.promote and "1 of whom converted" in short.reason


def test_the_weighted_average_precision_of_a_ranked_resample_is_scikit_learns():
    rng = np.random.default_rng(3)
    for rows in (5, 40, 500):
        p = np.round(rng.random(rows), 1)  # ties
        y = np.r_[1.0, 0.0, (rng.random(rows - 2) < 0.3)]
        weights = np.r_[1.0, 1.0, rng.integers(0, 3, rows - 2)].astype(float)  # a person drawn 0, 1, 2 times
        assert weighted_average_precision(y, weights, *_ranked(p)) == pytest.approx(
            average_precision_score(y, p, sample_weight=weights), abs=1e-12)
