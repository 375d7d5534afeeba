"""Brevo e-mail campaign statistics, synced from a local server that answers like /v3/emailCampaigns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kpilot.model.workspace import Source
from kpilot.sources.saas.records import snake
from kpilot.sources.sync import sync_sources
from tests.sources.helpers import Ws
from tests.sources.mock_apis.brevo import STATS, BrevoApi, sample

ENV = {"BREVO_API_KEY": BrevoApi.token}


@pytest.fixture
def api() -> Any:
    with BrevoApi(sample(230)) as server:
        yield server



def _source(api: BrevoApi, **options: Any) -> Source:
    return Source.model_validate({"key": "mail", "type": "brevo", "options": {"base_url": api.base_url, **options}})


def _sync(ws: Ws, api: BrevoApi, env: dict[str, str] = ENV, **options: Any) -> Any:
    return sync_sources(ws.con, [_source(api, **options)], ws.root, environ=env)


def test_campaigns_and_their_statistics_are_copied_page_by_page(ws: Ws, api: BrevoApi, waits: list[float]) -> None:
    report = _sync(ws, api)
    assert [(t.table, t.status, t.rows) for t in report.tables] == [("brevo_campaigns", "copied", 230)]
    pages = [r for r in api.requests if r.path == "/v3/emailCampaigns"]
    assert all(r.query["statistics"] == "globalStats" and int(r.query["limit"]) <= 100 for r in pages)
    assert [int(r.query["offset"]) for r in pages[1:]] == [0, 100, 200]  # after the one-campaign sample
    got = {r[0]: r for r in ws.con.execute(
        "SELECT id, name, status, sent, delivered, unique_views, unique_clicks, unsubscriptions, sent_date "
        "FROM brevo_campaigns").fetchall()}
    assert len(got) == 230
    for c in api.campaigns:
        s = c["statistics"]["globalStats"]
        row = got[c["id"]]
        assert row[1:8] == (c["name"], c["status"], s["sent"], s["delivered"], s["uniqueViews"], s["uniqueClicks"],
                            s["unsubscriptions"])
        assert (row[8] is None) == (c["sentDate"] is None)
    assert ws.types("brevo_campaigns")["sent_date"] == "TIMESTAMP WITH TIME ZONE"
    assert waits == []


def test_statistics_that_grow_after_sending_are_seen_by_the_next_sync(ws: Ws, api: BrevoApi) -> None:
    _sync(ws, api)
    api.campaigns[0]["statistics"]["globalStats"]["uniqueClicks"] = 9999  # modifiedAt does not move
    _sync(ws, api)
    assert ws.con.execute("SELECT unique_clicks FROM brevo_campaigns WHERE id = 1").fetchall() == [(9999,)]
    assert ws.con.execute("SELECT count(*), count(DISTINCT id) FROM brevo_campaigns").fetchall() == [(230, 230)]


def test_rate_limits_and_server_errors_are_retried_honouring_retry_after(ws: Ws, api: BrevoApi,
                                                                         waits: list[float]) -> None:
    api.fail(429, headers={"Retry-After": "7"}, body={"code": "too_many_requests", "message": "Too many requests"})
    api.fail(500, times=2)
    report = _sync(ws, api, backoff=0.5)
    assert report.failed == []
    assert waits[0] == 7.0 and len(waits) == 3 and all(0 <= w <= 0.5 * 2 ** (i + 1) for i, w in enumerate(waits[1:]))
    assert ws.con.execute("SELECT count(*) FROM brevo_campaigns").fetchall() == [(230,)]


def test_a_refused_key_fails_clearly_and_keeps_the_previous_rows(ws: Ws, api: BrevoApi) -> None:
    _sync(ws, api)
    report = _sync(ws, api, env={"BREVO_API_KEY": "xkeysib-revoked"})
    [failed] = report.failed
    assert "refused (401)" in str(failed.error) and "BREVO_API_KEY" in str(failed.error)
    assert "xkeysib-revoked" not in str(failed.error)
    assert ws.con.execute("SELECT count(*) FROM brevo_campaigns").fetchall() == [(230,)]
    assert ws.con.execute("SELECT status FROM kpilot.syncs").fetchall() == [("failed",)]


def test_a_missing_key_names_the_variable(ws: Ws, api: BrevoApi) -> None:
    [failed] = _sync(ws, api, env={}, api_key_env="MAIL_KEY").failed
    assert "MAIL_KEY" in str(failed.error)


def test_a_statistic_added_or_removed_recopies_the_table_with_its_columns(ws: Ws, api: BrevoApi) -> None:
    _sync(ws, api)
    api.removed.add("trackableViews")
    api.added["opensRate"] = 0.25
    _sync(ws, api)
    columns = ws.types("brevo_campaigns")
    assert "trackable_views" not in columns and columns["opens_rate"] == "DOUBLE"
    assert set(columns) >= {snake(s) for s in STATS if s != "trackableViews"}
    assert ws.con.execute("SELECT count(*), min(opens_rate), max(opens_rate) FROM brevo_campaigns").fetchall() == [
        (230, 0.25, 0.25)]


def test_no_campaign_yet_gives_an_empty_table_with_the_documented_columns(ws: Ws) -> None:
    with BrevoApi([]) as empty:
        report = _sync(ws, empty)
    assert report.failed == [] and ws.rows("brevo_campaigns") == []
    assert "unique_clicks" in ws.types("brevo_campaigns")


def test_key_is_read_from_the_secrets_file(ws: Ws, api: BrevoApi, tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.env"
    secrets.write_text(f"export BREVO_API_KEY='{BrevoApi.token}'\n")
    report = _sync(ws, api, env={"KPILOT_SECRETS_FILE": str(secrets)})
    assert report.failed == [] and report.tables[0].rows == 230
