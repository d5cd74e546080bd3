"""The admin's /monitor page: a monitoring report (monitoring/report.py) as one self-contained
HTML page, its charts drawn on the server (monitoring/plots.py) as inline PNGs."""

from __future__ import annotations

from functools import cache

import jinja2

from leadscore.charts import data_uri
from leadscore.config import MonitoringThresholds
from leadscore.monitoring import plots
from leadscore.monitoring.report import Report
from leadscore.serving.pages import template_environment


def _figure(value: float | None, digits: int = 3) -> str:
    return "—" if value is None or value != value else f"{value:.{digits}f}"  # None or NaN: none


@cache
def _environment() -> jinja2.Environment:
    return template_environment(figure=_figure)


def monitor_page(report: Report, posted: set[str], thresholds: MonitoringThresholds, viewer: str) -> str:
    """The page of `report`; `posted`: the breach keys already sent to the alert webhook."""
    early = plots.early_chart(report, thresholds.min_early_oe_ratio, thresholds.max_early_oe_ratio)
    charts = {"early": early,
              "reliability": plots.reliability_chart(report), "deciles": plots.decile_chart(report),
              "tiers": plots.tier_chart(report), "psi": plots.psi_chart(report, thresholds.max_feature_psi),
              "operations": plots.operations_chart(report)}
    return _environment().get_template("monitor.html").render(
        r=report, posted=posted, viewer=viewer,
        charts={name: data_uri(fig) for name, fig in charts.items() if fig is not None},
        drift=report.drift.head(15).to_dict("records"), early=report.early.to_dict("records"))
