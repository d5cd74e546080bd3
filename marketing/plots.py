"""The dashboard's charts (marketing/dashboard.py): each a matplotlib figure of one panel's
table, drawn on the server (leadscore/charts.py), or None when the table is empty."""

from __future__ import annotations

import pandas as pd
from matplotlib.dates import DateFormatter, MonthLocator
from matplotlib.figure import Figure

from leadscore.charts import new_figure
from leadscore.marketing.frequency import GROUPS
from leadscore.marketing.funnel import FUNNEL

GROUP_LABELS = {"interested": "showed interest in a product", "not_interested": "no product interest"}
GROUP_COLOURS = {"interested": "#1a9850", "not_interested": "#4C72B0"}
ROI_MARGIN = 1.5  # the ROI chart's log axes reach this factor past the data; its edge holds the zeros


def frequency_chart(table: pd.DataFrame) -> Figure | None:
    """Open and click rate by sends a month, one line each per group, its turning point marked."""
    if table.empty:
        return None
    fig, ax = new_figure()
    for group in GROUPS:
        curve = table[table["interest"] == group].sort_values("sends_per_month")
        if curve.empty:
            continue
        colour, label = GROUP_COLOURS[group], GROUP_LABELS[group]
        sends = curve["sends_per_month"]
        ax.plot(sends, curve["open_rate"], marker="o", color=colour, label=f"opens: {label}")
        ax.plot(sends, curve["click_rate"], ls=":", color=colour, label=f"clicks: {label}")
        point = curve["turning_point"].iloc[0]
        if pd.notna(point):
            ax.axvline(point, ls="--", color=colour, lw=1, label=f"turning point: {point:g} a month")
    ax.set(xlabel="sends a month: emails to the person in the 30 days up to an email",
           ylabel="rate per email", title="Contact frequency: email response by sends a month")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def tier_conversion_chart(table: pd.DataFrame) -> Figure | None:
    """Conversion rate by month of the score, one line per tier (batch solid, live dashed)."""
    if table.empty:
        return None
    fig, ax = new_figure()
    for (source, tier), rows in table.groupby(["source", "tier"], sort=False):
        ax.plot(pd.to_datetime(rows["month"]), rows["conversion_rate"], marker="o",
                ls="-" if source == "batch" else "--", label=f"{tier} ({source})")
    ax.set(xlabel="month the lead was scored", ylabel="converted within the horizon",
           title="Conversion by tier over time")
    ax.xaxis.set_major_locator(MonthLocator())
    ax.xaxis.set_major_formatter(DateFormatter("%Y-%m"))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def funnel_chart(table: pd.DataFrame) -> Figure | None:
    """People passing each stage of the funnel, one line per channel (log scale: each stage is
    a fraction of the one before)."""
    if table.empty:
        return None
    fig, ax = new_figure()
    for _, row in table.iterrows():
        counts = [row[stage] for stage in FUNNEL]
        ax.plot(FUNNEL, [count if count > 0 else float("nan") for count in counts], marker="o",
                label=f"{row['channel']} ({row['lead_to_customer']:.1%} lead to customer)")
    ax.set(yscale="log", xlabel="stage", ylabel="people who reached it",
           title="The funnel by channel of the first touch")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def roi_chart(table: pd.DataFrame) -> Figure | None:
    """Each campaign's cost against the revenue attributed to it (linear multi-touch), by
    channel, on log-log axes: costs run to a few hundred thousands, revenues to millions, and on
    linear axes every campaign sat at x≈0. Each axis spans its own data; the break-even line is
    drawn only where it crosses that range (above it a campaign returned more than it cost). A
    log axis has no 0: a campaign without cost or revenue sits on the left or bottom edge."""
    known = table[table["cost_usd"].notna()]
    cost, revenue = known["cost_usd"], known["revenue_usd_linear"]
    x_span, y_span = _positive_span(cost, revenue), _positive_span(revenue, cost)
    if x_span is None or y_span is None:
        return None
    fig, ax = new_figure()
    x_edge, y_edge = x_span[0] / ROI_MARGIN, y_span[0] / ROI_MARGIN
    for channel, rows in known.groupby("channel"):
        ax.scatter(_on_log_axis(rows["cost_usd"], x_edge), _on_log_axis(rows["revenue_usd_linear"], y_edge),
                   label=str(channel), alpha=0.8, clip_on=False)
    low, high = max(x_span[0], y_span[0]), min(x_span[1], y_span[1])
    if low < high:
        ax.plot([low, high], [low, high], ls="--", color="grey", lw=1, label="revenue = cost")
    ax.set(xscale="log", yscale="log", xlim=(x_edge, x_span[1] * ROI_MARGIN),
           ylim=(y_edge, y_span[1] * ROI_MARGIN), xlabel="cost (USD)",
           ylabel="revenue attributed, linear multi-touch (USD)", title="Campaign ROI")
    ax.legend(fontsize=8, title=_edge_note(cost, revenue), title_fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def _positive_span(values: pd.Series, otherwise: pd.Series) -> tuple[float, float] | None:
    """The smallest and largest of `values` above 0 (what a log axis can place); those of
    `otherwise` when none is (every campaign on that axis' edge); None when neither has any."""
    for series in (values, otherwise):
        positive = series[series > 0]
        if not positive.empty:
            return float(positive.min()), float(positive.max())
    return None


def _on_log_axis(values: pd.Series, edge: float) -> pd.Series:
    """The values, with 0 (which a log axis cannot place) moved to the axis' `edge`."""
    return values.where(values > 0, edge)


def _edge_note(cost: pd.Series, revenue: pd.Series) -> str | None:
    """What the campaigns on an edge are (the legend's title), or None when there are none."""
    no_cost, no_revenue = int((cost <= 0).sum()), int((revenue <= 0).sum())
    if not (no_cost or no_revenue):
        return None
    return f"on the left edge: {no_cost} without cost\non the bottom edge: {no_revenue} without revenue"
