"""Settings, alignment and decisions pages over a copy of acme: forms checked with kpilot.yaml's rules,
saved in the application database (SQLite, and the local PostgreSQL), and the board follows."""

from __future__ import annotations

import html
import itertools
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import duckdb
import pytest
from fastapi.testclient import TestClient

from kpilot.insights.funnel import funnel_stages
from kpilot.model.overrides import apply_overrides
from kpilot.report.charts import STATUS_COLORS
from kpilot.service import MetricStatus, WorkspaceService
from kpilot.store import AppStore
from kpilot.web import create_app
from tests.web.conftest import AS_OF, Expected, serving

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
Q = f"?as_of={AS_OF.isoformat()}"


def _copy(acme_dir: Path, target: Path, key: str = "acme") -> Path:
    """acme in a folder of its own (acme_dir is read-only), under workspace key `key`."""
    shutil.copytree(acme_dir, target, ignore=shutil.ignore_patterns(".kpilot"))
    manifest = target / "kpilot.yaml"
    manifest.write_text(manifest.read_text(encoding="utf-8").replace("workspace: acme\n", f"workspace: {key}\n"),
                        encoding="utf-8")
    return target


def _token(client: TestClient, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def _form(token: str, **fields: Any) -> dict[str, Any]:
    """The settings form of pipeline_generated as acme writes it, with `fields` changed."""
    form: dict[str, Any] = {"csrf": token, "target_from": ["2026-01", ""], "target_to": ["2026-12", ""],
                            "target_value": ["800000", ""], "green": "1", "amber": "0.9",
                            "owners": ["marketing", "sales"], "has_rule": "1", "status": "", "below_target": "0.85",
                            "forecast": "", "periods": "2", "rule_owner": "marketing",
                            "action": "Relancer la campagne LinkedIn Ads PME et doubler les séquences outbound sur les "
                                      "comptes ETI chauds."}
    form.update(fields)
    return form


def _engine_status(workspace: Path, overrides: dict[str, dict[str, object]], state: Path, key: str) -> MetricStatus:
    """The engine's status of a KPI on the workspace with these settings (the independent side)."""
    with WorkspaceService(workspace, state_dir=state) as svc:
        svc.ws = apply_overrides(svc.ws, overrides)
        svc.load()
        return next(s for s in svc.board(as_of=AS_OF) if s.key == key)


@pytest.fixture()
def site(acme_dir: Path, tmp_path: Path) -> Iterator[tuple[TestClient, Path, Path]]:
    ws = _copy(acme_dir, tmp_path / "acme")
    state = tmp_path / "state"
    with TestClient(create_app(ws, state_dir=state), base_url="http://127.0.0.1") as client:
        yield client, ws, state


def test_settings_list_every_metric_and_prefill_the_form(site: tuple[TestClient, Path, Path]) -> None:
    client, ws, _ = site
    index = client.get("/settings")
    assert index.status_code == 200
    keys = re.findall(r'<tr data-key="([a-z_]+)">', index.text)
    from kpilot.model import load_workspace

    assert keys == load_workspace(ws)[0].metric_keys
    form = client.get("/settings/metric/pipeline_generated").text
    # Numbers as the page's language writes them: 800 000 and 0,85 in French.
    assert 'name="target_value" value="800\u202f000"' in form and 'name="target_from" value="2026-01"' in form
    assert 'name="below_target" value="0,85"' in form and 'name="periods" value="2"' in form
    client.cookies.set("kpilot_lang", "en")
    english = client.get("/settings/metric/pipeline_generated").text
    client.cookies.delete("kpilot_lang")
    assert 'name="target_value" value="800,000"' in english and 'name="below_target" value="0.85"' in english
    assert re.search(r'value="marketing" checked', form) and re.search(r'value="sales" checked', form)
    assert "Relancer la campagne LinkedIn Ads PME" in form
    assert client.get("/settings/metric/nope").status_code == 404


def test_a_form_without_its_token_is_refused(site: tuple[TestClient, Path, Path]) -> None:
    client, _, state = site
    _token(client, "/settings/metric/pipeline_generated")
    refused = client.post("/settings/metric/pipeline_generated", data=_form("forged", green="0.5"),
                          follow_redirects=False)
    assert refused.status_code == 403
    with AppStore(state_dir=state) as store:
        assert store.overrides("acme") == {}


def test_invalid_settings_show_errors_beside_the_fields_in_french(site: tuple[TestClient, Path, Path]) -> None:
    client, _, state = site
    token = _token(client, "/settings/metric/pipeline_generated")
    bad = client.post("/settings/metric/pipeline_generated", follow_redirects=False, data=_form(
        token, green="0,8", amber="0.9", target_from=["2026-01", "2026-13"], target_to=["2026-12", ""],
        target_value=["800000", "beaucoup"]))
    assert bad.status_code == 422
    text = html.unescape(bad.text)
    assert "Rien n'a été enregistré" in text
    bands = text.split('id="bands"')[1].split("</fieldset>")[0]
    assert "field-error" in bands and "amber (0.9) ne doit pas dépasser green (0.8)" in bands
    row = re.search(r'<tr class="target-row invalid" data-row="1">.*?</tr>\s*<tr class="row-errors">(.*?)</tr>',
                    text, re.S)
    assert row is not None and "la valeur doit être un nombre" in row.group(1) and "beaucoup" in row.group(1)
    assert 'value="beaucoup"' in text and 'value="0,8"' in text  # what the user typed is shown again
    with AppStore(state_dir=state) as store:
        assert store.overrides("acme") == {}
    unknown = client.post("/settings/metric/pipeline_generated", follow_redirects=False,
                          data=_form(token, owners=["marketing"], rule_owner="", has_rule="1"))
    assert unknown.status_code == 422
    assert "field-error" in unknown.text.split('id="decision"')[1].split("</fieldset>")[0]


def test_saving_a_target_changes_the_board(site: tuple[TestClient, Path, Path], tmp_path: Path) -> None:
    client, ws, state = site
    before = client.get("/" + Q).text
    assert 'data-key="pipeline_generated" data-status="green"' in _tile_attrs(before, "pipeline_generated")
    token = _token(client, "/settings/metric/pipeline_generated")
    saved = client.post("/settings/metric/pipeline_generated", follow_redirects=False,
                        data=_form(token, target_value=["2 000 000", ""]))
    assert saved.status_code == 303 and saved.headers["location"] == "/settings/metric/pipeline_generated?saved=1"
    with AppStore(state_dir=state) as store:
        overrides = store.overrides("acme")
    # Only what differs from kpilot.yaml is kept.
    assert overrides == {"pipeline_generated": {"targets": [{"from": "2026-01", "to": "2026-12", "value": 2000000}]}}
    expected = _engine_status(ws, overrides, tmp_path / "engine", "pipeline_generated")
    assert expected.status == "red" and expected.target == 2_000_000
    after = client.get("/" + Q).text
    assert f'data-status="{expected.status}"' in _tile_attrs(after, "pipeline_generated")
    assert "2\u00a0M\u00a0€" in after
    listed = client.get("/settings").text
    assert "modifié dans les réglages" in listed.split('data-key="pipeline_generated"')[1].split("</tr>")[0]
    # Back to kpilot.yaml.
    token = _token(client, "/settings/metric/pipeline_generated")
    reset = client.post("/settings/metric/pipeline_generated", data={"csrf": token, "reset": "1"},
                        follow_redirects=False)
    assert reset.status_code == 303
    with AppStore(state_dir=state) as store:
        assert store.overrides("acme") == {}
    assert 'data-status="green"' in _tile_attrs(client.get("/" + Q).text, "pipeline_generated")


def test_numbers_typed_as_people_write_them(site: tuple[TestClient, Path, Path]) -> None:
    """French: "1 200 000" and "0,8"; English: "1,200,000" and "0.8" (a comma groups thousands, it is no decimal
    point); either language takes a plain "1200000"."""
    client, _, state = site
    for lang, value, share in [("fr", "1\u202f200\u202f000", "0,8"), ("fr", "1 200 000", "0.8"),
                               ("en", "1,200,000", "0.8"), ("en", "1200000", "0.80")]:
        client.cookies.set("kpilot_lang", lang)
        token = _token(client, "/settings/metric/pipeline_generated")
        saved = client.post("/settings/metric/pipeline_generated", follow_redirects=False,
                            data=_form(token, target_value=[value, ""], below_target=share))
        assert saved.status_code == 303, (lang, value, saved.text[:2000])
        with AppStore(state_dir=state) as store:
            stored = store.overrides("acme")["pipeline_generated"]
        assert stored["targets"][0]["value"] == 1_200_000, (lang, value)
        assert stored["decision"]["when"]["below_target"] == 0.8, (lang, share)
    # A French "1,5" is one and a half; an English "1,5" is no number: said so, beside the field.
    client.cookies.set("kpilot_lang", "en")
    token = _token(client, "/settings/metric/pipeline_generated")
    bad = client.post("/settings/metric/pipeline_generated", follow_redirects=False,
                      data=_form(token, target_value=["1,5", ""]))
    assert bad.status_code == 422 and "1,5" in html.unescape(bad.text)


def test_removing_a_decision_rule_makes_a_vanity_metric(site: tuple[TestClient, Path, Path]) -> None:
    client, _, state = site
    token = _token(client, "/settings/metric/win_rate" + Q)
    form = _form(token, target_value=["0.32", ""], owners=["sales"], has_rule="", rule_owner="sales")
    saved = client.post("/settings/metric/win_rate" + Q, data=form, follow_redirects=False)
    assert saved.status_code == 303
    assert saved.headers["location"] == f"/settings/metric/win_rate?saved=1&as_of={AS_OF.isoformat()}"
    with AppStore(state_dir=state) as store:
        assert store.overrides("acme") == {"win_rate": {"decision": None}}
    board = client.get("/" + Q).text
    tile = board.split('data-key="win_rate"')[1].split("</article>")[0]
    assert "aucune règle de décision : indicateur de vanité" in html.unescape(tile)
    again = client.get("/settings/metric/win_rate").text
    assert 'name="has_rule" value="1" checked' not in again


def _tile_attrs(html: str, key: str) -> str:
    found = re.search(rf'<article class="tile[^"]*" data-key="{key}"[^>]*>', html)
    assert found is not None, key
    return found.group(0)


def test_decisions_are_recorded_and_closed(site: tuple[TestClient, Path, Path]) -> None:
    client, _, state = site
    empty = client.get("/decisions" + Q).text
    assert "Aucune règle de décision ne se déclenche" in empty and "Aucune décision enregistrée" in empty
    token = _token(client, "/settings/metric/pipeline_generated")
    client.post("/settings/metric/pipeline_generated", data=_form(token, target_value=["2000000", ""]))
    page = client.get("/decisions" + Q).text
    form = re.search(r'<form class="decide"[^>]*data-key="pipeline_generated">(.*?)</form>', page, re.S)
    assert form is not None, "the rule of pipeline_generated fires with a target of 2 M€"
    assert '<option value="marketing" selected>' in form.group(1)
    assert "Relancer la campagne LinkedIn Ads PME" in form.group(1)
    recorded = client.post("/decisions" + Q, follow_redirects=False, data={
        "csrf": token, "metric": "pipeline_generated", "owner": "marketing",
        "action": "Relancer LinkedIn Ads", "note": "vu en comité"})
    assert recorded.status_code == 303
    with AppStore(state_dir=state) as store:
        [d] = store.decisions("acme")
    # Recorded through the service as of the page's date: the week holding it, the rule's review date.
    assert (d.metric, d.period, d.owner, d.action, d.status, d.note) == (
        "pipeline_generated", "2026-W46", "marketing", "Relancer LinkedIn Ads", "open", "vu en comité")
    assert d.review_on is not None and d.review_on > AS_OF.isoformat()
    log = client.get("/decisions" + Q).text
    assert f'<tr data-id="{d.id}" data-status="open">' in log and "Relancer LinkedIn Ads" in log
    closed = client.post(f"/decisions/{d.id}", data={"csrf": token, "status": "done"}, follow_redirects=False)
    assert closed.status_code == 303
    assert f'<tr data-id="{d.id}" data-status="done">' in client.get("/decisions" + Q).text
    assert client.post(f"/decisions/{d.id}", data={"status": "declined"}).status_code == 403


def test_alignment_matrix_funnel_and_incentives(client: TestClient, acme_raw: duckdb.DuckDBPyConnection,
                                                expected: Expected) -> None:
    page = client.get("/alignment" + Q)
    assert page.status_code == 200
    text = page.text
    # Matrix: pipeline_generated is shared by marketing and sales, leads owned by marketing alone.
    row = re.search(r'<tr data-key="pipeline_generated"[^>]*>(.*?)</tr>', text, re.S)
    assert row is not None and re.findall(r'data-owned="(\w*)"', row.group(1)) == ["shared", "shared", ""]
    row = re.search(r'<tr data-key="leads"[^>]*>(.*?)</tr>', text, re.S)
    assert row is not None and re.findall(r'data-owned="(\w*)"', row.group(1)) == ["alone", "", ""]
    # On a phone each cell names its team (the row becomes a list).
    assert re.findall(r'data-label="([^"]+)"', row.group(1)) == ["Marketing", "Ventes", "Customer success"]
    # Funnel over October 2026, against DuckDB reading the CSVs.
    month = "created_at >= '2026-10-01' AND created_at < '2026-11-01'"
    counts = [
        acme_raw.execute(f"SELECT count(*) FROM leads WHERE {month}").fetchone()[0],  # type: ignore[index]
        acme_raw.execute(f"SELECT count(*) FROM leads WHERE is_mql AND {month}").fetchone()[0],  # type: ignore[index]
        acme_raw.execute("SELECT count(*) FROM meetings WHERE type = 'demo' AND booked_at >= '2026-10-01' "
                         "AND booked_at < '2026-11-01'").fetchone()[0],  # type: ignore[index]
        acme_raw.execute(f"SELECT count(*) FROM deals WHERE {month}").fetchone()[0],  # type: ignore[index]
        acme_raw.execute("SELECT count(*) FROM deals WHERE stage = 'won' AND closed_at >= '2026-10-01' "
                         "AND closed_at < '2026-11-01'").fetchone()[0],  # type: ignore[index]
    ]
    shown = [int(v.replace("\u202f", "").replace("\u00a0", "")) for v in
             re.findall(r'<span class="stage-value num" data-role="value">([^<]+)</span>', text)]
    assert shown == counts
    conversions = re.findall(r'data-role="conversion">→ ([^<]+)</span>', text)
    assert conversions == [f"{100 * b / a:.1f}".replace(".", ",") + "\u202f%" for a, b in itertools.pairwise(counts)]
    # Incentive warnings: the audit's.
    risky = [v.key for v in expected.audit if v.checks.get("incentive_risk")]
    assert risky and re.findall(r'<div class="risk" data-key="(\w+)">', text) == risky


def test_funnel_stages_of_acme(acme_dir: Path) -> None:
    from kpilot.model import load_workspace

    ws, _ = load_workspace(acme_dir)
    stages = funnel_stages(list(ws.metrics))
    assert [(s.name, s.metric, s.part) for s in stages] == [
        ("Leads", "leads", "value"), ("MQL", "mql_rate", "numerator"), ("Demos", "demos_booked", "value"),
        ("Deals", "pipeline_generated", "value"), ("Won", "win_rate", "numerator")]
    assert stages[3].counted is not None and stages[3].counted.measure == "count(*)"


@pytest.mark.postgres
def test_settings_and_decisions_on_postgres(acme_dir: Path, tmp_path: Path) -> None:
    key = f"acme_{uuid.uuid4().hex[:8]}"
    ws = _copy(acme_dir, tmp_path / "acme", key)
    with TestClient(create_app(ws, state_dir=tmp_path / "state", db_url=PG_URL), base_url="http://127.0.0.1") as client:
        token = _token(client, "/settings/metric/pipeline_generated")
        saved = client.post("/settings/metric/pipeline_generated", follow_redirects=False,
                            data=_form(token, target_value=["2000000", ""], green="0,95"))
        assert saved.status_code == 303
        assert 'data-status="red"' in _tile_attrs(client.get("/" + Q).text, "pipeline_generated")
        client.post("/decisions", data={"csrf": token, "metric": "pipeline_generated", "period": "2026-11-09",
                                        "owner": "marketing", "action": "Relancer"})
    with AppStore(PG_URL, state_dir=tmp_path) as store:
        assert store.overrides(key) == {"pipeline_generated": {
            "targets": [{"from": "2026-01", "to": "2026-12", "value": 2000000}],
            "bands": {"green": 0.95, "amber": 0.9}}}
        assert [(d.metric, d.action) for d in store.decisions(key)] == [("pipeline_generated", "Relancer")]
        for field in ("targets", "bands"):
            store.clear_override(key, "pipeline_generated", field)


# --- in a real browser -------------------------------------------------------------------------------


@pytest.fixture()
def copy_server(acme_dir: Path, tmp_path: Path) -> Iterator[tuple[str, Path, Path]]:
    """A real uvicorn server on a copy of acme; yields its URL, the copy and its state folder."""
    ws = _copy(acme_dir, tmp_path / "acme")
    state = tmp_path / "state"
    with serving(create_app(ws, state_dir=state)) as url:
        yield url, ws, state


def _rgb(hex_color: str) -> str:
    h = hex_color.lstrip("#")
    return "rgb({}, {}, {})".format(*(int(h[i:i + 2], 16) for i in (0, 2, 4)))


@pytest.mark.browser
def test_edit_a_target_in_the_browser(browser: Any, copy_server: tuple[str, Path, Path], screenshots: Path,
                                      tmp_path: Path) -> None:
    base, ws, state = copy_server
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="fr-FR")
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    try:
        page.goto(base + "/" + Q)
        tile = page.locator("article.tile[data-key='pipeline_generated']")
        assert tile.get_attribute("data-status") == "green"
        page.click("nav.nav a[href^='/settings']")
        page.wait_for_url("**/settings*")
        page.screenshot(path=str(screenshots / "settings-fr.png"), full_page=True)
        page.click("tr[data-key='pipeline_generated'] a.button")
        page.wait_for_selector("form.settings-form")
        page.locator("input[name=target_value]").first.fill("2000000")
        page.click("form.settings-form button.primary")
        page.wait_for_selector(".saved")
        page.screenshot(path=str(screenshots / "settings-metric-fr.png"), full_page=True)
        with AppStore(state_dir=state) as store:
            overrides = store.overrides("acme")
        expected = _engine_status(ws, overrides, tmp_path / "engine", "pipeline_generated")
        assert expected.status == "red"
        page.goto(base + "/" + Q)
        tile = page.locator("article.tile[data-key='pipeline_generated']")
        assert tile.get_attribute("data-status") == expected.status
        assert tile.locator(".pill").evaluate("e => getComputedStyle(e).backgroundColor") == \
            _rgb(STATUS_COLORS[expected.status])
        # The rule now fires: record the decision it calls for.
        page.goto(base + "/decisions" + Q)
        form = page.locator("form.decide[data-key='pipeline_generated']")
        assert form.locator("select[name=owner]").input_value() == "marketing"
        form.locator("input[name=note]").fill("Décidé en comité du lundi")
        form.locator("button[type=submit]").click()
        page.wait_for_selector("table.decision-log tr[data-status='open']")
        assert "Décidé en comité du lundi" in page.locator("table.decision-log").inner_text()
        page.screenshot(path=str(screenshots / "decisions-fr.png"), full_page=True)
        page.goto(base + "/alignment" + Q)
        page.wait_for_selector("ol.funnel li")
        assert page.locator("ol.funnel li").count() == 5
        page.screenshot(path=str(screenshots / "alignment-fr.png"), full_page=True)
    finally:
        context.close()
    assert errors == []
    assert {urlparse(u).hostname for u in requests} == {"127.0.0.1"}


@pytest.mark.parametrize("fields", [{"review_on": "someday"}, {"review_on": "2026-11-01"}, {"action": "Relancer\x00"},
                                    {"owner": "m" * 201}])
def test_a_bad_decision_form_is_refused_and_nothing_is_written(site: tuple[TestClient, Path, Path],
                                                                fields: dict[str, str]) -> None:
    client, _, state = site
    token = _token(client, "/settings/metric/pipeline_generated")
    data = {"csrf": token, "metric": "pipeline_generated", "action": "Relancer", **fields}
    r = client.post("/decisions" + Q, data=data, follow_redirects=False)
    assert r.status_code == 422, r.text
    with AppStore(state_dir=state) as store:
        assert store.decisions("acme") == []
