"""The marketer's dashboard: GET /marketing, the panels of marketing/dashboard.py as one HTML
page with their charts drawn on the server (PNG data URIs: no script, nothing fetched), and
GET /marketing/panels/{slug}.csv, each panel's table as CSV.

Both depend on `guard` (roles that may use `dashboard`: the marketer, the admin). A panel's
table is computed on each request, from the middle layer, the batch scores and the logs as
they are now (a page's panels from one `PanelInputs`: the lifecycle built once); one that
cannot be computed yet (FileNotFoundError, LookupError, ValueError: a stage not run) shows
why, and its CSV is a 503 saying so.
"""

# No `from __future__ import annotations`: FastAPI reads the routes' `Annotated` parameters.
# The panels (pandas, DuckDB, matplotlib) are imported by the first request, not by a worker
# building the service (tests/unit/test_import_weight.py).
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any

import jinja2
from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from leadscore.access.auth import Caller
from leadscore.config import Settings
from leadscore.serving.pages import template_environment

if TYPE_CHECKING:
    from leadscore.marketing.dashboard import Panel, PanelInputs

PAGE_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
                "Cache-Control": "no-store"}
NOT_YET = (FileNotFoundError, LookupError, ValueError)


@dataclass(frozen=True)
class RenderedPanel:
    panel: "Panel"
    chart: str | None  # a PNG data URI, or None with `problem` or an empty table
    rows: int
    problem: str | None


@cache
def _environment() -> jinja2.Environment:
    return template_environment()


def render_panel(item: "Panel", inputs: "PanelInputs") -> RenderedPanel:
    """One panel's chart, or why it cannot be drawn yet."""
    from leadscore.charts import data_uri

    try:
        table = item.table(inputs)
    except NOT_YET as error:
        return RenderedPanel(item, None, 0, str(error))
    figure = item.chart(table)
    return RenderedPanel(item, data_uri(figure) if figure is not None else None, len(table), None)


def dashboard_page(settings: Settings, viewer: str) -> str:
    """Every panel, from one request's inputs (the lifecycle built once for the page)."""
    from leadscore.marketing.dashboard import PANELS, PanelInputs

    with PanelInputs(settings) as inputs:
        panels = [render_panel(item, inputs) for item in PANELS]
    return _environment().get_template("marketing.html").render(panels=panels, viewer=viewer)


def panel_csv(slug: str, settings: Settings) -> str:
    """A panel's table as CSV; KeyError for an unknown panel, NOT_YET when it has no data."""
    from leadscore.marketing.dashboard import PanelInputs, panel

    chosen = panel(slug)
    with PanelInputs(settings) as inputs:
        return chosen.table(inputs).to_csv(index=False)


def build_router(settings: Settings, guard: Callable[..., Any]) -> APIRouter:
    """GET /marketing and GET /marketing/panels/{slug}.csv, behind `guard`."""
    router = APIRouter(prefix="/marketing", tags=["marketing"], dependencies=[Depends(guard)])

    @router.get("", response_class=HTMLResponse)
    async def dashboard(caller: Annotated[Caller, Depends(guard)]) -> HTMLResponse:
        """The dashboard: every panel's chart drawn on the server, each with its CSV."""
        page = await run_in_threadpool(dashboard_page, settings, caller.employee_id or caller.name)
        return HTMLResponse(page, headers=PAGE_HEADERS)

    @router.get("/panels/{slug}.csv", responses={
        404: {"description": "No panel of that name"}, 503: {"description": "Its data are not built yet"}})
    async def panel_table(slug: str) -> Response:
        """One panel's table, as its chart draws it."""
        try:
            text = await run_in_threadpool(panel_csv, slug, settings)
        except KeyError as error:
            raise HTTPException(404, str(error.args[0])) from None
        except NOT_YET as error:
            raise HTTPException(503, f"panel {slug!r} has no data yet: {error}") from None
        return Response(text, media_type="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{slug}.csv"'})

    return router
