"""Pushed data reaches the metrics: rows pushed to a push source's table and pushed metric values are
materialized into the warehouse, shown by the API and the board, and read by WorkspaceService on the same state
(values computed by hand from the pushed rows)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kpilot.i18n import format_value
from kpilot.service import WorkspaceService
from kpilot.web import create_app
from kpilot.web.locale import COOKIE

AS_OF = date(2026, 11, 15)
EN = {"Accept-Language": "en"}
YAML = """
workspace: pushy
title: Pushy
language: en
timezone: Europe/Paris
sources:
  - {key: files, type: csv, path: data/}
  - {key: crm, type: push, tables: [calls]}
models:
  - {key: leads, table: leads, time: created_at}
  - {key: calls, table: calls, time: at, dimensions: [rep]}
  - {key: pushed, table: pushed_metric_values, time: period}
metrics:
  - {key: leads, model: leads, measure: count(*), grain: month}
  - {key: call_minutes, model: calls, measure: sum(minutes), grain: month}
  - {key: nps, model: pushed, measure: sum(value), filter: "metric = 'nps'", grain: month}
north_star: call_minutes
board: [leads, nps]
"""
LEADS = "id,created_at\n1,2026-10-02\n2,2026-10-20\n3,2026-11-04\n"
CALLS = [{"at": "2026-10-28T09:30:00", "minutes": 20, "rep": "ana"},
         {"at": "2026-11-03T10:00:00", "minutes": 12.5, "rep": "ana"},
         {"at": "2026-11-05T14:15:00", "minutes": 30, "rep": "bob"},
         {"at": "2026-11-12T16:45:00", "minutes": 7.5, "rep": None}]
# By hand: November 12.5 + 30 + 7.5 = 50 minutes, October 20; NPS: October's latest value 45, November 38.
NOV_MINUTES, OCT_MINUTES, NOV_NPS, OCT_NPS = 50.0, 20.0, 38.0, 45.0


def push_workspace(tmp_path: Path) -> Path:
    """A small workspace of its own in tmp (a push source beside a CSV file)."""
    folder = tmp_path / "pushy"
    (folder / "data").mkdir(parents=True)
    (folder / "kpilot.yaml").write_text(YAML, encoding="utf-8")
    (folder / "data" / "leads.csv").write_text(LEADS, encoding="utf-8")
    return folder


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return push_workspace(tmp_path)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def client(workspace: Path, state: Path) -> Iterator[TestClient]:
    with TestClient(create_app(workspace, state_dir=state), base_url="http://127.0.0.1") as c:
        yield c


def _status(c: TestClient) -> dict[str, object]:
    r = c.get(f"/api/v1/status?as_of={AS_OF}")
    assert r.status_code == 200, r.text
    return {s["key"]: s["value"] for s in r.json()}


def _push(c: TestClient) -> None:
    first = c.post("/api/v1/push", json={"table": "calls", "rows": CALLS}, headers={"Idempotency-Key": "calls-1"})
    assert first.status_code == 200, first.text
    assert first.json() == {"accepted": {"rows": 4}, "table": "calls", "idempotency_key": "calls-1"}
    values = [{"metric": "nps", "period": "2026-10", "value": 41}, {"metric": "nps", "period": "2026-11", "value": 38}]
    assert c.post("/api/v1/push", json={"values": values}).status_code == 200
    # A correction sent later for October wins.
    assert c.post("/api/v1/push", json={"metric": "nps", "period": "2026-10", "value": 45}).status_code == 200


def test_pushed_rows_and_values_reach_the_metrics(client: TestClient) -> None:
    before = _status(client)
    assert before["call_minutes"] is None and before["nps"] is None and before["leads"] == 1.0
    _push(client)
    assert _status(client) == {"call_minutes": NOV_MINUTES, "leads": 1.0, "nps": NOV_NPS}
    series = client.get(f"/api/v1/metrics/call_minutes/series?as_of={AS_OF}").json()
    assert [(r["period"], r["value"]) for r in series] == [("2026-10-01", OCT_MINUTES), ("2026-11-01", NOV_MINUTES)]
    nps = client.get(f"/api/v1/metrics/nps/series?as_of={AS_OF}").json()
    assert [(r["period"], r["value"]) for r in nps] == [("2026-10-01", OCT_NPS), ("2026-11-01", NOV_NPS)]

    board = client.get(f"/?as_of={AS_OF}", headers={"cookie": f"{COOKIE}=en"}).text
    tile = re.search(r'<article class="tile[^"]*" data-key="call_minutes".*?</article>', board, re.S)
    assert tile and f'data-role="value">{format_value(NOV_MINUTES, None, "en")}<' in tile.group(0)
    nps_tile = re.search(r'<article class="tile[^"]*" data-key="nps".*?</article>', board, re.S)
    assert nps_tile and f'data-role="value">{format_value(NOV_NPS, None, "en")}<' in nps_tile.group(0)


def test_the_same_key_does_not_double_the_rows(client: TestClient) -> None:
    _push(client)
    again = client.post("/api/v1/push", json={"table": "calls", "rows": CALLS}, headers={"Idempotency-Key": "calls-1"})
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert _status(client)["call_minutes"] == NOV_MINUTES


def test_a_bad_row_is_a_422_naming_the_field(client: TestClient) -> None:
    bad = [CALLS[0], {"at": "2026-11-06T08:00:00", "minutes": "twelve", "rep": "bob"}]
    r = client.post("/api/v1/push", json={"table": "calls", "rows": bad}, headers=EN)
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["issues"][0]["field"] == "rows[1].minutes"
    assert error["message"].startswith("rows[1].minutes: a number expected")
    r = client.post("/api/v1/push", json={"table": "calls", "rows": [{"minutes": 3}]}, headers=EN)
    assert r.status_code == 422 and r.json()["error"]["issues"][0]["field"] == "rows[0].at"
    assert _status(client)["call_minutes"] is None  # nothing stored


def test_a_table_no_push_source_declares_is_refused(client: TestClient) -> None:
    r = client.post("/api/v1/push", json={"table": "callz", "rows": [{"minutes": 3}]}, headers=EN)
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["message"] == "no push source declares table 'callz'; did you mean 'calls'? pushed tables: calls."
    assert error["fix"] == "add it to a source of type push in kpilot.yaml, e.g. `- {key: pushed, type: push, " \
                           "tables: [callz]}`."
    assert error["issues"] == [{"field": "table", "message": "not declared by a push source: 'callz'"}]
    french = client.post("/api/v1/push", json={"table": "callz", "rows": [{"minutes": 3}]},
                         headers={"Accept-Language": "fr"}).json()["error"]
    assert french["message"].startswith("aucune source push ne déclare la table 'callz'")


def test_the_service_on_the_same_state_sees_the_pushed_values(workspace: Path, state: Path) -> None:
    with TestClient(create_app(workspace, state_dir=state), base_url="http://127.0.0.1") as c:
        _push(c)
    with WorkspaceService(workspace, state_dir=state) as svc:
        svc.load()
        got = {s.key: s.value for s in svc.board(as_of=AS_OF)}
        assert got == {"call_minutes": NOV_MINUTES, "leads": 1.0, "nps": NOV_NPS}
        by_rep = svc.breakdown("call_minutes", ["rep"], as_of=AS_OF)
        assert {(r["period"], r["rep"]): r["value"] for r in by_rep} == {
            ("2026-10-01", "ana"): 20.0, ("2026-10-01", "bob"): 0.0, ("2026-10-01", None): 0.0,
            ("2026-11-01", "ana"): 12.5, ("2026-11-01", "bob"): 30.0, ("2026-11-01", None): 7.5}


def test_a_failed_materialization_keeps_the_previous_table(workspace: Path, state: Path) -> None:
    with TestClient(create_app(workspace, state_dir=state), base_url="http://127.0.0.1") as c:
        _push(c)
    # A declared type the pushed rows do not fit: the load fails and the table pushed before stays.
    text = (workspace / "kpilot.yaml").read_text(encoding="utf-8")
    (workspace / "kpilot.yaml").write_text(text.replace(
        "dimensions: [rep]}", "dimensions: [rep], columns: {rep: integer}}"), encoding="utf-8")
    with WorkspaceService(workspace, state_dir=state) as svc:
        with pytest.raises(Exception, match="previous table is kept"):
            svc.load_pushed()
        assert svc.con.execute("SELECT sum(minutes) FROM calls").fetchall() == [(OCT_MINUTES + NOV_MINUTES,)]
