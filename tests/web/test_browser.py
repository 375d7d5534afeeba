"""The web app in a real browser (Chromium through Playwright) against a real server on 127.0.0.1:
the acme board's tiles match the engine, a KPI page opens, the language switches and back, no console
error, no request leaves 127.0.0.1; a screenshot of every page is saved (see the `screenshots` fixture)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from kpilot.i18n import format_value
from kpilot.report.charts import FORECAST_COLOR, STATUS_COLORS
from kpilot.service import MetricStatus
from tests.web.conftest import AS_OF

pytestmark = pytest.mark.browser


def _rgb(hex_color: str) -> str:
    h = hex_color.lstrip("#")
    return "rgb({}, {}, {})".format(*(int(h[i:i + 2], 16) for i in (0, 2, 4)))


class Watch:
    """What a page did: console errors, uncaught exceptions, and every URL it requested."""

    def __init__(self, page: Any):
        self.errors: list[str] = []
        self.requests: list[str] = []
        page.on("console", lambda m: self.errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        page.on("request", lambda r: self.requests.append(r.url))


@pytest.fixture()
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="fr-FR")
    p = context.new_page()
    p.set_default_timeout(15_000)
    yield p
    context.close()


# Every table whose right edge passes its container's (a neighbour's column drawn over it), as "class: width".
_OVERFLOWING_TABLES = """() => [...document.querySelectorAll('main table')].filter(t => {
  const box = t.parentElement, scrolls = ['auto', 'scroll'].includes(getComputedStyle(box).overflowX);
  return !scrolls && t.getBoundingClientRect().right > box.getBoundingClientRect().right + 1;
}).map(t => (t.closest('[data-dimension]')?.dataset.dimension || t.parentElement.className) + ': '
  + Math.round(t.getBoundingClientRect().width) + ' in ' + Math.round(t.parentElement.getBoundingClientRect().width))"""


def _wait_for_charts(page: Any, n: int) -> None:
    """Until n charts are drawn (a locator: the page's CSP forbids the eval of wait_for_function)."""
    page.locator("[data-spec] svg").nth(n - 1).wait_for()


def _check_tiles(page: Any, board: list[MetricStatus], lang: str) -> None:
    for s in board:
        tile = page.locator(f"article.tile[data-key='{s.key}']")
        assert tile.get_attribute("data-status") == s.status, s.key
        assert tile.locator("[data-role=value]").inner_text() == format_value(s.value, s.unit, lang, currency="EUR")
        assert tile.locator("[data-role=target]").inner_text() == format_value(s.target, s.unit, lang, currency="EUR")
        pill = tile.locator(".pill")
        assert pill.evaluate("e => getComputedStyle(e).backgroundColor") == _rgb(STATUS_COLORS[s.status]), s.key


def test_board_kpi_language(page: Any, live_server: str, engine_board: list[MetricStatus], screenshots: Path) -> None:
    watch = Watch(page)
    page.goto(live_server + "/")
    # The period selector: pick the fixed date and show (an htmx-boosted form).
    page.fill("input[name=as_of]", AS_OF.isoformat())
    page.click(".period button[type=submit]")
    page.wait_for_url(f"**/?as_of={AS_OF.isoformat()}")
    page.wait_for_selector("text=tableau de bord au 15 nov. 2026")
    _wait_for_charts(page, len(engine_board))
    assert page.locator("html").get_attribute("lang") == "fr"
    assert page.locator("article.tile").count() == len(engine_board)
    _check_tiles(page, engine_board, "fr")
    north = page.locator("section.north article.tile")
    assert north.get_attribute("data-key") == "mrr"
    assert "Devenir le logiciel de gestion de référence" in page.locator(".vision").inner_text()
    # Each tile says its decision in words (acme: every KPI has one), with the owner team's name.
    pipeline = page.locator("article.tile[data-key='pipeline_generated'] .decision").inner_text()
    assert "85" in pipeline and "Marketing" in pipeline and "Relancer la campagne LinkedIn Ads PME" in pipeline
    page.screenshot(path=str(screenshots / "board-fr.png"), full_page=True)

    # A KPI page.
    page.click("article.tile[data-key='pipeline_generated'] .tile-name a")
    page.wait_for_url(f"**/metric/pipeline_generated?as_of={AS_OF.isoformat()}")
    page.wait_for_selector("h1:has-text('Pipeline généré')")
    _wait_for_charts(page, 2)  # the tile's sparkline and the history
    assert page.locator(".breakdown").count() == 4  # deals: segment, owner, source_channel, stage
    assert page.locator(".breakdown[data-dimension='segment'] tbody tr").count() >= 2
    page.screenshot(path=str(screenshots / "metric-pipeline_generated-fr.png"), full_page=True)

    # English, then back to French: the choice sticks across pages (a cookie).
    page.click("nav.lang a[data-lang=en]")
    page.wait_for_selector("h2:has-text('History')")
    _wait_for_charts(page, 2)
    assert page.locator("html").get_attribute("lang") == "en"
    assert "as_of=2026-11-15" in page.url
    page.screenshot(path=str(screenshots / "metric-pipeline_generated-en.png"), full_page=True)
    page.click(".crumb a")
    page.wait_for_selector("text=board as of Nov 15, 2026")
    _wait_for_charts(page, len(engine_board))
    _check_tiles(page, engine_board, "en")
    page.screenshot(path=str(screenshots / "board-en.png"), full_page=True)
    page.click("nav.lang a[data-lang=fr]")
    page.wait_for_selector("text=tableau de bord au 15 nov. 2026")
    _check_tiles(page, engine_board, "fr")

    assert watch.errors == []
    hosts = {urlparse(u).hostname for u in watch.requests}
    assert hosts == {"127.0.0.1"}, hosts
    assert any("/static/vendor/vega-embed" in u for u in watch.requests)


@pytest.mark.parametrize("key", ["mrr", "demos_booked", "win_rate", "logo_churn", "won_revenue", "cost_per_demo"])
def test_every_metric_page_renders(page: Any, live_server: str, screenshots: Path, key: str) -> None:
    watch = Watch(page)
    page.goto(f"{live_server}/metric/{key}?as_of={AS_OF.isoformat()}")
    _wait_for_charts(page, 2)
    assert page.locator("[data-spec][data-rendered=error]").count() == 0
    # Side-by-side tables (by dimension, root cause) each stay within their own box.
    assert page.evaluate(_OVERFLOWING_TABLES) == []
    page.screenshot(path=str(screenshots / f"metric-{key}-fr.png"), full_page=True)
    assert watch.errors == []
    assert {urlparse(u).hostname for u in watch.requests} == {"127.0.0.1"}


def test_board_on_a_phone(browser: Any, live_server: str, engine_board: list[MetricStatus], screenshots: Path) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True)
    page = context.new_page()
    watch = Watch(page)
    page.goto(f"{live_server}/?as_of={AS_OF.isoformat()}")
    _wait_for_charts(page, len(engine_board))
    # Nothing wider than the screen: no sideways scrolling on a phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(screenshots / "board-phone-fr.png"), full_page=True)
    page.goto(f"{live_server}/metric/win_rate?as_of={AS_OF.isoformat()}")
    _wait_for_charts(page, 2)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.evaluate(_OVERFLOWING_TABLES) == []
    page.screenshot(path=str(screenshots / "metric-win_rate-phone-fr.png"), full_page=True)
    context.close()
    assert watch.errors == []


@pytest.mark.parametrize("path", ["/audit", "/tree"])
def test_audit_and_tree_pages(page: Any, live_server: str, screenshots: Path, path: str) -> None:
    watch = Watch(page)
    page.goto(f"{live_server}{path}?as_of={AS_OF.isoformat()}")
    if path == "/audit":
        page.wait_for_selector("h1:has-text('Audit')")
        assert page.locator("article.audit-row").count() == 12  # every metric of acme
        assert page.locator("article.audit-row[data-key='mrr'] [data-role=verdict]").inner_text().lower() == "garder"
    else:
        page.wait_for_selector("h1:has-text('Arbre stratégique')")
        assert page.locator(".tree li.node-kpi").count() == 4
        assert page.locator(".tree li.node-north_star").count() == 1
    # The navigation reaches both pages and keeps the date.
    assert page.locator(f"nav.nav a[href='{path}?as_of={AS_OF.isoformat()}']").get_attribute("aria-current") == "page"
    page.screenshot(path=str(screenshots / f"{path.strip('/')}-fr.png"), full_page=True)
    assert watch.errors == []
    assert {urlparse(u).hostname for u in watch.requests} == {"127.0.0.1"}


def test_forecast_on_the_history_chart(page: Any, live_server: str, screenshots: Path) -> None:
    watch = Watch(page)
    page.goto(f"{live_server}/metric/mrr?as_of={AS_OF.isoformat()}")
    _wait_for_charts(page, 2)
    # The forecast's diamonds are drawn in their own colour.
    assert page.locator(f".history svg path[fill='{FORECAST_COLOR}']").count() >= 1
    # The time axis says its months with their year, as the browser draws it (not only the server).
    texts = page.locator(".history svg text").evaluate_all("nodes => nodes.map(n => n.textContent)")
    assert "sept. 2026" in texts and "déc. 2026" in texts, texts  # the last tick: the forecast ahead
    page.locator("#forecast").scroll_into_view_if_needed()
    page.screenshot(path=str(screenshots / "metric-mrr-forecast-fr.png"), full_page=True)
    assert watch.errors == []
