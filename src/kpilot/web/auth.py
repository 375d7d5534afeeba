"""Who is asking, and whether they may: sign-in, sessions, tokens and every route's access rule.

Every request is matched to its route first, and the route's rule decides (deny by default):

- `PUBLIC` routes answer anyone: the sign-in pages, static files, the health route, the language switch.
- Reading (GET) needs a viewer, once the workspace has a user; before that everything is open (kpilot serve then
  listens on loopback only: see `kpilot.cli.web`).
- Changing needs a rule in `WRITES`: `path:key` (the KPI named in the path: its owners' editors), `route` (the route
  names the KPI from its body or the record it changes and calls `require_change`), `any` (no KPI: an editor of
  every KPI, or an admin), `admin`, or `signed-in` (one's own session). A changing route with no rule is refused to
  all but admins, so a new route cannot open a hole by being forgotten.
- `ADMIN` routes (users, tokens, the audit log) need an admin.

Who is asking: `Authorization: Bearer <token>` (a wrong or revoked token is refused, even on an open workspace),
else the browser's session cookie (`<id>.<signature>`, HttpOnly, SameSite=Strict, Secure behind HTTPS; a new id at
every sign-in), else nobody. Pages send nobody to /login; the API answers 401 with `WWW-Authenticate: Bearer`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Sequence
from html import escape
from typing import Any
from urllib.parse import quote, unquote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.routing import Match

from kpilot.model import KpilotError
from kpilot.model.errors import msg, render
from kpilot.service.accounts import LOCAL, AccountService, Principal
from kpilot.web.guard import App, Receive, Scope, Send
from kpilot.web.locale import COOKIE, choose_language, web_translator

SESSION_COOKIE = "kpilot_session"  # the browser's session: anonymous (form tokens) or signed in
API = "/api/"
PUBLIC = {"/login", "/login/oidc", "/login/oidc/callback", "/healthz", "/static", "/lang/{code}"}
ADMIN = {"/changes", "/users", "/api/v1/changes", "/api/v1/users", "/api/v1/tokens"}
READ_ANY_METHOD = {"/api/v1/{path:path}"}  # the API's "no such endpoint": answers 404 to every method
# Changing routes -> how the KPI they change is named (see the module's docstring).
WRITES: dict[tuple[str, str], str] = {
    ("POST", "/settings/metric/{key}"): "path:key",
    ("POST", "/metric/{key}/annotations"): "path:key",
    ("PUT", "/api/v1/metrics/{key}/settings"): "path:key",
    ("POST", "/decisions"): "route",
    ("POST", "/decisions/{decision_id}"): "route",
    ("POST", "/alerts/{alert_id}/ack"): "route",
    ("POST", "/alerts/{alert_id}/snooze"): "route",
    ("POST", "/alerts/outbox/{message_id}/retry"): "any",
    ("POST", "/api/v1/decisions"): "route",
    ("PATCH", "/api/v1/decisions/{decision_id}"): "route",
    ("POST", "/api/v1/annotations"): "route",
    ("POST", "/api/v1/push"): "route",
    ("POST", "/api/v1/alerts/{alert_id}/ack"): "route",
    ("POST", "/api/v1/alerts/{alert_id}/snooze"): "route",
    ("POST", "/api/v1/outbox/{message_id}/retry"): "any",
    ("POST", "/login"): "public",
    ("POST", "/logout"): "signed-in",
    ("POST", "/logout/everywhere"): "signed-in",
}
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
_FIX = re.compile(r"\s*(?:Fix|Correction)\s*:\s*")


class Forbidden(KpilotError):
    """A change the asking user or token may not make (answered 403)."""

    status = 403


def rule_of(method: str, path: str) -> str:
    """The access rule of a route (its path template): public, read, admin, or a WRITES rule; "none" when a
    changing route has no rule (admins only)."""
    if path in PUBLIC and (method in SAFE_METHODS or WRITES.get((method, path)) == "public"):
        return "public"
    if path in READ_ANY_METHOD:
        return "read"
    if path in ADMIN:
        return "admin"
    if method in SAFE_METHODS:
        return "read"
    return WRITES.get((method, path), "none")


NOBODY = Principal(kind="none", name=None, role="none")  # may do nothing


def principal(request: Request) -> Principal:
    """Who is asking, as the `Auth` middleware found (`LOCAL` on a workspace without users); `NOBODY` for a request
    it did not see, so that a route reached some other way is refused rather than open."""
    who = getattr(request.state, "principal", None)
    return who if isinstance(who, Principal) else NOBODY


def actor(request: Request) -> str | None:
    """The name the audit log and the records keep for the asker (None on a workspace without users)."""
    return principal(request).name


def require_change(request: Request, owners: Sequence[str]) -> Principal:
    """The asker, when they may change a KPI owned by `owners`; Forbidden otherwise."""
    who = principal(request)
    if not who.can_change(owners):
        raise Forbidden(_not_theirs(who, owners))
    return who


def _not_theirs(who: Principal, owners: Sequence[str]) -> Any:
    return msg("you may not change a KPI of {teams}: your role is {role}{scope}. Fix: ask an admin of this "
               "workspace, or an editor of that team.", teams=", ".join(owners) or "—", role=who.role,
               scope=f" ({', '.join(who.teams)})" if who.teams else "")


def _not_unscoped() -> Any:
    return msg("only an admin or an editor of every KPI may do this. Fix: ask an admin of this workspace.")


def require_unscoped(request: Request) -> Principal:
    """The asker, when they may change what belongs to no team (pushed tables, the outbox); Forbidden otherwise."""
    who = principal(request)
    if not who.unscoped_writer:
        raise Forbidden(_not_unscoped())
    return who


def may_change_kpi(request: Request, ws: Any) -> Callable[[str], bool]:
    """Whether the asker may change a KPI, by its key (for the pages: a form is shown to who may use it only)."""
    who = principal(request)

    def may(key: str) -> bool:
        return who.can_change(ws.metric(key).owners) if key in ws.metric_keys else who.can_write

    return may


def access_key(request: Request) -> str:
    """What a page's content depends on about the asker (role and teams), for the page cache."""
    who = principal(request)
    return f"{who.role}:{','.join(sorted(who.teams))}"


# --- the session cookie -------------------------------------------------------------------------------


def sign(key: bytes, session_id: str) -> str:
    """The cookie value of a signed-in session: the id and its HMAC-SHA256 under the server's key."""
    mac = hmac.new(key, b"session:" + session_id.encode(), hashlib.sha256).digest()[:18]
    return f"{session_id}.{base64.urlsafe_b64encode(mac).decode()}"


def unsign(key: bytes, value: str) -> str | None:
    """The session id of a signed cookie value; None when it is not one (an anonymous browser) or is forged."""
    session_id, dot, _ = value.rpartition(".")
    if not dot or not session_id or len(value) > 200:
        return None
    return session_id if hmac.compare_digest(sign(key, session_id), value) else None


def set_session_cookie(response: Any, request: Request, value: str) -> None:
    secure = request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "") == "https"
    response.set_cookie(SESSION_COOKIE, value, httponly=True, samesite="strict", secure=secure,
                        max_age=14 * 24 * 3600, path=request.scope.get("root_path") or "/")


def safe_next(target: str | None) -> str:
    """A local path to go back to after signing in (never another site, nor, with a dot segment, another workspace
    of the same server)."""
    target = (target or "/").strip()
    if not target.startswith("/") or target.startswith("//") or "\\" in target or any(ord(c) < 32 for c in target):
        return "/"
    if any(part in (".", "..") for part in unquote(target.partition("?")[0].partition("#")[0]).split("/")):
        return "/"
    return target


# --- the middleware ----------------------------------------------------------------------------------


class Auth:
    """ASGI middleware: match the route, find who is asking, apply the route's rule (see the module)."""

    def __init__(self, app: App, routes: Callable[[], Sequence[Any]], accounts: Callable[[], AccountService],
                 key: bytes, owners: Callable[[str], Sequence[str] | None]):
        self.app = app
        self.routes = routes
        self.accounts = accounts
        self.key = key
        self.owners = owners  # a KPI's owners (None: no such KPI)

    def _route(self, scope: Scope) -> tuple[str, dict[str, Any]]:
        for route in self.routes():
            match, child = route.matches(scope)
            if match == Match.FULL:
                return str(getattr(route, "path", "")), dict(child.get("path_params", {}))
        return "", {}

    def _who(self, scope: Scope) -> Principal | str | None:
        """The asker; None for nobody on a workspace with users; "bad-token" for a token refused."""
        request = Request(scope)
        accounts = self.accounts()
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        # Only a Bearer token is kpilot's: another scheme (a proxy's Basic authentication passed through) is not
        # a claim about who is asking here, and neither grants nor refuses anything.
        if scheme.lower() == "bearer":
            found = accounts.token_principal(token.strip())
            return found if found is not None else "bad-token"
        if not accounts.has_users():
            return LOCAL
        session_id = unsign(self.key, request.cookies.get(SESSION_COOKIE, ""))
        return accounts.session_principal(session_id) if session_id else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"].upper()
        path, params = self._route(scope)
        rule = rule_of(method, path) if path else "read"  # no route: the app answers 404
        who = await run_in_threadpool(self._who, scope)
        if who == "bad-token":
            await _answer(scope, send, 401, msg("the API token is wrong, revoked, or not of this workspace. Fix: send "
                                                "`Authorization: Bearer <token>` with a token made by `kpilot token "
                                                "create` for this workspace."))
            return
        assert not isinstance(who, str)
        scope.setdefault("state", {})["principal"] = who
        if rule == "public":
            await self.app(scope, receive, send)
            return
        if who is None:
            await _sign_in_first(scope, send)
            return
        refusal = self._refusal(rule, who, params)
        if refusal is not None:
            await _answer(scope, send, 403, refusal)
            return
        await self.app(scope, receive, send)

    def _refusal(self, rule: str, who: Principal, params: dict[str, Any]) -> Any:
        if rule in ("read", "signed-in"):  # signed-in: one's own session (the route ends it, if any)
            return None
        if rule in ("admin", "none"):
            return None if who.is_admin else msg("this page is for the workspace's admins. Fix: ask an admin.")
        if not who.can_write:
            return msg("your role ({role}) reads the board but changes nothing. Fix: ask an admin of this workspace "
                       "for the editor role.", role=who.role)
        if rule == "any":
            return None if who.unscoped_writer else _not_unscoped()
        if rule.startswith("path:"):
            owners = self.owners(str(params.get(rule[5:], "")))
            if owners is not None and not who.can_change(owners):
                return _not_theirs(who, owners)
        return None  # "route": the route checks the KPI it changes (require_change)


def _language(scope: Scope) -> str:
    request = Request(scope)
    accept = request.headers.get("accept-language", "").lower()
    cookie = request.cookies.get(COOKIE)
    return choose_language(cookie, "fr" if accept.startswith("fr") else "en")


async def _sign_in_first(scope: Scope, send: Send) -> None:
    path = scope.get("path", "/")
    root = scope.get("root_path", "")
    if path.startswith(root + API) or path.startswith(API):
        await _answer(scope, send, 401, msg("this workspace needs a sign-in. Fix: send `Authorization: Bearer "
                                            "<token>` with a token made by `kpilot token create`."))
        return
    query = scope.get("query_string", b"").decode("latin-1")
    here = path[len(root):] if root and path.startswith(root) else path
    target = f"{root}/login?next={quote(here + (f'?{query}' if query else ''), safe='')}"
    await send({"type": "http.response.start", "status": 303,
                "headers": [(b"location", target.encode("latin-1")), (b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})


async def _answer(scope: Scope, send: Send, status: int, message: Any) -> None:
    """A refusal: JSON for the API, a short page for pages, in the asker's language."""
    tr = web_translator(_language(scope))
    text = render(message, tr)
    path = scope.get("path", "/")
    headers: list[tuple[bytes, bytes]] = []
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="kpilot"'))
    if API in path:
        parts = _FIX.split(text, maxsplit=1)
        body = json.dumps({"error": {"message": parts[0].rstrip(), "fix": parts[1] if len(parts) > 1 else ""}}
                          ).encode()
        media = b"application/json"
    else:
        title = tr("Not allowed") if status == 403 else tr("Sign in")
        root = scope.get("root_path", "")
        body = (f'<!doctype html><html lang="{_language(scope)}"><head><meta charset="utf-8">'
                f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{escape(title)} · kpilot'
                f'</title><link rel="stylesheet" href="{root}/static/app.css"></head><body><main id="main" '
                f'class="wrap"><section class="panel error-panel"><h1>{escape(title)}</h1><p class="error">'
                f'{escape(text)}</p><p><a href="{root}/">← {escape(tr("Board"))}</a></p></section></main></body>'
                f'</html>').encode()
        media = b"text/html; charset=utf-8"
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", media), (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})

__all__ = ["ADMIN", "PUBLIC", "SESSION_COOKIE", "WRITES", "Auth", "Forbidden", "access_key", "actor", "principal",
           "require_change", "require_unscoped", "rule_of", "safe_next", "set_session_cookie", "sign", "unsign"]
