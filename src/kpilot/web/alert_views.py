"""What the alerts page shows, worded for people: the alerts and the outbox messages as the store keeps them.

The words come from each alert's payload (what the board and the analysis found when it was raised), with the
same sentence templates as the alert's e-mail (`kpilot.alerting.compose`, which the pages may not import): the page
says what the message said.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from kpilot.i18n import (
    ALERT_KINDS,
    ALERT_STATES,
    VERDICT_COLOURS,
    VERDICT_SHAPES,
    alert_reason,
    format_verdict,
)
from kpilot.service import AlertRecord
from kpilot.web.views import Page

KIND_WORDS, STATE_WORDS = ALERT_KINDS, ALERT_STATES
RESOLVED_SHOWN = timedelta(weeks=4)  # resolved alerts listed under the open ones


def verdict_of(a: AlertRecord) -> str:
    """The verdict an alert stands for: the board's for a KPI alert; from its severity for a finding."""
    if a.kind == "kpi":
        return str(a.payload.get("verdict") or "no_data")
    return "off_track" if a.severity == "red" else "at_risk"


def reason(kind: str, p: Mapping[str, Any], page: Page, unit: str | None) -> str:
    """The alert's reason in one sentence: the e-mail's words (`kpilot.i18n.alert_reason`), numbers as the page
    formats them."""
    return alert_reason(kind, {**p, "unit": unit if unit is not None else p.get("unit")}, page.lang,
                        lambda v, u: page.value(v, u))


@dataclass
class AlertRow:
    """One alert as the alerts page lists it."""

    id: int
    story: int
    kind: str
    kind_label: str
    metric: str
    name: str
    verdict: str
    verdict_label: str
    colour: str  # green | amber | red | none
    shape: str
    reason: str
    teams: list[str]
    state: str
    state_label: str
    since: str
    note: str  # who acknowledged it, until when it is snoozed, when it resolved ("" otherwise)
    action: str  # the decision rule's action ("" without a rule)


def alert_row(a: AlertRecord, page: Page) -> AlertRow:
    tr = page.tr
    verdict = verdict_of(a)
    label, _ = format_verdict(verdict, None, None, page.lang)
    unit = page.ws.unit_of(a.metric) if a.metric in page.ws.metric_keys else a.payload.get("unit")
    name = str(a.payload.get("name") or a.metric)
    note = ""
    if a.state == "acknowledged" and a.acknowledged_by:
        note = tr("by {who}").format(who=a.acknowledged_by)
    elif a.state == "snoozed" and a.snoozed_until:
        note = tr("until {day}").format(day=_day(a.snoozed_until, page))
    elif a.state == "resolved" and a.resolved_on:
        note = tr("on {day}").format(day=_day(a.resolved_on, page))
    return AlertRow(a.id, a.story, a.kind, tr(KIND_WORDS.get(a.kind, a.kind)), a.metric, name, verdict, label,
                    VERDICT_COLOURS.get(verdict, "none"), VERDICT_SHAPES.get(verdict, "○"),
                    reason(a.kind, a.payload, page, unit), [page.team(t) for t in a.recipients], a.state,
                    tr(STATE_WORDS.get(a.state, a.state)), _day(a.opened, page), note,
                    str(a.payload.get("action") or ""))


def recently_resolved(alerts: Sequence[AlertRecord], page: Page) -> list[AlertRecord]:
    """The resolved alerts of the four weeks up to the page's date, newest first."""
    first = (page.as_of - RESOLVED_SHOWN).isoformat()
    return [a for a in alerts if a.state == "resolved" and a.resolved_on and first <= a.resolved_on
            <= page.as_of.isoformat()]


@dataclass
class OutboxRow:
    """A message the outbox could not deliver."""

    id: int
    subject: str
    channel: str
    team: str
    error: str
    attempts: int
    queued: str


def outbox_row(m: Any, page: Page) -> OutboxRow:
    return OutboxRow(m.id, str(m.message.get("subject") or ""), m.channel, page.team(m.recipient),
                     m.last_error or "", m.attempts, page.day(m.created_at.date()))


def _day(iso: str, page: Page) -> str:
    try:
        return page.day(date.fromisoformat(iso[:10]))
    except ValueError:
        return iso


__all__ = ["AlertRecord", "AlertRow", "OutboxRow", "alert_row", "outbox_row", "reason", "recently_resolved",
           "verdict_of"]
