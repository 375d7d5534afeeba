"""The pages' content through FastAPI's TestClient: values formatted per language, statuses and decisions
as the engine computes them, the language switch, the period selector, errors, and assets served locally."""

from __future__ import annotations

import json
import re
import shutil
import time
from datetime import date, timedelta
from html import unescape
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kpilot.analysis.warning import EarlyWarning
from kpilot.i18n import (
    VERDICT_COLOURS,
    cause_sentences,
    format_forecast_evidence,
    format_percent,
    format_value,
    format_values,
    period_words,
    translator,
)
from kpilot.insights.findings import EarlyWarningFinding
from kpilot.model.errors import render
from kpilot.report.charts import FORECAST_COLOR, STATUS_COLORS
from kpilot.service import MetricStatus, WorkspaceService
from kpilot.web import create_app, state
from kpilot.web.locale import COOKIE
from tests.web.conftest import AS_OF, Expected

FIRING = date(2026, 9, 27)  # acme after the LinkedIn pause: four decision rules fire that week
EN = {"cookie": f"{COOKIE}=en"}  # the language cookie, sent with one request


def _tile(html: str, key: str) -> str:
    m = re.search(rf'<article class="tile[^"]*" data-key="{key}" data-status="(\w+)"[^>]*>(.*?)</article>', html, re.S)
    assert m, f"no tile for {key}"
    return m.group(0)


def _text(fragment: str) -> str:
    return re.sub(r"[ \t\r\n]+", " ", unescape(re.sub(r"<[^>]+>", " ", fragment))).strip()  # keeps no-break spaces


def _role(tile: str, role: str) -> str:
    m = re.search(rf'data-role="{role}"[^>]*>([^<]*)<', tile)
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
        # The tile shows the one verdict, in its colour (the same as `kpilot status` and the API).
        assert f'data-verdict="{s.verdict.value}"' in tile
        assert f'data-status="{VERDICT_COLOURS[s.verdict.value]}"' in tile
        assert _role(tile, "value") == format_value(s.value, s.unit, "fr", currency="EUR")
        assert _role(tile, "target") == format_value(s.target, s.unit, "fr", currency="EUR")
    mrr = _tile(html, "mrr")
    # 1 822 148,46 € in acme's subscriptions: short from a million on, in full on hover.
    assert _role(mrr, "value") == "1,82\u00a0M\u00a0€"
    assert 'title="1\u202f822\u202f148\u00a0€"' in mrr
    assert "À risque" in _text(mrr)  # amber: at risk, in French
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
    assert _role(_tile(html, "mrr"), "value") == "€1.82M"
    assert _role(_tile(html, "win_rate"), "value") == "24.5%"
    for s in engine_board:
        assert _role(_tile(html, s.key), "value") == format_value(s.value, s.unit, "en", currency="EUR")
    assert "If value below 85% of target for 2 periods →" in _text(_tile(html, "pipeline_generated"))


def test_fired_rules_say_to_decide(client: TestClient, acme_dir: Path, tmp_path: Path) -> None:
    with WorkspaceService(acme_dir, state_dir=tmp_path) as svc:
        svc.load()
        board = svc.board(as_of=FIRING)
    fired = {s.key for s in board if s.fires}
    assert fired == {"mrr", "pipeline_generated", "demos_booked", "logo_churn"}
    html = client.get(f"/?as_of={FIRING}").text
    for s in board:
        tile = _tile(html, s.key)
        assert ("À décider" in tile) == (s.key in fired), s.key
        # The tile shows the one verdict, in its colour (the same as `kpilot status` and the API).
        assert f'data-verdict="{s.verdict.value}"' in tile
        assert f'data-status="{VERDICT_COLOURS[s.verdict.value]}"' in tile
    assert "4 décision(s) à prendre sur cette période." in _text(html) or "4 décision" in _text(html)


def test_the_period_in_progress_reads_as_its_tile_on_the_kpi_page(client: TestClient, acme_dir: Path,
                                                                  tmp_path: Path) -> None:
    # A firing rule raises the verdict to at least "at risk" whatever the period's own status: the KPI page's
    # table of last periods says the verdict of the period the tile judges (its newest row), as the tile does.
    day = date(2026, 10, 4)  # logo churn: October on track so far, its rule fires on August and September
    with WorkspaceService(acme_dir, state_dir=tmp_path) as svc:
        svc.load()
        board = svc.board(as_of=day)
    raised = 0
    for s in board:
        html = client.get(f"/metric/{s.key}?as_of={day}").text
        table = html[html.index('class="history-table"'):]
        first = re.search(r'<tr data-status="(\w+)">', table)
        assert first and first.group(1) == VERDICT_COLOURS[s.verdict.value], s.key
        assert f'data-status="{VERDICT_COLOURS[s.verdict.value]}"' in _tile(html, s.key)
        raised += s.fires and s.status == "green"
    assert raised, "acme that week has a KPI on track in its period whose rule fires"


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
    first = re.search(r'<tr data-status="(\w+)"><td[^>]*>([^<]*?)\*?</td><td[^>]*>([^<]*)</td>', table)
    assert first
    last = [r for r in rows if date.fromisoformat(str(r["period"])) <= date(2026, 11, 9)][-1]
    assert (first.group(1), first.group(2), unescape(first.group(3))) == (
        last["status"], "semaine du 9 nov.", format_value(last["value"], "count", "fr"))  # type: ignore[arg-type]
    words = _text(table[:table.index("</table>")])
    assert {"Dans la cible", "Hors cible"} & set(re.findall("Dans la cible|Hors cible", words))  # words, not colours
    assert not re.search(r"\b(vert|rouge|orange|green|red|amber)\b", words)
    # The breakdown of the current week by every dimension of meetings: type, leads.channel, leads.segment.
    dims = re.findall(r'<div class="breakdown" data-dimension="([^"]+)">', html)
    assert dims == ["type", "leads.channel", "leads.segment"]
    block = html[html.index('data-dimension="leads.channel"'):html.index('data-dimension="leads.segment"')]
    for row in by_channel:
        said = {"linkedin_ads": "LinkedIn Ads", "google_ads": "Google Ads", "seo": "SEO", "events": "Events",
                "partners": "Partners", "outbound": "Outbound", "referral": "Referral"}.get(str(row["leads.channel"]))
        cell = re.search(rf'<span class="slice-name">{re.escape(said or str(row["leads.channel"]))}</span></td>\s*'
                         r'<td[^>]*class="num">([^<]*)</td>', block)
        assert cell and unescape(cell.group(1)) == format_value(row["value"], "count", "fr"), row  # type: ignore[arg-type]
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
    assert "<h1>Page introuvable</h1>" in r.text and "<title>Page introuvable" in r.text  # said as what it is
    assert "<h1>Page not found</h1>" in client.get("/no/such/page", headers=EN).text
    r = client.get("/?as_of=15/11/2026")
    assert r.status_code == 400 and "« 15/11/2026 » n&#39;est pas une date" in r.text
    r = client.get("/?as_of=2026-13-01", headers=EN)
    assert r.status_code == 400 and "is not a date" in r.text and "<h1>Something is wrong</h1>" in r.text


def test_everything_is_served_from_here(client: TestClient) -> None:
    html = client.get(f"/?as_of={AS_OF}").text
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assets = [a for a in assets if not a.startswith("#")]  # the skip link's "#main" stays on the page
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
    # The legend says what a colour means, never the colour's name; French legend and axes.
    assert {"Hors cible", "Dans la cible", "400\u202f000\u00a0€", "1,2\u00a0M\u00a0€"} <= set(labels), labels
    assert "16 nov. 2026" in labels  # periods with their year; the week ahead is the forecast's
    assert not {"rouge", "vert", "orange"} & set(labels)
    english = client.get(f"/metric/pipeline_generated/history.svg?as_of={AS_OF}", headers=EN).text
    assert {"Off track", "On track", "16 Nov 2026", "€400,000", "€1.2M"} <= set(
        re.findall(r"<text[^>]*>([^<]*)</text>", english))


def test_a_changed_workspace_file_is_picked_up(acme_dir: Path, tmp_path: Path) -> None:
    ws = tmp_path / "acme"
    shutil.copytree(acme_dir, ws)
    app = create_app(ws, state_dir=tmp_path / "state")
    app.state.gate.check_every = 0.0
    with TestClient(app, base_url="http://127.0.0.1") as c:
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


# --- the analysis -----------------------------------------------------------------------------------


def _ahead(expected: Expected, key: str) -> dict[str, object]:
    """The forecast point a tile shows: the first period not fully known yet."""
    return next(p for p in expected.forecasts[key].points if (p["observed_share"] or 0) < 1)


def _unit(client: TestClient, key: str) -> str | None:
    return client.app.state.gate.primary.ws.metric(key).unit  # type: ignore[attr-defined,no-any-return]


def test_board_tiles_show_the_forecast_and_the_warnings(client: TestClient, expected: Expected) -> None:
    html = client.get(f"/?as_of={AS_OF}").text
    assert set(expected.forecasts) == {"mrr", "pipeline_generated", "demos_booked", "win_rate", "logo_churn"}
    for key in expected.forecasts:
        tile, point, unit = _tile(html, key), _ahead(expected, key), _unit(client, key)
        value, lower, upper = format_values([point["value"], point["lower"], point["upper"]], unit, "fr",  # type: ignore[list-item]
                                            currency="EUR")
        assert _role(tile, "forecast-value") == value, key
        assert _role(tile, "forecast-interval") == f"({lower} – {upper})", key
        assert _role(tile, "forecast-chance") == format_percent(point["probability"], "fr", digits=0)  # type: ignore[arg-type]
        start = date.fromisoformat(str(point["period"]))
        assert f"Prévision {period_words(start, expected.forecasts[key].grain.value, 'fr')}" in _text(tile)
        assert "Projection" not in _text(tile)  # the forecast takes the pace's projection's place
    # MRR's month is half gone: its forecast is for November's end, with 1 822 148 € already booked.
    assert _ahead(expected, "mrr")["label"] == "2026-11"
    warned = {w.metric for w in expected.warnings}
    for key in expected.forecasts:
        assert ('data-role="early-warning"' in _tile(html, key)) == (key in warned), key


def test_an_early_warning_is_a_badge_on_its_kpi(acme_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                ) -> None:
    """acme raises no early warning as of AS_OF: one is added to the analysis' own results to see it shown."""
    real = state.analyse

    def with_a_warning(svc: WorkspaceService, as_of: date) -> state.Analysis:
        found = real(svc, as_of)
        warning = EarlyWarningFinding(
            "w1", "pipeline_generated", date(2026, 11, 23), "2026-W48",
            EarlyWarning("pipeline_generated", "demos_booked", 2, 0, 80.0, 116.0, -0.31, 0, 610000.0, 500000.0,
                         700000.0, 800000.0, 0.83, "red", "distributed_lag"),
            date(2026, 11, 9), "2026-W46", None)
        return state.Analysis(found.as_of, found.edges, found.forecasts, [warning], found.anomalies, found.audit)

    monkeypatch.setattr(state, "analyse", with_a_warning)
    with TestClient(create_app(acme_dir, state_dir=tmp_path), base_url="http://127.0.0.1") as c:
        board = c.get(f"/?as_of={AS_OF}").text
        badge = re.search(r'<span class="badge warn st-red" data-role="early-warning" title="([^"]*)">([^<]*)<',
                          _tile(board, "pipeline_generated"))
        assert badge and unescape(badge.group(2)) == "⚠ Alerte précoce"
        assert "Pipeline généré en semaine du 23 nov. : projeté à 610\u202f000\u00a0€" in unescape(badge.group(1))
        assert "en semaine du 9 nov., 2 semaines plus tôt" in unescape(badge.group(1))
        assert 'data-role="early-warning"' not in _tile(board, "demos_booked")
        page = _text(c.get(f"/metric/pipeline_generated?as_of={AS_OF}").text)
        assert "Alertes précoces" in page and "83" in page and "−31,0\u202f%" in page


def test_metric_page_shows_the_forecast_leads_anomalies_and_root_cause(client: TestClient, expected: Expected,
                                                                       acme_dir: Path, tmp_path: Path) -> None:
    html = client.get(f"/metric/pipeline_generated?as_of={AS_OF}").text
    forecast = html[html.index('id="forecast"'):html.index('id="anomalies"')]
    for p in expected.forecasts["pipeline_generated"].points:
        row = re.search(rf'<tr data-period="{p["period"]}">(.*?)</tr>', forecast, re.S)
        assert row, p["label"]
        assert period_words(date.fromisoformat(str(p["period"])), "week", "fr") in _text(row.group(1))
        assert _role(row.group(1), "forecast-value") == format_values(
            [p["value"], p["lower"], p["upper"]], "EUR", "fr")[0]  # type: ignore[list-item]
        assert _role(row.group(1), "forecast-chance") == format_percent(p["probability"], "fr", digits=0)  # type: ignore[arg-type]
    # What backs the forecast: its backtest error beside seasonal naive's and its interval's measured coverage, the
    # sentence `kpilot forecast` prints.
    fc = expected.forecasts["pipeline_generated"]
    assert fc.evidence["error"] is not None and fc.evidence["coverage"] is not None
    assert _role(forecast, "forecast-evidence") == format_forecast_evidence(fc.evidence, "Pipeline généré", "fr")
    assert "MASE" in _role(forecast, "forecast-evidence")
    # The chart: the history and the forecast ahead, as a band and diamonds in the forecast's colour.
    spec = json.loads(unescape(re.search(r"<div class=\"chart history\"[^>]*? data-spec='([^']*)'", html).group(1)))  # type: ignore[union-attr]
    band = [layer for layer in spec["layer"] if layer.get("mark", {}).get("color") == FORECAST_COLOR]
    assert [m["type"] for m in (layer["mark"] for layer in band)] == ["area", "line", "line", "line", "point"]
    ahead = [v for v in band[0]["data"]["values"] if not v["anchor"]]
    assert [(v["period"], v["value"], v["lower"], v["upper"]) for v in ahead] == [
        (p["period"], p["value"], p["lower"], p["upper"]) for p in expected.forecasts["pipeline_generated"].points
        if p["observed_share"] < 1]
    assert all(v["label"].startswith("semaine du ") for v in ahead)
    # Pipeline leads won revenue (a lagging metric off the board) by 5 weeks.
    leads = html[html.index('class="leads"'):]
    for e in [e for e in expected.edges if e.leader == "pipeline_generated"]:
        row = re.search(rf'<tr data-key="{e.follower}">(.*?)</tr>', leads, re.S)
        assert row and f"{e.lag} semaine{'s' if e.lag > 1 else ''}" in _text(row.group(1))
        assert f"{e.correlation:+.2f}".replace(".", ",").replace("-", "−") in _text(row.group(1))
    # Root cause of the last change (W45 -> W46), per dimension, as Insights explains it.
    with WorkspaceService(acme_dir, state_dir=tmp_path) as svc:
        svc.load()
        from kpilot.insights import Insights
        why = Insights(svc, as_of=AS_OF).explain("pipeline_generated", date(2026, 11, 2), date(2026, 11, 9),
                                                 pairs=False)
    cause = _text(html[html.index('id="root-cause"'):html.index("Par dimension")])
    assert "semaine du 2 nov. → semaine du 9 nov." in cause
    assert f"{format_value(why.total_before, 'EUR', 'fr')} → {format_value(why.total_after, 'EUR', 'fr')}" in cause
    # What moved it, in the same words as `kpilot explain` (combinations of values at any depth).
    from kpilot.model import load_workspace

    said = cause_sentences(why, load_workspace(acme_dir)[0], "EUR", "fr")
    assert said and said[0] in cause
    assert all(line in cause for line in said[1:])
    top = next(c for c in why.contributions if c.dimensions == ("segment",))
    assert f"{top.values[0]} +{format_value(top.change, 'EUR', 'fr')}" in cause

    won = client.get(f"/metric/won_revenue?as_of={AS_OF}").text
    leaders = won[won.index('class="leaders"'):won.index('Ce qu&#39;annonce')]
    shown = re.findall(r'<tr data-key="([^"]+)">', leaders)
    assert shown == [e.leader for e in expected.edges if e.follower == "won_revenue"] and shown
    # Anomalies of won revenue: period, value, expected, severity as Insights found them.
    table = won[won.index('id="anomalies"'):]
    for f in [f for f in expected.anomalies if f.metric == "won_revenue"]:
        said = period_words(f.period, "week", "fr")
        row = re.search(rf'<td data-label="Période">{re.escape(said)}</td>(.*?)</tr>', table, re.S)
        assert row, said
        a = f.anomaly
        value, expected, _, _ = format_values([a.value, a.expected, a.lower, a.upper], "EUR", "fr")
        assert value in unescape(row.group(1)) and expected in unescape(row.group(1))
        assert translator("fr")(f.severity) in row.group(1)


def test_a_metric_that_cannot_be_split_says_so(client: TestClient) -> None:
    html = client.get(f"/metric/cost_per_demo?as_of={AS_OF}").text
    assert "ne peut pas être" in unescape(html) or "cannot be split" in html
    assert re.findall(r'data-cause="([^"]+)"', html) == []


def test_audit_lists_every_metric_with_its_verdict(client: TestClient, expected: Expected) -> None:
    r = client.get(f"/audit?as_of={AS_OF}")
    assert r.status_code == 200
    html = r.text
    keys = re.findall(r'<article class="panel audit-row[^"]*" data-key="([^"]+)" data-verdict="(\w+)">', html)
    assert [k for k, _ in keys] == [v.key for v in expected.audit]
    assert {k for k, _ in keys} == set(client.app.state.gate.primary.ws.metric_keys)  # type: ignore[attr-defined]
    assert dict(keys) == {v.key: v.verdict for v in expected.audit}
    tr = translator("fr")
    for v in expected.audit:
        block = html[html.index(f'data-key="{v.key}"'):]
        block = block[:block.index("</article>")]
        assert _role(block, "verdict") == tr(v.verdict)
        reasons = [unescape(x).strip() for x in re.findall(r"<li>(.*?)</li>", block, re.S)]
        assert reasons == [render(m, tr) for m in v.reasons], v.key
    assert "garder" in html and "supprimer" in html
    counts = {k: sum(1 for v in expected.audit if v.verdict == k) for k in ("keep", "fix", "delete")}
    assert f"{counts['keep']} à garder" in _text(html) or str(counts["keep"]) in _text(html)
    english = client.get(f"/audit?as_of={AS_OF}", headers=EN).text
    assert "the North Star: the outcome everything else serves" in english


def test_strategy_tree(client: TestClient, expected: Expected) -> None:
    html = client.get(f"/tree?as_of={AS_OF}").text
    text = _text(html)
    assert "Devenir le logiciel de gestion de référence des PME françaises" in text
    assert "Atteindre 2,5 M€ de MRR fin 2027" in text
    ws = client.app.state.gate.primary.ws  # type: ignore[attr-defined]
    # Vision > objective > North Star > board KPIs, nested in that order.
    order = [text.index("Vision"), text.index("Atteindre 2,5 M€"), text.index("North Star")]
    order += [text.index(str(ws.metric(k).label)) for k in ws.board]
    assert order == sorted(order)
    assert re.findall(r'<li class="node node-kpi" data-key="([^"]+)"', html) == list(ws.board)
    # acme's measured leads go to won revenue, off the board: listed below the tree with their lag.
    others = html[html.index('id="other-leads"'):]
    for e in expected.edges:
        assert f'<tr data-key="{e.leader}">' in others
        assert f"{e.lag} semaine{'s' if e.lag > 1 else ''}" in _text(others)
    assert 'href="/tree?as_of=2026-11-15"' in html and 'href="/audit?as_of=2026-11-15"' in html


def test_the_analysis_runs_once_per_state(acme_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[date] = []
    real = state.analyse

    def counted(svc: WorkspaceService, as_of: date) -> state.Analysis:
        calls.append(as_of)
        return real(svc, as_of)

    monkeypatch.setattr(state, "analyse", counted)
    with TestClient(create_app(acme_dir, state_dir=tmp_path, cache_size=0), base_url="http://127.0.0.1") as c:  # not even the page cache
        for path in ("/", "/metric/mrr", "/audit", "/tree", "/metric/mrr/history.svg", "/"):
            assert c.get(f"{path}?as_of={AS_OF}").status_code == 200, path
        assert calls == [AS_OF]
        c.get("/?as_of=2026-10-01")
        assert calls == [AS_OF, date(2026, 10, 1)]


def test_a_date_out_of_range_is_a_clear_400(client) -> None:
    r = client.get("/", params={"as_of": "9999-12-31"})
    assert r.status_code == 400
    assert "9999-12-31" in r.text and "hors limites" in r.text  # acme speaks French


def test_a_stopped_source_shows_no_data_and_no_cliff(client: TestClient) -> None:
    # Acme's sources stop on 2026-11-22: on 2026-12-06 the pipeline is not judged, says why, and its sparkline
    # ends where the data does instead of falling to the few rows dated ahead.
    html = client.get("/?as_of=2026-12-06").text
    tile = _tile(html, "pipeline_generated")
    assert 'data-verdict="no_data"' in tile
    assert _role(tile, "no-data") == "les données n'arrivent plus depuis le 22 nov. 2026"
    spec = json.loads(unescape(re.search(r"data-spec='([^']*)'", tile).group(1)))  # type: ignore[union-attr]
    periods = sorted(str(v["period"]) for v in spec["data"]["values"])
    assert periods[-1] == "2026-11-16"  # the week of 16-22 November, the last with data


def test_a_failed_load_keeps_the_board_and_says_so(acme_dir: Path, tmp_path: Path) -> None:
    # A CSV cut to its header line would blank the deals: the load is refused, the board keeps the last good data
    # and says why above it.
    ws = tmp_path / "acme"
    shutil.copytree(acme_dir, ws)
    with TestClient(create_app(ws, state_dir=tmp_path / "state"), base_url="http://127.0.0.1") as c:
        before = _role(_tile(c.get(f"/?as_of={AS_OF}").text, "pipeline_generated"), "value")
        deals = ws / "data" / "deals.csv"
        deals.write_text(deals.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
        time.sleep(1.1)  # the server looks at the files once a second
        html = c.get(f"/?as_of={AS_OF}").text
    note = re.search(r'data-role="load-failure"><p class="error">([^<]*)<', html)
    assert note is not None
    assert unescape(note.group(1)).startswith("Le dernier chargement a échoué (")
    assert "deals" in unescape(note.group(1)) and "dernières données valides" in unescape(note.group(1))
    assert _role(_tile(html, "pipeline_generated"), "value") == before


def test_the_history_chart_shows_13_weeks_12_months_or_everything(client: TestClient, engine_board: list[MetricStatus]
                                                                   ) -> None:
    def shown(query: str) -> tuple[list[str], str]:
        html = client.get(f"/metric/pipeline_generated?as_of={AS_OF}{query}").text
        spec = json.loads(unescape(re.search(r"<div class=\"chart history\"[^>]*? data-spec='([^']*)'",  # type: ignore[union-attr]
                                             html).group(1)))
        nav = html[html.index('class="ranges"'):html.index("</nav>", html.index('class="ranges"'))]
        return [str(v["period"]) for v in spec["data"]["values"]], nav

    current = next(s.period for s in engine_board if s.key == "pipeline_generated")  # the week of 9 Nov 2026
    weeks, nav = shown("&range=13w")
    assert weeks[-1] == current.isoformat() and len(weeks) == 13
    assert date.fromisoformat(weeks[0]) == current - timedelta(weeks=12)
    assert re.search(r'range=13w#history" aria-current="true">13 semaines<', nav)
    year, nav = shown("")  # 12 months unless asked otherwise
    assert len(year) == 52 and year[-1] == current.isoformat()
    assert re.search(r'range=12m#history" aria-current="true">12 mois<', nav)
    everything, _ = shown("&range=all")
    assert everything[-1] == current.isoformat() and len(everything) > len(year)
    assert shown("&range=nonsense")[0] == year  # an unknown range: the default, not an error
