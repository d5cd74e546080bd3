"""The marketer's dashboard (the service's /marketing page): a list of panels.

A panel is a title, a function of the request's `PanelInputs` returning its table (a data
frame), a chart of that table and the name of its CSV download (`/marketing/panels/<slug>.csv`,
the same table). The page renders every panel of `PANELS` in order; a panel whose data is not
there yet (no middle layer, no scores) shows why instead of a chart, and the others still
render. A new panel is one more line in `PANELS`.

`PanelInputs` is what one request reads: the funnel and ROI panels share one connection to the
middle layer with the lifecycle and the people's facts built on it once (funnel.prepare), not
once per panel; nothing is kept between requests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

import duckdb
import pandas as pd
from matplotlib.figure import Figure

from leadscore.config import Settings
from leadscore.marketing import conversion, frequency, funnel, plots
from leadscore.marketing.inputs import connect


class PanelInputs:
    """What the panels of one request read: the settings, and the middle layer's connection
    prepared for the funnel (opened on first use, closed with the request)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._prepared: duckdb.DuckDBPyConnection | None = None

    def prepared(self) -> duckdb.DuckDBPyConnection:
        """The connection with `lifecycle` and `person_fact` built (the first call builds them)."""
        if self._prepared is None:
            con = connect(self.settings)
            try:
                funnel.prepare(con, self.settings.serving.webhook.mql_threshold)
            except BaseException:
                con.close()
                raise
            self._prepared = con
        return self._prepared

    def __enter__(self) -> PanelInputs:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._prepared is not None:
            self._prepared.close()
            self._prepared = None


def frequency_panel(inputs: PanelInputs) -> pd.DataFrame:
    return frequency.frequency_table(inputs.settings)


def conversion_panel(inputs: PanelInputs) -> pd.DataFrame:
    return conversion.conversion_by_tier(inputs.settings)


def funnel_panel(inputs: PanelInputs) -> pd.DataFrame:
    return funnel.funnel_table(inputs.prepared(), "channel")


def roi_panel(inputs: PanelInputs) -> pd.DataFrame:
    return funnel.roi_table(inputs.prepared())


@dataclass(frozen=True)
class Panel:
    slug: str  # the CSV route's name and the panel's HTML id
    title: str
    table: Callable[[PanelInputs], pd.DataFrame]
    chart: Callable[[pd.DataFrame], Figure | None]
    description: str = ""


PANELS: tuple[Panel, ...] = (
    Panel("contact-frequency", "Contact frequency", frequency_panel, plots.frequency_chart,
          "Email open and click rates by sends a month, for people who showed interest in a product "
          "and people who did not; the dashed line is where more sends start to lower the open rate."),
    Panel("conversion-by-tier", "Conversion by tier over time", conversion_panel,
          plots.tier_conversion_chart,
          "Of the leads scored in a month with each tier, the share that converted within the "
          "horizon (batch scores and, once they mature, the scores served live)."),
    Panel("funnel", "The funnel by channel", funnel_panel, plots.funnel_chart,
          "People who reached each stage (lead, MQL, accepted by sales, opportunity, customer) by the "
          "channel of their first touch, and the rates between stages."),
    Panel("campaign-roi", "Campaign ROI", roi_panel, plots.roi_chart,
          "Each campaign's cost, reach and engagement, the people it sourced at each stage, cost per "
          "stage, and pipeline and revenue attributed by first touch, last touch and linear multi-touch."),
)


def panel(slug: str) -> Panel:
    """The panel of `slug`; KeyError naming the valid ones."""
    for candidate in PANELS:
        if candidate.slug == slug:
            return candidate
    raise KeyError(f"no dashboard panel {slug!r}; panels: {[p.slug for p in PANELS]}")
