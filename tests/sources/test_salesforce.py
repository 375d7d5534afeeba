"""Salesforce Opportunity, Lead and Event, synced through SOQL from a local server that answers like the REST API."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from kpilot.model.workspace import Source
from kpilot.sources.saas.records import parse, snake
from kpilot.sources.sync import sync_sources
from tests.sources.helpers import Ws
from tests.sources.mock_apis.salesforce import T0, SalesforceApi, sample

ENV = {"SALESFORCE_ACCESS_TOKEN": SalesforceApi.token}
OPP = ("Id", "StageName", "Amount", "IsWon", "IsClosed", "CloseDate", "CreatedDate", "SystemModstamp")


@pytest.fixture
def api() -> Any:
    with SalesforceApi(page=7) as server:
        yield server



def _source(api: SalesforceApi, **fields: Any) -> Source:
    return Source.model_validate({"key": "crm", "type": "salesforce", "options": {"instance_url": api.url},
                                  **fields})


def _sync(ws: Ws, api: SalesforceApi, env: dict[str, str] = ENV, **fields: Any) -> Any:
    return sync_sources(ws.con, [_source(api, **fields)], ws.root, environ=env)


def _expected(api: SalesforceApi, obj: str, fields: tuple[str, ...]) -> list[tuple[Any, ...]]:
    types = {"currency": "DOUBLE", "boolean": "BOOLEAN", "date": "DATE", "datetime": "TIMESTAMPTZ"}
    return sorted(tuple(parse(r.get(f), types.get(api.types[obj][f], "VARCHAR")) for f in fields)
                  for r in api.objects[obj])


def _copied(ws: Ws, table: str, fields: tuple[str, ...]) -> list[tuple[Any, ...]]:
    cols = ", ".join(snake(f) for f in fields)
    return ws.con.execute(f"SELECT {cols} FROM {table} ORDER BY ALL").fetchall()


def test_objects_are_copied_through_soql_following_next_records_url(ws: Ws, api: SalesforceApi) -> None:
    report = _sync(ws, api)
    assert sorted((t.table, t.status, t.rows) for t in report.tables) == [
        ("salesforce_events", "synced", 12), ("salesforce_leads", "synced", 17),
        ("salesforce_opportunities", "synced", 31)]
    assert _copied(ws, "salesforce_opportunities", OPP) == _expected(api, "Opportunity", OPP)
    # Independently of `parse`: opportunities 3 and 7 as the mock builds them (7 has the bulk SystemModstamp).
    spot = ws.con.execute("SELECT id, stage_name, amount, is_won, is_closed, close_date, created_date, "
                          "system_modstamp FROM salesforce_opportunities "
                          "WHERE id IN ('006000000000003', '006000000000007') ORDER BY id").fetchall()
    assert spot == [
        ("006000000000003", "Negotiation/Review", 1751.5, False, False, date(2026, 2, 25),
         datetime(2026, 2, 5, 12, 0, tzinfo=UTC), datetime(2026, 2, 7, 12, 0, tzinfo=UTC)),
        ("006000000000007", "Closed Lost", 2753.5, False, True, date(2026, 3, 1),
         datetime(2026, 2, 9, 10, 0, tzinfo=UTC), datetime(2026, 3, 14, 9, 0, tzinfo=UTC))]
    lead = ("Id", "Status", "IsConverted", "ConvertedDate", "ConvertedOpportunityId", "SystemModstamp")
    assert _copied(ws, "salesforce_leads", lead) == _expected(api, "Lead", lead)
    types = ws.types("salesforce_opportunities")
    assert (types["amount"], types["is_won"], types["close_date"], types["system_modstamp"]) == (
        "DOUBLE", "BOOLEAN", "DATE", "TIMESTAMP WITH TIME ZONE")
    assert "billing_address" not in types  # a compound field
    follows = [r for r in api.requests if "/query/01g" in r.path]
    assert len(follows) >= 4  # 31 opportunities at 7 a page
    first = next(r.query["q"] for r in api.requests if r.query.get("q", "").endswith("FROM Opportunity "
                                                                                     "WHERE SystemModstamp != null "
                                                                                     "ORDER BY SystemModstamp ASC, "
                                                                                     "Id ASC"))
    assert first.startswith("SELECT Id, Name, AccountId")


def test_an_incremental_sync_reads_only_what_changed_since_the_last_cursor(ws: Ws, api: SalesforceApi) -> None:
    _sync(ws, api)
    api.requests.clear()
    last = max(r["SystemModstamp"] for r in api.objects["Opportunity"])
    api.modify("Opportunity", "006000000000003", T0 + timedelta(days=60), StageName="Closed Won", IsWon=True,
               IsClosed=True, Amount=777.0)
    report = _sync(ws, api)
    opp = next(t for t in report.tables if t.table == "salesforce_opportunities")
    queries = [r.query["q"] for r in api.requests if "FROM Opportunity" in r.query.get("q", "")]
    assert queries == [queries[0]] and f"WHERE SystemModstamp >= {last[:19]}Z" in queries[0]
    assert opp.rows_read <= 6 and opp.rows == 31  # the rows of the last time again, and the changed one
    assert _copied(ws, "salesforce_opportunities", OPP) == _expected(api, "Opportunity", OPP)
    assert ws.con.execute("SELECT amount, stage_name FROM salesforce_opportunities WHERE id = '006000000000003'"
                          ).fetchall() == [(777.0, "Closed Won")]


def test_an_expired_session_fails_clearly_and_keeps_the_previous_rows(ws: Ws, api: SalesforceApi) -> None:
    _sync(ws, api, tables={"opps": "Opportunity"})
    report = _sync(ws, api, env={"SALESFORCE_ACCESS_TOKEN": "00Dexpired!token"}, tables={"opps": "Opportunity"})
    [failed] = report.failed
    assert "refused (401)" in str(failed.error) and "INVALID_SESSION_ID" in str(failed.error)
    assert "00Dexpired" not in str(failed.error)
    assert ws.con.execute("SELECT count(*) FROM opps").fetchall() == [(31,)]
    assert ws.con.execute("SELECT status FROM kpilot.syncs").fetchall() == [("failed",)]


def test_rate_limits_and_server_errors_are_retried(ws: Ws, api: SalesforceApi, waits: list[float]) -> None:
    api.fail(429, headers={"Retry-After": "3"}, body=[{"message": "Too many requests", "errorCode": "REQUEST_LIMIT"}])
    api.fail(503)
    report = _sync(ws, api, tables={"opps": "Opportunity"})
    assert report.failed == [] and waits[0] == 3.0 and len(waits) == 2


def test_a_custom_field_added_then_removed_recopies_the_table(ws: Ws, api: SalesforceApi) -> None:
    _sync(ws, api, tables={"opps": "Opportunity"})
    api.add_field("Opportunity", "Region__c", "picklist", {"006000000000001": "EMEA"})
    report = _sync(ws, api, tables={"opps": "Opportunity"})
    assert report.tables[0].status == "copied"
    assert ws.con.execute("SELECT id, region__c FROM opps WHERE region__c IS NOT NULL").fetchall() == [
        ("006000000000001", "EMEA")]
    api.remove_field("Opportunity", "LeadSource")
    _sync(ws, api, tables={"opps": "Opportunity"})
    assert "lead_source" not in ws.types("opps") and ws.con.execute("SELECT count(*) FROM opps").fetchall() == [(31,)]


def test_an_unsupported_object_or_a_missing_instance_is_reported(ws: Ws, api: SalesforceApi) -> None:
    [failed] = _sync(ws, api, tables={"cases": "Case"}).failed
    assert "Case" in str(failed.error) and "Opportunity" in str(failed.error)
    bad = Source.model_validate({"key": "crm", "type": "salesforce"})
    [failed] = sync_sources(ws.con, [bad], ws.root, environ=ENV).failed[:1]
    assert "instance_url" in str(failed.error)


# --- the command, killed mid-way -----------------------------------------------------------------------


@pytest.mark.slow
def test_sync_killed_mid_way_resumes_without_duplicate_or_gap(tmp_path: Path) -> None:
    n = 3000
    data = sample(n_opps=n, n_leads=1, n_events=1)
    with SalesforceApi(data, page=40) as api:
        api.delay = 0.01
        ws = tmp_path / "ws"
        ws.mkdir()
        doc = {"workspace": "sf", "sources": [{"key": "crm", "type": "salesforce", "batch_size": 40,
                                               "options": {"instance_url": api.url},
                                               "tables": {"opps": "Opportunity"}}]}
        (ws / "kpilot.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
        env = {**os.environ, **ENV, "KPILOT_STATE_DIR": str(tmp_path / "state")}
        cmd = [sys.executable, "-m", "kpilot.cli", "sync", "-w", str(ws)]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if sum("/query/" in r.path for r in api.requests) >= 25:
                break
            time.sleep(0.01)
        assert proc.poll() is None, f"the sync finished before it could be killed: {proc.communicate()}"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        warehouse = next((tmp_path / "state").rglob("warehouse.duckdb"))
        with duckdb.connect(str(warehouse)) as wh:
            copied = wh.execute("SELECT count(*), count(DISTINCT id) FROM opps").fetchall()[0]
            state = wh.execute("SELECT rows FROM kpilot.syncs WHERE table_name = 'opps'").fetchall()
        assert 0 < copied[0] < n and copied[0] == copied[1], copied
        assert state == [(copied[0],)]

        api.delay = 0
        api.modify("Opportunity", "006000000000002", T0 + timedelta(days=n + 100), Amount=1.5)  # after every other
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        with duckdb.connect(str(warehouse)) as wh:
            got = wh.execute("SELECT id, amount, system_modstamp FROM opps ORDER BY id").fetchall()
        want = [(r["Id"], r["Amount"], parse(r["SystemModstamp"], "TIMESTAMPTZ")) for r in
                sorted(api.objects["Opportunity"], key=lambda r: r["Id"])]
        assert got == want, (done.stdout, [r.query.get("q", r.path)[-120:] for r in api.requests[-3:]])
