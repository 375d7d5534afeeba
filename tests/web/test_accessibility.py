"""Every page, in French and English, on a laptop (1440x900) and a phone (390x844): axe-core finds no serious or
critical WCAG 2.1 AA violation; one h1; a skip link to <main id="main"> is the first focusable element; on the phone
the header is at most 64 px high, its menu opens the nav, and nothing scrolls sideways. A screenshot of each."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kpilot.i18n import format_value
from kpilot.service import MetricStatus
from tests.web.conftest import AS_OF

pytestmark = pytest.mark.browser

PAGES = {
    "board": "/",
    "metric": "/metric/pipeline_generated",
    "tree": "/tree",
    "alignment": "/alignment",
    "audit": "/audit",
    "decisions": "/decisions",
    "alerts": "/alerts",
    "settings": "/settings",
    "settings-metric": "/settings/metric/pipeline_generated",
    "review": "/review",
    "api-docs": "/api/v1/docs",
    "account": "/account",
    "users": "/users",
    "changes": "/changes",
}
DOCUMENTS = {"review", "api-docs"}  # documents of their own (the review is also the e-mail and the PDF): no site menu
WIDTHS = {"desktop": (1440, 900), "phone": (390, 844)}
SKIP_TEXT = {"fr": "Aller au contenu", "en": "Skip to content"}
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@pytest.fixture(params=[(lang, width) for lang in ("fr", "en") for width in WIDTHS], ids=lambda p: f"{p[0]}-{p[1]}")
def session(request: pytest.FixtureRequest, browser: Any, live_server: str) -> Iterator[tuple[Any, str, str]]:
    """One browser context per language and width, the language set by the app's own cookie."""
    lang, width = request.param
    w, h = WIDTHS[width]
    context = browser.new_context(viewport={"width": w, "height": h}, locale=f"{lang}-FR" if lang == "fr" else "en-GB")
    context.add_cookies([{"name": "kpilot_lang", "value": lang, "url": live_server}])
    p = context.new_page()
    p.set_default_timeout(15_000)
    yield p, lang, width
    context.close()


def _load(page: Any, url: str) -> None:
    page.goto(url, wait_until="networkidle")
    charts = page.locator("[data-spec]").count()
    if charts:  # every chart drawn (a locator: the page's CSP forbids the eval of wait_for_function)
        page.locator("[data-spec] svg.marks[aria-hidden=true]").nth(charts - 1).wait_for()


def _serious(page: Any) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": TAGS}, "resultTypes": ["violations"]})
    found = []
    for v in results.response["violations"]:
        if v["impact"] in ("serious", "critical"):
            nodes = "; ".join(" ".join(n["target"]) if isinstance(n["target"][0], str) else str(n["target"])
                              for n in v["nodes"][:6])
            found.append(f"{v['id']} ({v['impact']}, {len(v['nodes'])} nodes: {nodes}): {v['help']}")
    return found


def test_every_page_accessible(session: tuple[Any, str, str], live_server: str, screenshots: Path) -> None:
    page, lang, width = session
    problems: list[str] = []
    for name, path in PAGES.items():
        _load(page, f"{live_server}{path}?as_of={AS_OF.isoformat()}")
        where = f"{name} [{lang}, {width}]"
        assert page.locator("html").get_attribute("lang") == lang, where
        if (h1 := page.locator("h1").count()) != 1:
            problems.append(f"{where}: {h1} h1 elements")
        # The first Tab lands on the skip link, which leads to <main id="main">.
        page.keyboard.press("Tab")
        first = page.evaluate("() => { const a = document.activeElement;"
                              " return [a.tagName, a.getAttribute('href') || '', a.textContent.trim()]; }")
        if first != ["A", "#main", SKIP_TEXT[lang]] and name not in DOCUMENTS:
            problems.append(f"{where}: the first focusable element is {first}, not the skip link")
        if page.locator("main#main").count() != 1:
            problems.append(f"{where}: no <main id=main>")
        if width == "phone":
            scroll, inner = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
            if scroll > inner:
                problems.append(f"{where}: scrolls sideways ({scroll} px wide for {inner})")
            header = page.locator("header.top").bounding_box() if name not in DOCUMENTS else {"height": 0}
            if header is None or header["height"] > 64:
                problems.append(f"{where}: the header is {header and header['height']} px high (at most 64)")
        problems += [f"{where}: {v}" for v in _serious(page)]
        page.keyboard.press("Escape")
        page.screenshot(path=str(screenshots / f"a11y-{name}-{lang}-{width}.png"), full_page=True)
    print("\n".join(problems))
    assert not problems, f"{len(problems)} accessibility problems:\n" + "\n".join(problems)


def test_phone_menu_opens_the_nav(browser: Any, live_server: str, screenshots: Path) -> None:
    """On a phone the nav, the date picker and the language switch sit behind a Menu button, which opens them."""
    context = browser.new_context(viewport={"width": 390, "height": 844})
    context.add_cookies([{"name": "kpilot_lang", "value": "en", "url": live_server}])
    try:
        p = context.new_page()
        p.goto(f"{live_server}/?as_of={AS_OF.isoformat()}", wait_until="networkidle")
        toggle = p.get_by_text("Menu", exact=True)
        assert toggle.is_visible()
        nav = p.locator("header.top nav.nav")
        assert not nav.is_visible() and not p.locator("#as_of").is_visible()
        toggle.click()
        assert nav.is_visible() and p.locator("#as_of").is_visible() and p.locator("nav.lang").is_visible()
        p.screenshot(path=str(screenshots / "a11y-menu-open-en-phone.png"))
        p.get_by_role("link", name="Audit").click()
        p.wait_for_url("**/audit*")
        assert p.locator("h1").inner_text() == "Audit"
    finally:
        context.close()


def test_charts_state_their_numbers(client: Any, engine_board: list[MetricStatus]) -> None:
    """Each sparkline and the KPI page's history say in words the latest value, its target and the verdict."""
    client.cookies.set("kpilot_lang", "en")
    try:
        board = client.get(f"/?as_of={AS_OF.isoformat()}").text
        for s in engine_board:
            tile = board[board.index(f'data-key="{s.key}"'):]
            alt = html.unescape(re.search(r'class="chart spark"[^>]*aria-label="([^"]*)"', tile).group(1))
            assert alt.startswith(f"Last periods against target. {s.name}: "), alt
            if s.value is not None:
                value = format_value(s.value, s.unit, "en", currency="EUR")
                target = format_value(s.target, s.unit, "en", currency="EUR")
                assert f": {value} in " in alt and f"against a target of {target}, " in alt, alt
        s = next(s for s in engine_board if s.key == "pipeline_generated")
        page = client.get(f"/metric/{s.key}?as_of={AS_OF.isoformat()}").text
        alt = html.unescape(re.search(r'class="chart history"[^>]*aria-label="([^"]*)"', page).group(1))
        assert alt.startswith(f"History against target. {s.name}: "), alt
        assert format_value(s.value, s.unit, "en", currency="EUR") in alt
    finally:
        client.cookies.delete("kpilot_lang")
