"""The site in a real browser: headless Chromium (Debian's, driven by Playwright through its
executable path) opens the pages from disk with every request that is not a local file
blocked and counted.  Screenshots go to ``test-artifacts/site/`` (``HSTLC_TEST_ARTIFACTS``
to change)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("prefect_harness")]

CHROMIUM = os.environ.get("HSTLC_CHROMIUM", "/usr/bin/chromium")
#: Flags of a headless Chromium on a closed network (no background connections).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--allow-file-access-from-files"]
ARTIFACTS = Path(os.environ.get("HSTLC_TEST_ARTIFACTS",
                                Path(__file__).resolve().parents[1] / "test-artifacts")) / "site"


@dataclass
class Watch:
    """What a page did that it must not: requests off the disk, console errors."""

    blocked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    playwright_api = pytest.importorskip("playwright.sync_api", reason="Playwright's Python package "
                                         "is not installed (scripts/test installs it)")
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip(f"no Chromium at {CHROMIUM} (scripts/test installs Debian's chromium)")
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[tuple[Any, Watch]]:
    watch = Watch()
    context = browser.new_context(viewport={"width": 1400, "height": 1000})

    def route(request_route: Any) -> None:
        url = request_route.request.url
        if url.startswith(("file://", "data:", "blob:")):
            request_route.continue_()
        else:
            watch.blocked.append(url)
            request_route.abort()

    context.route("**/*", route)
    tab = context.new_page()
    tab.on("console", lambda message: watch.errors.append(message.text)
           if message.type == "error" else None)
    tab.on("pageerror", lambda error: watch.errors.append(str(error)))
    yield tab, watch
    context.close()


def shot(tab: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    tab.screenshot(path=str(path), full_page=False)
    return path


def open_file(tab: Any, path: Path) -> None:
    tab.goto(Path(path).resolve().as_uri())
    tab.wait_for_load_state("load")


def canvas_drawn(tab: Any) -> int:
    """How many canvases of the page hold non-blank pixels."""
    return int(tab.evaluate("""() => {
        let drawn = 0;
        for (const canvas of document.querySelectorAll('canvas')) {
            if (!canvas.width || !canvas.height) continue;
            const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
            const first = [data[0], data[1], data[2], data[3]];
            for (let i = 0; i < data.length; i += 16) {
                if (data[i] !== first[0] || data[i + 1] !== first[1] || data[i + 2] !== first[2]
                    || data[i + 3] !== first[3]) { drawn += 1; break; }
            }
        }
        return drawn;
    }"""))


def bokeh_canvases(tab: Any) -> int:
    """Bokeh draws into canvases inside shadow roots: count those with pixels drawn."""
    tab.wait_for_function("() => window.Bokeh !== undefined && Bokeh.documents.length > 0",
                          timeout=20000)
    tab.wait_for_timeout(500)
    return int(tab.evaluate("""() => {
        const canvases = [];
        const visit = (root) => {
            for (const element of root.querySelectorAll('*')) {
                if (element.tagName === 'CANVAS') canvases.push(element);
                if (element.shadowRoot) visit(element.shadowRoot);
            }
        };
        visit(document);
        let drawn = 0;
        for (const canvas of canvases) {
            if (!canvas.width || !canvas.height) continue;
            const context = canvas.getContext('2d');
            if (!context) continue;
            const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
            let ink = 0;
            for (let i = 0; i < data.length; i += 4) {
                if (data[i + 3] > 0 && (data[i] < 200 || data[i + 1] < 200 || data[i + 2] < 200)) ink += 1;
            }
            if (ink > 200) drawn += 1;
        }
        return drawn;
    }"""))


def test_the_index_and_the_catalogue_table_sort_filter_and_link(built_site, page):
    tab, watch = page
    settings, _ = built_site
    site = Path(settings.plot_dir)
    open_file(tab, site / "index.html")
    assert tab.locator("a[href='catalogue.html']").count() == 1
    shot(tab, "index")

    tab.click("a[href='catalogue.html']")
    tab.wait_for_selector("table#catalogue tbody tr")
    rows = tab.locator("table#catalogue tbody tr")
    total = rows.count()
    assert total == 9
    assert "9" in tab.inner_text("#shown-count")

    def column(key: str) -> list[str]:
        return tab.eval_on_selector_all(f"table#catalogue tbody tr td[data-key='{key}']",
                                        "cells => cells.map(c => c.title || c.textContent)")

    tab.click("th[data-key='poisson_factor']")
    ascending = [float(v) for v in column("poisson_factor") if v.strip() not in ("", "–", "-")]
    assert ascending == sorted(ascending) and len(ascending) >= 5
    tab.click("th[data-key='poisson_factor']")
    descending = [float(v) for v in column("poisson_factor") if v.strip() not in ("", "–", "-")]
    assert descending == sorted(descending, reverse=True)
    shot(tab, "catalogue-sorted")

    tab.fill("input[data-filter='targname']", "stis")
    tab.wait_for_function("() => document.querySelectorAll('table#catalogue tbody tr').length === 4")
    assert set(column("targname")) == {"STIS-STAR"}
    tab.fill("input[data-filter='targname']", "")
    tab.fill("input[data-filter='kind']", "composite")
    tab.wait_for_function("() => document.querySelectorAll('table#catalogue tbody tr').length === 4")
    shot(tab, "catalogue-filtered")

    # The links of a row reach its page, its periodogram and its FITS file.
    first = tab.locator("table#catalogue tbody tr").first
    hrefs = {kind: first.locator(f"a.{kind}").get_attribute("href")
             for kind in ("page", "periodogram", "fits")}
    for kind, href in hrefs.items():
        target = (site / href).resolve()
        assert target.is_file(), (kind, href)
    assert hrefs["fits"].endswith(".fits")
    with tab.expect_navigation():
        first.locator("a.page").click()
    assert tab.url.endswith(".html") and "/lightcurves/" in tab.url
    assert bokeh_canvases(tab) >= 4  # gross, background, net, flux
    shot(tab, "composite-page")
    assert watch.blocked == [] and watch.errors == []


def test_every_kind_of_page_draws_offline(built_site, page):
    tab, watch = page
    settings, _ = built_site
    site = Path(settings.plot_dir)
    open_file(tab, site / "summary.html")
    assert bokeh_canvases(tab) >= 4
    shot(tab, "summary")
    open_file(tab, site / "targets" / "GJ436.html")
    assert bokeh_canvases(tab) >= 4
    shot(tab, "target-GJ-436")
    open_file(tab, site / "lightcurves" / "GJ436" / "ld9m10ujq_curve.html")
    assert bokeh_canvases(tab) >= 4
    open_file(tab, site / "lightcurves" / "GJ436" / "ld9m10ujq_curve_periodogram.png")
    assert tab.evaluate("() => document.images[0].naturalWidth") > 300
    open_file(tab, site / "interesting.html")
    tab.wait_for_selector("#shown-count")
    shot(tab, "interesting")
    assert watch.blocked == [] and watch.errors == []
