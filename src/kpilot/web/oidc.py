"""Single sign-on through an OpenID Connect provider: /login/oidc and /login/oidc/callback.

The provider is configured from the server's environment only (never kpilot.yaml: no secret lands in a workspace's
files): `KPILOT_OIDC_ISSUER`, `KPILOT_OIDC_CLIENT_ID`, `KPILOT_OIDC_CLIENT_SECRET`, optionally `KPILOT_OIDC_NAME`
(the button's label) and `KPILOT_OIDC_NEW_USERS` (the role given to a verified address that is not a user yet; by
default such an address is refused).

The flow is the authorization code flow with PKCE (S256), a `state` and a `nonce`:

- /login/oidc keeps the state, nonce, PKCE verifier and the page to go back to on the server for 10 minutes, bound
  to this browser by an HttpOnly cookie (SameSite=Lax: the provider's redirect back is a navigation from another
  site), then sends the browser to the provider.
- /login/oidc/callback takes them back once (a replayed callback finds nothing), exchanges the code at the token
  endpoint (client_secret_basic, or client_secret_post when the provider only takes that), and checks the ID token:
  RS256 signature by a key of the provider's JWKS (fetched again once when the token names an unknown key), issuer,
  audience, expiry, nonce, and a verified e-mail address. That address must be a user of this workspace, not
  disabled; the browser then gets a new session exactly as a password sign-in gives one.

The session cookie is SameSite=Strict, and a browser does not send it on a redirect that started on another site:
the callback therefore answers a short page that moves on to the page asked for (a navigation from this site).
Every failure is a page in the reader's language saying what went wrong and how to fix it.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from joserfc import jwt
from joserfc.errors import BadSignatureError, ExpiredTokenError, InvalidClaimError, JoseError, MissingClaimError
from joserfc.jwk import KeySet

from kpilot.model import KpilotError
from kpilot.model.errors import Message, msg, render
from kpilot.service.accounts import AccountService
from kpilot.web import auth
from kpilot.web.settings import Forms

ISSUER_ENV = "KPILOT_OIDC_ISSUER"
CLIENT_ID_ENV = "KPILOT_OIDC_CLIENT_ID"
CLIENT_SECRET_ENV = "KPILOT_OIDC_CLIENT_SECRET"
NAME_ENV = "KPILOT_OIDC_NAME"
NEW_USERS_ENV = "KPILOT_OIDC_NEW_USERS"
NEW_USER_ROLES = ("viewer",)
FLOW_COOKIE = "kpilot_oidc"  # binds a started sign-in to the browser that started it
FLOW_SECONDS = 10 * 60
SCOPE = "openid email profile"
TIMEOUT = 10.0  # seconds, for each call to the provider
METADATA_SECONDS = 3600  # how long the discovery document is kept
LEEWAY = 60  # seconds of clock difference allowed with the provider
CALLBACK = "/login/oidc/callback"
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
log = logging.getLogger("kpilot.web.oidc")


class SsoFailure(Exception):
    """A sign-in through the provider that cannot go on: its status and what to tell the person."""

    def __init__(self, status: int, message: Message):
        super().__init__(str(message))
        self.status = status
        self.message = message


# --- configuration -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class OidcConfig:
    """The provider this server signs people in with, as the environment gives it."""

    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    name: str
    new_users: str | None


def configured(env: Mapping[str, str] | None = None) -> OidcConfig | None:
    """The provider's configuration; None when single sign-on is off (no issuer). Raises SsoFailure (500) when it
    is set but incomplete or wrong."""
    env = os.environ if env is None else env
    issuer = env.get(ISSUER_ENV, "").strip()
    if not issuer:
        return None
    parts = urlsplit(issuer)
    local = parts.scheme == "http" and (parts.hostname or "") in LOOPBACK
    if not (parts.scheme == "https" or local) or not parts.hostname or parts.query or parts.fragment:
        raise SsoFailure(500, msg("single sign-on is misconfigured: {var} must be the provider's https address (such "
                                  "as https://login.example.com/realms/acme), not '{value}'. Fix: an admin of the "
                                  "server corrects it and restarts kpilot.", var=ISSUER_ENV, value=issuer[:100]))
    missing = [var for var in (CLIENT_ID_ENV, CLIENT_SECRET_ENV) if not env.get(var, "").strip()]
    if missing:
        raise SsoFailure(500, msg("single sign-on is misconfigured: {vars} not set. Fix: an admin of the server sets "
                                  "the client id and secret the provider gave for kpilot, and restarts kpilot.",
                                  vars=", ".join(missing)))
    new_users = env.get(NEW_USERS_ENV, "").strip().lower() or None
    if new_users is not None and new_users not in NEW_USER_ROLES:
        raise SsoFailure(500, msg("single sign-on is misconfigured: {var} may only be '{roles}', not '{value}'. Fix: "
                                  "an admin of the server corrects it (or removes it to refuse unknown addresses) "
                                  "and restarts kpilot.", var=NEW_USERS_ENV, roles=", ".join(NEW_USER_ROLES),
                                  value=new_users[:40]))
    return OidcConfig(issuer=issuer.rstrip("/"), client_id=env[CLIENT_ID_ENV].strip(),
                      client_secret=env[CLIENT_SECRET_ENV].strip(),
                      name=env.get(NAME_ENV, "").strip() or "single sign-on", new_users=new_users)


def provider_name() -> str | None:
    """The provider's name for the sign-in page's button; None when single sign-on is off."""
    try:
        config = configured()
    except SsoFailure:  # the button leads to the page that says what to fix
        return os.environ.get(NAME_ENV, "").strip() or "single sign-on"
    return None if config is None else config.name


# --- the provider ------------------------------------------------------------------------------------


@dataclass
class Provider:
    """One provider's discovery document and keys, fetched when first needed and kept."""

    config: OidcConfig
    _metadata: dict[str, Any] | None = None
    _metadata_at: float = 0.0
    _keys: KeySet | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _get(self, url: str, what: Message) -> Any:
        try:
            response = httpx.get(url, timeout=TIMEOUT, headers={"Accept": "application/json"})
            response.raise_for_status()
            return response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise _unreachable(self.config, what, url, exc) from None

    def metadata(self) -> dict[str, Any]:
        """The discovery document ({issuer}/.well-known/openid-configuration), checked."""
        with self._lock:
            if self._metadata is not None and time.monotonic() - self._metadata_at < METADATA_SECONDS:
                return self._metadata
        url = self.config.issuer + "/.well-known/openid-configuration"
        doc = self._get(url, msg("its discovery document"))
        if not isinstance(doc, dict):
            raise _bad_provider(self.config, msg("its discovery document at {url} is not a JSON object", url=url))
        if str(doc.get("issuer", "")).rstrip("/") != self.config.issuer:
            raise _bad_provider(self.config, msg("its discovery document names the issuer '{found}', not '{issuer}' "
                                                 "({var})", found=str(doc.get("issuer", ""))[:100],
                                                 issuer=self.config.issuer, var=ISSUER_ENV))
        for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not _endpoint_ok(self.config, doc.get(key)):
                raise _bad_provider(self.config, msg("its discovery document has no valid '{key}'", key=key))
        methods = doc.get("code_challenge_methods_supported")
        if isinstance(methods, list) and "S256" not in methods:
            raise _bad_provider(self.config, msg("it does not take PKCE challenges of the S256 method"))
        with self._lock:
            self._metadata, self._metadata_at = doc, time.monotonic()
        return doc

    def keys(self, refresh: bool = False) -> KeySet:
        """The provider's signing keys (its JWKS), fetched again when `refresh`."""
        with self._lock:
            if self._keys is not None and not refresh:
                return self._keys
        url = str(self.metadata()["jwks_uri"])
        doc = self._get(url, msg("its signing keys"))
        try:
            keys = KeySet.import_key_set(doc)
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise _bad_provider(self.config, msg("its signing keys at {url} cannot be read ({reason})", url=url,
                                                 reason=str(exc)[:200])) from None
        with self._lock:
            self._keys = keys
        return keys


def _endpoint_ok(config: OidcConfig, value: object) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    local = config.issuer.startswith("http://") and parts.scheme == "http" and (parts.hostname or "") in LOOPBACK
    return bool(parts.hostname) and (parts.scheme == "https" or local)


def _unreachable(config: OidcConfig, what: Message, url: str, exc: Exception) -> SsoFailure:
    return SsoFailure(502, msg("the sign-in provider {name} did not answer as expected for {what} ({url}: {reason}). "
                               "Fix: try again in a moment; if it persists, an admin of the server checks that "
                               "{var} is right and that the provider is reachable from the server.",
                               name=config.name, what=what, url=url, reason=_reason(exc), var=ISSUER_ENV))


def _bad_provider(config: OidcConfig, problem: Message) -> SsoFailure:
    return SsoFailure(502, msg("the sign-in provider {name} cannot be used: {problem}. Fix: an admin of the server "
                               "checks {var} and the provider's settings.", name=config.name, problem=problem,
                               var=ISSUER_ENV))


def _reason(exc: Exception) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    if isinstance(exc, ValueError):
        return "not JSON"
    return type(exc).__name__ + (f": {exc}"[:160] if str(exc) else "")


# --- started sign-ins ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pending:
    """A sign-in sent to the provider and back: what it was sent with (kept by `AccountService.remember_sign_in`
    in the application database, so that any server process can end it, once)."""

    nonce: str
    verifier: str
    target: str
    redirect_uri: str


# --- the ID token ------------------------------------------------------------------------------------------


def verify_id_token(provider: Provider, id_token: str, nonce: str) -> dict[str, Any]:
    """The ID token's claims once its signature (RS256, a key of the provider) and claims are checked."""
    config = provider.config
    header = _header(id_token)
    if header.get("alg") != "RS256":
        raise _bad_token(config, msg("it is signed with '{alg}', not RS256", alg=str(header.get("alg"))[:20]))
    kid = header.get("kid")
    keys = provider.keys()
    if not _has_key(keys, kid):
        keys = provider.keys(refresh=True)  # the provider may have rotated its keys since they were fetched
        if not _has_key(keys, kid):
            raise _bad_token(config, msg("it is signed with a key the provider does not publish ({kid})",
                                         kid=str(kid)[:60]))
    try:
        token = jwt.decode(id_token, keys, algorithms=["RS256"])
    except BadSignatureError:
        raise _bad_token(config, msg("its signature does not match the provider's key")) from None
    except (JoseError, ValueError) as exc:
        raise _bad_token(config, msg("it cannot be read ({reason})", reason=str(exc)[:160])) from None
    claims = token.claims
    issuer = str(provider.metadata()["issuer"])
    registry = jwt.JWTClaimsRegistry(
        leeway=LEEWAY, iss={"essential": True, "value": issuer}, aud={"essential": True, "value": config.client_id},
        exp={"essential": True}, iat={"essential": True}, sub={"essential": True},
        nonce={"essential": True, "value": nonce})
    try:
        registry.validate(claims)
    except ExpiredTokenError:
        raise _bad_token(config, msg("it has expired (check that the server's clock is right)")) from None
    except (MissingClaimError, InvalidClaimError) as exc:
        claim = str(getattr(exc, "claim", "") or exc.description or exc)[:40]
        raise _bad_token(config, msg("its claim '{claim}' is missing or not the expected one", claim=claim)) from None
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != config.client_id:
        raise _bad_token(config, msg("its claim '{claim}' is missing or not the expected one", claim="azp"))
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email:
        raise SsoFailure(403, msg("the sign-in provider {name} did not give an e-mail address. Fix: an admin of the "
                                  "provider lets kpilot read the address (the 'email' scope).", name=config.name))
    # A boolean by the standard; some providers send the string "true".
    if claims.get("email_verified") not in (True, "true"):
        raise SsoFailure(403, msg("the sign-in provider {name} has not verified the address {email}. Fix: verify it "
                                  "at the provider (follow the link it sent), then sign in again.",
                                  name=config.name, email=email[:100]))
    return dict(claims)


def _header(id_token: str) -> dict[str, Any]:
    try:
        encoded = id_token.split(".")[0]
        header = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except (ValueError, IndexError):
        header = None
    if not isinstance(header, dict):
        raise SsoFailure(401, msg("the sign-in provider's ID token is not a JSON Web Token. Fix: sign in again; if it "
                                  "persists, an admin of the server checks the provider's settings."))
    return header


def _has_key(keys: KeySet, kid: object) -> bool:
    if kid is None:
        return len(keys.keys) == 1  # a provider with one key may leave it unnamed
    return any(k.kid == kid for k in keys.keys)


def _bad_token(config: OidcConfig, problem: Message) -> SsoFailure:
    return SsoFailure(401, msg("the ID token from the sign-in provider {name} is refused: {problem}. Fix: sign in "
                               "again; if it persists, an admin of the server checks {vars}.", name=config.name,
                               problem=problem, vars=f"{ISSUER_ENV}, {CLIENT_ID_ENV}"))


# --- the code exchange --------------------------------------------------------------------------------------


def exchange(provider: Provider, code: str, pending: Pending) -> str:
    """The ID token the provider gives for `code` (client_secret_basic, or _post when it takes only that)."""
    config = provider.config
    meta = provider.metadata()
    url = str(meta["token_endpoint"])
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": pending.redirect_uri,
            "code_verifier": pending.verifier, "client_id": config.client_id}
    methods = meta.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    basic: httpx.BasicAuth | None = None
    if "client_secret_basic" in methods or "client_secret_post" not in methods:
        # RFC 6749 2.3.1: the id and secret are form-encoded before they are joined.
        basic = httpx.BasicAuth(urlencode({"": config.client_id})[1:], urlencode({"": config.client_secret})[1:])
    else:
        form["client_secret"] = config.client_secret
    try:
        response = httpx.post(url, data=form, auth=basic, timeout=TIMEOUT, headers={"Accept": "application/json"})
        body = response.json() if response.content else {}
    except (httpx.HTTPError, ValueError) as exc:
        raise _unreachable(config, msg("the sign-in code"), url, exc) from None
    if not isinstance(body, dict):
        body = {}
    error = str(body.get("error", ""))[:60]
    if response.status_code >= 500 or (response.status_code >= 400 and not error):
        raise _unreachable(config, msg("the sign-in code"), url,
                           httpx.HTTPStatusError("", request=response.request, response=response))
    if error == "invalid_client" or response.status_code == 401:
        raise _bad_provider(config, msg("it refuses kpilot's client id or secret ({vars})",
                                        vars=f"{CLIENT_ID_ENV}, {CLIENT_SECRET_ENV}"))
    if error:
        raise SsoFailure(401, msg("the sign-in provider {name} refused the sign-in code ({error}). Fix: sign in again "
                                  "(a code is good once, for a short while).", name=config.name, error=error))
    id_token = body.get("id_token")
    if not isinstance(id_token, str) or not id_token:
        raise _bad_provider(config, msg("it answered the sign-in code without an ID token"))
    return id_token


# --- routes ------------------------------------------------------------------------------------------------


def redirect_uri(request: Request) -> str:
    """Where the provider sends the browser back: this server's address as the browser sees it (https behind a
    proxy that says X-Forwarded-Proto: https), its root path, then /login/oidc/callback."""
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    scheme = "https" if forwarded == "https" or request.url.scheme == "https" else request.url.scheme
    root = str(request.scope.get("root_path") or "").rstrip("/")
    return f"{scheme}://{request.url.netloc}{root}{CALLBACK}"


def register(app: FastAPI, forms: Forms, accounts: Callable[[], AccountService], key: bytes,
             environment: Callable[[], OidcConfig | None] = configured) -> None:
    """Mount /login/oidc and its callback on the app (they answer 404 while single sign-on is not configured)."""
    providers: dict[OidcConfig, Provider] = {}
    providers_lock = threading.Lock()

    def provider() -> Provider:
        config = environment()
        if config is None:
            raise SsoFailure(404, msg("single sign-on is not configured on this server. Fix: sign in with your e-mail "
                                      "address and password, or ask an admin of the server to set {var}.",
                                      var=ISSUER_ENV))
        with providers_lock:
            return providers.setdefault(config, Provider(config))

    def failed(request: Request, exc: SsoFailure) -> Response:
        log.warning("single sign-on refused (%s): %s", exc.status, exc)  # the server's side of the story
        page = forms.page_of(request)
        return forms.html(request, "sso_error.html", page, status=exc.status, message=render(exc.message, page.tr),
                          retry=auth.safe_next(request.query_params.get("next")) if exc.status != 404 else None)

    @app.get("/login/oidc")
    def start(request: Request) -> Response:
        """Send the browser to the provider, with a state, a nonce and a PKCE challenge kept for its return."""
        target = auth.safe_next(request.query_params.get("next"))
        if not accounts().has_users():
            return RedirectResponse(_root(request) + "/", status_code=303)
        try:
            idp = provider()
            endpoint = str(idp.metadata()["authorization_endpoint"])
        except SsoFailure as exc:
            return failed(request, exc)
        browser = request.cookies.get(FLOW_COOKIE, "")
        if not (40 <= len(browser) <= 64 and browser.replace("-", "").replace("_", "").isalnum()):
            browser = secrets.token_urlsafe(32)
        state, nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(48)
        back = redirect_uri(request)
        accounts().remember_sign_in(state, browser, nonce=nonce, verifier=verifier, target=target, redirect_uri=back,
                                    seconds=FLOW_SECONDS)
        query = urlencode({"response_type": "code", "client_id": idp.config.client_id, "redirect_uri": back,
                           "scope": SCOPE, "state": state, "nonce": nonce,
                           "code_challenge": create_s256_code_challenge(verifier), "code_challenge_method": "S256"})
        response = RedirectResponse(endpoint + ("&" if "?" in endpoint else "?") + query, status_code=303)
        response.set_cookie(FLOW_COOKIE, browser, max_age=FLOW_SECONDS, httponly=True, samesite="lax",
                            secure=back.startswith("https://"), path=_root(request) + "/login/oidc")
        return response

    @app.get(CALLBACK)
    def callback(request: Request) -> Response:
        """Back from the provider: check the state, exchange the code, check the ID token, sign the user in."""
        try:
            return signed_in(request)
        except SsoFailure as exc:
            return failed(request, exc)

    def signed_in(request: Request) -> Response:
        idp = provider()
        name = idp.config.name
        params = request.query_params
        found = accounts().take_sign_in(params.get("state", ""), request.cookies.get(FLOW_COOKIE, ""), FLOW_SECONDS)
        if found is None:
            raise SsoFailure(400, msg("this sign-in through {name} has expired, was already used, or was started in "
                                      "another browser. Fix: start again from the sign-in page (within 10 minutes, "
                                      "in the same browser).", name=name))
        if params.get("error"):
            raise SsoFailure(401, msg("the sign-in provider {name} did not sign you in ({error}: {description}). Fix: "
                                      "start again from the sign-in page; if it persists, ask an admin of the "
                                      "provider whether you may use kpilot.", name=name,
                                      error=params["error"][:60], description=params.get("error_description",
                                                                                         "")[:200] or "—"))
        pending = Pending(found["nonce"], found["verifier"], found["target"], found["redirect_uri"])
        code = params.get("code", "")
        if not code:
            raise SsoFailure(400, msg("the sign-in provider {name} came back without a sign-in code. Fix: start again "
                                      "from the sign-in page.", name=name))
        claims = verify_id_token(idp, exchange(idp, code, pending), pending.nonce)
        session_id = _start_session(accounts(), idp.config, str(claims["email"]), claims.get("name"))
        page = forms.page_of(request)
        response = forms.html(request, "sso_done.html", page, target=_root(request) + pending.target)
        auth.set_session_cookie(response, request, auth.sign(key, session_id))
        response.delete_cookie(FLOW_COOKIE, path=_root(request) + "/login/oidc")
        response.headers["Cache-Control"] = "no-store"
        return response


def _start_session(service: AccountService, config: OidcConfig, email: str, name: object) -> str:
    """A new session (its id) for the workspace's user with this verified address, created with the configured role
    when allowed and absent; SsoFailure when the address may not sign in."""
    if not service.has_users():
        raise SsoFailure(403, msg("nobody signs in to this workspace yet, so there is nothing to sign in to. Fix: "
                                  "open the board directly, or create the first admin with `kpilot user create "
                                  "EMAIL --role admin`."))
    user = service.store.user(service.workspace, email)
    if user is None and config.new_users is not None:
        try:
            user = service.create_user(email, role=config.new_users, name=name[:200] if isinstance(name, str) else None,
                                       by=f"single sign-on ({config.name})")
        except KpilotError as exc:  # not an address kpilot takes, or created meanwhile by another sign-in
            user = service.store.user(service.workspace, email)
            if user is None:
                raise SsoFailure(403, msg("{email} cannot become a user of this workspace: {reason}", email=email[:100],
                                          reason=exc.message)) from None
    if user is None:
        raise SsoFailure(403, msg("{email} is not a user of this workspace. Fix: ask an admin of this workspace to "
                                  "run `kpilot user create {email} --role viewer` (or another role), then sign in "
                                  "again.", email=email[:100]))
    if user.disabled:
        raise SsoFailure(403, msg("the account {email} is disabled in this workspace. Fix: ask an admin of this "
                                  "workspace to enable it again.", email=user.email))
    return service.start_session(user)


def _root(request: Request) -> str:
    return str(request.scope.get("root_path") or "")


__all__ = ["OidcConfig", "SsoFailure", "configured", "provider_name", "redirect_uri", "register", "verify_id_token"]
