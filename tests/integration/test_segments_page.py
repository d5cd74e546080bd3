"""The segment builder page in headless Chromium: the seed example built with the pickers
shows the engine's live count; a saved segment, just saved or opened from the list, offers its
export, whole or within the contact frequency cap; the page works inside another site's iframe.

The router is served by uvicorn over the tiny hand-made world of the unit tests
(tests/unit/segments/segments_tiny_world.py), with its email history whose P1 is over the
frequency cap, behind a guard that, like the service's,
knows the caller by the `leadscore_session` cookie that /login sets. The stand-in /login here
sets it the way an embeddable service over https must (`SameSite=None; Secure; Partitioned`):
a browser sends a cookie to a frame of another site only then.
"""

from __future__ import annotations

import csv
import importlib.util
import io
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi import Cookie, FastAPI, HTTPException, Query
from fastapi.responses import HTMLResponse, RedirectResponse
from in_process import served_app
from playwright.sync_api import expect, sync_playwright

from leadscore.access.audit import AuditLog
from leadscore.access.auth import Caller
from leadscore.config import FrequencySettings, MarketingSettings, load_settings
from leadscore.local_servers import free_port
from leadscore.segments.api import build_router
from leadscore.segments.dsl import examples
from leadscore.segments.engine import SegmentEngine

pytestmark = pytest.mark.integration

PROJECT_ROOT = Path(__file__).resolve().parents[2]
KEY = "marketer-key"


def _tiny_world():
    """The unit tests' world module, loaded by path (test folders are not packages)."""
    path = PROJECT_ROOT / "tests" / "unit" / "segments" / "segments_tiny_world.py"
    spec = importlib.util.spec_from_file_location("segments_tiny_world", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tiny = _tiny_world()


def guard(leadscore_session: str | None = Cookie(None)) -> Caller:
    if leadscore_session != KEY:
        raise HTTPException(401, "no API key")
    return Caller(name="Marketing", role="marketer", employee_id="E0100", can=frozenset({"segments"}),
                  own_accounts_only=False, reveal_pii=False)


def login(next_path: str = Query("/segments/page", alias="next")) -> RedirectResponse:
    """Stand-in for the service's /login: sets the session cookie, then goes to `next`."""
    response = RedirectResponse(next_path if next_path.startswith("/") else "/", status_code=303)
    response.headers.append("set-cookie", f"leadscore_session={KEY}; Path=/; HttpOnly; SameSite=None; "
                                          "Secure; Partitioned")
    return response


def _host_page(frame_src: str) -> str:
    """Another system's page embedding the builder; shows what the builder posts to it."""
    return f"""<!doctype html><html><body><h1>CRM</h1><div id="got">nothing yet</div>
        <iframe src="{frame_src}" width="1200" height="900"></iframe>
        <script>addEventListener("message", (e) => {{
          document.getElementById("got").textContent = [e.data.type, e.data.id, e.data.count].join(" "); }});
        </script></body></html>"""


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(engine, base URL) of uvicorn serving the router and a host page at /host."""
    data_dir = tiny.build(tmp_path_factory.mktemp("segments-page") / "data")
    tiny.add_frequency_history(data_dir / "middle.duckdb")
    settings = load_settings(PROJECT_ROOT / "config" / "leadscore.yaml").with_data_dir(data_dir)
    marketing = MarketingSettings(frequency=FrequencySettings(min_sends=20))
    engine = SegmentEngine(settings.model_copy(update={"marketing": marketing}))
    port = free_port()
    app = FastAPI()
    app.include_router(build_router(engine, guard, AuditLog(data_dir.parent / "audit.jsonl")))
    builder = quote(f"/segments/page?parent_origin=http://localhost:{port}")
    app.get("/login")(login)
    app.get("/host")(lambda: HTMLResponse(_host_page(f"http://127.0.0.1:{port}/login?next={builder}")))
    with served_app(app, port) as base:
        yield engine, base, port


@pytest.fixture
def browser():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def browser_context(browser):
    """A browser that signed in at the service (its own site, not framed)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    context.add_cookies([{"name": "leadscore_session", "value": KEY, "domain": "127.0.0.1", "path": "/"}])
    yield context
    context.close()


def _event_condition(page, index: int, event_type: str, days: int, prop: str, op: str):
    """Add an event condition to the root group with the pickers; returns its property filter."""
    page.locator(".group-head .add-condition").first.click()
    condition = page.locator(".condition").nth(index)
    condition.locator(".event-type").select_option(event_type)
    condition.locator(".last-days").fill(str(days))
    condition.locator(".add-filter").click()
    condition = page.locator(".condition").nth(index)
    condition.locator(".property").select_option(prop)
    condition.locator(".op").select_option(op)
    return page.locator(".condition").nth(index).locator(".filter .value")


def _count(page):
    return page.locator("#count")


def _downloaded_pids(page, link) -> list[str]:
    """The pids of the CSV that following `link` (on `page` or in its frame) downloads."""
    with page.expect_download() as download:
        link.click()
    return [row["pid"] for row in csv.DictReader(io.StringIO(Path(download.value.path()).read_text()))]


def test_seed_example_built_with_the_pickers_shows_the_engine_count(served, browser_context, tmp_path):
    engine, base, _ = served
    expected = engine.count(examples()["seed"])
    page = browser_context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(error))
    page.goto(f"{base}/segments/page")
    expect(_count(page)).to_have_attribute("data-count", "0")  # an empty OR is no one

    _event_condition(page, 0, "email_open", 7, "subject", "contains").fill("Product A")
    expect(_count(page)).to_have_attribute("data-count", "2")  # live, as conditions change
    urls = [f"{tiny.SITE}/product-a", f"{tiny.SITE}/pricing", f"{tiny.SITE}/contact-sales"]
    _event_condition(page, 1, "web_visit", 30, "url", "in").select_option(urls)
    _event_condition(page, 2, "purchase", 7, "product", "=").select_option("Product A")

    expect(_count(page)).to_have_attribute("data-count", str(expected["count"]))
    assert expected["count"] == len(tiny.SEED_MEMBERS)
    for tier, members in expected["by_tier"].items():
        expect(page.locator(f'.tier[data-tier="{tier}"]')).to_contain_text(str(members))
    expect(page.locator("#axes > div")).to_have_count(100)  # the fit x interest plane, 10 x 10
    for fit, interest, members in expected["by_axes"]:
        expect(page.locator(f'#axes [data-fit="{fit}"][data-interest="{interest}"]')).to_have_attribute(
            "data-n", str(members))
    page.locator("#preview-btn").click()
    expect(page.locator("#preview table tbody tr")).to_have_count(len(tiny.SEED_MEMBERS))
    shown = {page.locator("#preview tbody tr").nth(i).locator("td").first.inner_text()
             for i in range(len(tiny.SEED_MEMBERS))}
    assert shown == tiny.SEED_MEMBERS
    expect(page.locator("#preview")).to_contain_text("a***@acme.com")
    page.screenshot(path=str(tmp_path / "segment-builder.png"), full_page=True)
    assert (tmp_path / "segment-builder.png").stat().st_size > 10_000

    page.locator(".group-head .negate").first.check()  # NOT of the whole OR: everyone else
    expect(_count(page)).to_have_attribute("data-count", str(len(tiny.EVERYONE - tiny.SEED_MEMBERS)))
    page.locator(".group-head .negate").first.uncheck()
    expect(_count(page)).to_have_attribute("data-count", str(expected["count"]))

    page.locator("#name").fill("seed by pickers")
    page.locator("#save").click()
    expect(page.locator("#saved-info")).to_contain_text("saved as seg_")
    expect(page.locator("#export-capped")).to_be_visible()
    assert set(_downloaded_pids(page, page.locator("#export"))) == tiny.SEED_MEMBERS
    assert errors == []


def test_a_segment_saved_before_opened_from_the_list_offers_both_exports(served, browser_context):
    """Saving it again is a 409, so the page offers the exports of any saved segment it opens:
    the whole segment, and within the frequency cap (without P1, over its cap), as the API."""
    engine, base, _ = served
    saved = engine.save({**examples()["seed"].to_data(), "name": "seed saved before"}, "E0100")
    page = browser_context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(error))
    page.goto(f"{base}/segments/page")
    expect(page.locator("#exports")).to_be_hidden()
    page.locator("#saved").select_option(saved["id"])
    expect(_count(page)).to_have_attribute("data-count", str(len(tiny.SEED_MEMBERS)))
    whole, capped = page.locator("#export"), page.locator("#export-capped")
    expect(whole).to_be_visible()
    expect(capped).to_be_visible()
    expect(capped).to_have_text("within the frequency cap")

    everyone, within_cap = _downloaded_pids(page, whole), _downloaded_pids(page, capped)
    assert set(everyone) == tiny.SEED_MEMBERS
    assert len(within_cap) <= len(everyone) and set(within_cap) == tiny.SEED_MEMBERS - {"P1"}
    assert engine.over_frequency_cap(saved["segment"]) == {"P1"}

    page.locator("#save").click()
    expect(page.locator("#saved-info")).to_contain_text("is saved already")
    expect(capped).to_be_visible()  # still the saved segment
    page.locator("#name").fill("seed, renamed")  # no longer the saved one: its exports would mislead
    expect(page.locator("#exports")).to_be_hidden()
    assert errors == []


def test_a_bad_value_shows_the_servers_message(served, browser_context):
    _, base, _ = served
    page = browser_context.new_page()
    page.goto(f"{base}/segments/page")
    page.locator(".group-head .add-condition").first.click()
    page.locator(".condition .kind").select_option("attribute")
    page.locator(".condition .field").select_option("company.employees")
    page.locator(".condition .op").select_option(">=")
    page.locator(".condition .value").fill("1000")
    expect(_count(page)).to_have_attribute("data-count", "2")
    page.locator(".condition .op").select_option("is_set")
    expect(_count(page)).to_have_attribute("data-count", "4")  # C3 and P6 have no employee count


def test_the_page_works_inside_another_sites_iframe(served, browser):
    """The CRM at localhost frames the service at 127.0.0.1 (another site); the user signs in
    inside the frame, then builds, counts and saves there; the CRM hears of the saved id."""
    engine, _, port = served
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(f"http://localhost:{port}/host")
    frame = page.frame_locator("iframe")
    frame.locator('[data-example="seed"]').click()
    expected = engine.count(examples()["seed"])["count"]
    expect(frame.locator("#count")).to_have_attribute("data-count", str(expected))
    frame.locator("#save").click()
    expect(frame.locator("#saved-info")).to_contain_text("saved as seg_")
    expect(page.locator("#got")).to_contain_text("leadscore:segment-saved seg_")
    expect(page.locator("#got")).to_contain_text(f" {expected}")
    # the partitioned cookie goes with the export link followed inside the frame
    assert set(_downloaded_pids(page, frame.locator("#export-capped"))) == tiny.SEED_MEMBERS - {"P1"}
    context.close()
