"""The board's tiles say one thing, from the service's verdicts: the verdict in words with a shape, its reason in one
line, the measured leading indicators with their lag; and the "what changed this week" strip."""

from __future__ import annotations

import re
from datetime import date
from html import unescape
from pathlib import Path

from fastapi.testclient import TestClient

from kpilot.i18n import VERDICT_LABELS, VERDICT_SHAPES, format_value, period_words, periods_count, translator
from kpilot.service import MetricStatus, WorkspaceService
from tests.web.conftest import AS_OF, Expected
from tests.web.test_pages import _tile

FR = translator("fr")


def _text(fragment: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", fragment))).strip()


def test_each_tile_leads_with_its_verdict_in_words_and_shape_and_its_reason(
        client: TestClient, engine_board: list[MetricStatus]) -> None:
    html = client.get(f"/?as_of={AS_OF}").text
    for s in engine_board:
        tile = _tile(html, s.key)
        pill = _text(re.search(r'data-role="verdict"[^>]*>(.*?)</span>\s*</span>', tile, re.S).group(1))
        assert pill == f"{VERDICT_SHAPES[s.verdict.value]} {FR(VERDICT_LABELS[s.verdict.value])}"
        assert not re.search(r">\s*(vert|rouge|orange|green|red|amber)\s*<", tile)  # never a colour's name
        if s.verdict.value == "no_data":
            continue
        reason = _text(re.search(r'data-role="reason">(.*?)</p>', tile, re.S).group(1))
        value, target = _text(format_value(s.value, s.unit, "fr")), _text(format_value(s.target, s.unit, "fr"))
        # The period as people say it ("semaine du 21 sept.", "septembre 2026"), not its ISO label.
        assert reason.startswith(period_words(s.period, s.grain.value, "fr")), reason
        assert value in reason and target in reason


def test_a_tile_names_the_indicators_measured_to_lead_its_kpi(client: TestClient, expected: Expected,
                                                              engine_board: list[MetricStatus], acme_dir: Path) -> None:
    from kpilot.model import load_workspace

    ws = load_workspace(acme_dir)[0]
    html = client.get(f"/?as_of={AS_OF}").text
    names = {s.key: s.name for s in engine_board}
    shown = 0
    for s in engine_board:
        leaders = sorted((e for e in expected.edges if e.follower == s.key), key=lambda e: -abs(e.correlation))[:2]
        followers = sorted((e for e in expected.edges if e.leader == s.key), key=lambda e: -abs(e.correlation))[:2]
        links = re.findall(r'<li><a href="/metric/(\w+)[^"]*">([^<]*)</a></li>',
                           (re.search(r'data-role="leads">(.*?)</ul>', _tile(html, s.key), re.S) or [None, ""])[1])
        edges = leaders or followers
        assert [k for k, _ in links] == [e.leader if leaders else e.follower for e in edges], s.key
        for (_, text), e in zip(links, edges, strict=True):
            lag = periods_count(e.lag, ws.metric(e.follower).grain.value, "fr")
            assert f"r = {e.correlation:.2f}".replace(".", ",") in unescape(text)
            assert lag in unescape(text), text
        shown += len(links)
    assert shown >= 1, names  # acme's leading KPIs lead won revenue


def test_the_week_strip_says_what_moved_most(acme_dir: Path, tmp_path: Path) -> None:
    from kpilot.web import create_app

    day = date(2026, 9, 27)  # after the LinkedIn pause: verdicts move on the board
    with WorkspaceService(acme_dir, state_dir=tmp_path / "engine") as svc:
        svc.load()
        board = svc.board(as_of=day)
    by_colour = {"green": "on_track", "amber": "at_risk", "red": "off_track"}
    moved = []
    for s in board:
        done = [j for j in s.history if j.complete and j.period < s.period and j.status in by_colour]
        if s.verdict.value != "no_data" and done and by_colour[done[-1].status] != s.verdict.value:
            moved.append(s)
    with TestClient(create_app(acme_dir, state_dir=tmp_path / "web"), base_url="http://127.0.0.1") as client:
        html = client.get(f"/?as_of={day}").text
    strip = re.search(r'data-role="moves">(.*?)</section>', html, re.S)
    assert strip is not None and "Ce qui a changé cette semaine" in strip.group(1)
    items = [_text(li) for li in re.findall(r"<li>(.*?)</li>", strip.group(1), re.S)]
    assert 1 <= len(items) <= 3
    assert len(moved) >= 1
    # A fall to off track comes first, worded with the service's verdicts.
    falls = [s for s in moved if s.verdict.value == "off_track"]
    first = falls[0] if falls else moved[0]
    assert items[0].startswith(f"{first.name} est passé de")
    assert FR(VERDICT_LABELS[first.verdict.value]).lower() in items[0]


def test_periods_are_said_as_people_say_them() -> None:
    assert period_words(date(2026, 11, 30), "week", "en") == "week of 30 Nov"
    assert period_words(date(2026, 11, 30), "week", "fr") == "semaine du 30 nov."
    assert period_words(date(2026, 11, 1), "month", "en") == "November 2026"
    assert period_words(date(2026, 11, 1), "month", "fr") == "novembre 2026"
    assert period_words(date(2026, 7, 1), "quarter", "fr") == "T3 2026"
    assert periods_count(1, "week", "fr") == "1 semaine" and periods_count(4, "week", "en") == "4 weeks"
