"""The marketer's dashboard (/marketing) in headless Chromium, on the tiny world the pipeline
built, served by uvicorn from the service built in process: every panel's chart drawn, each
CSV the panel's table, a screenshot; a role without `dashboard` gets a 403."""

from __future__ import annotations

import csv
import io

import pytest
from in_process import served_app, service_in_process

from leadscore.marketing.dashboard import PANELS, PanelInputs

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def served(world):
    """(service, base URL): the service's app behind uvicorn."""
    with service_in_process(world["config_file"]) as service:
        from leadscore.serving.service import app

        with served_app(app) as base:
            yield service, base


def _signed_in(browser, base: str, key: str):
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    page.goto(f"{base}/login?next=/marketing")
    page.fill("#key", key)
    page.click("button[type=submit]")
    return page


def test_the_marketer_sees_every_panel_drawn_and_downloads_each_table(served, browser, tmp_path):
    service, base = served
    page = _signed_in(browser, base, "demo-marketer-key")
    for panel in PANELS:
        section = page.locator(f"section#{panel.slug}")
        assert section.locator("h2").text_content() == panel.title
        drawn = page.eval_on_selector(f"section#{panel.slug} img", "img => img.complete && img.naturalWidth")
        assert drawn > 300, panel.slug
        answer = page.request.get(f"{base}/marketing/panels/{panel.slug}.csv")
        assert answer.status == 200 and answer.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(answer.text())))
        with PanelInputs(service.settings) as inputs:
            table = panel.table(inputs)
        assert len(rows) == len(table) > 0 and list(rows[0]) == list(table.columns)
        assert f"{len(table)} rows" in section.inner_text()
    page.screenshot(path=str(tmp_path / "marketing-dashboard.png"), full_page=True)
    assert (tmp_path / "marketing-dashboard.png").stat().st_size > 20_000


def test_the_frequency_csv_holds_the_rates_its_chart_draws(served, browser):
    _, base = served
    page = _signed_in(browser, base, "demo-marketer-key")
    answer = page.request.get(f"{base}/marketing/panels/contact-frequency.csv")
    rows = list(csv.DictReader(io.StringIO(answer.text())))
    assert rows and {row["interest"] for row in rows} <= {"interested", "not_interested"}
    for row in rows:
        assert float(row["open_rate"]) == pytest.approx(int(row["opens"]) / int(row["sends"]))
    assert page.request.get(f"{base}/marketing/panels/no-such-panel.csv").status == 404


def test_a_role_without_the_dashboard_gets_a_403(served, browser):
    _, base = served
    page = _signed_in(browser, base, "demo-sales-R001")
    assert "may not" in page.inner_text("#message")
    answer = page.request.get(f"{base}/marketing/panels/contact-frequency.csv",
                              headers={"X-API-Key": "demo-crm-key"})
    assert answer.status == 403
