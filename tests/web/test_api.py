"""The REST API under /api/v1 against acme, with its app database on SQLite and on PostgreSQL: every endpoint,
values checked against WorkspaceService, errors as JSON, idempotent pushes, and schemathesis over the spec."""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import hypothesis
import hypothesis.errors
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck
from hypothesis import strategies as st
from schemathesis import GenerationMode

from kpilot.compute import results
from kpilot.i18n import translator
from kpilot.model import Grain, load_workspace
from kpilot.service import MetricStatus, WorkspaceService
from kpilot.store import AppStore
from kpilot.web import create_app
from tests.store.pg import pg_schema
from tests.web.conftest import AS_OF, Expected

EN = {"Accept-Language": "en"}
FR = {"Accept-Language": "fr"}


@dataclass
class Api:
    client: TestClient
    app: FastAPI
    store: AppStore


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def api(request: pytest.FixtureRequest, acme_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The app over acme, its app database the default SQLite file or a fresh PostgreSQL schema."""
    state = tmp_path_factory.mktemp(f"api-{request.param}")
    with ExitStack() as stack:
        url = stack.enter_context(pg_schema()) if request.param == "postgres" else None
        app = create_app(acme_dir, state_dir=state, db_url=url, hosts=["testserver"])  # schemathesis's host
        client = stack.enter_context(TestClient(app, base_url="http://127.0.0.1"))
        store = app.state.gate.store
        assert store.url.startswith("postgresql+psycopg://" if url else "sqlite:///")
        yield Api(client, app, store)


@pytest.fixture(scope="module")
def engine(acme_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkspaceService]:
    """The workspace service in a warehouse of its own: the independent side of the value checks."""
    with WorkspaceService(acme_dir, state_dir=tmp_path_factory.mktemp("api-engine")) as svc:
        svc.load()
        yield svc


def _json(value: object) -> object:
    return json.loads(json.dumps(value))


def _error(r: object, status: int) -> dict[str, object]:
    """The {error: {message, fix}} body of an answer with `status`."""
    assert r.status_code == status, r.text  # type: ignore[attr-defined]
    assert r.headers["content-type"].startswith("application/json")  # type: ignore[attr-defined]
    body = r.json()["error"]  # type: ignore[attr-defined]
    assert body["message"] and "Traceback" not in r.text  # type: ignore[attr-defined]
    return body  # type: ignore[no-any-return]


# --- reading --------------------------------------------------------------------------------------------

def test_workspaces(api: Api, acme_dir: Path) -> None:
    ws, _ = load_workspace(acme_dir)
    assert api.client.get("/api/v1/workspaces").json() == [
        {"key": "acme", "title": "Acme Gestion", "language": "fr", "north_star": "mrr", "board": ws.board}]
    assert ws.board == ["pipeline_generated", "demos_booked", "win_rate", "logo_churn"]


def test_metric_definitions(api: Api, acme_dir: Path) -> None:
    ws, _ = load_workspace(acme_dir)
    metrics = api.client.get("/api/v1/metrics").json()
    assert [m["key"] for m in metrics] == ws.metric_keys
    mrr = api.client.get("/api/v1/metrics/mrr").json()
    assert mrr == next(m for m in metrics if m["key"] == "mrr")
    assert (mrr["type"], mrr["grain"], mrr["unit"], mrr["owners"]) == ("snapshot", "month", "EUR",
                                                                        ["sales", "customer_success"])
    assert mrr["targets"] == [{"from": str(t.from_), "to": str(t.to) if t.to is not None else None, "value": t.value}
                              for t in ws.metric("mrr").targets]
    assert mrr["bands"] == {"green": ws.metric("mrr").bands.green, "amber": ws.metric("mrr").bands.amber}
    win = api.client.get("/api/v1/metrics/win_rate").json()
    assert win["type"] == "ratio" and set(win["numerator"]) >= {"model", "measure"}


def test_an_unknown_metric_is_a_404_with_a_hint(api: Api) -> None:
    body = _error(api.client.get("/api/v1/metrics/mrrr", headers=EN), 404)
    assert "unknown metric 'mrrr'" in str(body["message"]) and "mrr" in str(body["message"])
    assert body["fix"] == "use a key from GET /api/v1/metrics."
    french = _error(api.client.get("/api/v1/metrics/mrrr", headers=FR), 404)
    assert str(french["message"]).startswith("métrique inconnue 'mrrr'")
    assert french["fix"] == "utilisez une clé donnée par GET /api/v1/metrics."


def test_series_are_the_services(api: Api, engine: WorkspaceService) -> None:
    got = api.client.get(f"/api/v1/metrics/mrr/series?as_of={AS_OF}").json()
    assert got == _json(engine.series("mrr", as_of=AS_OF))
    assert got[-1]["period"] == "2026-11-01" and got[-1]["complete"] is False
    some = api.client.get(f"/api/v1/metrics/win_rate/series?from=2026-03&to=2026-05&as_of={AS_OF}").json()
    assert [r["period"] for r in some] == ["2026-03-01", "2026-04-01", "2026-05-01"]
    assert some == [r for r in _json(engine.series("win_rate", as_of=AS_OF)) if r["period"] in
                    ("2026-03-01", "2026-04-01", "2026-05-01")]
    assert {"numerator", "denominator"} <= set(some[0])
    weekly = api.client.get(f"/api/v1/metrics/demos_booked/series?grain=week&from=2026-10&as_of={AS_OF}").json()
    assert weekly == _json(engine.series("demos_booked", grain=Grain.week, first=date(2026, 10, 1), as_of=AS_OF))
    assert len(weekly) >= 6


def test_series_parameters_are_checked(api: Api) -> None:
    body = _error(api.client.get("/api/v1/metrics/mrr/series?grain=fortnight", headers=EN), 422)
    assert body["issues"] == [{"field": "grain", "message": "Input should be 'day', 'week', 'month', 'quarter' "
                                                             "or 'year'"}]
    body = _error(api.client.get("/api/v1/metrics/mrr/series?from=soon", headers=EN), 400)
    assert str(body["message"]).startswith("invalid from: 'soon' is not a period")
    body = _error(api.client.get("/api/v1/metrics/mrr/series?as_of=2026-11", headers=EN), 400)
    assert body["message"] == "'2026-11' is not a date; write it as YYYY-MM-DD"


@pytest.mark.parametrize("path", ["/api/v1/status", "/api/v1/metrics/mrr/series", "/api/v1/findings"])
def test_as_of_out_of_range_is_a_400(api: Api, path: str) -> None:
    for day in ("9999-12-31", "0001-01-01", "2200-01-01"):
        body = _error(api.client.get(f"{path}?as_of={day}", headers=EN), 400)
        assert body == {"message": f"as_of {day} is out of range.", "fix": "give a date from 1900-01-01 to 2199-12-31.",
                        "issues": [{"field": "as_of", "message": "out of range"}]}
    assert api.client.get(f"{path}?as_of=2199-12-31").status_code == 200


def test_status_is_the_board(api: Api, engine_board: list[MetricStatus]) -> None:
    got = api.client.get(f"/api/v1/status?as_of={AS_OF}").json()
    assert got == _json([s.to_dict() for s in engine_board])
    assert [s["key"] for s in got] == ["mrr", "pipeline_generated", "demos_booked", "win_rate", "logo_churn"]
    assert got[0]["role"] == "north_star" and {s["status"] for s in got} <= {"green", "amber", "red", "none"}


def test_definitions_and_status_serve_the_settings_overrides(api: Api, engine_board: list[MetricStatus]) -> None:
    """A target edited in the settings (an override in the app database) is what the API serves and judges."""
    before = next(s for s in engine_board if s.key == "mrr")
    assert before.status == "amber" and before.value is not None
    targets = [{"from": "2026-01", "to": "2026-12", "value": round(before.value * 0.9, 2)}]
    api.store.set_override("acme", "mrr", "targets", targets)
    api.app.state.gate.settings_changed()
    try:
        assert api.client.get("/api/v1/metrics/mrr").json()["targets"] == targets
        mrr = api.client.get(f"/api/v1/status?as_of={AS_OF}").json()[0]
        assert (mrr["key"], mrr["target"], mrr["status"]) == ("mrr", targets[0]["value"], "green")
        assert mrr["value"] == before.value
    finally:
        api.store.clear_override("acme", "mrr", "targets")
        api.app.state.gate.settings_changed()
    assert api.client.get(f"/api/v1/status?as_of={AS_OF}").json()[0]["status"] == "amber"


def test_findings_merge_the_record_and_the_analysis(api: Api, expected: Expected) -> None:
    got = api.client.get(f"/api/v1/findings?as_of={AS_OF}").json()
    assert got["as_of"] == str(AS_OF) and got["errors"] == {}
    ids = {f["id"] for f in got["findings"]}
    assert ids == {f.id for f in [*expected.warnings, *expected.anomalies]}
    assert len(ids) == len(got["findings"]) > 0
    anomalies = api.client.get(f"/api/v1/findings?kind=anomaly&as_of={AS_OF}").json()["findings"]
    assert {f["id"] for f in anomalies} == {a.id for a in expected.anomalies}
    assert {f["kind"] for f in anomalies} == {"anomaly"}
    one = expected.anomalies[0]
    of_metric = api.client.get(f"/api/v1/findings?metric={one.metric}&as_of={AS_OF}").json()["findings"]
    assert {f["metric"] for f in of_metric} == {one.metric} and one.id in {f["id"] for f in of_metric}
    _error(api.client.get("/api/v1/findings?kind=rumour"), 422)
    _error(api.client.get("/api/v1/findings?metric=nope"), 404)

    # A finding on record (as `kpilot analyze` leaves them) is listed once, marked recorded.
    with api.app.state.gate.service() as svc:
        results.record_findings(svc.con, [one.to_dict()], AS_OF)
    again = api.client.get(f"/api/v1/findings?as_of={AS_OF}").json()["findings"]
    mine = [f for f in again if f["id"] == one.id]
    assert len(mine) == 1 and mine[0]["recorded"] is True and mine[0]["value"] == pytest.approx(one.anomaly.value)
    assert len(again) == len(got["findings"])


# --- the decision log -----------------------------------------------------------------------------------

def test_decisions(api: Api) -> None:
    c = api.client
    r = c.post("/api/v1/decisions", json={"metric": "demos_booked", "period": "2026-W46",
                                          "action": "Double the SDR outreach", "owner": "marketing"})
    assert r.status_code == 201, r.text
    made = r.json()
    assert (made["metric"], made["period"], made["status"], made["owner"]) == \
        ("demos_booked", "2026-W46", "open", "marketing")
    assert c.get("/api/v1/decisions?metric=demos_booked").json() == [made]
    assert made in c.get("/api/v1/decisions").json()
    assert [d.to_dict() for d in api.store.decisions("acme", "demos_booked")] == [made]

    r = c.patch(f"/api/v1/decisions/{made['id']}", json={"status": "done", "note": "+12 demos"})
    assert r.status_code == 200 and (r.json()["status"], r.json()["note"]) == ("done", "+12 demos")
    assert api.store.decisions("acme", "demos_booked")[0].status == "done"


def test_decision_errors_name_the_field(api: Api) -> None:
    c = api.client
    body = _error(c.post("/api/v1/decisions", json={"metric": "mrr", "period": "2026-11"}, headers=EN), 422)
    assert body["issues"] == [{"field": "action", "message": "Field required"}]
    assert body["message"] == "invalid action: Field required."
    body = _error(c.post("/api/v1/decisions", json={"metric": "mrr", "period": "next month", "action": "x"},
                         headers=EN), 422)
    assert body["issues"][0]["field"] == "period"  # type: ignore[index]
    body = _error(c.post("/api/v1/decisions", json={"metric": "mrr", "period": "2026-11", "action": "x",
                                                    "status": "maybe"}, headers=EN), 422)
    assert body["issues"][0]["field"] == "status"  # type: ignore[index]
    body = _error(c.post("/api/v1/decisions", json={"metric": "nope", "period": "2026-11", "action": "x"}), 422)
    assert body["issues"] == [{"field": "metric", "message": "unknown metric 'nope'"}]
    body = _error(c.patch("/api/v1/decisions/999999", json={"status": "done"}, headers=EN), 404)
    assert body["message"] == "no decision 999999 in workspace 'acme'."
    _error(c.patch("/api/v1/decisions/0", json={"status": "done"}), 422)
    body = _error(c.post("/api/v1/decisions", content=b"{not json", headers={"Content-Type": "application/json"}),
                  422)
    assert body["issues"][0]["field"] == "body"  # type: ignore[index]
    _error(c.post("/api/v1/decisions", content=b"ae\x03\xd1", headers={"Content-Type": "application/json"}), 400)


def test_annotations(api: Api) -> None:
    c = api.client
    r = c.post("/api/v1/annotations", json={"metric": "leads", "period": "2026-10", "text": "Trade show in Lyon"})
    assert r.status_code == 201, r.text
    made = r.json()
    assert (made["metric"], made["period"], made["text"]) == ("leads", "2026-10", "Trade show in Lyon")
    assert c.get("/api/v1/annotations?metric=leads").json() == [made]
    assert [a.to_dict() for a in api.store.annotations("acme", "leads")] == [made]
    body = _error(c.post("/api/v1/annotations", json={"metric": "leads", "period": "2026-10", "text": ""}), 422)
    assert body["issues"][0]["field"] == "text"  # type: ignore[index]
    _error(c.get("/api/v1/annotations?metric=nope"), 404)


# --- pushes -----------------------------------------------------------------------------------------------

def test_push_values_land_in_the_app_database(api: Api) -> None:
    c = api.client
    r = c.post("/api/v1/push", json={"metric": "sessions", "period": "2026-W46", "value": 1234})
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": {"values": 1}, "idempotency_key": None,
                        "values": [{"metric": "sessions", "period": "2026-11-09", "value": 1234.0}]}
    r = c.post("/api/v1/push", json={"values": [{"metric": "sessions", "period": "2026-W47", "value": 1300.5},
                                                {"metric": "sessions", "period": "2026-W46", "value": 1240}]})
    assert r.json()["accepted"] == {"values": 2}
    assert c.get("/api/v1/metrics/sessions/pushed").json() == [
        {"metric": "sessions", "period": p, "value": v, "pushed_at": c.get("/api/v1/metrics/sessions/pushed").json()[i]
         ["pushed_at"]} for i, (p, v) in enumerate([("2026-11-09", 1240.0), ("2026-11-16", 1300.5)])]
    assert [(v.period, v.value) for v in api.store.pushed_values("acme", "sessions")] == \
        [("2026-11-09", 1240.0), ("2026-11-16", 1300.5)]


def test_push_is_idempotent_with_a_key(api: Api) -> None:
    c = api.client
    # Rows of a pushed table: tests/web/test_push.py (acme declares no push source).
    body = {"values": [{"metric": "mrr", "period": "2026-10", "value": 1_800_000}]}
    first = c.post("/api/v1/push", json=body, headers={"Idempotency-Key": "mrr-2026-10"})
    assert first.status_code == 200 and first.json() == {
        "accepted": {"values": 1}, "values": [{"metric": "mrr", "period": "2026-10-01", "value": 1_800_000}],
        "idempotency_key": "mrr-2026-10"}
    again = c.post("/api/v1/push", json=body, headers={"Idempotency-Key": "mrr-2026-10"})
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert [(v.period, v.value) for v in api.store.pushed_values("acme", "mrr")] == [("2026-10-01", 1_800_000)]

    other = {"values": [{"metric": "mrr", "period": "2026-10", "value": 1}]}
    conflict = _error(c.post("/api/v1/push", json=other, headers={"Idempotency-Key": "mrr-2026-10", **EN}), 409)
    assert conflict["message"] == "the idempotency key 'mrr-2026-10' was already used with another body."
    assert conflict["fix"] == "send the same body again, or use a new key for a new push."
    assert [(v.period, v.value) for v in api.store.pushed_values("acme", "mrr")] == [("2026-10-01", 1_800_000)]


@pytest.mark.parametrize(("body", "field", "status"), [
    ({"metric": "sessions", "period": "2026-W46"}, "value", 422),
    ({"metric": "sessions", "period": "2026-W46", "value": "lots"}, "value", 422),
    ({"values": [{"metric": "sessions", "period": "2026-W46", "value": 1},
                 {"metric": "sessions", "period": "2026-W47", "value": None}]}, "values[1].value", 422),
    ({"values": [{"metric": "sessionz", "period": "2026-W46", "value": 1}]}, "values[0].metric", 422),
    ({"values": [{"metric": "mrr", "period": "2026-11-15", "value": 1}]}, "values[0].period", 422),
    ({"metric": "mrr", "period": "someday", "value": 1}, "period", 422),
    ({"values": []}, "values", 422),
    ({"table": "bad-name", "rows": [{"a": 1}]}, "table", 422),
    ({"table": "t", "rows": [{"a": {"nested": 1}}]}, "rows[0].a.str", 422),
    ({"table": "t"}, "rows", 422),
    ({"table": "crm_calls", "rows": [{"id": 1}]}, "table", 422),  # no push source declares it
    ({"something": 1}, "body", 422),
])
def test_push_errors_name_the_field(api: Api, body: dict[str, object], field: str, status: int) -> None:
    before = len(api.store.pushed_values("acme"))
    got = _error(api.client.post("/api/v1/push", json=body, headers=EN), status)
    assert got["issues"][0]["field"] == field, got  # type: ignore[index]
    assert len(api.store.pushed_values("acme")) == before


def test_push_error_messages(api: Api) -> None:
    c = api.client
    got = _error(c.post("/api/v1/push", json={"metric": "mrr", "period": "2026-W46", "value": 1}, headers=EN), 422)
    assert got["message"] == "period: '2026-W46' is a week, but metric 'mrr' is counted by month."
    assert got["fix"] == "send one value per month, e.g. 2026-11."
    french = _error(c.post("/api/v1/push", json={"metric": "mrr", "period": "2026-W46", "value": 1}, headers=FR), 422)
    assert french["message"] == ("period : '2026-W46' est une période de grain semaine, mais la métrique 'mrr' se "
                                 "compte par mois.")
    got = _error(c.post("/api/v1/push", content=b"[1, 2", headers={"Content-Type": "application/json", **EN}), 422)
    assert str(got["message"]).startswith("the body is not JSON")
    got = _error(c.post("/api/v1/push", json=[1, 2], headers=EN), 422)
    assert got["message"] == "the body must be a JSON object."


# --- errors and docs --------------------------------------------------------------------------------------

def test_unknown_endpoints_answer_json(api: Api) -> None:
    body = _error(api.client.get("/api/v1/nothing", headers=EN), 404)
    assert body == {"message": "no API endpoint GET /api/v1/nothing.", "fix": "see /api/v1/docs for the endpoints."}


def test_openapi_and_docs_are_served_for_the_api_only(api: Api) -> None:
    spec = api.client.get("/api/v1/openapi.json").json()
    assert spec["info"]["title"] == "kpilot API"
    assert set(spec["paths"]) == {"/api/v1/workspaces", "/api/v1/metrics", "/api/v1/metrics/{key}",
                                  "/api/v1/metrics/{key}/settings", "/api/v1/metrics/{key}/series",
                                  "/api/v1/metrics/{key}/pushed", "/api/v1/status",
                                  "/api/v1/findings", "/api/v1/decisions", "/api/v1/decisions/{decision_id}",
                                  "/api/v1/annotations", "/api/v1/push", "/api/v1/alerts",
                                  "/api/v1/alerts/{alert_id}/ack", "/api/v1/alerts/{alert_id}/snooze",
                                  "/api/v1/outbox", "/api/v1/outbox/{message_id}/retry", "/api/v1/users",
                                  "/api/v1/tokens", "/api/v1/changes"}
    push_body = spec["paths"]["/api/v1/push"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {s["$ref"] for s in push_body["oneOf"]} == {"#/components/schemas/PushValue",
                                                       "#/components/schemas/PushValues",
                                                       "#/components/schemas/PushRows"}
    assert {"PushValue", "PushValues", "PushRows", "DecisionIn"} <= set(spec["components"]["schemas"])
    docs = api.client.get("/api/v1/docs", headers=EN)
    assert docs.status_code == 200 and "<code>POST /api/v1/push</code>" in docs.text
    assert "Paramètre" in docs.text  # acme's language, French
    # Every title, description and parameter of the French page is in French.
    fr = translator("fr")
    page = html.unescape(docs.text)
    for ops in spec["paths"].values():
        for op in ops.values():
            texts = [op["summary"], op.get("description")] + [p.get("description") for p in op.get("parameters", [])]
            for text in filter(None, texts):
                assert fr(text) != text and fr(text) in page, text
    assert "Acknowledge an alert" not in page and "Prendre en charge une alerte" in page
    assert api.client.get("/docs").status_code == 404 and api.client.get("/openapi.json").status_code == 404


# --- schemathesis ------------------------------------------------------------------------------------------

def test_schemathesis_finds_no_server_error(api: Api, acme_dir: Path) -> None:
    """Every operation of the spec, fuzzed with valid and invalid requests (a bounded number of examples each; real
    metric keys and decision ids half of the time), never answers a 5xx."""
    keys = load_workspace(acme_dir)[0].metric_keys
    decision = api.store.add_decision("acme", "mrr", period="2026-11", action="fuzz target", owner=None)
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", api.app)
    failures: list[str] = []
    calls = 0
    operations = [(result.ok(), mode) for result in schema.get_all_operations()
                  for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)]
    for operation, mode in operations:

        @hypothesis.given(case=operation.as_strategy(mode), key=st.sampled_from(keys), real=st.booleans())
        @hypothesis.settings(max_examples=30, deadline=None, database=None, derandomize=True,
                             suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case, key: str, real: bool) -> None:
            nonlocal calls
            if real and case.path_parameters:
                if "key" in case.path_parameters:
                    case.path_parameters["key"] = key
                if "decision_id" in case.path_parameters:
                    case.path_parameters["decision_id"] = decision.id
            response = case.call()
            calls += 1
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} {case.query} {case.body!r}: "
                                f"{response.status_code} {response.text[:300]}")

        try:
            check()
        except hypothesis.errors.Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE, operation  # nothing invalid to send (e.g. no parameters)
    assert calls >= 400
    assert failures == []
