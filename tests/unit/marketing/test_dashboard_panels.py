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
