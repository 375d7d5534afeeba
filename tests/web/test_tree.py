"""The strategy tree (`/tree`) as a graph: one card per vision, objective, North Star, board KPI and leading
indicator, with the board's numbers; the leads' labels with the measured lag and correlation; the same tree as a
list; no sideways scroll on a phone.

Acme's measured leads all go to won revenue, which is off its board: a copy of acme with won revenue on the board
puts them in the tree (the analysis does not depend on the board, so its edges are `expected.edges`)."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import date
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kpilot.i18n import format_value, format_verdict
from kpilot.model import load_workspace
from kpilot.service import MetricStatus
from kpilot.web import create_app
from kpilot.web.locale import COOKIE
from tests.web.conftest import AS_OF, Expected

SVG = "{http://www.w3.org/2000/svg}"
EN = {"cookie": f"{COOKIE}=en"}
SHAPES = {"on_track": "●", "at_risk": "▲", "off_track": "◆", "no_data": "○"}
LED_BOARD = ["won_revenue", "win_rate", "logo_churn"]  # the copy's board: won revenue's leaders hang in the tree


def _svg(html: str) -> ET.Element:
    start = html.index('<svg class="tree-svg"')
    return ET.fromstring(html[start:html.index("</svg>", start) + len("</svg>")])


def _list(html: str) -> ET.Element:
    start = html.index('<ul class="tree tree-list">')
    end = html.index('<div class="tree-graph">', start)
    return ET.fromstring(html[start:end].strip())


def _cards(svg: ET.Element) -> dict[str, ET.Element]:
    return {g.get("data-id", ""): g for g in svg.iter(f"{SVG}g") if "card" in (g.get("class") or "").split()}


def _role(el: ET.Element, role: str) -> str:
    """The text of the element's descendant with this data-role (all of it, nested elements included)."""
    found = [e for e in el.iter() if e.get("data-role") == role]
    assert len(found) == 1, (role, len(found))
    return "".join(found[0].itertext()).strip()


def _name(card: ET.Element) -> str:
    """A card's title, its lines joined."""
    return " ".join("".join(t.itertext()) for t in card.iter(f"{SVG}text") if t.get("data-role") == "name")


def _edges(svg: ET.Element, kind: str) -> set[tuple[str, str]]:
    return {(g.get("data-upper", ""), g.get("data-lower", "")) for g in svg.iter(f"{SVG}g")
            if f"edge-{kind}" in (g.get("class") or "").split()}


@pytest.fixture(scope="module")
def page_fr(client: TestClient) -> str:
    return client.get(f"/tree?as_of={AS_OF}").text


@pytest.fixture(scope="module")
def led_dir(acme_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("led") / "acme"
    shutil.copytree(acme_dir, ws, ignore=shutil.ignore_patterns(".kpilot"))
    yaml = ws / "kpilot.yaml"
    text = yaml.read_text(encoding="utf-8")
    old = "board: [pipeline_generated, demos_booked, win_rate, logo_churn]"
    assert old in text
    yaml.write_text(text.replace(old, f"board: [{', '.join(LED_BOARD)}]"), encoding="utf-8")
    return ws


@pytest.fixture(scope="module")
def led(led_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with TestClient(create_app(led_dir, state_dir=tmp_path_factory.mktemp("led-state")),
                    base_url="http://127.0.0.1") as c:
        yield c


def test_one_card_per_node(page_fr: str, acme_dir: Path, expected: Expected) -> None:
    ws, _ = load_workspace(acme_dir)
    cards = _cards(_svg(page_fr))
    objectives = ws.vision.objectives if ws.vision else []
    tree_keys = {ws.north_star, *ws.board}
    leaders = {e.leader for e in expected.edges if e.follower in tree_keys}
    assert leaders == set()  # acme: its leads go to won revenue, off the board (the copy below has some)
    assert set(cards) == {"vision", *(f"objective:{i}" for i in range(len(objectives))),
                          *(f"metric:{k}" for k in tree_keys)}
    kinds = {i: g.get("class", "").split()[1] for i, g in cards.items()}
    assert kinds["vision"] == "card-vision" and kinds[f"metric:{ws.north_star}"] == "card-north_star"
    assert sorted(i for i, k in kinds.items() if k == "card-kpi") == sorted(f"metric:{k}" for k in ws.board)
    assert _name(cards["vision"]) == ws.vision.statement  # type: ignore[union-attr]
    assert [_name(cards[f"objective:{i}"]) for i in range(len(objectives))] == [o.statement for o in objectives]


def test_kpi_cards_show_the_boards_numbers(page_fr: str, engine_board: list[MetricStatus]) -> None:
    cards = _cards(_svg(page_fr))
    for s in engine_board:
        card = cards[f"metric:{s.key}"]
        assert _role(card, "value") == format_value(s.value, s.unit, "fr", currency="EUR"), s.key
        assert _role(card, "target") == "objectif " + format_value(s.target, s.unit, "fr", currency="EUR"), s.key
        assert _role(card, "verdict") == format_verdict(s.verdict.value, s.verdict_reason, s.data_through, "fr")[0]
        assert _role(card, "shape") == SHAPES[s.verdict.value], s.key
        assert card.get("data-verdict") == s.verdict.value
        link = next(card.iter(f"{SVG}a"))
        assert link.get("href") == f"/metric/{s.key}?as_of={AS_OF}"


def test_sparklines_draw_the_last_twelve_periods(page_fr: str, engine_board: list[MetricStatus]) -> None:
    cards = _cards(_svg(page_fr))
    for s in engine_board:
        values = [j.value for j in s.history[-12:] if j.value is not None]
        line = next(p for p in cards[f"metric:{s.key}"].iter(f"{SVG}polyline") if p.get("class") == "spark-value")
        ys = [float(pt.split(",")[1]) for pt in (line.get("points") or "").split()]
        assert len(ys) == len(values) == 12, s.key
        # Higher values are drawn higher (a smaller y), period by period; values within 1 % of the range apart
        # are drawn within half a pixel.
        close = (max(values) - min(values)) / 100
        for (v1, y1), (v2, y2) in pairwise(zip(values, ys, strict=True)):
            if abs(v2 - v1) > close:
                assert (y2 < y1) == (v2 > v1), s.key
            else:
                assert abs(y2 - y1) < 0.5, s.key


def test_structure_and_objective_edges(page_fr: str, acme_dir: Path) -> None:
    ws, _ = load_workspace(acme_dir)
    svg = _svg(page_fr)
    objectives = ws.vision.objectives if ws.vision else []
    assert _edges(svg, "measures") == {(f"objective:{i}", f"metric:{k}") for i, o in enumerate(objectives)
                                       for k in o.metrics}
    assert _edges(svg, "structure") == {("vision", f"objective:{i}") for i in range(len(objectives))} | {
        (f"metric:{ws.north_star}", f"metric:{k}") for k in ws.board}
    assert _edges(svg, "lead") == set()


def test_the_list_holds_the_same_tree(page_fr: str, engine_board: list[MetricStatus]) -> None:
    cards = _cards(_svg(page_fr))
    items = [li for li in _list(page_fr).iter("li")]
    assert {li.get("data-key") for li in items if li.get("data-key")} == {
        g.get("data-key") for g in cards.values() if g.get("data-key")}
    kinds = [li.get("class", "").split()[1] for li in items]
    assert kinds.count("node-vision") == 1 and kinds.count("node-objective") == 2
    assert kinds.count("node-north_star") == 1 and kinds.count("node-kpi") == len(engine_board) - 1
    for s in engine_board:
        li = next(li for li in items if li.get("data-key") == s.key)
        box = li.find("div")
        assert box is not None
        for role in ("value", "target", "verdict"):
            assert _role(box, role).replace(SHAPES[s.verdict.value], "").strip() == \
                _role(cards[f"metric:{s.key}"], role), (s.key, role)
    # The text alternative: the drawing names its description, which says the list holds the same tree.
    svg = _svg(page_fr)
    assert svg.get("role") == "group" and svg.get("aria-labelledby") == "tree-graph-title tree-graph-desc"
    assert '<p id="tree-graph-desc" hidden>' in page_fr
    assert svg.find(f"{SVG}title") is not None


def _lag(n: int, lang: str) -> str:
    """A lag in weeks (won revenue's grain), with the plural each language wants."""
    word = {"fr": ("semaine", "semaines"), "en": ("week", "weeks")}[lang]
    return f"{n} {word[0] if n == 1 else word[1]}"


def _r(x: float, lang: str) -> str:
    return "r = " + f"{x:.2f}".replace(".", "," if lang == "fr" else ".")


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_lead_labels_carry_the_measured_lag_and_r(led: TestClient, expected: Expected, lang: str) -> None:
    html = led.get(f"/tree?as_of={AS_OF}", headers=EN if lang == "en" else {}).text
    svg = _svg(html)
    edges = [e for e in expected.edges if e.follower in LED_BOARD]
    assert {e.follower for e in edges} == {"won_revenue"} and len(edges) == 2
    assert _edges(svg, "lead") == {(f"metric:{e.follower}", f"metric:{e.leader}") for e in edges}
    labels = {(g.get("data-leader"), g.get("data-follower")): g for g in svg.iter(f"{SVG}g")
              if g.get("class") == "edge-label"}
    assert set(labels) == {(e.leader, e.follower) for e in edges}
    for e in edges:
        label = labels[(e.leader, e.follower)]
        assert _role(label, "lag") == _lag(e.lag, lang)
        assert _role(label, "r") == _r(e.correlation, lang)
    # Each leader is a card of its own, and hangs under won revenue in the list with the same words.
    cards = _cards(svg)
    for e in edges:
        assert cards[f"metric:{e.leader}"].get("class") == "card card-leader"
    items = [li for li in _list(html).iter("li") if li.get("class") == "node node-leader"]
    ahead = "d'avance" if lang == "fr" else "ahead"
    assert sorted(_role(li, "lag") for li in items) == sorted(
        f"{_lag(e.lag, lang)} {ahead}, {_r(e.correlation, lang)}" for e in edges)
    # The objective that names them links to their cards; nothing is left for the table of other leads.
    assert ("objective:1", "metric:pipeline_generated") in _edges(svg, "measures")
    assert 'id="other-leads"' not in html


def test_the_page_is_cached_with_its_policy(client: TestClient, page_fr: str) -> None:
    again = client.get(f"/tree?as_of={AS_OF}")
    assert again.text == page_fr
    assert "script-src 'self'" in again.headers["content-security-policy"]
    gate = client.app.state.gate  # type: ignore[attr-defined]
    assert gate.peek(("page", "fr", AS_OF, "/tree", f"as_of={AS_OF}", "")) is not None


@pytest.mark.browser
def test_no_sideways_scroll_on_a_phone(browser: Any, live_server: str, screenshots: Path) -> None:
    for lang in ("fr", "en"):
        for width, height in ((390, 844), (1440, 900)):
            context = browser.new_context(viewport={"width": width, "height": height})
            context.add_cookies([{"name": COOKIE, "value": lang, "url": live_server}])
            page = context.new_page()
            page.goto(f"{live_server}/tree?as_of={AS_OF.isoformat()}")
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            graph = page.locator("svg.tree-svg")
            if width < 700:
                assert not graph.is_visible()
                assert page.locator(".tree-list li.node-kpi").first.is_visible()
            else:
                assert graph.is_visible() and graph.bounding_box()["width"] >= 800
                assert page.locator(".tree-list").bounding_box()["width"] <= 1
            page.screenshot(path=str(screenshots / f"tree-{lang}-{width}.png"), full_page=True)
            context.close()


def test_in_the_list_a_kpis_leaders_come_before_the_kpis_under_it(acme_dir: Path,
                                                                  tmp_path_factory: pytest.TempPathFactory) -> None:
    # Won revenue as the North Star: demos booked and pipeline generated lead it, win rate and logo churn are its
    # board. On a phone (the list), its leaders sit right under it, not after its last board KPI where they would
    # read as that KPI's.
    ws = tmp_path_factory.mktemp("ns-led") / "acme"
    shutil.copytree(acme_dir, ws, ignore=shutil.ignore_patterns(".kpilot"))
    yaml = ws / "kpilot.yaml"
    text = yaml.read_text(encoding="utf-8")
    for old, new in (("north_star: mrr", "north_star: won_revenue"),
                     ("board: [pipeline_generated, demos_booked, win_rate, logo_churn]", "board: [win_rate, logo_churn]")):
        assert old in text
        text = text.replace(old, new)
    yaml.write_text(text, encoding="utf-8")
    with TestClient(create_app(ws, state_dir=tmp_path_factory.mktemp("ns-led-state")),
                    base_url="http://127.0.0.1") as client:
        html = client.get(f"/tree?as_of={AS_OF}").text
    star = next(li for li in _list(html).iter("li") if "node-north_star" in (li.get("class") or ""))
    below = star.find("ul")
    assert below is not None
    kinds = [(li.get("class") or "").split()[1] for li in below.findall("li")]
    assert kinds.count("node-leader") == 2 and kinds.count("node-kpi") == 2, kinds
    assert kinds == sorted(kinds, key=lambda k: k != "node-leader"), kinds


def test_a_cards_last_point_reads_as_its_verdict(client: TestClient, engine_board: list[MetricStatus],
                                                 acme_dir: Path, tmp_path: Path) -> None:
    # On 4 October logo churn is on track so far in October, but its rule fires on August and September: its card
    # says "at risk", and so does the last point of its sparkline (it read "on track" under it).
    from kpilot.service import WorkspaceService

    day = "2026-10-04"
    with WorkspaceService(acme_dir, state_dir=tmp_path) as svc:
        svc.load()
        board = {s.key: s for s in svc.board(as_of=date.fromisoformat(day))}
    assert (board["logo_churn"].status, board["logo_churn"].verdict.value) == ("green", "at_risk")
    cards = _cards(_svg(client.get(f"/tree?as_of={day}").text))
    colours = {"on_track": "green", "at_risk": "amber", "off_track": "red", "no_data": "none"}
    for key, s in board.items():
        last = next(c for c in cards[f"metric:{key}"].iter(f"{SVG}circle") if "spark-last" in (c.get("class") or ""))
        if s.history and s.history[-1].period == s.period:
            assert f"st-{colours[s.verdict.value]}" in (last.get("class") or "").split(), key
