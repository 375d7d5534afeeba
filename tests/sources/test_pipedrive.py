"""Pipedrive: a local server answering like API v1; what is synced equals its objects, through every failure."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from kpilot.model.workspace import Source
from kpilot.sources.sync import sync_sources
from tests.sources.mock_apis.pipedrive import PipedriveApi, sample

ENV = {"PIPEDRIVE_TOKEN": "good-token"}


@pytest.fixture
def api() -> Iterator[PipedriveApi]:
    with PipedriveApi() as server:
        yield server



def source(api: PipedriveApi, **options: Any) -> Source:
    return Source.model_validate({"key": "pd", "type": "pipedrive", "batch_size": 4,
                                  "options": {"base_url": api.url, "page_size": 10, **options}})


def sync(con: duckdb.DuckDBPyConnection, src: Source, tmp: Path, env: dict[str, str] | None = None) -> Any:
    return sync_sources(con, [src], tmp, environ=ENV if env is None else env)


def t(v: str | None) -> datetime | None:
    return datetime.fromisoformat(v) if v else None


def deals(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    return con.execute("SELECT id, value, status, person_id, user_id, add_time, update_time, won_time, "
                       "expected_close_date FROM deals ORDER BY id").fetchall()


def expected(api: PipedriveApi) -> list[tuple[Any, ...]]:
    return sorted((d["id"], float(d["value"]), d["status"], d["person_id"]["value"], d["user_id"]["value"],
                   t(d["add_time"]), t(d["update_time"]), t(d["won_time"]), date.fromisoformat(
                       d["expected_close_date"])) for d in api.objects["deals"])


def test_full_copy_pages_with_start_and_limit_and_equals_the_api(api: PipedriveApi, tmp_path: Path) -> None:
    con = duckdb.connect()
    report = sync(con, source(api), tmp_path)
    assert {x.table: (x.status, x.rows) for x in report.tables} == {
        "deals": ("synced", 25), "activities": ("synced", 14), "persons": ("synced", 6)}
    assert deals(con) == expected(api)
    starts = [r.query["start"] for r in api.requests if r.path == "/v1/deals"]
    assert starts == ["0", "10", "20"]
    assert all(r.query["api_token"] == "good-token" and r.query["sort"] == "update_time ASC" for r in api.requests)
    assert con.execute("SELECT email FROM persons ORDER BY id LIMIT 1").fetchall() == [("p0@example.com",)]
    assert con.execute("SELECT count(*) FROM activities WHERE type = 'demo' AND done").fetchall() == [(5,)]


def test_incremental_keeps_only_changed_objects(api: PipedriveApi, tmp_path: Path) -> None:
    con = duckdb.connect()
    sync(con, source(api), tmp_path)
    api.modify("deals", 3, datetime(2026, 9, 1), status="won", value=1234)
    api.objects["deals"].append({**api.objects["deals"][0], "id": 99, "update_time": "2026-09-02 10:00:00"})
    report = sync(con, source(api), tmp_path)
    by_table = {x.table: x for x in report.tables}
    # The changed and the new deal, plus the last one of the previous sync (same cursor value, read again).
    assert by_table["deals"].rows_read == 3 and by_table["deals"].rows == 26
    assert deals(con) == expected(api)


def test_rate_limit_and_errors_are_retried(api: PipedriveApi, tmp_path: Path, waits: list[float]) -> None:
    api.fail(429, headers={"Retry-After": "5"}, body={"success": False, "error": "Too many requests",
                                                      "errorCode": 429})
    api.fail(502)
    con = duckdb.connect()
    assert not sync(con, source(api), tmp_path).failed
    assert waits[0] == 5.0 and len(waits) == 2
    assert deals(con) == expected(api)


def test_refused_token_fails_clearly_keeps_data_and_hides_the_token(api: PipedriveApi, tmp_path: Path) -> None:
    con = duckdb.connect()
    sync(con, source(api), tmp_path)
    before = deals(con)
    report = sync(con, source(api), tmp_path, {"PIPEDRIVE_TOKEN": "old-token-xyz"})
    error = report.failed[0].error or ""
    assert "the token for source 'pd' was refused (401)" in error and "Personal preferences > API" in error
    assert "old-token-xyz" not in error and deals(con) == before


def test_a_field_removed_becomes_null_an_added_one_becomes_a_column_when_asked(api: PipedriveApi,
                                                                                 tmp_path: Path) -> None:
    con = duckdb.connect()
    sync(con, source(api), tmp_path)
    api.removed = {"won_time"}
    api.added = {"abc123_custom": "gold"}
    api.modify("deals", 1, datetime(2026, 9, 1))
    assert not sync(con, source(api), tmp_path).failed
    assert con.execute("SELECT won_time FROM deals WHERE id = 1").fetchall() == [(None,)]
    report = sync(con, source(api, fields={"deals": ["abc123_custom"]}), tmp_path)
    assert {x.table: x.status for x in report.tables}["deals"] == "copied"
    assert con.execute("SELECT DISTINCT abc123_custom FROM deals").fetchall() == [("gold",)]


def test_sample_has_each_status() -> None:
    assert {d["status"] for d in sample()["deals"]} == {"won", "lost", "open"}


@pytest.mark.parametrize("body", [[1, 2], {"success": True, "data": "x", "additional_data": "x"}])
def test_an_answer_of_an_unexpected_shape_fails_clearly_and_keeps_data(api: PipedriveApi, tmp_path: Path,
                                                                        body: object) -> None:
    con = duckdb.connect()
    sync(con, source(api), tmp_path)
    before = deals(con)
    api.fail(200, body=body)
    report = sync(con, source(api), tmp_path)
    assert [t.table for t in report.failed] == ["deals"]  # the other tables are read after the odd answer
    assert "source 'pd'" in (report.failed[0].error or "")
    assert deals(con) == before == expected(api)


def test_a_bad_numeric_option_fails_the_source_clearly(api: PipedriveApi, tmp_path: Path) -> None:
    report = sync(duckdb.connect(), source(api, timeout="abc"), tmp_path)
    assert report.failed and all("`timeout`" in (t.error or "") and "'abc'" in (t.error or "")
                                 for t in report.failed)
