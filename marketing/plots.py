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
    channel; above the diagonal a campaign returned more than it cost."""
    paid = table[table["cost_usd"] > 0]
    if paid.empty:
        return None
    fig, ax = new_figure()
    for channel, rows in paid.groupby("channel"):
        ax.scatter(rows["cost_usd"], rows["revenue_usd_linear"], label=str(channel), alpha=0.8)
    top = max(paid["cost_usd"].max(), paid["revenue_usd_linear"].max())
    ax.plot([0, top], [0, top], ls="--", color="grey", lw=1, label="revenue = cost")
    ax.set(xlabel="cost (USD)", ylabel="revenue attributed, linear multi-touch (USD)",
           title="Campaign ROI")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig
