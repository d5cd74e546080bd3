"""The marketer's dashboard (the service's /marketing page): a list of panels.

A panel is a title, a function of the settings returning its table (a data frame), a chart of
that table and the name of its CSV download (`/marketing/panels/<slug>.csv`, the same table).
The page renders every panel of `PANELS` in order; a panel whose data is not there yet (no
middle layer, no scores) shows why instead of a chart, and the others still render. A new
panel is one more line in `PANELS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
from matplotlib.figure import Figure

from leadscore.config import Settings
from leadscore.marketing import conversion, frequency, funnel, plots


@dataclass(frozen=True)
class Panel:
    slug: str  # the CSV route's name and the panel's HTML id
    title: str
    table: Callable[[Settings], pd.DataFrame]
    chart: Callable[[pd.DataFrame], Figure | None]
    description: str = ""


PANELS: tuple[Panel, ...] = (
    Panel("contact-frequency", "Contact frequency", frequency.frequency_table, plots.frequency_chart,
          "Email open and click rates by sends a month, for people who showed interest in a product "
          "and people who did not; the dashed line is where more sends start to lower the open rate."),
    Panel("conversion-by-tier", "Conversion by tier over time", conversion.conversion_by_tier,
          plots.tier_conversion_chart,
          "Of the leads scored in a month with each tier, the share that converted within the "
          "horizon (batch scores and, once they mature, the scores served live)."),
    Panel("funnel", "The funnel by channel", lambda settings: funnel.funnel_by(settings, "channel"),
          plots.funnel_chart, "People who reached each stage (lead, MQL, accepted by sales, "
          "opportunity, customer) by the channel of their first touch, and the rates between stages."),
    Panel("campaign-roi", "Campaign ROI", funnel.campaign_roi, plots.roi_chart,
          "Each campaign's cost, reach and engagement, the people it sourced at each stage, cost per "
          "stage, and pipeline and revenue attributed by first touch, last touch and linear multi-touch."),
)


def panel(slug: str) -> Panel:
    """The panel of `slug`; KeyError naming the valid ones."""
    for candidate in PANELS:
        if candidate.slug == slug:
            return candidate
    raise KeyError(f"no dashboard panel {slug!r}; panels: {[p.slug for p in PANELS]}")
