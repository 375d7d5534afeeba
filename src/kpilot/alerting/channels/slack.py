"""A message as a Slack incoming webhook receives it: Block Kit JSON within Slack's limits.

Limits (Slack's Block Kit reference): at most 50 blocks in a message; a header's plain text at most 150 characters;
a section's text at most 3,000; a section's fields at most 10, each at most 2,000; a button's text at most 75 and
its URL at most 3,000. An incoming webhook cannot upload a file, so the chart is described by its alternative text.
"""

from __future__ import annotations

import re
from typing import Any

from kpilot.alerting.channels.delivery import clip, link_label, safe_link, style
from kpilot.alerting.message import Message

MAX_BLOCKS = 50
HEADER_MAX = 150
TEXT_MAX = 3000
FIELDS_MAX = 10
FIELD_MAX = 2000
BUTTON_TEXT_MAX = 75
BUTTON_URL_MAX = 3000
_PARTIAL_ENTITY = re.compile(r"&[a-z]{0,3}$")


def escape(text: str) -> str:
    """`text` safe in Slack's mrkdwn: &, < and > as the HTML entities Slack documents (they otherwise start links,
    mentions and entities)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip_escaped(text: str, limit: int) -> str:
    """Escaped mrkdwn cut to `limit` characters without cutting an entity in half."""
    if len(text) <= limit:
        return text
    return _PARTIAL_ENTITY.sub("", text[: limit - 1]).rstrip() + "…"


def _link(url: str, text: str) -> str:
    # Inside <url|text> a | or > in the URL would end it early; percent-encoded, they mean the same.
    return f"<{url.replace('|', '%7C').replace('>', '%3E')}|{escape(text)}>"


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def _sections(chunks: list[str], separator: str) -> list[dict[str, Any]]:
    """Sections holding `chunks` (escaped mrkdwn) in order, as few as the 3,000-character limit allows."""
    sections: list[str] = []
    for chunk in chunks:
        chunk = _clip_escaped(chunk, TEXT_MAX)
        if sections and len(sections[-1]) + len(separator) + len(chunk) <= TEXT_MAX:
            sections[-1] += separator + chunk
        else:
            sections.append(chunk)
    return [{"type": "section", "text": _mrkdwn(text)} for text in sections]


def _fields(message: Message) -> list[dict[str, Any]]:
    fields = [_clip_escaped(f"*{escape(f.label)}*\n{escape(f.value)}", FIELD_MAX) for f in message.facts]
    return [{"type": "section", "fields": [_mrkdwn(text) for text in fields[i:i + FIELDS_MAX]]}
            for i in range(0, len(fields), FIELDS_MAX)]


def _item(item_title: str, text: str, verdict: str | None, link: str | None) -> str:
    title = _link(link, item_title) if link else escape(item_title)
    symbol = f"{style(verdict).emoji} " if verdict else ""
    return f"{symbol}*{title}*\n{escape(text)}" if text else f"{symbol}*{title}*"


def slack_payload(message: Message) -> dict[str, Any]:
    """The JSON an incoming webhook receives: `text` (the notification's fallback) and `blocks`."""
    header = {"type": "header",
              "text": {"type": "plain_text", "text": clip(f"{style(message.verdict).emoji} {message.headline}",
                                                          HEADER_MAX), "emoji": True}}
    content = _sections([escape(line) for line in message.lines], "\n")
    content += _fields(message)
    content += _sections([_item(i.title, i.text, i.verdict, safe_link(i.link)) for i in message.items], "\n\n")
    notes = [f"📈 {escape(message.chart_alt)}"] if message.chart_alt else []
    notes.append(f"kpilot · {escape(message.workspace)}")
    tail: list[dict[str, Any]] = [{"type": "context",
                                   "elements": [_mrkdwn(_clip_escaped(note, TEXT_MAX)) for note in notes]}]
    link = safe_link(message.link)
    if link and len(link) <= BUTTON_URL_MAX:
        tail.append({"type": "actions", "elements": [{
            "type": "button", "action_id": "kpilot-open", "url": link, "style": "primary",
            "text": {"type": "plain_text", "text": clip(link_label(message.link_text), BUTTON_TEXT_MAX),
                     "emoji": True}}]})
    room = MAX_BLOCKS - 1 - len(tail)
    if len(content) > room:
        left_out = len(content) - (room - 1)
        content = [*content[:room - 1], {"type": "section", "text": _mrkdwn(f"… (+{left_out})")}]
    return {"text": _clip_escaped(escape(message.subject), TEXT_MAX), "blocks": [header, *content, *tail],
            "unfurl_links": False, "unfurl_media": False}


__all__ = ["BUTTON_TEXT_MAX", "FIELDS_MAX", "FIELD_MAX", "HEADER_MAX", "MAX_BLOCKS", "TEXT_MAX", "escape",
           "slack_payload"]
