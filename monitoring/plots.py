"""The report drawn for the /monitor page: each chart a matplotlib figure rendered on the
server to a PNG data URI (leadscore/charts.py), or None when there is nothing to draw."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from leadscore.charts import new_figure as _figure
from leadscore.monitoring.report import Report

GREY, RED = "#888888", "#d73027"
PSI_FEATURES = 20


def _label(report: Report, version: str) -> str:
    return f"v{version} ({report.models[version]['role']})"


def reliability_chart(report: Report) -> Figure | None:
    """Observed conversion against mean predicted probability per equal-count bin, per version."""
    if not report.reliability:
        return None
    fig, ax = _figure()
    top = 1e-3
    for version, table in report.reliability.items():
        ax.plot(table["predicted"], table["observed"], marker="o", lw=1.4, label=_label(report, version))
        top = max(top, table["predicted"].max(), table["observed"].max())
    ax.plot([0, top * 1.05], [0, top * 1.05], ls="--", color=GREY, lw=1, label="perfectly calibrated")
    ax.set(xlabel="mean predicted probability (bin)", ylabel="observed conversion rate (bin)",
           title="Reliability of the matured scores")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    return fig


def _grouped_bars(ax: Axes, tables: dict[str, pd.DataFrame], key: str, report: Report) -> None:
    width = 0.8 / max(len(tables), 1)
    for i, (version, table) in enumerate(tables.items()):
        positions = np.arange(len(table)) + i * width
        ax.bar(positions, table["rate"].fillna(0.0), width, label=_label(report, version))
    first = next(iter(tables.values()))
    ax.set_xticks(np.arange(len(first)) + width * (len(tables) - 1) / 2, first[key].astype(str).tolist())
    ax.set_ylabel("conversion rate")
    ax.legend()
    ax.grid(alpha=0.3, axis="y")


def decile_chart(report: Report) -> Figure | None:
    """Conversion rate of each score decile (1 = the top tenth), per version."""
    if not report.deciles:
        return None
    fig, ax = _figure()
    _grouped_bars(ax, report.deciles, "decile", report)
    ax.set(xlabel="score decile (1 = highest)", title="Conversion by score decile, matured scores")
    return fig


def tier_chart(report: Report) -> Figure | None:
    """Conversion rate of each tier, best first, per version."""
    if not report.tiers:
        return None
    fig, ax = _figure()
    _grouped_bars(ax, report.tiers, "tier", report)
    ax.set(title="Conversion by tier, matured scores")
    return fig


def psi_chart(report: Report, threshold: float | None) -> Figure | None:
    """PSI of the `PSI_FEATURES` most drifted features (and the score), the most drifted at the
    top, with the alert threshold."""
    if report.drift.empty:
        return None
    rows = report.drift[["feature", "psi"]].head(PSI_FEATURES).iloc[::-1]
    if report.score_psi is not None:
        rows = pd.concat([rows, pd.DataFrame({"feature": ["(score)"], "psi": [report.score_psi]})])
    fig, ax = _figure(6.4, 0.3 * len(rows) + 1.4)
    colours = [RED if threshold is not None and v > threshold else "#4C72B0" for v in rows["psi"]]
    ax.barh(rows["feature"], rows["psi"], color=colours)
    if threshold is not None:
        ax.axvline(threshold, ls="--", color=RED, lw=1, label=f"alert above {threshold:g}")
        ax.legend(loc="lower right")
    ax.set(xlabel="PSI, last window against the champion's data", title="Drift, most drifted features")
    ax.grid(alpha=0.3, axis="x")
    return fig


def _breaching(rows: pd.DataFrame, low: float | None, high: float | None) -> pd.Series:
    """Whether each row's whole interval is beyond a threshold (none is without thresholds)."""
    beyond = pd.Series(False, index=rows.index)
    if high is not None:
        beyond |= rows["low"] > high
    if low is not None:
        beyond |= rows["high"] < low
    return beyond


def early_chart(report: Report, low: float | None, high: float | None) -> Figure | None:
    """Observed / expected opportunities of the scores younger than the horizon (each window and
    role, overall and per tier) with their intervals, 1 (as the model expects) and the alert
    thresholds: a bar whose whole interval is beyond a threshold is a breach, in red."""
    rows = report.early.dropna(subset=["oe"]).iloc[::-1]
    if rows.empty:
        return None
    names = [f"{r.role}, last {r.window_days} d, {r.group} ({r.observed}/{r.expected:.1f})"
             for r in rows.itertuples()]
    beyond = _breaching(rows, low, high)
    fig, ax = _figure(6.4, 0.3 * len(rows) + 1.6)
    ax.errorbar(rows["oe"], names, xerr=[rows["oe"] - rows["low"], rows["high"] - rows["oe"]], fmt="none",
                ecolor=GREY, lw=1)
    ax.scatter(rows["oe"], names, color=[RED if b else "#4C72B0" for b in beyond], zorder=3)
    ax.axvline(1.0, color=GREY, lw=1, label="as expected")
    for threshold in (low, high):
        if threshold is not None:
            ax.axvline(threshold, ls="--", color=RED, lw=1)
    ax.set(xlabel=f"observed / expected opportunities so far ({report.delay_source} delays)",
           title="Early outcomes, before the horizon")
    ax.grid(alpha=0.3, axis="x")
    return fig


def operations_chart(report: Report) -> Figure:
    """MQLs and their messages, sales' dispositions (rejections by reason), quarantined records."""
    ops = report.operations
    counts = {f"MQL {status}": n for status, n in ops["webhook"]["mql"].items()}
    counts |= {f"sales {k}": ops["dispositions"][k] for k in ("accepted", "rejected", "recycled")}
    counts |= {f"rejected: {reason}": n for reason, n in ops["dispositions"]["rejection_reasons"].items()}
    counts |= {"records kept": ops["ingest"]["kept"], "records quarantined": ops["ingest"]["quarantined"]}
    fig, ax = _figure(6.4, 0.3 * len(counts) + 1.4)
    names = list(counts)[::-1]
    bars = ax.barh(names, [counts[n] for n in names], color="#4C72B0")
    ax.bar_label(bars, fmt="%d", padding=3, fontsize=8)
    ax.set(xlabel="count", title="Operations")
    ax.grid(alpha=0.3, axis="x")
    return fig
