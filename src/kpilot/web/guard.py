"""What every request goes through before a route sees it: the Host check, the body limit, security headers.

- **Host**: a page served on 127.0.0.1 can be reached from a hostile web page through DNS rebinding (a name
  that first points at the attacker's server, then at 127.0.0.1). Requests whose `Host` is not one the server
  answers to are refused, so a rebound name gets nothing. Loopback names by default; `kpilot serve
  --allowed-host NAME` or `KPILOT_ALLOWED_HOSTS` (comma-separated) add the names a deployment is reached by.
- **Body size**: bodies are read up to `KPILOT_MAX_BODY_BYTES` (default 10 MiB), never further (413).
- **Headers**: `X-Content-Type-Options: nosniff` and `Referrer-Policy: same-origin` on every answer, and a
  content security policy that allows nothing on answers that are not pages (JSON, files).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from starlette.requests import Request

from kpilot.model import KpilotError
from kpilot.model.errors import msg

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

LOOPBACK = ("127.0.0.1", "localhost", "::1")
HOSTS_ENV = "KPILOT_ALLOWED_HOSTS"
MAX_BODY_ENV = "KPILOT_MAX_BODY_BYTES"
DEFAULT_MAX_BODY = 10 << 20
API_CSP = "default-src 'none'; frame-ancestors 'none'"


class BodyTooLarge(KpilotError):
    """A request body past the limit (answered 413)."""

    status = 413


def max_body() -> int:
    """The largest request body read, in bytes: `KPILOT_MAX_BODY_BYTES`, else 10 MiB."""
    raw = os.environ.get(MAX_BODY_ENV, "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else DEFAULT_MAX_BODY


def _too_large(limit: int) -> BodyTooLarge:
    return BodyTooLarge(msg("the request body is larger than {limit} bytes. Fix: send less at once (a push takes "
                            "up to 10,000 values or rows), or raise {env} on the server.", limit=limit,
                            env=MAX_BODY_ENV))


async def read_body(request: Request) -> bytes:
    """The request's body, read up to the limit and no further (BodyTooLarge past it)."""
    limit = max_body()
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def allowed_hosts(extra: Iterable[str] = ()) -> frozenset[str]:
    """The host names the server answers to: loopback, `extra` and `KPILOT_ALLOWED_HOSTS`; "*" allows any."""
    names = [*LOOPBACK, *extra, *os.environ.get(HOSTS_ENV, "").split(",")]
    return frozenset(n.strip().lower().strip("[]") for n in names if n.strip())


def _host_name(raw: str) -> str:
    raw = raw.strip().lower()
    if raw.startswith("["):  # [::1]:8000
        return raw[1:raw.find("]")] if "]" in raw else raw
    return raw.rsplit(":", 1)[0] if raw.count(":") == 1 else raw


class Guard:
    """ASGI middleware: the Host check and the security headers (see the module's docstring)."""

    def __init__(self, app: App, hosts: frozenset[str]):
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = _host_name(headers.get("host", ""))
        if "*" not in self.hosts and host not in self.hosts:
            await _refuse_host(send, host)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                added = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin")]
                if b"content-security-policy" not in present:
                    added.append((b"content-security-policy", API_CSP.encode()))
                message["headers"] = [*message.get("headers", []), *[(k, v) for k, v in added if k not in present]]
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _refuse_host(send: Send, host: str) -> None:
    # Said in both languages: which language the workspace speaks is not known to a request refused this early.
    name = host or "NAME"
    text = (f"kpilot does not answer to the host name '{host}'. Fix: start kpilot serve with --allowed-host "
            f"{name} (or set {HOSTS_ENV}) if this server is meant to be reached by that name.\n"
            f"kpilot ne répond pas au nom d'hôte « {host} ». Correction : lancez kpilot serve avec --allowed-host "
            f"{name} (ou définissez {HOSTS_ENV}) si ce serveur doit être joint sous ce nom.\n")
    body = text.encode("utf-8")
    await send({"type": "http.response.start", "status": 400, "headers": [
        (b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
        (b"x-content-type-options", b"nosniff")]})
    await send({"type": "http.response.body", "body": body})
