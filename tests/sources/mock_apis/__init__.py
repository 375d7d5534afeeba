"""Local HTTP servers (127.0.0.1, a free port, a thread) that answer like the SaaS APIs kpilot reads.

Each API module subclasses `MockApi` and implements `handle(method, path, query, body)`. Every server
can be told to fail: `fail(status, times, headers, body)` queues error answers served before the real
ones (429 with Retry-After, 500...), `token` is the only token accepted (401 otherwise, in the API's own
error format), and `delay` makes every answer slow (for timeouts). `requests` records what was asked.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class MockApi:
    token = "good-token"

    def __init__(self) -> None:
        self.failures: list[Answer] = []
        self.delay = 0.0
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def _serve(self, method: str) -> None:
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                form = "form-urlencoded" in (self.headers.get("Content-Type") or "")
                # An OAuth token request (GA4's service account) is a form; every other body is JSON.
                body = ({k: v[-1] for k, v in parse_qs(raw.decode()).items()} if form else json.loads(raw)) if raw \
                    else None
                req = Request(method, parts.path, query, body, {k.lower(): v for k, v in self.headers.items()})
                answer = api.answer(req)
                if api.delay:
                    time.sleep(api.delay)
                data = json.dumps(answer.body).encode()
                try:
                    self.send_response(answer.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in answer.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> MockApi:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail(self, status: int, times: int = 1, headers: dict[str, str] | None = None, body: Any = None) -> None:
        with self.lock:
            self.failures.extend(Answer(status, body if body is not None else {"message": "mock failure"},
                                        headers or {}) for _ in range(times))

    def answer(self, req: Request) -> Answer:
        with self.lock:
            self.requests.append(req)
            if self.failures:
                return self.failures.pop(0)
        if not self.authorized(req):
            return self.unauthorized()
        return self.handle(req)

    # An API module fills these in.
    def authorized(self, req: Request) -> bool:
        raise NotImplementedError

    def unauthorized(self) -> Answer:
        raise NotImplementedError

    def handle(self, req: Request) -> Answer:
        raise NotImplementedError
