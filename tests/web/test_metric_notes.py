"""The KPI page shows the KPI's decision log and annotations, adds annotations through a form (with the
browser's CSRF token), and draws the annotations on the history chart as rules (in the page and in the SVG)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kpilot.report.charts import ANNOTATION_COLOR
from kpilot.store import AppStore
from kpilot.web import create_app
from kpilot.web.locale import COOKIE
from tests.web.conftest import AS_OF

EN = {"cookie": f"{COOKIE}=en"}
PAGE = f"/metric/mrr?as_of={AS_OF}"


@pytest.fixture(scope="module")
def app_client(acme_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """acme with an application database of its own (the notes added here are seen by no other test)."""
    with TestClient(create_app(acme_dir, state_dir=tmp_path_factory.mktemp("notes")), base_url="http://127.0.0.1") as c:
        yield c


def _store(client: TestClient) -> AppStore:
    return client.app.state.gate.store  # type: ignore[attr-defined,no-any-return]


def _spec(html: str) -> dict[str, Any]:
    found = re.search(r"<div class=\"chart history\"[^>]*? data-spec='([^']*)'", html)
    assert found is not None
    return json.loads(unescape(found.group(1)))  # type: ignore[no-any-return]


def _rules(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [v for layer in spec["layer"] if layer.get("mark", {}).get("type") == "rule"
            for v in layer["data"]["values"]]


def _token(client: TestClient) -> str:
    page = client.get(PAGE, headers=EN)
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None and len(found.group(1)) >= 32
    assert client.cookies.get("kpilot_session")  # the cached page carries this browser's token, for its session
    return found.group(1)


def test_an_annotation_added_on_the_page_is_listed_and_drawn(app_client: TestClient) -> None:
    c = app_client
    before = c.get(PAGE, headers=EN).text
    assert "No annotation yet" in before and _rules(_spec(before)) == []
    token = _token(c)
    r = c.post(f"/metric/mrr/annotations?as_of={AS_OF}", data={"csrf": token, "period": "2026-10",
                                                                "text": "Price rise of 8 %"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/metric/mrr?as_of={AS_OF}#annotations"
    assert [(a.period, a.text) for a in _store(c).annotations("acme", "mrr")] == [("2026-10", "Price rise of 8 %")]

    html = c.get(PAGE, headers=EN).text  # the page cached before the note is not served again
    block = re.search(r'<div class="annotations-block" id="annotations">(.*?)</div>', html, re.S)
    assert block is not None and '<strong>October 2026</strong> Price rise of 8 %' in block.group(1)
    spec = _spec(html)
    assert _rules(spec) == [{"period": "2026-10-01", "label": "October 2026", "text": "Price rise of 8 %"}]
    rule = next(layer for layer in spec["layer"] if layer.get("mark", {}).get("type") == "rule")
    assert [t["field"] for t in rule["encoding"]["tooltip"]] == ["label", "text"]
    assert rule["encoding"]["tooltip"][1]["title"] == "Annotation"
    svg = c.get(f"/metric/mrr/history.svg?as_of={AS_OF}", headers=EN)
    assert svg.status_code == 200 and ANNOTATION_COLOR in svg.text  # the same spec, drawn on the server


def test_an_annotation_needs_the_token_and_a_period(app_client: TestClient) -> None:
    c = app_client
    c.cookies.set(COOKIE, "en")  # in the jar: a cookie header would replace the form token's cookie
    count = len(_store(c).annotations("acme", "win_rate"))
    refused = c.post("/metric/win_rate/annotations", data={"csrf": "forged", "period": "2026-10", "text": "x"},
                     headers=EN, follow_redirects=False)
    assert refused.status_code == 403
    token = _token(c)
    bad = c.post("/metric/win_rate/annotations", data={"csrf": token, "period": "October", "text": "x"},
                 follow_redirects=False)
    assert bad.status_code == 422 and "the annotation&#39;s period &#39;October&#39; is not a period" in bad.text
    empty = c.post("/metric/win_rate/annotations", data={"csrf": token, "period": "2026-10", "text": " "},
                   follow_redirects=False)
    assert empty.status_code == 422 and "an annotation needs a text" in empty.text
    assert len(_store(c).annotations("acme", "win_rate")) == count
    assert c.post("/metric/nothing/annotations", data={"csrf": token, "period": "2026-10", "text": "x"}
                  ).status_code == 404


def test_the_decision_log_of_the_kpi_is_on_its_page(app_client: TestClient) -> None:
    c = app_client
    html = c.get(f"/metric/logo_churn?as_of={AS_OF}", headers=EN).text
    log = re.search(r'<div class="decision-log-block" id="decision-log">(.*?)</div>', html, re.S)
    assert log is not None and "No decision recorded for this KPI yet." in log.group(1)
    assert f'href="/decisions?as_of={AS_OF}"' in log.group(1)
    store = _store(c)
    done = store.add_decision("acme", "logo_churn", period="2026-10", action="Call every at-risk account",
                              owner="customer_success", note="12 calls")
    store.update_decision("acme", done.id, status="done")
    store.add_decision("acme", "mrr", period="2026-10", action="Not about churn", owner="sales")
    html = c.get(f"/metric/logo_churn?as_of={AS_OF}", headers=EN).text
    log = re.search(r'<div class="decision-log-block" id="decision-log">(.*?)</div>', html, re.S)
    assert log is not None
    rows = re.findall(r'<tr data-id="(\d+)" data-status="(\w+)">', log.group(1))
    assert rows == [(str(done.id), "done")]  # this KPI's decisions only, and its status changed after logging
    assert "Call every at-risk account" in log.group(1) and "12 calls" in log.group(1)
    french = c.get(f"/metric/logo_churn?as_of={AS_OF}", headers={"cookie": f"{COOKIE}=fr"}).text
    assert "Journal des décisions" in french and "Toutes les décisions" in french
    assert "Ajouter l'annotation" in unescape(french)
