"""The dashboard's Campaign ROI chart, read from its matplotlib Axes: costs of thousands and
revenues of millions on log-log axes, the break-even line only where it crosses the data, and
the campaigns without cost or revenue (a log axis has no 0) on the edges, said in the chart."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from leadscore.marketing import plots

# costs 2,000 .. 280,000 (and one 0), revenues 500 .. 9.8 million (and one 0)
CAMPAIGNS = pd.DataFrame({
    "channel": ["email", "webinar", "event", "email", "webinar"],
    "cost_usd": [2_000.0, 40_000.0, 280_000.0, 0.0, 5_000.0],
    "revenue_usd_linear": [500.0, 1_000_000.0, 9_800_000.0, 30_000.0, 0.0]})


def _roi_axes(table: pd.DataFrame) -> Axes:
    figure = plots.roi_chart(table)
    assert figure is not None
    return figure.axes[0]


def _break_even(ax: Axes) -> tuple[np.ndarray, np.ndarray]:
    line = next(line for line in ax.get_lines() if line.get_label() == "revenue = cost")
    return np.asarray(line.get_xdata()), np.asarray(line.get_ydata())


def test_the_roi_chart_is_log_log_and_its_break_even_line_spans_only_the_data():
    ax = _roi_axes(CAMPAIGNS)
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    xs, ys = _break_even(ax)
    assert list(xs) == list(ys)
    assert (xs.min(), xs.max()) == (2_000.0, 280_000.0)  # where y = x is among the costs and revenues
    assert ax.get_xlim()[1] < 1_000_000  # the cost axis is not stretched to the largest revenue


def test_campaigns_without_cost_or_revenue_sit_on_the_axis_edges_and_the_chart_says_so():
    ax = _roi_axes(CAMPAIGNS)
    points = np.concatenate([collection.get_offsets() for collection in ax.collections])
    assert len(points) == len(CAMPAIGNS)  # none left out
    assert (points[:, 0] == ax.get_xlim()[0]).sum() == 1 and (points[:, 1] == ax.get_ylim()[0]).sum() == 1
    assert ax.get_legend().get_title().get_text() == ("on the left edge: 1 without cost\n"
                                                      "on the bottom edge: 1 without revenue")


def test_without_any_revenue_the_revenue_axis_takes_the_costs_range():
    ax = _roi_axes(CAMPAIGNS.assign(revenue_usd_linear=0.0))
    assert ax.get_ylim() == ax.get_xlim()
    assert "5 without revenue" in ax.get_legend().get_title().get_text()


def test_no_chart_without_a_cost_or_revenue_to_place():
    assert plots.roi_chart(CAMPAIGNS.iloc[:0]) is None
    assert plots.roi_chart(CAMPAIGNS.assign(cost_usd=0.0, revenue_usd_linear=0.0)) is None
