"""One HTTP POST of a channel's JSON and what its answer means for the outbox: sent, retry or failed.

The standard library's urllib, so that the product needs no HTTP client of its own. Redirects are not followed (a
webhook that moved must be set to its new address, not followed blindly with its signed body); only http and https.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from email.message import Message as Headers
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from kpilot.alerting.channels.delivery import Delivery, cap, failed, retry, sent, unreachable

USER_AGENT = "kpilot"
# A short error code in the answer's body (Slack answers `channel_not_found`, `invalid_payload`...): worth quoting.
_ERROR_CODE = re.compile(r"^[a-z][a-z0-9_]{1,60}$")
_REASONS = {408: "request timeout", 413: "the message is too large", 429: "too many requests"}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req: Any, fp: Any, code: Any, msg: Any, headers: Any, newurl: Any) -> None:
        return None  # urllib then raises the 3xx answer as an HTTPError


_OPENER = urllib.request.build_opener(_NoRedirect)


def host_of(url: str) -> str:
    """The server's name of `url`, safe to show: no user, password, path or query (where webhook secrets live)."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "the server"
    return f"{parts.hostname}{port}" if parts.hostname else "the server"


def url_problem(url: str) -> str | None:
    """Why `url` cannot be posted to (without quoting it: it may be a secret), or None."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https"):
        return "is not an http(s) URL"
    if not parts.hostname:
        return "names no server"
    return None


def retry_after(headers: Headers | None) -> float | None:
    """The seconds a Retry-After header asks to wait (a number of seconds or an HTTP date), or None."""
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError):
            return None
    if seconds != seconds or seconds in (float("inf"), float("-inf")):  # NaN, infinity
        return None
    return max(0.0, seconds)


def _error_code(error: urllib.error.HTTPError) -> str:
    try:
        text = error.read(200).decode("utf-8", "replace").strip()
    except (OSError, http.client.HTTPException, ValueError):
        return ""
    return f" ({text})" if _ERROR_CODE.match(text) else ""


def _answered(who: str, error: urllib.error.HTTPError) -> Delivery:
    code = error.code
    reason = _REASONS.get(code, "")
    said = f"{cap(who)} answered HTTP {code}{_error_code(error)}"
    if reason:
        said += f", {reason}"
    if 300 <= code < 400:
        return failed(f"{said}: a redirect, which kpilot does not follow; set the channel to the new address.")
    if code in (408, 429) or code >= 500:
        wait = retry_after(error.headers)
        asked = f"; it asks to wait {wait:g} seconds" if wait is not None else ""
        return retry(f"{said}, a temporary refusal{asked}.", wait)
    if code == 413:
        return failed(f"{said}; shorten the message (fewer lines or items, no chart).")
    return failed(f"{said}, a permanent refusal: check the channel's address and the receiver's settings.")


def post_json(url: str, body: bytes, who: str, *, timeout: float, headers: Mapping[str, str] | None = None) -> Delivery:
    """POST `body` (JSON) to `url`. Never raises for a network or server problem: the answer says what happened.

    `who` names the receiver in the detail ("Slack", "Microsoft Teams", "the webhook at hooks.example.com").
    """
    problem = url_problem(url)
    if problem is not None:
        return failed(f"The channel's address {problem}; kpilot posts to http(s) URLs only.")
    host = host_of(url)
    all_headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **(headers or {})}
    try:
        request = urllib.request.Request(url, data=body, headers=all_headers, method="POST")
        with _OPENER.open(request, timeout=timeout) as response:
            code = response.status
            with contextlib.suppress(OSError, http.client.HTTPException):
                response.read(65536)  # the status is what counts; reading the body is courtesy
    except urllib.error.HTTPError as error:
        try:
            return _answered(who, error)
        finally:
            error.close()
    except urllib.error.URLError as error:
        return unreachable(error.reason, server=host, who=who, timeout=timeout)
    except (http.client.InvalidURL, ValueError):
        return failed("The request could not be built: the channel's address is not a valid URL.")
    except (OSError, http.client.HTTPException) as error:
        if isinstance(error, TimeoutError | ssl.SSLError):
            return unreachable(error, server=host, who=who, timeout=timeout)
        return retry(f"The connection to {host} broke before {who} answered ({type(error).__name__}).")
    if 200 <= code < 300:
        return sent(f"{cap(who)} accepted the message (HTTP {code}).")
    # urllib raises for every status outside 2xx; a 1xx final status would be a broken server.
    return retry(f"{cap(who)} answered HTTP {code}, which is not an acceptance.")


__all__ = ["USER_AGENT", "host_of", "post_json", "retry_after", "url_problem"]
