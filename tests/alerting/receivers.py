"""Real local receivers for the channel tests, on 127.0.0.1 and free of pytest: an HTTP server standing in for
Slack, Teams or a webhook receiver (it records each request and answers as told), an SMTP server (aiosmtpd) that
collects envelopes, refuses with a chosen code or requires a password, and a valid PNG made from raw bytes."""

from __future__ import annotations

import random
import socket
import struct
import threading
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def png(width: int = 1, height: int = 1, *, noise: bool = False, seed: int = 7) -> bytes:
    """A valid RGB PNG: white, or random pixels (which do not compress, for a large image)."""
    rng = random.Random(seed)
    rows = b"".join(b"\x00" + (bytes(rng.randrange(256) for _ in range(width * 3)) if noise else b"\xff" * width * 3)
                    for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


def free_port() -> int:
    """A port free now: nothing listens on it (connecting is refused) until someone binds it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Answer:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    hang: float = 0.0  # seconds to wait before answering


class HttpReceiver:
    """A ThreadingHTTPServer in a thread that records every POST and answers with `answer` (settable)."""

    def __init__(self, status: int = 200, body: bytes = b"", port: int = 0) -> None:
        self.requests: list[Request] = []
        self.answer = Answer(status, body)
        self._release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                receiver.requests.append(Request("POST", self.path, dict(self.headers.items()),
                                                 self.rfile.read(length)))
                answer = receiver.answer
                if answer.hang:
                    receiver._release.wait(answer.hang)
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (the timeout tests): nothing to answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def respond(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
                hang: float = 0.0) -> None:
        self.answer = Answer(status, body, dict(headers or {}), hang)

    def start(self) -> HttpReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> HttpReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class Envelope:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes


class _Handler:
    def __init__(self, receiver: SmtpReceiver) -> None:
        self.receiver = receiver

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        refusal = self.receiver.refuse.get(address)
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.receiver.reply.startswith("250"):
            self.receiver.envelopes.append(Envelope(envelope.mail_from, list(envelope.rcpt_tos),
                                                    bytes(envelope.original_content or envelope.content)))
        return self.receiver.reply


class SmtpReceiver:
    """A real SMTP server (aiosmtpd) on 127.0.0.1: collects envelopes, or answers `reply` (e.g. "451 ..."), or
    requires the login `auth` = (user, password) without TLS; `refuse` maps an address to the answer refusing it."""

    def __init__(self, reply: str = "250 OK", auth: tuple[str, str] | None = None,
                 refuse: dict[str, str] | None = None) -> None:
        self.reply = reply
        self.refuse = dict(refuse or {})
        self.envelopes: list[Envelope] = []
        self.logins: list[tuple[str, bool]] = []
        self.port = free_port()
        options: dict[str, Any] = {}
        if auth is not None:
            options = {"auth_required": True, "auth_require_tls": False, "authenticator": self._authenticator(auth)}
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port, **options)

    def _authenticator(self, auth: tuple[str, str]) -> Any:
        def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
            ok = (isinstance(data, LoginPassword) and data.login == auth[0].encode()
                  and data.password == auth[1].encode())
            self.logins.append((data.login.decode() if isinstance(data, LoginPassword) else "?", ok))
            return AuthResult(success=ok, handled=False)  # not handled: the server answers 235 or 535
        return check

    def url(self, user: str | None = None, query: str = "") -> str:
        who = f"{user}@" if user else ""
        return f"smtp://{who}127.0.0.1:{self.port}" + (f"?{query}" if query else "")

    def __enter__(self) -> SmtpReceiver:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()
