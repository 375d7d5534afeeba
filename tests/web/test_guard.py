"""The server's outer defences, each against the attack it stops: DNS rebinding (Host check), cross-site pushes
(JSON only), oversized and hostile bodies, loose types, forged form tokens; and security headers everywhere."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kpilot.service import WorkspaceService
from kpilot.web import create_app
from tests.web.test_push import CALLS, push_workspace

EN = {"Accept-Language": "en"}


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return push_workspace(tmp_path)


@pytest.fixture
def client(workspace: Path, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(workspace, state_dir=tmp_path / "state"), base_url="http://127.0.0.1") as c:
        yield c


def test_a_request_for_another_host_name_is_refused(client: TestClient) -> None:
    """DNS rebinding: evil.example resolves to 127.0.0.1, the browser sends Host: evil.example."""
    for host in ["evil.example", "evil.example:8000", "127.0.0.1.evil.example"]:
        r = client.get("/api/v1/metrics", headers={"Host": host})
        assert r.status_code == 400, host
        assert f"kpilot does not answer to the host name '{host.split(':')[0]}'" in r.text
        assert "--allowed-host" in r.text
    for host in ["127.0.0.1:8000", "localhost", "[::1]:8000"]:
        assert client.get("/api/v1/metrics", headers={"Host": host}).status_code == 200, host


def test_an_allowed_host_name_is_answered(workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KPILOT_ALLOWED_HOSTS", "kpi.example.com, board.example.com")
    app = create_app(workspace, state_dir=tmp_path / "state", hosts=["intranet.local"])
    with TestClient(app, base_url="http://kpi.example.com") as c:
        assert c.get("/api/v1/metrics").status_code == 200
        assert c.get("/api/v1/metrics", headers={"Host": "intranet.local"}).status_code == 200
        assert c.get("/api/v1/metrics", headers={"Host": "other.example.com"}).status_code == 400


def test_security_headers_on_api_answers_and_pages(client: TestClient) -> None:
    api = client.get("/api/v1/metrics")
    assert api.headers["x-content-type-options"] == "nosniff"
    assert api.headers["referrer-policy"] == "same-origin"
    assert api.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    page = client.get("/", headers=EN)
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["content-security-policy"].startswith("default-src 'self'; script-src 'self'")


def test_a_push_must_be_json(client: TestClient) -> None:
    """A form or text/plain is sent across sites without a preflight: refused before anything is read."""
    body = '{"metric": "nps", "period": "2026-11", "value": 40}'
    for media in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None]:
        headers = {"Content-Type": media} if media else {}
        r = client.post("/api/v1/push", content=body, headers=headers)
        assert r.status_code == 415, media
        assert "a push is JSON" in r.json()["error"]["message"]
    ok = client.post("/api/v1/push", content=body, headers={"Content-Type": "application/json; charset=utf-8"})
    assert ok.status_code == 200, ok.text


def test_an_oversized_body_is_refused_without_being_read(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KPILOT_MAX_BODY_BYTES", "1000")
    big = '{"values": [' + ",".join(['{"metric": "nps", "period": "2026-11", "value": 1}'] * 100) + "]}"
    r = client.post("/api/v1/push", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert "larger than 1000 bytes" in r.json()["error"]["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while reading
        for _ in range(100):
            yield b" " * 100

    r = client.post("/api/v1/push", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413


def test_deeply_nested_json_is_a_clear_error(client: TestClient) -> None:
    r = client.post("/api/v1/push", content="[" * 100_000 + "]" * 100_000, headers={"Content-Type": "application/json"})
    assert r.status_code == 422
    assert "nested too deeply" in r.json()["error"]["message"]


@pytest.mark.parametrize(("body", "field"), [
    ({"metric": "nps", "period": "2026-11", "value": "12"}, "value"),
    ({"metric": "nps", "period": "2026-11", "value": True}, "value"),
    ({"metric": "nps", "period": "0001-01", "value": 3}, "period"),
    ({"table": "calls", "rows": [{"at": "0001-01-01T00:00:00", "minutes": 3}]}, "rows[0].at"),
    ({"table": "calls", "rows": [{"at": "2026-11-02T10:00:00", "minutes": "3"}]}, "rows[0].minutes"),
    ({"table": "calls", "rows": [{"at": "2026-11-02T10:00:00", "minutes": False}]}, "rows[0].minutes"),
])
def test_loose_types_are_refused(client: TestClient, body: dict[str, object], field: str) -> None:
    r = client.post("/api/v1/push", json=body)
    assert r.status_code == 422, r.text
    assert field in [i["field"] for i in r.json()["error"]["issues"]]


def _token(c: TestClient) -> str:
    page = c.get("/metric/leads", headers=EN)
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def test_a_form_token_is_bound_to_its_session(client: TestClient, workspace: Path, tmp_path: Path) -> None:
    note = {"period": "2026-10", "text": "launch"}
    # An attacker who can plant a cookie sets the session and the field to the same value: refused.
    client.cookies.set("kpilot_session", "a" * 43)
    forged = client.post("/metric/leads/annotations", data={"csrf": "a" * 43, **note}, follow_redirects=False)
    assert forged.status_code == 403
    client.cookies.clear()
    mine = _token(client)
    assert client.post("/metric/leads/annotations", data={"csrf": mine, **note},
                       follow_redirects=False).status_code == 303
    # A token taken from one browser does not pass with another browser's session.
    with TestClient(create_app(workspace, state_dir=tmp_path / "state"), base_url="http://127.0.0.1") as other:
        _token(other)
        stolen = other.post("/metric/leads/annotations", data={"csrf": mine, **note}, follow_redirects=False)
        assert stolen.status_code == 403


def test_pushed_rows_are_appended_and_equal_a_rebuild(workspace: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    types: list[str] = []
    with TestClient(create_app(workspace, state_dir=state), base_url="http://127.0.0.1") as c:
        for rows in ([CALLS[0]], [CALLS[2]], [CALLS[1], CALLS[3]], [{"at": "2026-11-20T09:00:00", "minutes": 0.25}]):
            assert c.post("/api/v1/push", json={"table": "calls", "rows": rows}).status_code == 200
            with WorkspaceService(workspace, state_dir=state) as svc:
                types.append(svc.con.execute("SELECT typeof(minutes) FROM calls LIMIT 1").fetchall()[0][0])
    # Whole minutes first (BIGINT, the second push appended); 12.5 widens the column: rebuilt, never rounded.
    assert types == ["BIGINT", "BIGINT", "DOUBLE", "DOUBLE"]
    with WorkspaceService(workspace, state_dir=state) as svc:
        rows = svc.con.execute('SELECT "at", minutes, rep FROM calls ORDER BY "at"').fetchall()
        assert [r[1] for r in rows] == [20, 12.5, 30, 7.5, 0.25]
        assert [r[2] for r in rows] == ["ana", "ana", "bob", None, None]
        assert svc.con.execute("SELECT typeof(minutes) FROM calls LIMIT 1").fetchall() == [("DOUBLE",)]
        state_row = svc.con.execute("SELECT last_id FROM kpilot.pushed_state WHERE table_name = 'calls'").fetchall()
        assert state_row == [(5,)]
        svc.con.execute("DROP TABLE calls")  # a rebuild from the application database gives the same rows
        svc.load_pushed()
        assert svc.con.execute('SELECT "at", minutes, rep FROM calls ORDER BY "at"').fetchall() == rows
