"""What every channel shares: the outcome of one delivery, where settings and secrets are read, and how a verdict
looks (colour and symbol), so that an e-mail, a Slack message and a Teams card say the same thing the same way."""

from __future__ import annotations

import re
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

Outcome = Literal["sent", "retry", "failed"]


@dataclass(frozen=True)
class Delivery:
    """The outcome of one attempt: sent, retry (a temporary problem) or failed (retrying will not help).

    `detail` is one English sentence for people and never holds a secret; `retry_after` is the wait, in seconds,
    the receiver asked for (a Retry-After header), when it asked.
    """

    outcome: Outcome
    detail: str
    retry_after: float | None = None


def sent(detail: str) -> Delivery:
    return Delivery("sent", detail)


def retry(detail: str, retry_after: float | None = None) -> Delivery:
    return Delivery("retry", detail, retry_after)


def failed(detail: str) -> Delivery:
    return Delivery("failed", detail)


def cap(text: str) -> str:
    """`text` with a capital first letter, to start a sentence with a receiver's name."""
    return text[:1].upper() + text[1:]


def unreachable(error: object, *, server: str, timeout: float, who: str | None = None,
                tls_hint: str = "") -> Delivery:
    """The outcome of a connection that broke before any answer. `server` names the place ("host:port", "the SMTP
    server host:port"); `who` the receiver that did not answer in time (by default `server`)."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return failed(f"The TLS certificate of {server} could not be verified ({error.verify_message}); kpilot "
                      f"sends only to a server whose certificate is valid.")
    if isinstance(error, ssl.SSLError):
        return failed(f"The TLS handshake with {server} failed ({error.reason or 'unknown reason'}){tls_hint}.")
    if isinstance(error, TimeoutError):
        return retry(f"{cap(who or server)} did not answer within {timeout:g} seconds.")
    if isinstance(error, socket.gaierror):
        return retry(f"The name of {server} could not be resolved (DNS); check the address if this lasts.")
    if isinstance(error, ConnectionRefusedError):
        return retry(f"kpilot could not connect to {server}: connection refused.")
    name = type(error).__name__ if isinstance(error, BaseException) else "unknown reason"
    return retry(f"The connection to {server} failed ({name}).")


class Settings:
    """Settings read by name: the secret store first (`secrets`), then the environment; an empty value is unset.

    Every value read is remembered, so that `scrub` can take it out of a detail that would quote it by accident.
    """

    def __init__(self, environ: Mapping[str, str], secrets: Mapping[str, str] | None = None) -> None:
        self._sources = (secrets or {}, environ)
        self._read: list[str] = []

    def get(self, name: str) -> str | None:
        for source in self._sources:
            value = source.get(name)
            if value:
                self._read.append(value)
                return value
        return None

    def scrub(self, delivery: Delivery) -> Delivery:
        detail = delivery.detail
        # Longest first, so that a URL is replaced whole before a shorter value found inside it.
        for value in sorted(set(self._read), key=len, reverse=True):
            if len(value) >= 4 and value in detail:
                detail = detail.replace(value, "[hidden]")
        if detail == delivery.detail:
            return delivery
        return Delivery(delivery.outcome, detail, delivery.retry_after)


@dataclass(frozen=True)
class VerdictStyle:
    """How a verdict is shown: a colour (the web board's status colours), a text colour readable on it, a symbol
    that differs by shape (not only by colour, for colour-blind readers), and an emoji for chat."""

    colour: str
    ink: str
    symbol: str
    emoji: str
    teams_colour: str  # an Adaptive Card TextBlock colour


# The same colours as the web board (kpilot.web.charts.STATUS_COLORS), which alerting may not import.
VERDICT_STYLES: dict[str, VerdictStyle] = {
    "on_track": VerdictStyle("#2f855a", "#ffffff", "✓", "✅", "Good"),
    "at_risk": VerdictStyle("#d69e2e", "#1a202c", "!", "⚠️", "Warning"),
    "off_track": VerdictStyle("#c53030", "#ffffff", "✗", "⛔", "Attention"),
    "no_data": VerdictStyle("#a0aec0", "#1a202c", "?", "❔", "Default"),
}
NEUTRAL = VerdictStyle("#2d3748", "#ffffff", "•", "📊", "Default")


def style(verdict: str | None) -> VerdictStyle:
    return VERDICT_STYLES.get(verdict or "", NEUTRAL)


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def safe_link(url: str | None) -> str | None:
    """`url` when it is an absolute http(s) address (a link people may click), else None."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc or re.search(r"[\s<>\"]", url):
        return None
    return url


def link_label(text: str | None) -> str:
    """The words of a link's button; the message words it in the workspace's language, this is the fallback."""
    return text or "kpilot"


def delivery_token(delivery_id: str) -> str:
    """The delivery id restricted to the characters a Message-ID or a Content-ID may hold."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", delivery_id) or "delivery"


__all__ = ["NEUTRAL", "VERDICT_STYLES", "Delivery", "Outcome", "Settings", "VerdictStyle", "cap", "clip",
           "delivery_token", "failed", "link_label", "retry", "safe_link", "sent", "style", "unreachable"]
