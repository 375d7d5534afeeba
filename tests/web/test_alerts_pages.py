"""The alerts page, deciding from an alert, and the alert routes of the API, over a copy of acme whose alerts were
evaluated through the service as of 2026-09-13 (four KPIs off track then). Values are checked against the board and
the alert e-mails the service composed, and every change against the application database."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kpilot.i18n import format_day, format_verdict
from kpilot.service import MetricStatus, WorkspaceService
from kpilot.service import alerts as alert_service
from kpilot.store import AppStore
from kpilot.store.alert_log import NewMessage
from kpilot.web import create_app
from tests.web.conftest import serving
from tests.web.test_settings import _copy, _token

DAY = date(2026, 9, 13)
Q = f"?as_of={DAY.isoformat()}"
EN = {"Accept-Language": "en"}


@dataclass
class Site:
    client: TestClient
    store: AppStore
    board: list[MetricStatus]  # the board the alerts were evaluated on


def _evaluated(acme_dir: Path, folder: Path) -> tuple[Path, Path, list[MetricStatus]]:
    """A copy of acme with its alerts evaluated as of DAY (the service's run, as `kpilot alerts` does it)."""
    ws, state = _copy(acme_dir, folder / "acme"), folder / "state"
    with WorkspaceService(ws, state_dir=state) as svc:
        run = alert_service.evaluate(svc, as_of=DAY)
        board = svc.board(as_of=DAY)
    assert {a.metric for a in run.alerts} == {"mrr", "pipeline_generated", "demos_booked", "win_rate"}
    return ws, state, board


@pytest.fixture(scope="module")
def site(acme_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    ws, state, board = _evaluated(acme_dir, tmp_path_factory.mktemp("alerts-site"))
    app = create_app(ws, state_dir=state)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield Site(client, app.state.gate.store, board)


def _alert(site: Site, metric: str) -> Any:
    [found] = site.store.alerts("acme", metric=metric)
    return found


def _item(page: str, alert_id: int) -> str:
    """The alerts page's entry of one alert."""
    found = re.search(rf'<li class="alert-item[^"]*" data-id="{alert_id}".*?</li>', page, re.S)
    assert found is not None, alert_id
    return found.group(0)


def _text(fragment: str, role: str) -> str:
    found = re.search(rf'data-role="{role}"[^>]*>(.*?)</', fragment, re.S)
    assert found is not None, role
    return html.unescape(re.sub(r"<[^>]+>", "", found.group(1))).strip()


def test_the_page_lists_the_open_alerts_in_the_boards_and_the_emails_words(site: Site) -> None:
    page = site.client.get("/alerts" + Q)
    assert page.status_code == 200
    text = page.text
    ids = [int(i) for i in re.findall(r'<li class="alert-item[^"]*" data-id="(\d+)"', text)]
    assert ids == sorted(ids, reverse=True) and len(ids) == 4  # newest first
    emails = {m.alert_id: m.message for m in site.store.outbox("acme") if m.alert_id is not None}
    for s in site.board:
        if s.verdict.value != "off_track":
            continue
        a = _alert(site, s.key)
        item = _item(text, a.id)
        label, _ = format_verdict(s.verdict.value, s.verdict_reason, s.data_through, "fr")
        assert label == "Hors cible"
        # The verdict in words beside a shape (not the colour alone): the board's words.
        assert re.search(r'data-role="verdict"><span class="shape" aria-hidden="true">◆</span> (.*?)</span>',
                         item).group(1) == label  # type: ignore[union-attr]
        # The reason is the sentence of the alert's e-mail.
        assert _text(item, "reason") == emails[a.id]["lines"][0]
        assert f'href="/metric/{s.key}{Q}"' in item
        assert _text(item, "teams") == ", ".join(
            {"sales": "Ventes", "marketing": "Marketing", "customer_success": "Customer success"}[t]
            for t in a.recipients)
        assert _text(item, "since") == "13 sept. 2026" and _text(item, "story") == f"#{a.story}"
        assert f'href="/decisions?metric={s.key}&amp;alert={a.id}&amp;as_of={DAY.isoformat()}#decide"' in item
    assert 'href="/alerts' in text and ">Alertes</a>" in text  # the navigation's link


def test_acknowledge_from_the_page(site: Site) -> None:
    a = _alert(site, "win_rate")
    token = _token(site.client, "/alerts" + Q)
    assert site.client.post(f"/alerts/{a.id}/ack", data={"by": "Léa"}).status_code == 403  # no form token
    assert _alert(site, "win_rate").state == "firing"
    done = site.client.post(f"/alerts/{a.id}/ack" + Q, data={"csrf": token, "by": "Léa"}, follow_redirects=False)
    assert (done.status_code, done.headers["location"]) == (303, "/alerts" + Q)
    after = _alert(site, "win_rate")
    assert (after.state, after.acknowledged_by) == ("acknowledged", "Léa")
    item = _item(site.client.get("/alerts" + Q).text, a.id)
    assert _text(item, "state") == "prise en charge · par Léa"
    assert f'action="/alerts/{a.id}/ack' not in item  # nothing left to acknowledge
    missing = site.client.post("/alerts/999999/ack" + Q, data={"csrf": token}, follow_redirects=False)
    assert missing.status_code == 404 and "il n&#39;y a pas d&#39;alerte 999999" in missing.text


def test_a_snooze_in_the_past_is_refused_with_a_clear_message(site: Site) -> None:
    a = _alert(site, "mrr")
    token = _token(site.client, "/alerts" + Q)
    past = site.client.post(f"/alerts/{a.id}/snooze" + Q, data={"csrf": token, "until": "2026-09-01"},
                            follow_redirects=False)
    assert past.status_code == 422
    assert "une alerte se met en sourdine jusqu&#39;à un jour postérieur à aujourd&#39;hui ; 2026-09-01 ne l&#39;est " \
           "pas." in past.text
    assert _alert(site, "mrr").state == "firing"
    bad = site.client.post(f"/alerts/{a.id}/snooze" + Q, data={"csrf": token, "until": "bientôt"},
                           follow_redirects=False)
    assert bad.status_code == 422 and "&#39;bientôt&#39; n&#39;est pas une date" in bad.text
    later = (date.today() + timedelta(days=10)).isoformat()
    ok = site.client.post(f"/alerts/{a.id}/snooze" + Q, data={"csrf": token, "until": later}, follow_redirects=False)
    assert ok.status_code == 303
    after = _alert(site, "mrr")
    assert (after.state, after.snoozed_until) == ("snoozed", later)


def test_deciding_from_an_alert_records_the_decision_with_its_counterfactual(site: Site) -> None:
    a = _alert(site, "demos_booked")
    before = site.client.get("/" + Q).text
    count = re.search(r'class="to-decide">(\d+) décision', before)
    assert count is not None and int(count.group(1)) == sum(1 for s in site.board if s.fires)
    assert "⚑ À décider" in _tile(before, "demos_booked")
    form_page = site.client.get(f"/decisions?metric=demos_booked&alert={a.id}&as_of={DAY.isoformat()}")
    assert form_page.status_code == 200
    form = re.search(r'<section class="panel" id="decide">(.*?)</section>', form_page.text, re.S)
    assert form is not None
    assert f'<input type="hidden" name="alert_id" value="{a.id}">' in form.group(1)
    assert html.escape(a.payload["action"]) in form.group(1)  # the rule's action, prefilled
    assert '<option value="sales" selected>' in form.group(1)
    token = re.search(r'name="csrf" value="([^"]+)"', form_page.text).group(1)  # type: ignore[union-attr]
    made = site.client.post("/decisions" + Q, follow_redirects=False, data={
        "csrf": token, "metric": "demos_booked", "alert_id": str(a.id), "owner": "sales", "by": "Marie",
        "action": a.payload["action"], "expected_effect": "+15 % démos sous 3 semaines", "review_on": ""})
    assert made.status_code == 303, made.text
    [d] = site.store.decisions("acme", "demos_booked")
    assert (d.alert_id, d.expected_change, d.user, d.owner, d.period) == (a.id, 0.15, "Marie", "sales", "2026-W37")
    assert d.review_on == "2026-10-04"  # "sous 3 semaines" after the page's date
    assert d.baseline is not None and d.baseline["made_on"] == DAY.isoformat()
    assert [p["label"] for p in d.baseline["periods"]] == ["2026-W38", "2026-W39", "2026-W40"]
    assert all(p["lower"] <= p["value"] <= p["upper"] for p in d.baseline["periods"])
    decided = "Décidé par Marie le 13 sept. 2026, bilan le 4 oct. 2026."
    log = site.client.get("/decisions" + Q).text
    row = re.search(rf'<tr data-id="{d.id}" data-status="open">(.*?)</tr>', log, re.S)
    assert row is not None and _text(row.group(1), "decided") == decided
    assert _text(row.group(1), "expected") == "Attendu : +15 % démos sous 3 semaines"
    firing = re.search(r'<div class="firing" data-key="demos_booked">(.*?)</div>', log, re.S)
    assert firing is not None and _text(firing.group(1), "decided") == "✓ " + decided
    # The board: the tile says who decided instead of calling for a decision, and the count leaves it out.
    after = site.client.get("/" + Q).text
    assert _text(_tile(after, "demos_booked"), "decided") == "✓ " + decided
    assert "À décider" not in _tile(after, "demos_booked")
    now = re.search(r'class="to-decide">(\d+) décision', after)
    assert now is not None and int(now.group(1)) == int(count.group(1)) - 1
    metric = site.client.get("/metric/demos_booked" + Q).text
    assert decided in html.unescape(metric)
    # An alert about another KPI, or one that does not exist, is refused; nothing is written.
    for alert_id in (str(_alert(site, "mrr").id), "999999", "x"):
        refused = site.client.post("/decisions" + Q, follow_redirects=False, data={
            "csrf": token, "metric": "demos_booked", "alert_id": alert_id, "action": "x"})
        assert refused.status_code == 422, alert_id
    assert len(site.store.decisions("acme", "demos_booked")) == 1


def test_a_measured_effect_is_worded_with_the_forecast_without_it(site: Site) -> None:
    d = site.store.add_decision("acme", "pipeline_generated", period="2026-W37", action="Relancer LinkedIn",
                                owner="marketing", review_on="2026-10-04")
    site.store.record_effect("acme", d.id, {"verdict": "worked", "actual": 912000.0, "counterfactual": 700000.0})
    row = re.search(rf'<tr data-id="{d.id}"[^>]*>(.*?)</tr>', site.client.get("/decisions" + Q).text, re.S)
    assert row is not None
    assert _text(row.group(1), "effect") == "efficace : 912\u202f000\u00a0€ (prévision sans elle : 700\u202f000\u00a0€)"
    # Recorded without the service, it has no counterfactual: its day is the day it was recorded.
    assert _text(row.group(1), "decided") == \
        f"Décidé par Marketing le {format_day(d.created_at.date(), 'fr')}, bilan le 4 oct. 2026."
    site.store.update_decision("acme", d.id, status="done")


def _tile(page: str, key: str) -> str:
    found = re.search(rf'<article class="tile[^"]*" data-key="{key}".*?</article>', page, re.S)
    assert found is not None, key
    return found.group(0)


def test_a_failed_message_shows_and_is_sent_again(site: Site) -> None:
    ids = site.store.apply_alert_run("acme", [], [NewMessage("ops-mail", "sales", "alert", "2026-09-07", {
        "subject": "MRR : hors cible (2026-09)", "lines": []})])
    assert ids == {}
    [message] = [m for m in site.store.outbox("acme", states=["pending"]) if m.channel == "ops-mail"]
    site.store.message_done(message.id, "failed", error="550 mailbox unavailable")
    waiting = len(site.store.outbox("acme", states=["pending"]))
    page = site.client.get("/alerts" + Q).text
    row = re.search(rf'<tr data-id="{message.id}">(.*?)</tr>', page, re.S)
    assert row is not None
    assert _text(row.group(1), "error") == "550 mailbox unavailable" and "MRR : hors cible (2026-09)" in row.group(1)
    if waiting:
        assert _text(page, "waiting") == f"{waiting} message(s) en attente d'envoi : le worker les distribue."
    token = _token(site.client, "/alerts" + Q)
    again = site.client.post(f"/alerts/outbox/{message.id}/retry" + Q, data={"csrf": token}, follow_redirects=False)
    assert again.status_code == 303
    [back] = [m for m in site.store.outbox("acme") if m.id == message.id]
    assert (back.state, back.last_error) == ("pending", "550 mailbox unavailable")
    assert f'<tr data-id="{message.id}">' not in site.client.get("/alerts" + Q).text
    twice = site.client.post(f"/alerts/outbox/{message.id}/retry" + Q, data={"csrf": token}, follow_redirects=False)
    assert twice.status_code == 404


def test_the_page_says_which_teams_nothing_reaches(site: Site) -> None:
    # acme's teams have no channel (no `notify:`, no `email:`): their alerts' messages are kept, not routed. The page
    # says so with the fix, instead of "every message was delivered or is on its way".
    page = site.client.get("/alerts" + Q, headers={"cookie": "kpilot_lang=en"}).text
    told = [html.unescape(re.sub(r"<[^>]+>", "", m)).strip()
            for m in re.findall(r'<li data-role="unreached"[^>]*>(.*?)</li>', page, re.S)]
    teams = {t for a in site.store.alerts("acme") if a.state != "resolved" for t in a.recipients}
    names = {"sales": "Ventes", "marketing": "Marketing", "customer_success": "Customer success"}
    assert told == [f"Nothing reaches {names[t]}: the team has no channel. Fix: give it an `email:` or a `notify:` "
                    "list in kpilot.yaml (see docs/channels.md)." for t in sorted(teams, key=lambda t: names[t])]
    assert 'data-role="no-failure"' not in page


def test_resolved_alerts_of_the_last_four_weeks_are_folded_away(site: Site) -> None:
    a = _alert(site, "pipeline_generated")
    site.store.apply_alert_run("acme", [{"id": a.id, "state": "resolved", "resolved_on": "2026-09-10"}], [])
    try:
        page = site.client.get("/alerts" + Q).text
        folded = re.search(r'<details class="panel" id="resolved">(.*?)</details>', page, re.S)
        assert folded is not None and f'data-id="{a.id}"' in folded.group(1)
        assert f'action="/alerts/{a.id}/' not in folded.group(1)  # nothing to do about it
        later = site.client.get(f"/alerts?as_of={(DAY + timedelta(weeks=5)).isoformat()}").text
        assert f'data-id="{a.id}"' not in later
    finally:
        site.store.apply_alert_run("acme", [{"id": a.id, "state": "firing", "resolved_on": None}], [])


# --- the API ------------------------------------------------------------------------------------------------


def test_api_lists_acknowledges_and_snoozes(site: Site) -> None:
    c = site.client
    listed = c.get("/api/v1/alerts")
    assert listed.status_code == 200
    assert listed.json() == [a.to_dict() for a in site.store.alerts("acme")]
    firing = c.get("/api/v1/alerts?state=firing").json()
    assert firing and {a["state"] for a in firing} == {"firing"}
    a = _alert(site, "pipeline_generated")
    r = c.post(f"/api/v1/alerts/{a.id}/ack", json={"by": "ops"})
    assert r.status_code == 200 and (r.json()["state"], r.json()["acknowledged_by"]) == ("acknowledged", "ops")
    assert _alert(site, "pipeline_generated").state == "acknowledged"
    later = (date.today() + timedelta(days=3)).isoformat()
    r = c.post(f"/api/v1/alerts/{a.id}/snooze", json={"until": later})
    assert r.status_code == 200 and (r.json()["state"], r.json()["snoozed_until"]) == ("snoozed", later)
    body = _error(c.post(f"/api/v1/alerts/{a.id}/snooze", json={"until": "2026-09-01"}, headers=EN), 422)
    assert body["message"] == "an alert is snoozed until a day after today; 2026-09-01 is not."
    assert body["issues"][0]["field"] == "until"
    assert _error(c.post(f"/api/v1/alerts/{a.id}/snooze", json={"until": "2026-02-30"}), 422)["issues"][0][
        "field"] == "until"
    assert _error(c.post("/api/v1/alerts/999999/ack", json={}, headers=EN), 404)["message"] == \
        "there is no alert 999999 in workspace 'acme'."
    _error(c.post("/api/v1/alerts/999999/snooze", json={"until": later}), 404)
    _error(c.get("/api/v1/alerts?state=open"), 422)
    _error(c.post(f"/api/v1/alerts/{a.id}/ack", content=b"by=x",
                  headers={"Content-Type": "application/x-www-form-urlencoded"}), 422)


def test_api_outbox_and_retry(site: Site) -> None:
    c = site.client
    site.store.apply_alert_run("acme", [], [NewMessage("hook", "marketing", "alert", "2026-09-07",
                                                       {"subject": "Pipeline"})])
    [m] = [m for m in site.store.outbox("acme", states=["pending"]) if m.channel == "hook"]
    site.store.message_done(m.id, "failed", error="HTTP 404 from the webhook")
    failed = c.get("/api/v1/outbox?state=failed").json()
    assert [x["id"] for x in failed] == [x.id for x in site.store.outbox("acme", states=["failed"])]
    [shown] = [x for x in failed if x["id"] == m.id]
    assert (shown["last_error"], shown["subject"], shown["recipient"]) == ("HTTP 404 from the webhook", "Pipeline",
                                                                           "marketing")
    r = c.post(f"/api/v1/outbox/{m.id}/retry")
    assert r.status_code == 200 and r.json()["state"] == "pending"
    _error(c.post(f"/api/v1/outbox/{m.id}/retry"), 404)
    _error(c.get("/api/v1/outbox?state=lost"), 422)


def test_api_decisions_with_an_expected_effect(site: Site) -> None:
    c = site.client
    a = _alert(site, "win_rate")
    review = (date.today() + timedelta(days=40)).isoformat()
    r = c.post("/api/v1/decisions", json={"metric": "win_rate", "action": "Coaching BANT", "by": "Paul",
                                          "expected_effect": "+5 % within 6 weeks", "review_on": review,
                                          "alert_id": a.id, "note": "comité"})
    assert r.status_code == 201, r.text
    made = r.json()
    assert (made["alert_id"], made["expected_change"], made["review_on"], made["user"], made["note"]) == (
        a.id, 0.05, review, "Paul", "comité")
    assert made["baseline"]["made_on"] == site.client.app.state.gate.today().isoformat()  # type: ignore[attr-defined]
    assert [d.to_dict() for d in site.store.decisions("acme", "win_rate")] == [made]
    body = _error(c.post("/api/v1/decisions", json={"metric": "win_rate", "action": "x", "review_on": "2026-13-01"}),
                  422)
    assert body["issues"][0]["field"] == "review_on"
    body = _error(c.post("/api/v1/decisions", json={"metric": "win_rate", "action": "x", "review_on": "2020-01-01"},
                         headers=EN), 422)
    assert body["issues"][0]["field"] == "review_on" and "must be after the decision's day" in body["message"]
    body = _error(c.post("/api/v1/decisions", json={"metric": "win_rate", "action": "x", "review_on": "2100-01-01"},
                         headers=EN), 422)  # a review that far would forecast for ever
    assert body["issues"][0]["field"] == "review_on" and "more than five years ahead" in body["message"]
    body = _error(c.post("/api/v1/decisions", json={"metric": "win_rate", "action": "x",
                                                    "expected_effect": "+5 % within 99999999 days"}), 422)
    assert body["issues"][0]["field"] == "expected_effect"
    body = _error(c.post("/api/v1/decisions", json={"metric": "mrr", "action": "x", "alert_id": a.id}, headers=EN),
                  422)
    assert body["issues"][0]["field"] == "alert_id"
    body = _error(c.post("/api/v1/decisions", json={"metric": "mrr", "action": "x"}), 422)  # no period, nothing to
    assert body["issues"][0]["field"] == "period"  # measure: the log's entry as before needs its period
    assert len(site.store.decisions("acme", "win_rate")) == 1


def _error(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    return r.json()["error"]  # type: ignore[no-any-return]


# --- in a real browser -------------------------------------------------------------------------------------


@pytest.mark.browser
def test_the_alerts_page_on_a_phone_in_french(browser: Any, acme_dir: Path, tmp_path: Path, screenshots: Path) -> None:
    ws, state, _ = _evaluated(acme_dir, tmp_path)
    with serving(create_app(ws, state_dir=state)) as base:
        context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                      has_touch=True, locale="fr-FR")
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        try:
            page.goto(f"{base}/alerts{Q}")
            page.wait_for_selector("li.alert-item")
            assert page.locator("li.alert-item").count() == 4
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            page.click("#resolved summary")
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            # Every field has a label, every button a name (what an accessibility audit checks first).
            unlabeled = page.evaluate("() => [...document.querySelectorAll('input:not([type=hidden]), select, "
                                      "textarea')].filter(e => !e.labels || e.labels.length === 0).map(e => e.name)")
            assert unlabeled == []
            nameless = page.evaluate("() => [...document.querySelectorAll('button, a')].filter(e => "
                                     "!e.textContent.trim()).length")
            assert nameless == 0
            page.screenshot(path=str(screenshots / "alerts-phone-fr.png"), full_page=True)
            page.locator("li.alert-item a[data-role=decide]").first.click()
            page.wait_for_selector("#decide form.decide")
            assert page.locator("#decide input[name=alert_id]").count() == 1
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            page.screenshot(path=str(screenshots / "decide-from-alert-phone-fr.png"), full_page=True)
        finally:
            context.close()
    assert errors == []
