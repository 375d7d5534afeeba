"""The pages' content through FastAPI's TestClient: values formatted per language, statuses and decisions
as the engine computes them, the language switch, the period selector, errors, and assets served locally."""

from __future__ import annotations

import re
import shutil
from datetime import date
from html import unescape
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kpilot.i18n import format_value
from kpilot.service import MetricStatus, WorkspaceService
from kpilot.web import create_app
from kpilot.web.charts import STATUS_COLORS
from kpilot.web.locale import COOKIE
from tests.web.conftest import AS_OF

FIRING = date(2026, 9, 27)  # acme after the LinkedIn pause: four decision rules fire that week
EN = {"cookie": f"{COOKIE}=en"}  # the language cookie, sent with one request


def _tile(html: str, key: str) -> str:
    m = re.search(rf'<article class="tile[^"]*" data-key="{key}" data-status="(\w+)">(.*?)</article>', html, re.S)
    assert m, f"no tile for {key}"
    return m.group(0)


def _text(fragment: str) -> str:
    return re.sub(r"[ \t\r\n]+", " ", unescape(re.sub(r"<[^>]+>", " ", fragment))).strip()  # keeps no-break spaces


def _role(tile: str, role: str) -> str:
    m = re.search(rf'data-role="{role}">([^<]*)<', tile)
    assert m, role
    return unescape(m.group(1))


def test_board_in_french_matches_the_engine(client: TestClient, engine_board: list[MetricStatus]) -> None:
    r = client.get(f"/?as_of={AS_OF}")
    assert r.status_code == 200
    html = r.text
    assert '<html lang="fr">' in html
    assert "Devenir le logiciel de gestion de référence des PME françaises" in html
    assert "tableau de bord au 15 nov. 2026" in html
    for s in engine_board:
        tile = _tile(html, s.key)
        assert f'data-status="{s.status}"' in tile
        assert _role(tile, "value") == format_value(s.value, s.unit, "fr", currency="EUR")
        assert _role(tile, "target") == format_value(s.target, s.unit, "fr", currency="EUR")
    mrr = _tile(html, "mrr")
    assert _role(mrr, "value") == "1\u202f822\u202f148\u00a0€"  # 1 822 148,46 € in acme's subscriptions
    assert "orange" in _text(mrr)  # amber, in French
    pipeline = _text(_tile(html, "pipeline_generated"))
    assert "Si valeur sous 85\u202f% de l'objectif pendant 2 périodes →" in pipeline
    assert "Marketing\u00a0:" in pipeline and "Relancer la campagne LinkedIn Ads PME" in pipeline
    assert "sous surveillance" in pipeline  # the rule does not fire this week
    # The North Star comes first, in its own section; metrics off the board are listed as links.
    assert html.index('data-key="mrr"') < html.index('data-key="pipeline_generated"')
    assert 'href="/metric/won_revenue?as_of=2026-11-15"' in html


def test_board_in_english_by_cookie(client: TestClient, engine_board: list[MetricStatus]) -> None:
    r = client.get(f"/?as_of={AS_OF}", headers=EN)
    html = r.text
    assert '<html lang="en">' in html and "board as of Nov 15, 2026" in html
    assert _role(_tile(html, "mrr"), "value") == "€1,822,148"
    assert _role(_tile(html, "win_rate"), "value") == "24.5%"
    for s in engine_board:
        assert _role(_tile(html, s.key), "value") == format_value(s.value, s.unit, "en", currency="EUR")
    assert "If value below 85% of target for 2 periods →" in _text(_tile(html, "pipeline_generated"))


def test_fired_rules_say_to_decide(client: TestClient, acme_dir: Path, tmp_path: Path) -> None:
    with WorkspaceService(acme_dir, state_dir=tmp_path) as svc:
        svc.load()
        board = svc.board(as_of=FIRING)
    fired = {s.key for s in board if s.decision and s.decision["fires"]}
    assert fired == {"mrr", "pipeline_generated", "demos_booked", "logo_churn"}
    html = client.get(f"/?as_of={FIRING}").text
    for s in board:
        tile = _tile(html, s.key)
        assert ("À décider" in tile) == (s.key in fired), s.key
        assert f'data-status="{s.status}"' in tile
    assert "4 décision(s) à prendre sur cette période." in _text(html) or "4 décision" in _text(html)


def test_language_switch_sets_a_cookie_and_goes_back(client: TestClient) -> None:
    r = client.get("/lang/en?next=%2Fmetric%2Fmrr%3Fas_of%3D2026-11-15", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/metric/mrr?as_of=2026-11-15"
    assert f"{COOKIE}=en" in r.headers["set-cookie"]
    # Only paths of this site: no open redirect; an unknown language changes nothing.
    assert client.get("/lang/en?next=//evil.example/x", follow_redirects=False).headers["location"] == "/"
    assert "set-cookie" not in client.get("/lang/de?next=/", follow_redirects=False).headers
    client.cookies.clear()


def test_metric_page(client: TestClient, acme_dir: Path, tmp_path: Path) -> None:
    html = client.get(f"/metric/demos_booked?as_of={AS_OF}").text
    with WorkspaceService(acme_dir, state_dir=tmp_path) as svc:
        svc.load()
        rows = svc.series("demos_booked", as_of=AS_OF)
        by_channel = svc.breakdown("demos_booked", ["leads.channel"], first=date(2026, 11, 9), last=date(2026, 11, 9),
                                   as_of=AS_OF)
    assert "<h1>Démos planifiées</h1>" in html
    # The history table: newest period first, value and status as the service computes them.
    table = html[html.index('class="history-table"'):]
    first = re.search(r'<tr data-status="(\w+)"><td>([^<]*?)\*?</td><td class="num">([^<]*)</td>', table)
    assert first
    last = [r for r in rows if date.fromisoformat(str(r["period"])) <= date(2026, 11, 9)][-1]
    assert (first.group(1), first.group(2), unescape(first.group(3))) == (
        last["status"], last["label"], format_value(last["value"], None, "fr"))  # type: ignore[arg-type]
    # The breakdown of the current week by every dimension of meetings: type, leads.channel, leads.segment.
    dims = re.findall(r'<div class="breakdown" data-dimension="([^"]+)">', html)
    assert dims == ["type", "leads.channel", "leads.segment"]
    block = html[html.index('data-dimension="leads.channel"'):html.index('data-dimension="leads.segment"')]
    for row in by_channel:
        cell = re.search(rf'<span class="slice-name">{re.escape(str(row["leads.channel"]))}</span></td>\s*'
                         r'<td class="num">([^<]*)</td>', block)
        assert cell and unescape(cell.group(1)) == format_value(row["value"], None, "fr"), row  # type: ignore[arg-type]
    # The decision rule in words, with whether it fires.
    assert "la prévision de fin de période manque l'objectif" in unescape(html)
    assert "La règle ne se déclenche pas sur cette période." in html
    # The chart specs are in the page, for vega-embed.
    assert html.count("data-spec=") == 2


def test_metric_page_of_a_ratio_and_of_a_metric_off_the_board(client: TestClient) -> None:
    win = client.get(f"/metric/win_rate?as_of={AS_OF}", headers=EN).text
    assert "24.5%" in win and "32.0%" in win
    assert re.findall(r'data-dimension="([^"]+)"', win) == ["segment", "owner", "source_channel", "stage"]
    derived = client.get(f"/metric/cost_per_demo?as_of={AS_OF}")
    assert derived.status_code == 200
    assert "Cet indicateur n&#39;a aucune dimension pour le découper." in derived.text
    assert "Aucune règle de décision : un indicateur d&#39;appui, hors du tableau de bord." in derived.text
    assert "indicateur de vanité" not in derived.text  # vanity is for a board tile without a rule


def test_errors_are_pages_in_the_users_language(client: TestClient) -> None:
    r = client.get("/metric/nope")
    assert r.status_code == 404 and "indicateur inconnu « nope »" in r.text
    r = client.get("/?as_of=15/11/2026")
    assert r.status_code == 400 and "« 15/11/2026 » n&#39;est pas une date" in r.text
    r = client.get("/?as_of=2026-13-01", headers=EN)
    assert r.status_code == 400 and "is not a date" in r.text


def test_everything_is_served_from_here(client: TestClient) -> None:
    html = client.get(f"/?as_of={AS_OF}").text
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets and all(a.startswith("/") for a in assets), [a for a in assets if not a.startswith("/")]
    for a in assets:
        if a.startswith("/static/"):
            assert client.get(a).status_code == 200, a
    for lib in ("htmx", "vega", "vega-lite", "vega-embed"):
        assert client.get(f"/static/vendor/{lib}.LICENSE").status_code == 200
    r = client.get("/")
    assert "script-src 'self'" in r.headers["content-security-policy"]


def test_status_colours_are_the_charts(client: TestClient) -> None:
    """The tiles' CSS colours and the charts' come from one table."""
    html = client.get(f"/?as_of={AS_OF}").text
    for status, colour in STATUS_COLORS.items():
        assert f"--st-{status}: {colour};" in html


def test_history_chart_rendered_on_the_server(client: TestClient) -> None:
    r = client.get(f"/metric/pipeline_generated/history.svg?as_of={AS_OF}")
    assert r.status_code == 200 and r.headers["content-type"] == "image/svg+xml"
    svg = r.text
    assert svg.startswith("<svg") and STATUS_COLORS["red"] in svg and STATUS_COLORS["green"] in svg
    labels = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    assert {"rouge", "vert", "juillet", "400k\u00a0€", "1,2M\u00a0€"} <= set(labels), labels  # French legend and axes
    english = client.get(f"/metric/pipeline_generated/history.svg?as_of={AS_OF}", headers=EN).text
    assert {"red", "green", "July", "€400k", "€1.2M"} <= set(re.findall(r"<text[^>]*>([^<]*)</text>", english))


def test_a_changed_workspace_file_is_picked_up(acme_dir: Path, tmp_path: Path) -> None:
    ws = tmp_path / "acme"
    shutil.copytree(acme_dir, ws)
    app = create_app(ws, state_dir=tmp_path / "state")
    app.state.gate.check_every = 0.0
    with TestClient(app) as c:
        before = _role(_tile(c.get(f"/?as_of={AS_OF}").text, "demos_booked"), "target")
        assert before == "100"
        yaml = ws / "kpilot.yaml"
        yaml.write_text(yaml.read_text(encoding="utf-8").replace("value: 100}", "value: 150}"), encoding="utf-8")
        after = c.get(f"/?as_of={AS_OF}").text
        assert _role(_tile(after, "demos_booked"), "target") == "150"
        assert 'data-key="demos_booked" data-status="red"' in after  # 122 of 150: red now


@pytest.mark.parametrize("path", ["/", "/metric/mrr"])
def test_today_is_the_default_period(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 200
    assert 'name="as_of" value="' + client.app.state.gate.today().isoformat() + '"' in r.text  # type: ignore[attr-defined]
