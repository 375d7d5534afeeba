"""`kpilot serve --root`: two copies of acme (keys acme and bravo) served by one app, each under /<key>/, isolated.

Links, forms, static files and redirects carry the workspace's prefix; a session, a token or a decision of one
workspace means nothing to the other; off loopback, serving is refused while a workspace has no user or the key
cannot be kept.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from kpilot.model import KpilotError
from kpilot.model.errors import render
from kpilot.service.accounts import AccountService
from kpilot.web.exposure import exposure_problem, is_loopback
from kpilot.web.locale import web_translator
from kpilot.web.root import Served, create_root_app, workspace_folders
from tests.web.conftest import serving

AS_OF = "2026-11-15"
KEYS = ("acme", "bravo")
PASSWORD = "correct horse battery"
LINK = re.compile(r'\b(href|src|action)="([^"]*)"')
FORM = re.compile(r'<form\b[^>]*>', re.S)


def make_root(acme_dir: Path, root: Path, keys: tuple[str, ...] = KEYS) -> Path:
    """Copies of acme under `root`, one per key, each with its kpilot.yaml's `workspace:` set to the key."""
    for key in keys:
        folder = root / f"folder-{key}"
        shutil.copytree(acme_dir, folder, ignore=shutil.ignore_patterns(".kpilot"))
        folder.chmod(0o755)
        file = folder / "kpilot.yaml"
        file.chmod(0o644)
        text = file.read_text(encoding="utf-8")
        assert "\nworkspace: acme\n" in text
        file.write_text(text.replace("\nworkspace: acme\n", f"\nworkspace: {key}\n", 1), encoding="utf-8")
    return root


@dataclass
class Root:
    client: TestClient
    app: FastAPI

    def served(self, key: str) -> Served:
        return next(s for s in self.app.state.workspaces if s.key == key)

    def accounts(self, key: str) -> AccountService:
        return AccountService(self.served(key).app.state.gate.store, key)


@pytest.fixture(scope="module")
def root(acme_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Root]:
    """Two open workspaces (no users)."""
    app = create_root_app(make_root(acme_dir, tmp_path_factory.mktemp("root")))
    with TestClient(app, base_url="http://127.0.0.1") as c:
        yield Root(c, app)


@pytest.fixture(scope="module")
def guarded(acme_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Root]:
    """Two workspaces, each with an admin of its own (the same address in both, another password), their rows in
    one application database: only its `workspace` column tells them apart."""
    folder = tmp_path_factory.mktemp("guarded")
    app = create_root_app(make_root(acme_dir, folder / "root"), db_url=f"sqlite:///{folder / 'shared.db'}")
    with TestClient(app, base_url="http://127.0.0.1") as c:
        r = Root(c, app)
        for key in KEYS:
            r.accounts(key).create_user("anna@example.com", role="admin", password=f"{PASSWORD} {key}")
        yield r


def _links(html: str) -> list[tuple[str, str]]:
    return [(kind, url.replace("&amp;", "&")) for kind, url in LINK.findall(html)]


def _post_actions(html: str) -> list[str]:
    out = []
    for form in FORM.findall(html):
        action = re.search(r'action="([^"]*)"', form)
        if action and 'method="post"' in form:
            out.append(action.group(1).replace("&amp;", "&"))
    return out


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no form token on the page"
    return found.group(1)


# --- serving and addresses -----------------------------------------------------------------------------


def test_the_index_lists_the_workspaces_and_nothing_else(root: Root) -> None:
    r = root.client.get("/")
    assert r.status_code == 200
    assert [url for kind, url in _links(r.text) if kind == "href" and "/static/" not in url] == ["/acme/", "/bravo/"]
    assert "mrr" not in r.text.lower() and "data-key=\"mrr\"" not in r.text  # no metric of any workspace
    assert root.client.get("/healthz").json() == {"status": "ok", "warming": False}
    assert root.client.get("/-/static/app.css").status_code == 200  # the index's own stylesheet


def test_each_board_is_served_under_its_key(root: Root) -> None:
    for key in KEYS:
        r = root.client.get(f"/{key}/?as_of={AS_OF}")
        assert r.status_code == 200
        assert 'data-key="mrr"' in r.text
        assert f'<a href="/{key}/?as_of={AS_OF}" aria-current="page">' in r.text  # the menu knows where it is
    assert root.client.get("/acme", follow_redirects=False).headers["location"].endswith("/acme/")


def test_an_unknown_workspace_is_404(root: Root) -> None:
    r = root.client.get("/nope/")
    assert r.status_code == 404
    assert 'href="/"' in r.text
    assert root.client.get("/nope/api/v1/metrics").status_code == 404


def test_every_link_of_the_pages_carries_the_prefix_and_answers(root: Root) -> None:
    c = root.client
    key = "bravo"
    pages = ["/", "/metric/mrr", "/decisions", "/settings", "/settings/metric/mrr", "/tree", "/audit", "/alerts",
             "/alignment"]
    seen: set[str] = set()
    actions: set[str] = set()
    for path in pages:
        r = c.get(f"/{key}{path}?as_of={AS_OF}")
        assert r.status_code == 200, path
        for kind, url in _links(r.text):
            if url.startswith("#") or url.startswith("data:"):
                continue
            assert url.startswith(f"/{key}/"), f"{path}: {kind}={url} leaves the workspace"
            if kind != "action":
                seen.add(url.partition("#")[0])
        actions.update(_post_actions(r.text))
    assert {f"/{key}/static/app.css", f"/{key}/metric/mrr?as_of={AS_OF}", f"/{key}/decisions?as_of={AS_OF}"} <= seen
    for url in sorted(seen):
        got = c.get(url, follow_redirects=False)
        assert got.status_code in (200, 303), f"{url}: {got.status_code}"
        if got.status_code == 303:
            assert got.headers["location"].startswith(f"/{key}/"), url
    # The forms post to routes of this workspace: without the form's token they are refused (403), not missing.
    assert {f"/{key}/decisions?as_of={AS_OF}", f"/{key}/metric/mrr/annotations?as_of={AS_OF}"} <= actions
    for url in sorted(actions):
        assert c.post(url, data={"csrf": "forged"}).status_code == 403, url


def test_static_files_and_api_docs_load_under_the_prefix(root: Root) -> None:
    c = root.client
    css = c.get("/acme/static/app.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert c.get("/acme/static/favicon.svg").status_code == 200
    docs = c.get("/acme/api/v1/docs")
    assert docs.status_code == 200
    assert 'href="/acme/static/app.css"' in docs.text and 'href="/acme/api/v1/openapi.json"' in docs.text
    assert c.get("/acme/api/v1/openapi.json").status_code == 200
    assert c.get("/static/app.css").status_code == 404  # nothing outside a workspace but the index and its style


def test_the_language_switch_stays_in_the_workspace(root: Root) -> None:
    c = root.client
    page = c.get(f"/acme/metric/mrr?as_of={AS_OF}").text
    assert f'href="/acme/lang/en?next=%2Fmetric%2Fmrr%3Fas_of%3D{AS_OF}"' in page
    r = c.get(f"/acme/lang/en?next=%2Fmetric%2Fmrr%3Fas_of%3D{AS_OF}", follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, f"/acme/metric/mrr?as_of={AS_OF}")
    assert "Path=/;" in r.headers["set-cookie"]  # the language is the browser's, for every workspace
    for escape in ("/../bravo/", "/%2e%2e/bravo/", "//evil.example/", "https://evil.example/", "/./x/../../bravo"):
        r = c.get("/acme/lang/fr", params={"next": escape}, follow_redirects=False)
        assert r.headers["location"] == "/acme/", escape


def test_a_form_sets_the_session_cookie_on_the_workspace_path_and_redirects_under_it(root: Root) -> None:
    c = root.client
    page = c.get(f"/acme/metric/mrr?as_of={AS_OF}")
    assert "Path=/acme;" in page.headers["set-cookie"]
    token = _csrf(page.text)
    r = c.post(f"/acme/metric/mrr/annotations?as_of={AS_OF}", follow_redirects=False,
               data={"csrf": token, "period": "2026-10", "text": "Root test launch"})
    assert (r.status_code, r.headers["location"]) == (303, f"/acme/metric/mrr?as_of={AS_OF}#annotations")
    assert "Root test launch" in c.get(f"/acme/metric/mrr?as_of={AS_OF}").text
    assert "Root test launch" not in c.get(f"/bravo/metric/mrr?as_of={AS_OF}").text


@pytest.mark.browser
def test_a_browser_stays_in_its_workspace(browser: Any, acme_dir: Path, tmp_path: Path) -> None:
    """Scripts, charts, boosted links and the language switch work under /bravo/, and never leave it."""
    errors: list[str] = []
    requests: list[str] = []
    with serving(create_root_app(make_root(acme_dir, tmp_path))) as url:
        context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="fr-FR")
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(url + "/")
        page.click("a[data-key=bravo]")
        page.wait_for_url("**/bravo/")
        page.goto(f"{url}/bravo/?as_of={AS_OF}")
        page.locator("[data-spec] svg").first.wait_for()  # htmx and vega loaded from /bravo/static
        page.click("article.tile[data-key='mrr'] .tile-name a")
        page.wait_for_url(f"**/bravo/metric/mrr?as_of={AS_OF}")
        page.click("nav.lang a[data-lang=en]")
        page.wait_for_url(f"**/bravo/metric/mrr?as_of={AS_OF}")
        page.wait_for_selector("h2:has-text('History')")
        page.click("nav.nav a[href^='/bravo/decisions']")
        page.wait_for_url(f"**/bravo/decisions?as_of={AS_OF}")
        assert {c["path"] for c in context.cookies() if c["name"] == "kpilot_session"} == {"/bravo"}
        context.close()
    assert errors == []
    paths = {urlparse(u).path for u in requests}
    assert {p for p in paths if p != "/" and not p.startswith(("/bravo/", "/-/static/"))} == set()
    assert any(p.startswith("/bravo/static/vendor/vega-embed") for p in paths)


# --- isolation ---------------------------------------------------------------------------------------------


def _sign_in(c: TestClient, key: str, password: str) -> str:
    """Sign in to workspace `key`; the session cookie's value."""
    page = c.get(f"/{key}/login?next=%2F")
    assert page.status_code == 200
    r = c.post(f"/{key}/login", data={"csrf": _csrf(page.text), "next": "/", "email": "anna@example.com",
                                      "password": password}, follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, f"/{key}/")
    cookie = r.headers["set-cookie"]
    assert f"Path=/{key};" in cookie
    return cookie.split(";")[0].split("=", 1)[1]


def test_a_session_of_one_workspace_is_refused_by_the_other(guarded: Root) -> None:
    c = guarded.client
    session = _sign_in(c, "acme", f"{PASSWORD} acme")
    assert c.get(f"/acme/?as_of={AS_OF}", follow_redirects=False).status_code == 200
    r = c.get("/bravo/", follow_redirects=False)  # the browser does not even send acme's cookie here
    assert (r.status_code, r.headers["location"]) == (303, "/bravo/login?next=%2F")
    # Sent anyway (a forged request), acme's session is unknown to bravo.
    c.cookies.clear()
    r = c.get("/bravo/", headers={"cookie": f"kpilot_session={session}"}, follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/bravo/login?next=%2F")
    own = c.get(f"/acme/?as_of={AS_OF}", headers={"cookie": f"kpilot_session={session}"}, follow_redirects=False)
    assert own.status_code == 200 and 'data-key="mrr"' in own.text
    # A browser sends the cookie of the longest path first: a stale one left at / must not shadow it.
    stale = f"kpilot_session={session}; kpilot_session=stale.cookie-of-another-server"
    assert c.get(f"/acme/?as_of={AS_OF}", headers={"cookie": stale}, follow_redirects=False).status_code == 200
    # acme's password does not open bravo, although the address is the same.
    page = c.get("/bravo/login")
    r = c.post("/bravo/login", data={"csrf": _csrf(page.text), "next": "/", "email": "anna@example.com",
                                     "password": f"{PASSWORD} acme"}, follow_redirects=False)
    assert r.status_code == 401
    c.cookies.clear()


def test_a_token_and_a_decision_of_one_workspace_are_unknown_to_the_other(guarded: Root) -> None:
    c = guarded.client
    c.cookies.clear()
    token_a, _ = guarded.accounts("acme").create_token(role="admin", name="root test")
    token_b, _ = guarded.accounts("bravo").create_token(role="admin", name="root test")
    as_a, as_b = ({"Authorization": f"Bearer {t}"} for t in (token_a, token_b))
    assert c.get("/acme/api/v1/metrics", headers=as_a).status_code == 200
    assert c.get("/bravo/api/v1/metrics", headers=as_a).status_code == 401
    assert c.get("/bravo/", headers=as_a, follow_redirects=False).status_code == 401

    made = c.post("/acme/api/v1/decisions", headers=as_a, json={
        "metric": "demos_booked", "period": "2026-W46", "action": "Root test: double the outreach",
        "owner": "marketing"})
    assert made.status_code == 201, made.text
    decision = made.json()["id"]
    r = c.patch(f"/bravo/api/v1/decisions/{decision}", headers=as_b, json={"status": "done"})
    assert r.status_code == 404, r.text
    assert [d["status"] for d in c.get("/acme/api/v1/decisions", headers=as_a).json() if d["id"] == decision] == \
        ["open"]
    assert "Root test: double the outreach" in c.get(f"/acme/decisions?as_of={AS_OF}", headers=as_a).text
    page = c.get(f"/bravo/decisions?as_of={AS_OF}", headers=as_b, follow_redirects=False)
    assert page.status_code == 200 and 'action="/bravo/decisions' in page.text
    assert "Root test: double the outreach" not in page.text
    assert all(d["id"] != decision for d in c.get("/bravo/api/v1/decisions", headers=as_b).json())


def test_every_workspace_lifespan_runs(acme_dir: Path, tmp_path: Path) -> None:
    app = create_root_app(make_root(acme_dir, tmp_path, ("acme", "bravo")))
    gates = [s.app.state.gate for s in app.state.workspaces]
    for gate in gates:
        gate.warm = True  # closing the gate (the end of its app's lifespan) turns warming off
    with TestClient(app, base_url="http://127.0.0.1") as c:
        assert c.get("/healthz").status_code == 200
        assert all(gate.warm for gate in gates)
    assert [gate.warm for gate in gates] == [False, False]


def test_the_host_check_guards_the_index(root: Root) -> None:
    r = root.client.get("/", headers={"host": "evil.example"})
    assert r.status_code == 400 and "--allowed-host" in r.text


def test_two_folders_with_one_key_are_refused(acme_dir: Path, tmp_path: Path) -> None:
    make_root(acme_dir, tmp_path / "root", ("acme",))
    shutil.copytree(tmp_path / "root" / "folder-acme", tmp_path / "root" / "again")
    with pytest.raises(KpilotError) as exc:
        workspace_folders(tmp_path / "root")
    text = render(exc.value.message, web_translator("en"))
    assert "have the key 'acme'" in text and "folder-acme" in text and "again" in text
    assert "ont la clé « acme »" in render(exc.value.message, web_translator("fr"))


# --- the refusal to listen off loopback -------------------------------------------------------------------


def test_serving_off_loopback_needs_users_and_a_kept_key(root: Root, guarded: Root,
                                                          monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.10")
    open_ws = [(s.folder, s.app) for s in root.app.state.workspaces]
    closed_ws = [(s.folder, s.app) for s in guarded.app.state.workspaces]
    assert exposure_problem("127.0.0.1", open_ws) is None
    assert exposure_problem("0.0.0.0", closed_ws) is None
    problem = exposure_problem("0.0.0.0", open_ws)
    assert problem is not None
    en, fr = render(problem, web_translator("en")), render(problem, web_translator("fr"))
    assert "has no user yet" in en and f"kpilot user create EMAIL -w {open_ws[0][0]} --role admin" in en
    assert "n'a encore aucun utilisateur" in fr and "kpilot user create EMAIL -w" in fr
    # No key can be kept (the configuration folder cannot be made) and none is given.
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.delenv("KPILOT_SECRET_KEY", raising=False)
    monkeypatch.setenv("KPILOT_CONFIG_DIR", str(blocker / "kpilot"))
    problem = exposure_problem("0.0.0.0", closed_ws)
    assert problem is not None
    assert "KPILOT_SECRET_KEY" in render(problem, web_translator("en"))
    assert "conservée" in render(problem, web_translator("fr"))
    monkeypatch.setenv("KPILOT_SECRET_KEY", "a-key-from-a-secret-manager")
    assert exposure_problem("0.0.0.0", closed_ws) is None


def test_kpilot_serve_root_refuses_a_public_address_without_users(acme_dir: Path, tmp_path: Path) -> None:
    from kpilot.cli import app as cli

    folder = make_root(acme_dir, tmp_path / "root", ("acme",))
    key = Fernet.generate_key().decode()
    runner = CliRunner(env={"KPILOT_SECRET_KEY": key})
    r = runner.invoke(cli, ["serve", "--root", str(folder), "--host", "0.0.0.0", "--port", "1"])
    assert r.exit_code == 1
    assert f"kpilot user create EMAIL -w {folder / 'folder-acme'} --role admin" in r.output
    assert "Traceback" not in r.output and key not in r.output
    r = runner.invoke(cli, ["serve", "-w", str(folder / "folder-acme"), "--host", "0.0.0.0", "--port", "1"])
    assert r.exit_code == 1 and "kpilot user create EMAIL -w" in r.output and key not in r.output
