"""The HTTP client every SaaS connector uses: JSON in and out, retries with backoff, clear auth errors.

429 (honouring Retry-After, in seconds or as an HTTP date), 5xx, timeouts and dropped connections are
retried up to `max_retries` times, waiting `backoff * 2**attempt` seconds at most, with full jitter (a
random wait between 0 and that bound) unless the server said how long to wait. A 401 or 403 fails at
once with a SyncError that names the source and says how to fix the token. Headers hold tokens: they are
never put in a message, and query parameters named like a token are masked in every error text.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from kpilot.model.errors import msg
from kpilot.sources.base import SyncError

Sleep = Callable[[float], None]


def default_sleep(seconds: float) -> None:
    """How a client waits unless given `sleep` (looked up at each wait, so tests can record the waits)."""
    time.sleep(seconds)

MAX_WAIT = 300.0  # a Retry-After longer than this is capped: a sync should not hang for hours
_SECRET_PARAMS = ("api_token", "token", "access_token", "key", "api_key", "hapikey")


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class HttpClient:
    """JSON over HTTP for one source: `get_json(path, params)`, `post_json(path, body)`.

    `source` names the source in error messages; `secrets` are strings to mask in them (tokens sent as
    query parameters). `sleep` is injectable so that tests record the waits instead of waiting.
    """

    def __init__(self, base_url: str, *, headers: Mapping[str, str] | None = None, timeout: float = 30.0,
                 max_retries: int = 5, backoff: float = 1.0, sleep: Sleep | None = None, source: str = "",
                 secrets: tuple[str, ...] = (), fix_token: str = "",
                 rand: Callable[[], float] = random.random):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.sleep: Sleep = sleep or (lambda seconds: default_sleep(seconds))
        self.source = source
        self.secrets = tuple(s for s in secrets if s)
        self.fix_token = fix_token
        self.rand = rand
        self.waits: list[float] = []  # every wait, in order (for reports and tests)
        self._client = httpx.Client(headers=dict(headers or {}), timeout=timeout, follow_redirects=True)

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params)

    def post_json(self, path: str, body: Any, params: Mapping[str, Any] | None = None) -> Any:
        return self.request("POST", path, params=params, body=body)

    def close(self) -> None:
        self._client.close()

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.base_url}/{path.lstrip('/')}"

    def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, body: Any = None) -> Any:
        """The decoded JSON answer; retries what may pass on a second try, raises SyncError otherwise."""
        url = self.url(path)
        attempt = 0
        while True:
            reason: str
            wait: float | None = None
            try:
                resp = self._client.request(method, url, params=dict(params or {}) or None, json=body)
            except httpx.TimeoutException:
                reason = f"no answer within {self.timeout:g} s"
            except httpx.TransportError as exc:
                reason = self.scrub(str(exc) or type(exc).__name__)
            else:
                status = resp.status_code
                if status < 300:
                    try:
                        data = resp.json()
                    except ValueError:
                        raise SyncError(msg("source '{source}': {url} answered with something other than JSON. Fix: "
                                            "check the source's `base_url` option.", source=self.source,
                                            url=self.scrub(url))) from None
                    if not isinstance(data, dict):  # every API kpilot reads answers with an object
                        raise SyncError(msg("source '{source}': {url} answered with JSON that is not a JSON object. "
                                            "Fix: check the source's `base_url` option.", source=self.source,
                                            url=self.scrub(_path(url))))
                    return data
                if status in (401, 403):
                    raise SyncError(msg("the token for source '{source}' was refused ({status}): it may have expired "
                                        "or lack a permission. {fix}", source=self.source, status=status,
                                        fix=self.fix_token or msg("Fix: create a new token and store it where the "
                                                                  "source's options say."))) from None
                if status != 429 and status < 500:
                    raise SyncError(msg("source '{source}': {method} {url} failed ({status}): {reason}",
                                        source=self.source, method=method, url=self.scrub(_path(url)), status=status,
                                        reason=self.scrub(_error_text(resp)))) from None
                reason = f"HTTP {status}"
                wait = retry_after(resp.headers.get("Retry-After"))
            if attempt >= self.max_retries:
                raise SyncError(msg("source '{source}': {method} {url} still failed after {n} retries ({reason}). "
                                    "The tables keep their last good data. Fix: try again later; if it lasts, check "
                                    "the service's status page.", source=self.source, method=method,
                                    url=self.scrub(_path(url)), n=self.max_retries, reason=reason))
            bound = self.backoff * 2 ** attempt
            delay = min(wait, MAX_WAIT) if wait is not None else self.rand() * bound
            self.waits.append(delay)
            self.sleep(delay)
            attempt += 1

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


def _path(url: str) -> str:
    """The URL without its query string (which may hold a token)."""
    return url.split("?", 1)[0]


def _error_text(resp: httpx.Response) -> str:
    """The service's own error text: `message` of a JSON error body (HubSpot, Pipedrive...), else the body."""
    try:
        data = resp.json()
    except ValueError:
        return (resp.text or "").strip()[:200] or resp.reason_phrase
    if isinstance(data, dict):
        for k in ("message", "error", "error_info"):
            if isinstance(data.get(k), str) and data[k]:
                return str(data[k])[:300]
    return str(data)[:300]


def source_token(source_key: str, options: Mapping[str, Any], environ: Mapping[str, str] | None,
                 secrets_path: Any, *, option: str = "token_env", default_env: str = "") -> str:
    """The token of a SaaS source: the variable named by `options[option]` (environment, secrets file, application
    database)."""
    import os

    from kpilot.sources.secrets import missing, read_secrets

    env = os.environ if environ is None else environ
    var = str(options.get(option) or default_env)
    value = env.get(var) or (read_secrets(secrets_path).get(var) if secrets_path and var else None)
    if not value:
        raise missing(source_key, var, secrets_path, msg("the service's token (`options: {{{option}: NAME}}` "
                                                          "names another variable)", option=option))
    return value
