"""Single sign-on through OpenID Connect, against a real provider on 127.0.0.1 (tests/web/oidc_provider.py).

The TestClient is the browser: redirects are not followed, each hop is driven here (kpilot's answers through the
client, the provider's over HTTP), so every step can be checked and tampered with.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from kpilot.web import create_app
from kpilot.web.locale import COOKIE
from tests.web.conftest import serving
from tests.web.oidc_provider import Behaviour, Provider, running

PASSWORD = "correct horse battery"


@pytest.fixture
def provider() -> Iterator[Provider]:
    with running(Provider()) as p:
        yield p


@pytest.fixture
def sso(provider: Provider, monkeypatch: pytest.MonkeyPatch) -> Provider:
    """The provider configured for kpilot through the environment."""
    monkeypatch.setenv("KPILOT_OIDC_ISSUER", provider.issuer)
    monkeypatch.setenv("KPILOT_OIDC_CLIENT_ID", provider.client_id)
    monkeypatch.setenv("KPILOT_OIDC_CLIENT_SECRET", provider.client_secret)
    monkeypatch.setenv("KPILOT_OIDC_NAME", "Acme ID")
    monkeypatch.delenv("KPILOT_OIDC_NEW_USERS", raising=False)
    return provider


@pytest.fixture
def client(acme_dir: Path, tmp_path: Path) -> Iterator[TestClient]:
    """A browser on acme with its users: an admin with a password, Anna a viewer who signs in through SSO only."""
    app = create_app(acme_dir, state_dir=tmp_path / "state")
    accounts = app.state.accounts()
    accounts.create_user("admin@example.com", role="admin", password=PASSWORD)
    accounts.create_user("anna@example.com", role="viewer")
    with TestClient(app, base_url="http://127.0.0.1") as c:
        c.cookies.set(COOKIE, "en")
        yield c


def _to_provider(client: TestClient, next_page: str = "/account") -> str:
    """Start at /login/oidc; the provider's authorization URL it sends the browser to."""
    started = client.get("/login/oidc", params={"next": next_page}, follow_redirects=False)
    assert started.status_code == 303, started.text
    return str(started.headers["location"])


def _back_from_provider(authorize_url: str) -> str:
    """The provider approves; the callback path and query it sends the browser back to."""
    approved = httpx.get(authorize_url, follow_redirects=False)
    assert approved.status_code == 302, approved.text
    back = urlsplit(approved.headers["location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == "http://127.0.0.1/login/oidc/callback"
    return f"{back.path}?{back.query}"


def _sign_in(client: TestClient, next_page: str = "/account") -> httpx.Response:
    done: httpx.Response = client.get(_back_from_provider(_to_provider(client, next_page)), follow_redirects=False)
    return done


def _error(response: httpx.Response) -> str:
    found = re.search(r'data-role="sso-error">(.*?)</p>', response.text, re.DOTALL)
    assert found, response.text[:500]
    return unescape(found.group(1))


def test_the_sign_in_page_offers_the_provider(client: TestClient, sso: Provider) -> None:
    page = client.get("/login")
    assert page.status_code == 200
    assert "Sign in with Acme ID" in page.text
    assert 'href="/login/oidc?next=/"' in page.text


def test_the_default_button_is_said_in_the_page_language(client: TestClient, sso: Provider,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KPILOT_OIDC_NAME", raising=False)
    client.cookies.set("kpilot_lang", "fr")
    assert "Se connecter avec l&#39;authentification unique" in client.get("/login").text
    client.cookies.set("kpilot_lang", "en")
    assert "Sign in with single sign-on" in client.get("/login").text


def test_without_configuration_there_is_no_button_and_no_flow(client: TestClient,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KPILOT_OIDC_ISSUER", raising=False)
    assert "Sign in with" not in client.get("/login").text
    refused = client.get("/login/oidc", follow_redirects=False)
    assert refused.status_code == 404
    assert "single sign-on is not configured on this server" in _error(refused)


def test_the_authorization_request_carries_state_nonce_and_pkce(client: TestClient, sso: Provider) -> None:
    url = urlsplit(_to_provider(client))
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{sso.issuer}/authorize"
    assert query["response_type"] == "code" and query["client_id"] == sso.client_id
    assert query["scope"] == "openid email profile"
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert len(query["state"]) >= 43 and len(query["nonce"]) >= 43 and query["state"] != query["nonce"]
    assert query["redirect_uri"] == "http://127.0.0.1/login/oidc/callback"
    flow = client.cookies.get("kpilot_oidc")
    assert flow and query["state"] != flow and query["nonce"] != flow  # the cookie binds, it does not reveal


def test_a_user_signs_in_with_the_role_they_have(client: TestClient, sso: Provider) -> None:
    done = _sign_in(client, "/account")
    assert done.status_code == 200, done.text
    assert '<meta http-equiv="refresh" content="0;url=/account">' in done.text
    cookie = done.headers["set-cookie"]
    assert "kpilot_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    account = client.get("/account")
    assert account.status_code == 200
    assert "Signed in as anna@example.com." in account.text
    assert "Your role: viewer" in account.text
    assert sso.token_requests[0]["method"] == "client_secret_basic"
    assert "client_secret" not in sso.token_requests[0]  # not both ways at once
    # A viewer reads, but changes nothing.
    refused = client.post("/settings/metric/mrr", data={"reset": "1"}, follow_redirects=False)
    assert refused.status_code == 403
    assert "your role (viewer) reads the board but changes nothing" in refused.text


def test_the_session_is_new_at_each_sign_in(client: TestClient, sso: Provider) -> None:
    _sign_in(client)
    first = client.cookies.get("kpilot_session")
    _sign_in(client)
    second = client.cookies.get("kpilot_session")
    assert first and second and first != second


def test_the_next_page_stays_on_this_site(client: TestClient, sso: Provider) -> None:
    done = _sign_in(client, "https://evil.example/steal")
    assert done.status_code == 200
    assert 'content="0;url=/"' in done.text


def test_client_secret_post_when_the_provider_takes_only_that(client: TestClient, sso: Provider) -> None:
    sso.behaviour.auth_methods = ("client_secret_post",)
    assert _sign_in(client).status_code == 200
    assert sso.token_requests[0]["method"] == "client_secret_post"
    assert client.get("/account").status_code == 200


def test_an_unknown_address_is_refused_with_what_to_do(client: TestClient, sso: Provider) -> None:
    sso.behaviour.email = "bob@example.com"
    refused = _sign_in(client)
    assert refused.status_code == 403
    assert _error(refused) == ("bob@example.com is not a user of this workspace. Fix: ask an admin of this workspace "
                               "to run `kpilot user create bob@example.com --role viewer` (or another role), then "
                               "sign in again.")
    assert "kpilot_session" not in refused.headers.get("set-cookie", "")
    assert client.get("/account", follow_redirects=False).status_code == 303  # still nobody: to /login


def test_an_unknown_address_becomes_a_viewer_when_allowed(client: TestClient, sso: Provider,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KPILOT_OIDC_NEW_USERS", "viewer")
    sso.behaviour.email = "Bob@Example.com"
    assert _sign_in(client).status_code == 200
    account = client.get("/account")
    assert "Signed in as Bob@Example.com." in account.text and "Your role: viewer" in account.text
    accounts = client.app.state.accounts()  # type: ignore[attr-defined]
    bob = accounts.store.user(accounts.workspace, "bob@example.com")
    assert bob.role == "viewer" and bob.name == "Anna Martin" and not bob.has_password
    assert [c.actor for c in accounts.store.changes(accounts.workspace, kind="user")
            if c.subject == "Bob@Example.com"] == ["single sign-on (Acme ID)"]


def test_a_disabled_user_is_refused(client: TestClient, sso: Provider) -> None:
    accounts = client.app.state.accounts()  # type: ignore[attr-defined]
    accounts.store.update_user(accounts.workspace, "anna@example.com", disabled=True)
    refused = _sign_in(client)
    assert refused.status_code == 403
    assert "the account anna@example.com is disabled" in _error(refused)


def test_a_wrong_state_is_refused(client: TestClient, sso: Provider) -> None:
    back = _back_from_provider(_to_provider(client))
    forged = re.sub(r"state=[^&]+", "state=not-the-state", back)
    refused = client.get(forged, follow_redirects=False)
    assert refused.status_code == 400
    assert "has expired, was already used, or was started in another browser" in _error(refused)
    assert sso.token_requests == []  # the code was never spent


def test_a_callback_is_good_once(client: TestClient, sso: Provider) -> None:
    back = _back_from_provider(_to_provider(client))
    assert client.get(back, follow_redirects=False).status_code == 200
    replayed = client.get(back, follow_redirects=False)
    assert replayed.status_code == 400
    assert "was already used" in _error(replayed)
    assert len(sso.token_requests) == 1


def test_a_callback_in_another_browser_is_refused(client: TestClient, sso: Provider) -> None:
    back = _back_from_provider(_to_provider(client))
    with TestClient(client.app, base_url="http://127.0.0.1", cookies={COOKIE: "en"}) as other:
        refused = other.get(back, follow_redirects=False)
    assert refused.status_code == 400
    assert "started in another browser" in _error(refused)
    assert client.get(back, follow_redirects=False).status_code == 200  # the stranger did not spoil it


def test_a_sign_in_started_on_one_server_process_ends_on_another(acme_dir: Path, tmp_path: Path,
                                                                   sso: Provider) -> None:
    # Two server processes behind a load balancer share the application database (here: two apps on one state
    # folder), or the server restarts between the two hops: the started sign-in is kept in that database, not in
    # one process's memory, and still ends once only.
    first = create_app(acme_dir, state_dir=tmp_path / "state")
    first.state.accounts().create_user("anna@example.com", role="viewer")
    second = create_app(acme_dir, state_dir=tmp_path / "state")
    with TestClient(first, base_url="http://127.0.0.1", cookies={COOKIE: "en"}) as one:
        back = _back_from_provider(_to_provider(one))
        flow_cookie = one.cookies.get("kpilot_oidc")
    with TestClient(second, base_url="http://127.0.0.1", cookies={COOKIE: "en", "kpilot_oidc": flow_cookie}) as two:
        done = two.get(back, follow_redirects=False)
        assert done.status_code == 200, done.text
        assert two.get("/account").status_code == 200  # signed in
        assert two.get(back, follow_redirects=False).status_code == 400  # and good once, whichever process


@pytest.mark.parametrize(("behaviour", "status", "words"), [
    (Behaviour(nonce="another-nonce"), 401, "its claim 'nonce' is missing or not the expected one"),
    (Behaviour(audience="another-client"), 401, "its claim 'aud' is missing or not the expected one"),
    (Behaviour(lifetime=-600), 401, "it has expired"),
    (Behaviour(forged=True), 401, "its signature does not match the provider's key"),
    (Behaviour(email_verified=False), 403, "has not verified the address anna@example.com"),
], ids=["nonce", "audience", "expired", "signature", "unverified"])
def test_a_bad_id_token_is_refused(client: TestClient, sso: Provider, behaviour: Behaviour, status: int,
                                   words: str) -> None:
    sso.behaviour = behaviour
    refused = _sign_in(client)
    assert refused.status_code == status
    assert words in _error(refused)
    assert "kpilot_session" not in refused.headers.get("set-cookie", "")
    assert client.get("/account", follow_redirects=False).status_code == 303


def test_a_rotated_key_is_fetched_again_once(client: TestClient, sso: Provider) -> None:
    assert _sign_in(client).status_code == 200
    assert sso.jwks_fetches == 1
    sso.rotate("key-2")
    assert _sign_in(client).status_code == 200
    assert sso.jwks_fetches == 2
    assert _sign_in(client).status_code == 200
    assert sso.jwks_fetches == 2  # kept


def test_a_key_the_provider_does_not_publish_is_refused_after_one_more_look(client: TestClient,
                                                                            sso: Provider) -> None:
    sso.behaviour.unknown_kid = True
    refused = _sign_in(client)
    assert refused.status_code == 401
    assert "it is signed with a key the provider does not publish (key-unknown)" in _error(refused)
    assert sso.jwks_fetches == 2


def test_on_a_workspace_without_users_there_is_nothing_to_sign_in_to(acme_dir: Path, tmp_path: Path,
                                                                     sso: Provider) -> None:
    with TestClient(create_app(acme_dir, state_dir=tmp_path / "state"), base_url="http://127.0.0.1") as c:
        started = c.get("/login/oidc", follow_redirects=False)
    assert started.status_code == 303 and started.headers["location"] == "/"
    assert sso.authorize_requests == []


def test_a_provider_that_is_down_is_a_502_page(client: TestClient, sso: Provider) -> None:
    sso.behaviour.down = True
    refused = client.get("/login/oidc", follow_redirects=False)
    assert refused.status_code == 502
    assert "the sign-in provider Acme ID did not answer as expected for its discovery document" in _error(refused)
    assert "HTTP 503" in _error(refused)


def test_a_provider_that_is_gone_is_a_502_page(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    with running(Provider()) as gone:
        pass  # stopped: nothing listens on its port any more
    monkeypatch.setenv("KPILOT_OIDC_ISSUER", gone.issuer)
    monkeypatch.setenv("KPILOT_OIDC_CLIENT_ID", gone.client_id)
    monkeypatch.setenv("KPILOT_OIDC_CLIENT_SECRET", gone.client_secret)
    refused = client.get("/login/oidc", follow_redirects=False)
    assert refused.status_code == 502
    assert "ConnectError" in _error(refused)


def test_a_provider_down_at_the_token_endpoint_is_a_502_page(client: TestClient, sso: Provider) -> None:
    back = _back_from_provider(_to_provider(client))
    sso.behaviour.down = True
    refused = client.get(back, follow_redirects=False)
    assert refused.status_code == 502
    assert "did not answer as expected for the sign-in code" in _error(refused)


def test_a_wrong_client_secret_is_a_502_page(client: TestClient, sso: Provider,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KPILOT_OIDC_CLIENT_SECRET", "not the secret")
    refused = _sign_in(client)
    assert refused.status_code == 502
    assert "it refuses kpilot's client id or secret" in _error(refused)


def test_a_refusal_at_the_provider_is_said(client: TestClient, sso: Provider) -> None:
    state = parse_qs(urlsplit(_to_provider(client)).query)["state"][0]
    refused = client.get("/login/oidc/callback", params={"error": "access_denied", "state": state,
                                                         "error_description": "not in the kpilot group"},
                         follow_redirects=False)
    assert refused.status_code == 401
    assert "did not sign you in (access_denied: not in the kpilot group)" in _error(refused)


def test_failures_are_pages_in_french(client: TestClient, sso: Provider) -> None:
    client.cookies.set(COOKIE, "fr")
    sso.behaviour.email = "bob@example.com"
    refused = _sign_in(client)
    assert refused.status_code == 403
    assert '<html lang="fr">' in refused.text
    assert _error(refused).startswith("bob@example.com n'est pas un utilisateur de cet espace de travail.")


def test_a_misconfigured_server_says_what_to_set(client: TestClient, sso: Provider,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KPILOT_OIDC_CLIENT_SECRET")
    refused = client.get("/login/oidc", follow_redirects=False)
    assert refused.status_code == 500
    assert "KPILOT_OIDC_CLIENT_SECRET not set" in _error(refused)
    monkeypatch.setenv("KPILOT_OIDC_CLIENT_SECRET", "x")
    monkeypatch.setenv("KPILOT_OIDC_ISSUER", "http://login.example.com")
    refused = client.get("/login/oidc", follow_redirects=False)
    assert refused.status_code == 500
    assert "KPILOT_OIDC_ISSUER must be the provider's https address" in _error(refused)


def test_behind_a_proxy_the_redirect_uri_is_https(client: TestClient, sso: Provider) -> None:
    started = client.get("/login/oidc", headers={"X-Forwarded-Proto": "https"}, follow_redirects=False)
    query = parse_qs(urlsplit(started.headers["location"]).query)
    assert query["redirect_uri"] == ["https://127.0.0.1/login/oidc/callback"]
    assert "Secure" in started.headers["set-cookie"]


@pytest.mark.browser
def test_signing_in_in_a_real_browser(browser: Any, acme_dir: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Chromium, kpilot on 127.0.0.1 and the provider on localhost (another site, as a real provider is), the way
    back started by a click at the provider: the session cookie (SameSite=Strict, which a browser leaves out of a
    redirect that started on another site) is there on the page the callback moves on to."""
    app = create_app(acme_dir, state_dir=tmp_path / "state")
    app.state.accounts().create_user("anna@example.com", role="viewer")
    with serving(app) as url, running(Provider(redirect_uri=f"{url}/login/oidc/callback",
                                               behaviour=Behaviour(consent_page=True)), host="localhost") as idp:
        monkeypatch.setenv("KPILOT_OIDC_ISSUER", idp.issuer)
        monkeypatch.setenv("KPILOT_OIDC_CLIENT_ID", idp.client_id)
        monkeypatch.setenv("KPILOT_OIDC_CLIENT_SECRET", idp.client_secret)
        monkeypatch.setenv("KPILOT_OIDC_NAME", "Acme ID")
        context = browser.new_context(locale="en-US")
        try:
            page = context.new_page()
            page.goto(f"{url}/account")
            assert page.url == f"{url}/login?next=%2Faccount"
            page.click('a[href^="/login/oidc"]')
            page.click("#approve")  # at the provider: the way back starts on another site
            page.wait_for_url(f"{url}/account", timeout=15_000)
            assert "anna@example.com" in page.inner_text('[data-role="who"]')
        finally:
            context.close()
