"""The dashboard's panels: conversion by tier and month from labelled scores, and the list of
panels (each with a table, a chart and a CSV name of its own)."""

from __future__ import annotations

import pandas as pd
import pytest

from leadscore.marketing import conversion, dashboard


def test_conversion_is_the_share_converted_per_month_and_tier():
    labelled = pd.DataFrame({
        "at": pd.to_datetime(["2026-05-03", "2026-05-20", "2026-05-21", "2026-06-01", "2026-06-30"],
                             utc=True),
        "tier": ["high-value", "high-value", "to-nurture", "high-value", "high-value"],
        "converted": [1, 0, 0, 1, 1]})
    table = conversion.tier_rates(labelled, "batch")
    rows = {(str(r.month), r.tier): (r.scores, r.converted, r.conversion_rate) for r in table.itertuples()}
    assert rows == {("2026-05-01", "high-value"): (2, 1, 0.5), ("2026-05-01", "to-nurture"): (1, 0, 0.0),
                    ("2026-06-01", "high-value"): (2, 2, 1.0)}
    assert list(table.columns) == conversion.CONVERSION_COLUMNS
    assert conversion.tier_rates(labelled.iloc[:0], "live").empty


def test_every_panel_has_its_own_csv_name_and_an_unknown_one_is_named():
    slugs = [panel.slug for panel in dashboard.PANELS]
    assert len(set(slugs)) == len(slugs)
    assert dashboard.panel("contact-frequency").title == "Contact frequency"
    with pytest.raises(KeyError, match="contact-frequency"):
        dashboard.panel("funnel-by-moon-phase")


def test_the_funnel_and_roi_panels_of_one_request_build_the_lifecycle_once(settings, tmp_path, monkeypatch):
    """A page's panels share one PanelInputs: one connection, the lifecycle built once, and the
    same tables as `leadscore marketing funnel` and `roi` compute alone."""
    from marketing_tiny_world import write_tiny_world

    from leadscore.marketing import funnel

    world = settings.with_data_dir(tmp_path / "data")
    write_tiny_world(world)
    built = []
    real_prepare = funnel.prepare
    monkeypatch.setattr(funnel, "prepare", lambda con, threshold: built.append(threshold) or real_prepare(
        con, threshold))
    with dashboard.PanelInputs(world) as inputs:
        by_channel = dashboard.panel("funnel").table(inputs)
        roi = dashboard.panel("campaign-roi").table(inputs)
        assert built == [world.serving.webhook.mql_threshold]
        con = inputs.prepared()
    with pytest.raises(Exception, match="closed"):
        con.execute("SELECT 1")  # closed with the request: nothing kept between requests
    pd.testing.assert_frame_equal(by_channel, funnel.funnel_by(world, "channel"))
    pd.testing.assert_frame_equal(roi, funnel.campaign_roi(world))
    assert by_channel.set_index("channel").loc["webinar", "customer"] == 1  # P1, sourced by webinar CA


def test_a_panel_without_a_middle_layer_says_so(settings, tmp_path):
    with dashboard.PanelInputs(settings.with_data_dir(tmp_path / "nothing")) as inputs:
        with pytest.raises(FileNotFoundError, match="identity resolve"):
            dashboard.panel("funnel").table(inputs)
