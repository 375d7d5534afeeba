"""A message as a generic webhook receives it: compact JSON, signed with HMAC-SHA256 when the channel has a secret.

The body is the same bytes on every retry (keys sorted, no spaces, no chart and no attachment), and
`X-Kpilot-Delivery` carries the delivery id, so a receiver can tell a retry from a new message and ignore it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from typing import Any

from kpilot.alerting.channels.delivery import delivery_token
from kpilot.alerting.message import Message

SIGNATURE_HEADER = "X-Kpilot-Signature"
DELIVERY_HEADER = "X-Kpilot-Delivery"
SIGNATURE_PREFIX = "sha256="


def webhook_json(message: Message) -> dict[str, Any]:
    """The fields the webhook's JSON holds (see docs/channels.md): what the message says, without images."""
    return {
        "delivery_id": message.delivery_id, "kind": message.kind, "workspace": message.workspace,
        "metric": message.metric, "verdict": message.verdict, "subject": message.subject,
        "headline": message.headline, "lines": list(message.lines),
        "facts": [{"label": f.label, "value": f.value} for f in message.facts],
        "items": [{"title": i.title, "text": i.text, "verdict": i.verdict, "link": i.link} for i in message.items],
        "link": message.link, "data": message.data,
    }


def webhook_body(message: Message) -> bytes:
    """The request's body: compact UTF-8 JSON with sorted keys, the same bytes for the same message."""
    # default=str: a date or a decimal left in `data` is written as text rather than failing the delivery.
    return json.dumps(webhook_json(message), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str).encode("utf-8")


def signature(body: bytes, secret: str) -> str:
    """The `X-Kpilot-Signature` value: "sha256=" and the hex HMAC-SHA256 of the raw body, keyed with the secret."""
    return SIGNATURE_PREFIX + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify_signature(body: bytes, header: str, secret: str) -> bool:
    """Whether `header` (the received X-Kpilot-Signature) signs `body` with `secret`; compared in constant time."""
    expected = signature(body, secret).encode("ascii")
    return hmac.compare_digest(expected, (header or "").strip().encode("utf-8", "replace"))


def webhook_headers(message: Message, body: bytes, secret: str | None) -> dict[str, str]:
    """The headers sent with `body`: the delivery id, and the signature when the channel has a secret."""
    delivery_id = message.delivery_id
    # A header holds printable ASCII only; an id outside it (never the outbox's own) is reduced to what fits.
    headers = {DELIVERY_HEADER: delivery_id if re.fullmatch(r"[!-~]+", delivery_id) else delivery_token(delivery_id)}
    if secret:
        headers[SIGNATURE_HEADER] = signature(body, secret)
    return headers


__all__ = ["DELIVERY_HEADER", "SIGNATURE_HEADER", "signature", "verify_signature", "webhook_body", "webhook_headers",
           "webhook_json"]
