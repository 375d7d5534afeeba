"""A message as every channel receives it: rendered once, in the workspace's language, then stored in the outbox.

Each channel formats the same `Message` its own way (an e-mail in HTML and plain text, Slack Block Kit, a Teams
Adaptive Card, a signed JSON webhook); what is said is decided here, once, so a retry sends the same bytes.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Fact:
    """A labelled value shown beside the message (value, target, projection, owner...)."""

    label: str
    value: str


@dataclass(frozen=True)
class Item:
    """One entry of a digest or a review message: a KPI and what is said about it."""

    title: str
    text: str
    verdict: str | None = None
    link: str | None = None


@dataclass(frozen=True)
class Message:
    """One message for one channel, with everything already worded in the workspace's language.

    `verdict` (on_track | at_risk | off_track | no_data) gives the colour and the symbol; `lines` are sentences
    (the reason, the leading cause, the owner and the action); `facts` are short label/value pairs; `items` list the
    entries of a digest or review; `chart_png` is the KPI's chart, drawn from the web page's Vega-Lite spec.
    """

    delivery_id: str
    kind: str  # alert | digest | review | decision_review
    language: str  # en | fr
    workspace: str
    subject: str
    headline: str
    verdict: str | None = None
    metric: str | None = None
    lines: tuple[str, ...] = ()
    facts: tuple[Fact, ...] = ()
    items: tuple[Item, ...] = ()
    link: str | None = None
    link_text: str | None = None
    chart_png: bytes | None = None
    chart_alt: str | None = None
    attachment: bytes | None = None  # the review as a PDF
    attachment_name: str | None = None
    data: dict[str, Any] = field(default_factory=dict)  # machine-readable facts for the webhook's JSON

    def to_dict(self) -> dict[str, Any]:
        return {
            "delivery_id": self.delivery_id, "kind": self.kind, "language": self.language,
            "workspace": self.workspace, "subject": self.subject, "headline": self.headline,
            "verdict": self.verdict, "metric": self.metric, "lines": list(self.lines),
            "facts": [[f.label, f.value] for f in self.facts],
            "items": [{"title": i.title, "text": i.text, "verdict": i.verdict, "link": i.link} for i in self.items],
            "link": self.link, "link_text": self.link_text,
            "chart_png": base64.b64encode(self.chart_png).decode("ascii") if self.chart_png else None,
            "chart_alt": self.chart_alt,
            "attachment": base64.b64encode(self.attachment).decode("ascii") if self.attachment else None,
            "attachment_name": self.attachment_name, "data": self.data,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Message:
        return cls(
            delivery_id=d["delivery_id"], kind=d["kind"], language=d["language"], workspace=d["workspace"],
            subject=d["subject"], headline=d["headline"], verdict=d.get("verdict"), metric=d.get("metric"),
            lines=tuple(d.get("lines") or ()), facts=tuple(Fact(a, b) for a, b in d.get("facts") or ()),
            items=tuple(Item(i["title"], i["text"], i.get("verdict"), i.get("link")) for i in d.get("items") or ()),
            link=d.get("link"), link_text=d.get("link_text"),
            chart_png=base64.b64decode(d["chart_png"]) if d.get("chart_png") else None, chart_alt=d.get("chart_alt"),
            attachment=base64.b64decode(d["attachment"]) if d.get("attachment") else None,
            attachment_name=d.get("attachment_name"), data=dict(d.get("data") or {}),
        )


__all__ = ["Fact", "Item", "Message"]
