"""Who may do what, for every route of the app, read from its router: a new route cannot be forgotten.

The askers: nobody, a viewer, an editor of another team, an editor of the KPI's team, an editor of every KPI, an
admin (all signed in through the real /login form), an admin's API token, and a token of another workspace. Each
route is called by each of them with a valid request, and the answer must match the route's rule: refused
(401/403, or the sign-in page) exactly when the rule says so. Also here: the form token, session fixation,
signing out everywhere, and the records of who changed what.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.routing import Mount

from kpilot.service.accounts import AccountService, Throttle
from kpilot.web import create_app
from kpilot.web.auth import WRITES, rule_of

PASSWORD = "a long enough password"
KPI = "leads"  # owned by marketing only (acme)
TEAM, OTHER = "marketing", "sales"
FUTURE = "2099-01-01"


@dataclass
class World:
    app: Any
    clients: dict[str, TestClient]
    tokens: dict[str, str]
    ids: dict[str, int]


def _sign_in(client: TestClient, email: str) -> None:
    page = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token, page.text[:500]
    answer = client.post("/login", data={"csrf": token.group(1), "email": email, "password": PASSWORD, "next": "/"},
                         follow_redirects=False)
    assert answer.status_code == 303, answer.text[:500]


@pytest.fixture(scope="module")
def world(acme_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    app = create_app(acme_dir, state_dir=tmp_path_factory.mktemp("access"))
    app.state.throttle = Throttle(limit=1000, client_limit=1000)  # every asker tries a wrong password once
    other = create_app(acme_dir, state_dir=tmp_path_factory.mktemp("access-other"))
    gate = app.state.gate
    ws = gate.primary.ws.workspace
    accounts = AccountService(gate.store, ws)
    people = {"viewer": ("viewer", []), "editor_other": ("editor", [OTHER]), "editor_team": ("editor", [TEAM]),
              "editor_all": ("editor", []), "admin": ("admin", [])}
    for name, (role, teams) in people.items():
        accounts.create_user(f"{name}@example.com", role=role, teams=teams, password=PASSWORD)
    admin_token, _ = accounts.create_token(role="admin", name="admin token")
    # "Another workspace": another server's database, with a workspace key of its own.
    foreign, _ = AccountService(other.state.gate.store, "another").create_token(role="admin", name="foreign")
    decision = gate.store.add_decision(ws, KPI, period="2026-W46", action="Double the webinar budget",
                                       owner=TEAM)
    alert_ids = gate.store.apply_alert_run(ws, [{
        "key": f"rule:{KPI}:2026-W46", "kind": "rule", "metric": KPI, "state": "firing", "severity": "high",
        "opened": "2026-11-09", "last_seen": "2026-11-09", "periods_seen": 1, "needed": 1, "recipients": [TEAM],
        "payload": {}}], [])
    with TestClient(app, base_url="http://127.0.0.1") as main:
        clients = {"nobody": main}
        for name in [*people, "token", "foreign"]:
            clients[name] = TestClient(app, base_url="http://127.0.0.1")
        for name in people:
            _sign_in(clients[name], f"{name}@example.com")
        clients["token"].headers["Authorization"] = f"Bearer {admin_token}"
        clients["foreign"].headers["Authorization"] = f"Bearer {foreign}"
        yield World(app, clients, {"admin": admin_token}, {"decision_id": decision.id,
                                                          "alert_id": next(iter(alert_ids.values()))})


def _routes(app: Any) -> list[tuple[str, str]]:
    out = []
    for route in app.routes:
        if isinstance(route, Mount):
            out.append(("GET", route.path))
            continue
        for method in sorted(getattr(route, "methods", None) or {"GET"}):
            if method != "HEAD":
                out.append((method, route.path))
    return out


def test_every_changing_route_has_a_rule_and_every_rule_a_route(world: World) -> None:
    routes = _routes(world.app)
    assert len(routes) > 40
    assert [r for r in routes if rule_of(*r) == "none"] == []
    assert sorted(set(WRITES) - set(routes)) == []


def _csrf(client: TestClient) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', client.get(f"/settings/metric/{KPI}").text)
    return found.group(1) if found else "no-token"


def _request(world: World, who: str, method: str, path: str) -> Any:
    client = world.clients[who]
    ids = {"key": KPI, "code": "en", "decision_id": str(world.ids["decision_id"]),
           "alert_id": str(world.ids["alert_id"]), "message_id": "999999", "path:path": "nothing"}
    concrete = re.sub(r"\{([^}]+)\}", lambda m: ids.get(m.group(1), ids.get(m.group(1).split(":")[0], "x")), path)
    if path == "/static":
        concrete = "/static/app.css"
    if method == "GET":
        return client.get(concrete, follow_redirects=False)
    if concrete.startswith("/api/"):
        bodies: dict[str, Any] = {
            "/api/v1/metrics/{key}/settings": {"owners": [TEAM]},
            "/api/v1/decisions": {"metric": KPI, "period": "2026-W46", "action": "Call back the leads"},
            "/api/v1/decisions/{decision_id}": {"status": "open"},
            "/api/v1/annotations": {"metric": KPI, "period": "2026-W46", "text": "Webinar"},
            "/api/v1/push": {"metric": KPI, "period": "2026-W46", "value": 12},
            "/api/v1/alerts/{alert_id}/ack": {"by": "someone"},
            "/api/v1/alerts/{alert_id}/snooze": {"until": FUTURE},
            "/api/v1/outbox/{message_id}/retry": {},
            "/api/v1/{path:path}": {},
        }
        return client.request(method, concrete, json=bodies.get(path, {}), follow_redirects=False)
    forms: dict[str, dict[str, str]] = {
        "/settings/metric/{key}": {"reset": "1"},
        "/metric/{key}/annotations": {"period": "2026-W46", "text": "Webinar"},
        "/decisions": {"metric": KPI, "action": "Call back the leads"},
        "/decisions/{decision_id}": {"status": "open"},
        "/alerts/{alert_id}/ack": {"by": "someone"},
        "/alerts/{alert_id}/snooze": {"until": FUTURE},
        "/alerts/outbox/{message_id}/retry": {},
        "/login": {"email": "nobody@example.com", "password": "wrong password"},
        "/logout": {}, "/logout/everywhere": {},
    }
    data = {"csrf": _csrf(client), **forms.get(path, {})}
    return client.request(method, concrete, data=data, follow_redirects=False)


ASKERS = ["nobody", "viewer", "editor_other", "editor_team", "editor_all", "admin", "token", "foreign"]


def _allowed(rule: str, who: str) -> bool:
    if rule == "public":
        return who != "foreign"  # a wrong token is refused everywhere
    if who in ("nobody", "foreign"):
        return False
    if rule in ("read", "signed-in"):
        return True
    if rule == "admin" or rule == "none":
        return who in ("admin", "token")
    if rule == "any":
        return who in ("editor_all", "admin", "token")
    return who in ("editor_team", "editor_all", "admin", "token")  # path:key, route: the KPI is marketing's


def _refused(answer: Any) -> bool:
    if answer.status_code in (401, 403):
        return True
    return answer.status_code == 303 and "/login" in answer.headers.get("location", "") and \
        answer.request.url.path != "/login"


def _check(world: World, who: str, reads: bool) -> None:
    wrong = []
    for method, path in _routes(world.app):
        if (method == "GET") != reads:
            continue
        if path in ("/logout", "/logout/everywhere") and who not in ("nobody", "foreign"):
            continue  # would end the session the other routes use: see test_signing_out_everywhere
        rule = rule_of(method, path)
        answer = _request(world, who, method, path)
        assert answer.status_code < 500, (method, path, who, answer.text[:300])
        if (method, path) == ("POST", "/login") and answer.status_code == 401 and who != "foreign":
            continue  # the form's own answer to a wrong password, not a refusal of the route
        if _refused(answer) == _allowed(rule, who):
            wrong.append(f"{method} {path} ({rule}): {answer.status_code} {answer.text[:100]!r}")
    assert wrong == []


# Reads first, for every asker, then changes: a change drops the computed pages, which reads would then redo.
@pytest.mark.parametrize("who", ASKERS)
def test_each_read_answers_each_asker_by_its_rule(world: World, who: str) -> None:
    _check(world, who, reads=True)


@pytest.mark.parametrize("who", ASKERS)
def test_each_change_answers_each_asker_by_its_rule(world: World, who: str) -> None:
    _check(world, who, reads=False)


def test_a_form_needs_the_token_of_its_own_session(world: World) -> None:
    editor, admin = world.clients["editor_team"], world.clients["admin"]
    theirs = _csrf(admin)
    for token in ("", "forged", theirs):
        answer = editor.post("/metric/leads/annotations", data={"csrf": token, "period": "2026-W46", "text": "x"},
                             follow_redirects=False)
        assert answer.status_code == 403, token


def test_a_session_id_planted_before_sign_in_is_worthless_after(world: World) -> None:
    client = TestClient(world.app, base_url="http://127.0.0.1")
    client.get("/login")
    planted = client.cookies.get("kpilot_session")
    _sign_in(client, "viewer@example.com")
    assert client.cookies.get("kpilot_session") != planted
    stranger = TestClient(world.app, base_url="http://127.0.0.1", cookies={"kpilot_session": planted or ""})
    assert _refused(stranger.get("/", follow_redirects=False))
    assert client.get("/", follow_redirects=False).status_code == 200


def test_signing_out_everywhere_ends_every_session_of_the_user(world: World) -> None:
    first, second = (TestClient(world.app, base_url="http://127.0.0.1") for _ in range(2))
    for c in (first, second):
        _sign_in(c, "editor_all@example.com")
        assert c.get("/", follow_redirects=False).status_code == 200
    assert first.post("/logout/everywhere", data={"csrf": _csrf(first)}, follow_redirects=False).status_code == 303
    assert _refused(first.get("/", follow_redirects=False)) and _refused(second.get("/", follow_redirects=False))
    assert world.clients["editor_all"].get("/", follow_redirects=False).status_code == 303  # that one too
    _sign_in(world.clients["editor_all"], "editor_all@example.com")  # for the tests that follow


def test_a_wrong_password_says_nothing_about_the_address(world: World) -> None:
    client = TestClient(world.app, base_url="http://127.0.0.1", cookies={"kpilot_lang": "en"})
    page = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    known = client.post("/login", data={"csrf": token, "email": "viewer@example.com", "password": "not it at all"})
    unknown = client.post("/login", data={"csrf": token, "email": "ghost@example.com", "password": "not it at all"})
    assert known.status_code == unknown.status_code == 401
    assert "Wrong e-mail address or password." in known.text and "Wrong e-mail address or password." in unknown.text


def test_changes_record_who_made_them(world: World) -> None:
    editor = world.clients["editor_team"]
    answer = editor.post("/api/v1/annotations", json={"metric": KPI, "period": "2026-W45", "text": "Trade show"})
    assert answer.status_code == 201 and answer.json()["user"] == "editor_team@example.com"
    log = world.clients["token"].get("/api/v1/changes", params={"kind": "annotation"}).json()
    assert log[0]["actor"] == "editor_team@example.com" and log[0]["after"]["text"] == "Trade show"
    assert world.clients["viewer"].get("/api/v1/changes").status_code == 403
    page = world.clients["admin"].get("/changes")
    assert page.status_code == 200 and "editor_team@example.com" in page.text and "Trade show" in page.text
    users = world.clients["admin"].get("/users")
    assert "viewer@example.com" in users.text and world.tokens["admin"] not in users.text


def test_forms_show_to_who_may_use_them(world: World) -> None:
    forms = {"annotate": 'class="annotate"', "decide": 'class="decide"', "read-only": 'data-role="read-only"'}

    def seen(who: str) -> set[str]:
        text = world.clients[who].get(f"/metric/{KPI}").text
        return {name for name, mark in forms.items() if mark in text}

    assert seen("viewer") == seen("editor_other") == {"read-only"}
    assert seen("editor_team") == seen("admin") == {"annotate", "decide"}
    settings = world.clients["viewer"].get(f"/settings/metric/{KPI}").text
    assert 'data-role="read-only"' in settings and 'class="primary">' not in settings


def test_a_proxy_s_basic_authentication_neither_grants_nor_refuses(world: World) -> None:
    """Behind a proxy that authenticates with Basic and passes the header on, only kpilot's own sign-in counts."""
    basic = {"Authorization": "Basic ZGlyZWN0aW9uOnNlY3JldA=="}
    assert world.clients["viewer"].get("/", headers=basic, follow_redirects=False).status_code == 200
    nobody = TestClient(world.app, base_url="http://127.0.0.1")
    assert _refused(nobody.get("/", headers=basic, follow_redirects=False))
    assert nobody.get("/api/v1/status", headers=basic).status_code == 401


def test_a_request_the_middleware_did_not_see_may_do_nothing() -> None:
    from starlette.requests import Request

    from kpilot.web.auth import principal

    who = principal(Request({"type": "http", "method": "GET", "path": "/", "headers": [], "state": {}}))
    assert not who.is_admin and not who.can_write and not who.can_change(["marketing"])
