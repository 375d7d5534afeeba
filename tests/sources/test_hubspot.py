"""HubSpot: a local server answering like CRM v3; what is synced equals its objects, through every failure."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from kpilot.model.workspace import Source
from kpilot.sources.saas import hubspot
from kpilot.sources.sync import sync_sources
from tests.sources.mock_apis.hubspot import HubSpotApi, sample

ENV = {"HUBSPOT_TOKEN": "good-token"}


@pytest.fixture
def api() -> Iterator[HubSpotApi]:
    with HubSpotApi() as server:
        yield server



def source(api: HubSpotApi, **options: Any) -> Source:
    return Source.model_validate({"key": "crm", "type": "hubspot", "batch_size": 7,
                                  "options": {"base_url": api.url, **options}})


def sync(con: duckdb.DuckDBPyConnection, src: Source, tmp: Path, env: dict[str, str] | None = None) -> Any:
    return sync_sources(con, [src], tmp, environ=ENV if env is None else env)


def deals(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    return con.execute("SELECT id, amount, dealstage, stage, stage_label, createdate, closedate, hs_lastmodifieddate "
                       "FROM deals ORDER BY id").fetchall()


def expected_deals(api: HubSpotApi) -> list[tuple[Any, ...]]:
    labels = {"closedwon": ("won", "Closed Won"), "closedlost": ("lost", "Closed Lost"),
              "contractsent": ("open", "Contract Sent"), "appointmentscheduled": ("open", "Appointment Scheduled")}

    def t(v: str | None) -> datetime | None:
        return datetime.fromisoformat(v.replace("Z", "+00:00")).astimezone(UTC).replace(tzinfo=None) if v else None

    out = []
    for d in api.objects["deals"]:
        p = d["properties"]
        out.append((d["id"], float(p["amount"]), p["dealstage"], *labels[p["dealstage"]], t(p["createdate"]),
                    t(p["closedate"]), t(p["hs_lastmodifieddate"])))
    return sorted(out)


def test_full_copy_pages_through_everything_and_equals_the_api(api: HubSpotApi, tmp_path: Path) -> None:
    api.objects = sample(n_deals=230)  # three pages of 100
    con = duckdb.connect()
    report = sync(con, source(api), tmp_path)
    assert {t.table: (t.status, t.rows) for t in report.tables} == {
        "deals": ("synced", 230), "contacts": ("synced", 8), "meetings": ("synced", 12)}
    assert deals(con) == expected_deals(api)
    lists = [r for r in api.requests if r.path == "/crm/v3/objects/deals"]
    assert [r.query.get("after") for r in lists] == [None, "100", "200"]
    assert all(r.headers["authorization"] == "Bearer good-token" for r in api.requests)
    types = dict(con.execute("SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'deals'")
                 .fetchall())
    assert (types["amount"], types["createdate"], types["id"]) == ("DOUBLE", "TIMESTAMP", "VARCHAR")


def test_incremental_search_reads_only_changed_objects_across_the_search_limit(
        api: HubSpotApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    con = duckdb.connect()
    sync(con, source(api), tmp_path)
    api.requests.clear()
    later = datetime(2026, 6, 1, tzinfo=UTC)
    for i, deal in enumerate(("1003", "1007", "1011", "1015", "1019")):
        api.modify("deals", deal, later.replace(hour=i // 2), dealstage="closedwon", amount="99.00")
    api.objects["deals"].append({"id": "2001", "properties": {
        "dealname": "New", "amount": "10", "dealstage": "contractsent", "pipeline": "default",
        "createdate": "2026-06-02T08:00:00.000Z", "closedate": None, "hs_lastmodifieddate": "2026-06-02T08:00:00.000Z"}})
    # A search pages through 4 results at most here: the connector restarts from the last time it reached.
    api.search_limit = 4
    monkeypatch.setattr(hubspot, "SEARCH_LIMIT", 4)
    report = sync(con, source(api, page_size=2), tmp_path)
    assert {t.table: t.status for t in report.tables}["deals"] == "synced"
    assert deals(con) == expected_deals(api)  # no duplicate, nothing missing
    searches = [r.body for r in api.requests if r.path == "/crm/v3/objects/deals/search"]
    first = searches[0]["filterGroups"][0]["filters"][0]
    assert (first["propertyName"], first["operator"]) == ("hs_lastmodifieddate", "GTE")
    assert searches[0]["sorts"] == [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}]
    bounds = [s["filterGroups"][0]["filters"][0]["value"] for s in searches if "after" not in s]
    assert len(bounds) >= 2 and bounds == sorted(bounds)  # the lower bound moved
    # Only the changed deals (and the last one of the previous sync, read again) came back.
    assert sum(len(s) for s in [searches]) <= 8
    assert not [r for r in api.requests if r.path == "/crm/v3/objects/deals"]


def test_429_and_500_are_retried_honouring_retry_after(api: HubSpotApi, tmp_path: Path, waits: list[float]) -> None:
    api.fail(429, headers={"Retry-After": "2"}, body={"status": "error", "message": "You have reached your "
                                                      "secondly limit.", "category": "RATE_LIMITS"})
    api.fail(500, times=2)
    con = duckdb.connect()
    report = sync(con, source(api), tmp_path)
    assert not report.failed
    assert waits[0] == 2.0 and len(waits) == 3 and all(0 <= w <= 4 for w in waits[1:])
    assert deals(con) == expected_deals(api)


def test_expired_token_fails_clearly_and_keeps_the_previous_data(api: HubSpotApi, tmp_path: Path,
                                                                  waits: list[float]) -> None:
    con = duckdb.connect()
    sync(con, source(api), tmp_path)
    before = deals(con)
    api.modify("deals", "1003", datetime(2026, 7, 1, tzinfo=UTC), amount="1.00")
    report = sync(con, source(api), tmp_path, {"HUBSPOT_TOKEN": "expired-token-123"})
    assert {t.status for t in report.tables} == {"failed"}
    error = report.failed[0].error or ""
    assert "the token for source 'crm' was refused (401): it may have expired" in error
    assert "Private apps" in error and "expired-token-123" not in error
    assert deals(con) == before and waits == []
    states = con.execute("SELECT DISTINCT status FROM kpilot.syncs").fetchall()
    assert states == [("failed",)]


def test_missing_token_names_the_variable(api: HubSpotApi, tmp_path: Path) -> None:
    report = sync(duckdb.connect(), source(api, token_env="KP_NO_SUCH_TOKEN"), tmp_path, {})
    assert "the environment variable KP_NO_SUCH_TOKEN is not set" in (report.failed[0].error or "")


def test_schema_change_removed_becomes_null_added_is_ignored_until_asked(api: HubSpotApi, tmp_path: Path) -> None:
    con = duckdb.connect()
    sync(con, source(api), tmp_path)
    api.removed = {"amount"}
    api.added = {"hs_new_field": "x"}
    api.modify("deals", "1003", datetime(2026, 7, 1, tzinfo=UTC))
    assert not sync(con, source(api), tmp_path).failed
    assert con.execute("SELECT amount FROM deals WHERE id = '1003'").fetchall() == [(None,)]
    # The changed deal, and the last one of the previous sync (read again: same cursor value), lost it.
    assert con.execute("SELECT count(amount) FROM deals").fetchall() == [(28,)]
    # Asking for the new field adds a column: the table is copied afresh, in one transaction.
    report = sync(con, source(api, fields={"deals": ["hs_new_field"]}), tmp_path)
    assert {t.table: t.status for t in report.tables}["deals"] == "copied"
    assert con.execute("SELECT DISTINCT hs_new_field FROM deals").fetchall() == [("x",)]


def test_timeouts_are_retried_then_reported(api: HubSpotApi, tmp_path: Path, waits: list[float]) -> None:
    api.delay = 0.4
    report = sync(duckdb.connect(), source(api, timeout=0.1, max_retries=1), tmp_path)
    assert "no answer within 0.1 s" in (report.failed[0].error or "")
    assert len(report.failed) == 3 and len(waits) == 3  # one retry for each table


# --- kill -9 mid-sync, then a rerun: no duplicate, no missing row ---------------------------------


@pytest.mark.slow
def test_sync_killed_mid_way_resumes_without_duplicate_or_gap(tmp_path: Path) -> None:
    with HubSpotApi(sample(n_deals=60)) as api:
        ws = tmp_path / "ws"
        ws.mkdir()
        doc = {"workspace": "crm", "sources": [{"key": "crm", "type": "hubspot", "batch_size": 5,
                                                "options": {"base_url": api.url, "page_size": 5},
                                                "tables": {"deals": "deals"}}]}
        (ws / "kpilot.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
        env = {**os.environ, **ENV, "KPILOT_STATE_DIR": str(tmp_path / "state")}
        first = subprocess.run([sys.executable, "-m", "kpilot.cli", "sync", "-w", str(ws)], env=env,
                               capture_output=True, text=True, timeout=120)
        assert first.returncode == 0, first.stdout + first.stderr
        # Every deal changes: the next sync searches them, 5 a page, each page slow enough to be caught.
        for d in api.objects["deals"]:
            d["properties"]["hs_lastmodifieddate"] = d["properties"]["hs_lastmodifieddate"].replace("2026-0", "2027-0")
        api.delay = 0.15
        proc = subprocess.Popen([sys.executable, "-m", "kpilot.cli", "sync", "-w", str(ws)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        warehouse = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            found = list((tmp_path / "state").rglob("warehouse.duckdb"))
            searches = [r for r in api.requests if r.path.endswith("/search")]
            if found and len(searches) >= 3:
                warehouse = found[0]
                break
            time.sleep(0.05)
        assert proc.poll() is None, f"the sync finished before it could be killed: {proc.communicate()}"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        api.delay = 0
        rerun = subprocess.run([sys.executable, "-m", "kpilot.cli", "sync", "-w", str(ws)], env=env,
                               capture_output=True, text=True, timeout=120)
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        assert warehouse is not None
        con = duckdb.connect(str(warehouse), read_only=True)
        got = con.execute("SELECT id, count(*) FROM deals GROUP BY id ORDER BY id").fetchall()
        assert got == [(d["id"], 1) for d in sorted(api.objects["deals"], key=lambda d: d["id"])]
        assert deals(con) == expected_deals(api)
