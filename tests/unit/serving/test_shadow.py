"""Shadow scoring off the request path: rows served one by one are scored in batches, each
logged at the instant it was served, with exactly the scores the challenger gives alone."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from toy_model import make_scorer

from leadscore.live.score_log import SHADOW, ScoreLog
from leadscore.serving.shadow import ShadowRows, ShadowScoring


@pytest.fixture(scope="module")
def challengers():
    return make_scorer("logistic_regression"), make_scorer("lightgbm")


def _rows(scorer, leads, start: int, stop: int) -> ShadowRows:
    part = leads.iloc[start:stop]
    return ShadowRows(scorer, list(part["pid"]), {name: list(part[name]) for name in scorer.feature_names},
                      [None] * len(part))


def test_rows_served_one_by_one_are_logged_in_shadow_as_the_challenger_scores_them(tmp_path, challengers):
    (logistic, leads), (boosted, _) = challengers
    log = ScoreLog(tmp_path)
    shadows = ShadowScoring(log, flush_s=60, max_rows=10_000)
    served = datetime(2026, 12, 1, 23, 59, 58, tzinfo=UTC)
    ats = [served + timedelta(seconds=i) for i in range(6)]  # across midnight
    for i, at in enumerate(ats):
        shadows.add(_rows(logistic if i % 2 else boosted, leads, i, i + 1), at)
    shadows.add(_rows(logistic, leads, 0, 0), served)  # nothing served, nothing queued
    assert log.read().empty  # a minute to gather a batch: nothing is scored yet
    shadows.flush()
    logged = log.read()
    assert logged["at"].tolist() == ats and set(logged["trigger"]) == {SHADOW}
    assert log.days() == ["2026-12-01", "2026-12-02"]
    for i, row in logged.iterrows():
        scorer = logistic if i % 2 else boosted
        alone = scorer.shadow_records([leads["pid"].iloc[i]], _rows(scorer, leads, i, i + 1).columns)[0]
        assert (row["pid"], row["probability"], row["score"], row["model_version"]) == (
            alone["pid"], alone["probability"], alone["score"], alone["model_version"])
    shadows.close()


def test_a_full_batch_is_scored_before_its_time_and_close_scores_what_waits(tmp_path, challengers):
    (logistic, leads), _ = challengers
    log = ScoreLog(tmp_path)
    shadows = ShadowScoring(log, flush_s=60, max_rows=4)
    served = datetime(2026, 12, 1, 9, tzinfo=UTC)
    shadows.add(_rows(logistic, leads, 0, 5), served)  # past max_rows: scored at once
    deadline = time.monotonic() + 30
    while log.read().empty and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(log.read()) == 5
    shadows.add(_rows(logistic, leads, 5, 7), served)
    shadows.close()  # what was queued is scored before the thread stops
    assert log.read()["pid"].tolist() == list(leads["pid"].iloc[:7])


def test_a_challenger_that_fails_loses_its_shadow_rows_only(tmp_path, challengers):
    (logistic, leads), (boosted, _) = challengers
    log = ScoreLog(tmp_path)
    shadows = ShadowScoring(log, flush_s=60, max_rows=10_000)
    served = datetime(2026, 12, 1, 9, tzinfo=UTC)
    broken = _rows(logistic, leads, 0, 2)
    del broken.columns[logistic.feature_names[0]]  # a row the challenger cannot read
    shadows.add(broken, served)
    shadows.add(_rows(boosted, leads, 2, 4), served)
    shadows.flush()
    assert log.read()["pid"].tolist() == list(leads["pid"].iloc[2:4])
    shadows.close()
