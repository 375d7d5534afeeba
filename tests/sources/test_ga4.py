"""GA4 traffic reports, synced from a local server that answers like the Data API and Google's token endpoint."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from kpilot.model.workspace import Source
from kpilot.sources.saas import ga4
from kpilot.sources.sync import sync_sources
from tests.sources.helpers import Ws
from tests.sources.mock_apis.ga4 import PROPERTY, Ga4Api

COLUMNS = "date, channel, campaign, sessions, users, conversions"


@pytest.fixture
def api() -> Any:
    with Ga4Api() as server:
        yield server



def _sync(ws: Ws, api: Ga4Api, env: dict[str, str] | None = None, **options: Any) -> Any:
    if env is None:
        env = {"GOOGLE_APPLICATION_CREDENTIALS": str(api.key_file(ws.root))}
    source = Source.model_validate({"key": "web", "type": "ga4", "options": {
        "property_id": PROPERTY, "base_url": f"{api.url}/v1beta", "page_size": 10, **options}})
    return sync_sources(ws.con, [source], ws.root, environ=env)


def _expected(api: Ga4Api) -> list[tuple[Any, ...]]:
    return sorted((r["date"], r["sessionDefaultChannelGroup"], r["sessionCampaignName"], r["sessions"],
                   r["totalUsers"], r["keyEvents"]) for r in api.rows)


def _copied(ws: Ws) -> list[tuple[Any, ...]]:
    return ws.con.execute(f"SELECT {COLUMNS} FROM ga4_traffic ORDER BY ALL").fetchall()


def test_the_report_is_copied_page_by_page_with_a_service_account_token(ws: Ws, api: Ga4Api) -> None:
    report = _sync(ws, api)
    assert [(t.table, t.status, t.rows) for t in report.tables] == [("ga4_traffic", "synced", 63)]
    assert _copied(ws) == _expected(api)
    assert api.issued  # the mock checked the JWT's signature with the key's public part
    reports = [r for r in api.requests if r.path.endswith(":runReport")]
    assert [r.body["offset"] for r in reports] == list(range(0, 70, 10))
    assert reports[0].body["dimensions"] == [{"name": "date"}, {"name": "sessionDefaultChannelGroup"},
                                             {"name": "sessionCampaignName"}]
    assert reports[0].body["metrics"] == [{"name": "sessions"}, {"name": "totalUsers"}, {"name": "keyEvents"}]
    assert ws.types("ga4_traffic")["date"] == "DATE"


def test_each_sync_reads_the_settling_days_again_and_replaces_them(ws: Ws, api: Ga4Api) -> None:
    _sync(ws, api)
    api.requests.clear()
    today = date.today()
    api.change(today - timedelta(days=2), "Email", sessions=1234)  # still settling: seen
    api.change(today - timedelta(days=10), "Email", sessions=4321)  # settled long ago: not read again
    report = _sync(ws, api)
    first = next(r for r in api.requests if r.path.endswith(":runReport"))
    assert first.body["dateRanges"] == [{"startDate": (today - timedelta(days=3)).isoformat(), "endDate": "today"}]
    assert report.tables[0].rows_read == 12 and report.tables[0].rows == 63
    got = dict(((d, c), s) for d, c, _, s, _, _ in _copied(ws))
    assert got[(today - timedelta(days=2), "Email")] == 1234
    assert got[(today - timedelta(days=10), "Email")] != 4321
    assert ws.con.execute("SELECT count(*), count(DISTINCT (date, channel, campaign)) FROM ga4_traffic"
                          ).fetchall() == [(63, 63)]


def test_a_refused_token_fails_clearly_and_keeps_the_previous_rows(ws: Ws, api: Ga4Api) -> None:
    _sync(ws, api)
    api.authorized = lambda req: req.path == "/token"  # type: ignore[method-assign]
    [failed] = _sync(ws, api).failed
    assert "refused (401)" in str(failed.error) and "Viewer" in str(failed.error)
    assert api.token not in str(failed.error)
    assert len(_copied(ws)) == 63
    assert ws.con.execute("SELECT status FROM kpilot.syncs").fetchall() == [("failed",)]


def test_a_key_the_token_server_does_not_know_is_refused(ws: Ws, api: Ga4Api) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    env = {"GOOGLE_APPLICATION_CREDENTIALS": str(api.key_file(ws.root, other))}
    [failed] = _sync(ws, api, env).failed
    assert "Invalid JWT Signature" in str(failed.error)
    assert "PRIVATE KEY" not in str(failed.error)


def test_a_missing_key_file_or_property_is_reported(ws: Ws, api: Ga4Api) -> None:
    [failed] = _sync(ws, api, {"GA_KEY": "nowhere.json"}, credentials_env="GA_KEY").failed
    assert "nowhere.json" in str(failed.error) and "GA_KEY" in str(failed.error)
    [failed] = _sync(ws, api, property_id="").failed
    assert "property_id" in str(failed.error)


def test_rate_limits_and_server_errors_are_retried_honouring_retry_after(ws: Ws, api: Ga4Api,
                                                                         waits: list[float]) -> None:
    key = api.key_file(ws.root)
    source_env = {"GOOGLE_APPLICATION_CREDENTIALS": str(key)}
    connector = ga4.connector_for(Source.model_validate({"key": "web", "type": "ga4", "options": {
        "property_id": PROPERTY, "base_url": f"{api.url}/v1beta"}}), ws.root, source_env)
    connector._api()  # the token first: the failures below go to the report
    api.fail(429, headers={"Retry-After": "11"}, body={"error": {"code": 429, "status": "RESOURCE_EXHAUSTED"}})
    api.fail(500)
    [table] = connector.discover()
    rows = sum(b.num_rows for b in connector.read(table, "date", None, inclusive=False, batch_size=100))
    connector.close()
    assert rows == 63 and waits[:1] == [11.0] and len(waits) == 2


def test_a_removed_metric_fails_with_the_api_reason_and_a_new_one_recopies(ws: Ws, api: Ga4Api,
                                                                          waits: list[float]) -> None:
    _sync(ws, api)
    [failed] = _sync(ws, api, conversion_metric="conversions").failed  # renamed keyEvents in 2024
    assert "conversions is not a valid metric" in str(failed.error)
    assert len(_copied(ws)) == 63
    report = _sync(ws, api, conversion_metric="newUsers")
    assert report.tables[0].status == "copied" and "conversions" not in ws.types("ga4_traffic")
    assert ws.con.execute("SELECT sum(new_users) FROM ga4_traffic").fetchall() == [(sum(r["newUsers"]
                                                                                      for r in api.rows),)]
