"""A small but real OpenID Connect provider on 127.0.0.1, for the single sign-on tests.

It serves a discovery document, /authorize (approves the configured user at once and sends the browser back with a
code and the state), /token (checks the client's secret, the code, the redirect URI and the PKCE verifier, then
gives an RS256-signed ID token) and /jwks. `Behaviour` makes it misbehave the ways a provider, or someone between
it and kpilot, can: another nonce or audience, an expired token, an unverified address, a forged signature...
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey


def rsa_key(kid: str) -> RSAKey:
    """A new 2048-bit RSA key (made by `cryptography`) as a JWK named `kid`."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return RSAKey.import_key(pem, parameters={"kid": kid, "use": "sig", "alg": "RS256"})


@dataclass
class Behaviour:
    """How the provider answers; the defaults are a provider that does everything right."""

    email: str = "anna@example.com"
    email_verified: object = True
    name: str = "Anna Martin"
    nonce: str | None = None  # another nonce than the one asked for
    audience: str | None = None  # another audience than the client
    lifetime: int = 300  # seconds; negative: issued already expired
    forged: bool = False  # signed by a key the provider does not publish, under its published key's name
    unknown_kid: bool = False  # signed by a key the provider does not publish, under a name it does not know
    alg: str = "RS256"
    auth_methods: tuple[str, ...] = ("client_secret_basic", "client_secret_post")
    down: bool = False  # every endpoint answers 503
    consent_page: bool = False  # /authorize answers a page with an "Approve" link, as real providers do


@dataclass
class Provider:
    """The provider's state: its client, its key, the codes it gave, what it was asked."""

    client_id: str = "kpilot-test"
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    redirect_uri: str = "http://127.0.0.1/login/oidc/callback"
    behaviour: Behaviour = field(default_factory=Behaviour)
    key: RSAKey = field(default_factory=lambda: rsa_key("key-1"))
    issuer: str = ""
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    token_requests: list[dict[str, Any]] = field(default_factory=list)
    jwks_fetches: int = 0

    def rotate(self, kid: str) -> None:
        """Sign with a new key from now on, and publish only it."""
        self.key = rsa_key(kid)

    def discovery(self) -> dict[str, Any]:
        return {"issuer": self.issuer, "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token", "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"], "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"], "scopes_supported": ["openid", "email", "profile"],
                "token_endpoint_auth_methods_supported": list(self.behaviour.auth_methods),
                "code_challenge_methods_supported": ["S256"]}

    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        """Approve the configured user: back to the client with a code, or a 400 saying what is wrong."""
        self.authorize_requests.append(query)
        checks = {"response_type": query.get("response_type") == "code",
                  "client_id": query.get("client_id") == self.client_id,
                  "redirect_uri": query.get("redirect_uri") == self.redirect_uri,
                  "scope": "openid" in query.get("scope", "").split(),
                  "code_challenge_method": query.get("code_challenge_method") == "S256",
                  "code_challenge": len(query.get("code_challenge", "")) == 43,
                  "state": bool(query.get("state")), "nonce": bool(query.get("nonce"))}
        wrong = [name for name, ok in checks.items() if not ok]
        if wrong:
            return 400, {}, {"error": "invalid_request", "wrong": wrong}
        code = secrets.token_urlsafe(24)
        self.codes[code] = {"challenge": query["code_challenge"], "nonce": query["nonce"],
                            "redirect_uri": query["redirect_uri"]}
        back = f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query['state']})}"
        if self.behaviour.consent_page:  # the way back then starts on this site, from the person's click
            return 200, {"Content-Type": "text/html"}, f'<a id="approve" href="{escape(back)}">Approve</a>'
        return 302, {"Location": back}, None

    def token(self, form: dict[str, str], authorization: str) -> tuple[int, Any]:
        """An ID token for a good code, verifier and client secret; an OAuth error otherwise."""
        client_id, secret, method = form.get("client_id", ""), form.get("client_secret"), "client_secret_post"
        if authorization.lower().startswith("basic "):
            decoded = base64.b64decode(authorization[6:]).decode()
            user, _, password = decoded.partition(":")
            client_id, secret, method = unquote(user), unquote(password), "client_secret_basic"
        self.token_requests.append({"method": method, **form})
        if method not in self.behaviour.auth_methods or client_id != self.client_id or secret != self.client_secret:
            return 401, {"error": "invalid_client"}
        grant = self.codes.pop(form.get("code", ""), None)  # a code is good once
        if form.get("grant_type") != "authorization_code" or grant is None:
            return 400, {"error": "invalid_grant"}
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return 400, {"error": "invalid_grant", "error_description": "redirect_uri"}
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if not 43 <= len(verifier) <= 128 or challenge != grant["challenge"]:
            return 400, {"error": "invalid_grant", "error_description": "code_verifier"}
        return 200, {"access_token": secrets.token_urlsafe(24), "token_type": "Bearer", "expires_in": 300,
                     "id_token": self.id_token(grant["nonce"])}

    def id_token(self, nonce: str) -> str:
        b = self.behaviour
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": "user-" + hashlib.sha256(b.email.encode()).hexdigest()[:12],
                  "aud": b.audience or self.client_id, "email": b.email, "email_verified": b.email_verified,
                  "name": b.name, "nonce": b.nonce or nonce, "iat": now - 5, "exp": now + b.lifetime}
        if b.lifetime < 0:
            claims["iat"] = now + b.lifetime - 300
        key = rsa_key(self.key.kid or "") if b.forged else rsa_key("key-unknown") if b.unknown_kid else self.key
        return jwt.encode({"alg": b.alg, "kid": key.kid}, claims, key, algorithms=[b.alg])

    def jwks(self) -> dict[str, Any]:
        self.jwks_fetches += 1
        return dict(KeySet([self.key]).as_dict(private=False))


class _Handler(BaseHTTPRequestHandler):
    provider: Provider

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else body.encode() if isinstance(body, str) else json.dumps(body).encode()
        headers = {"Content-Type": "application/json", **(headers or {})}
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        p = self.provider
        url = urlsplit(self.path)
        if p.behaviour.down:
            self._send(503, {"error": "temporarily_unavailable"})
        elif url.path == "/.well-known/openid-configuration":
            self._send(200, p.discovery())
        elif url.path == "/jwks":
            self._send(200, p.jwks())
        elif url.path == "/authorize":
            status, headers, body = p.authorize({k: v[0] for k, v in parse_qs(url.query).items()})
            self._send(status, body, headers)
        else:
            self._send(404, {"error": "not_found"})

    def do_POST(self) -> None:
        p = self.provider
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        if p.behaviour.down:
            self._send(503, {"error": "temporarily_unavailable"})
        elif urlsplit(self.path).path == "/token":
            status, body = p.token(form, self.headers.get("Authorization", ""))
            self._send(status, body, {"Cache-Control": "no-store"})
        else:
            self._send(404, {"error": "not_found"})


@contextmanager
def running(provider: Provider, host: str = "127.0.0.1") -> Iterator[Provider]:
    """The provider served on `host` and a free port while the block runs; its issuer is set."""
    handler = type("Handler", (_Handler,), {"provider": provider})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    provider.issuer = f"http://{host}:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
