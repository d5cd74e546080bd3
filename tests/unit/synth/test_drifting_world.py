"""A world with drift: the named segment converts differently after the moment, not before;
without drift the world is the one it always was."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from leadscore.cli import app
from leadscore.config import DriftSettings, WorldSettings
from leadscore.synth import World, generate_world, world_end

SEED, SCALE = 5, 0.1
MOMENT = "start+300d"


# What was added since, without a draw of the rest: the campaigns' columns (synth/campaigns.py,
# drawn from a stream of their own after the rest) of the sources and a truth table, and the
# cycles' probability without drift (no draw at all); without them the world is the one before.
ADDED_SINCE = {
    "web_sessions": ["utm_medium", "utm_campaign", "utm_term", "utm_content"],
    "form_fills": ["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"],
    "event_registrations": ["questions_asked", "demo_requested"],
    "cycles": ["p_without_drift"],
}


def fingerprint(world: World) -> str:
    """Every frame of the world, values, index and dtypes (without what campaigns added)."""
    digest = hashlib.sha256()
    for part in ("sources", "future", "truth"):
        for name, frame in sorted(getattr(world, part).items()):
            if name == "campaign_deals":
                continue
            frame = frame.drop(columns=ADDED_SINCE.get(name, []))
            digest.update(name.encode())
            digest.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
            digest.update(repr(list(frame.dtypes.astype(str))).encode())
    return digest.hexdigest()


def drifted(text: str) -> World:
    return generate_world(WorldSettings(seed=SEED, scale=SCALE, drift=[DriftSettings.parse(text)]))


@pytest.fixture(scope="module")
def base() -> World:
    return generate_world(WorldSettings(seed=SEED, scale=SCALE))


def moment(world: World) -> pd.Timestamp:
    start = world_end(WorldSettings()) - pd.DateOffset(months=WorldSettings().months)
    return start + pd.Timedelta(days=300)


def cycles(world: World) -> pd.DataFrame:
    """One row per cycle with its company's industry."""
    industry = world.truth["companies"].set_index("company_key")["industry"]
    frame = world.truth["cycles"].drop_duplicates("cycle_id").set_index("cycle_id")
    return frame.assign(industry=frame["company_key"].map(industry))


def test_the_default_world_is_byte_for_byte_the_one_before_drift_existed():
    # The fingerprint of WorldSettings(seed=11, scale=0.03, future_days=30) as generated before
    # drift was added (commit cb4b47e), with the email frequency effect since (synth/mail.py:
    # nurture tracks, about four campaigns a week); a change to the default world's draws changes it.
    world = generate_world(WorldSettings(seed=11, scale=0.03, future_days=30))
    assert fingerprint(world) == "d6b612b465a8b063fc656b0427802000d6ea63c189b99a2bd9a696986de9d088"


@pytest.mark.parametrize("text", ["industry=education@end+400d", "base_rate@end+400d"])
def test_a_drift_after_the_drawn_span_changes_nothing(base: World, text: str):
    assert fingerprint(drifted(text)) == fingerprint(base)


def test_a_new_product_line_makes_its_industry_convert_after_the_moment_only(base: World):
    before, after = cycles(base), cycles(drifted(f"industry=education@{MOMENT}"))
    at = moment(base)
    changed = ~np.isclose(before["p_opportunity"], after["p_opportunity"])
    assert changed.any()
    assert (after.loc[changed, "industry"] == "education").all()
    # decided at start + lag, lag at most 56 days: nothing that started long before is touched
    assert (after.loc[changed, "start"] >= at - pd.Timedelta(days=56)).all()
    odds = lambda c: c.loc[changed, "p_opportunity"] / (1 - c.loc[changed, "p_opportunity"])  # noqa: E731
    assert np.allclose(odds(after) / odds(before), 8)
    # the truth keeps each cycle's probability under the rules before the drift
    pd.testing.assert_series_equal(after["p_without_drift"], before["p_opportunity"], check_names=False)
    assert (before["p_without_drift"] == before["p_opportunity"]).all()
    # the same cycles became opportunities at the same times (the source rows' ids are numbered
    # in time order among all opportunities, inbound ones included, so they may shift)
    early = lambda c: c[c["opportunity"] & (c["opportunity_at"] < at)].drop(columns="opportunity_id")  # noqa: E731
    pd.testing.assert_frame_equal(early(before), early(after))
    late = lambda c: c[c["opportunity"] & (c["opportunity_at"] >= at) & (c["industry"] == "education")]  # noqa: E731
    assert len(late(after)) > len(late(before))


def test_a_channel_that_stops_working_stops_bringing_buyers(base: World):
    after = drifted(f"channel=webinar@{MOMENT}")
    at = moment(base)
    late = lambda w: (cycles(w)["opportunity_at"] >= at).sum()  # noqa: E731
    early = lambda w: (cycles(w)["opportunity_at"] < at).sum()  # noqa: E731
    assert early(after) == early(base)
    assert late(after) < 0.85 * late(base)


def test_a_doubled_base_rate_raises_conversion_after_the_moment(base: World):
    after = drifted(f"base_rate@{MOMENT}")
    at = moment(base)
    rate = lambda w, later: (  # noqa: E731
        (cycles(w)["opportunity_at"] >= at) if later else (cycles(w)["opportunity_at"] < at)).sum()
    assert rate(after, False) == rate(base, False)
    assert rate(after, True) > 1.3 * rate(base, True)


def test_the_future_a_replay_sends_follows_the_drifted_rules():
    """A drift dated inside the future: the batch world's cycles are decided as without it,
    the future's opportunities (data/future, sent by `leadscore replay`) are more frequent."""
    world = WorldSettings(seed=SEED, scale=SCALE, future_days=90)
    base = generate_world(world)
    after = generate_world(world.model_copy(update={"drift": [DriftSettings.parse("base_rate*3@end+0d")]}))
    end = world_end(world)
    decided = lambda w, later: ((cycles(w)["opportunity_at"] >= end) if later  # noqa: E731
                                else (cycles(w)["opportunity_at"] < end)).sum()
    assert decided(after, False) == decided(base, False)
    assert len(after.future["opportunities"]) > 1.5 * len(base.future["opportunities"])


def test_the_command_names_a_bad_drift():
    result = CliRunner().invoke(app, ["synth", "--scale", "0.01", "--drift", "industry=farming@end-10d"])
    assert result.exit_code == 2 and "farming" in result.output and "education" in result.output


@pytest.mark.parametrize(("text", "message"), [
    ("industry=farming@end-10d", "not one of"), ("channel=tv@end-10d", "not one of")])
def test_an_unknown_target_is_an_error_that_lists_the_valid_ones(text: str, message: str):
    with pytest.raises(ValueError, match=message):
        drifted(text)


@pytest.mark.parametrize("text", ["industry", "base_rate@yesterday", "weather@end-1d",
                                  "base_rate=software@end-1d"])
def test_a_malformed_drift_is_refused(text: str):
    with pytest.raises(ValueError):
        DriftSettings.parse(text)


def test_a_drift_reads_kind_target_factor_and_moment():
    drift = DriftSettings.parse("industry=education*4@end-120d")
    assert (drift.kind, drift.industry, drift.factor, drift.at) == ("industry", "education", 4.0, "end-120d")
    assert DriftSettings.parse(str(drift)) == drift
