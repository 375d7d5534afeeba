"""A message as a Microsoft Teams "Workflows" webhook receives it: an Adaptive Card in a message envelope.

The flow "Post to a channel when a webhook request is received" (trigger "When a Teams webhook request is
received") posts each attachment's card to its channel. Microsoft is retiring the Office 365 connectors (the old
"Incoming Webhook" and its MessageCards) in favour of Workflows; version 1.4 cards show in every Teams client.

Teams refuses a message above about 28 KB (HTTP 413): the chart, sent inline as a data: URI, is kept only when
the card stays under that size, else it is described by its alternative text; a digest too long loses its last
entries, counted in a final line.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from kpilot.alerting.channels.delivery import link_label, safe_link, style
from kpilot.alerting.message import Item, Message

CARD_VERSION = "1.4"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_TYPE = "application/vnd.microsoft.card.adaptive"
MAX_BYTES = 27_000  # under Teams' 28 KB, with room for the envelope Power Automate adds


def _text(text: str, **options: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **options}


def _item(item: Item) -> dict[str, Any]:
    link = safe_link(item.link)
    # Square brackets would be read as a Markdown link's text; the title keeps its meaning with parentheses.
    title = item.title.replace("[", "(").replace("]", ")")
    title = f"[{title}]({link})" if link else title
    symbol = f"{style(item.verdict).emoji} " if item.verdict else ""
    items = [_text(f"{symbol}**{title}**")]
    if item.text:
        items.append(_text(item.text, spacing="None"))
    return {"type": "Container", "spacing": "Medium", "items": items}


def _envelope(body: list[dict[str, Any]], actions: list[dict[str, Any]]) -> dict[str, Any]:
    card: dict[str, Any] = {"$schema": CARD_SCHEMA, "type": "AdaptiveCard", "version": CARD_VERSION, "body": body,
                            "msteams": {"width": "Full"}}
    if actions:
        card["actions"] = actions
    return {"type": "message", "attachments": [{"contentType": CARD_TYPE, "contentUrl": None, "content": card}]}


def _size(payload: dict[str, Any]) -> int:
    return len(json.dumps(payload, ensure_ascii=False).encode("utf-8"))


def teams_payload(message: Message) -> dict[str, Any]:
    """The JSON a Workflows webhook receives: {"type": "message", "attachments": [an Adaptive Card]}."""
    verdict = style(message.verdict)
    head = [_text(f"{verdict.emoji} {message.headline}", size="Large", weight="Bolder", color=verdict.teams_colour)]
    head += [_text(line, spacing="Small") for line in message.lines]
    if message.facts:
        head.append({"type": "FactSet", "facts": [{"title": f.label, "value": f.value} for f in message.facts]})
    items = [_item(i) for i in message.items]
    alt = message.chart_alt or message.headline
    chart: list[dict[str, Any]] = []
    if message.chart_png:
        uri = "data:image/png;base64," + base64.b64encode(message.chart_png).decode("ascii")
        chart = [{"type": "Image", "url": uri, "altText": alt, "size": "Stretch"}]
    elif message.chart_alt:
        chart = [_text(message.chart_alt, isSubtle=True)]
    foot = [_text(f"kpilot · {message.workspace}", isSubtle=True, size="Small")]
    link = safe_link(message.link)
    actions = [{"type": "Action.OpenUrl", "title": link_label(message.link_text), "url": link}] if link else []

    payload = _envelope([*head, *items, *chart, *foot], actions)
    if _size(payload) <= MAX_BYTES:
        return payload
    if message.chart_png:
        chart = [_text(alt, isSubtle=True)]
        payload = _envelope([*head, *items, *chart, *foot], actions)
    kept = len(items)
    while _size(payload) > MAX_BYTES and kept > 0:
        kept -= 1
        more = [_text(f"… (+{len(items) - kept})", isSubtle=True)]
        payload = _envelope([*head, *items[:kept], *more, *chart, *foot], actions)
    return payload  # still too large only for absurd lines or facts: Teams answers 413, the outbox says why


__all__ = ["CARD_SCHEMA", "CARD_TYPE", "CARD_VERSION", "MAX_BYTES", "teams_payload"]
