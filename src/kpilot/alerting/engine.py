"""The alert state machine: signals seen at one evaluation become alerts, grouped into stories, gated by a budget.

An evaluation (after each compute, or once per week of a replay) turns what the board and the analysis found into
`Signal`s: a KPI off track or whose decision rule fires, a KPI projected to miss because a leading indicator moved,
an unusual value of a board KPI. Each signal has a key that stays the same from one run to the next, so a condition
seen again updates its alert instead of raising another.

States: `pending` (seen, but the rule's "for N periods" is not met yet), `firing`, `acknowledged` (someone owns it:
no more messages until it resolves), `snoozed` (quiet until a date, then firing again), `resolved` (its condition has
been absent for a week).

Stories: an alert joins an open alert's story when their metrics are linked: a measured lead-lag edge between them
(either way, or the warning's leader), the same metric, or the same objective of the vision with both opened within
two weeks. A story messages each team once, when it reaches them; what follows in the story goes to the weekly
digest. Each team receives at most `budget` messages per week; the others wait for the digest too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Protocol

RESOLVE_AFTER = timedelta(days=7)  # a condition absent this long resolves its alert (no flapping within a period)
SAME_STORY_WITHIN = timedelta(days=14)  # alerts of one objective opened this close together share a root
KIND_ORDER = {"kpi": 0, "early_warning": 1, "anomaly": 2}


@dataclass(frozen=True)
class Signal:
    """A condition seen at one evaluation, with what its alert says."""

    key: str
    kind: str  # kpi | early_warning | anomaly
    metric: str
    severity: str  # red | amber
    ready: bool  # the condition holds in full; False: seen, waiting for its "for N periods" (pending)
    periods_seen: int
    needed: int
    recipients: tuple[str, ...]  # team keys
    related: frozenset[str] = frozenset()  # metrics measured to lead or follow it (and a warning's leader)
    objectives: frozenset[str] = frozenset()
    leading: bool = False  # a leading indicator: it opens stories before the lagging metrics it predicts
    payload: Mapping[str, Any] = field(default_factory=dict)


class OpenAlert(Protocol):
    """What the engine reads of a stored alert (kpilot.store.alert_log.AlertRecord)."""

    @property
    def id(self) -> int: ...
    @property
    def key(self) -> str: ...
    @property
    def story(self) -> int: ...
    @property
    def metric(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def severity(self) -> str: ...
    @property
    def opened(self) -> str: ...
    @property
    def last_seen(self) -> str: ...
    @property
    def snoozed_until(self) -> str | None: ...
    @property
    def recipients(self) -> tuple[str, ...]: ...
    @property
    def notified(self) -> int: ...
    @property
    def payload(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Ping:
    """A message owed to a team about an alert (by key: it may be created in the same run)."""

    alert_key: str
    recipient: str
    reason: str  # opened | snooze_over


@dataclass
class Plan:
    """What one evaluation changes: alert rows to write, messages owed, and what waits for the digest."""

    changes: list[dict[str, Any]] = field(default_factory=list)
    pings: list[Ping] = field(default_factory=list)
    held: list[Ping] = field(default_factory=list)  # over the week's budget, or the rest of a story: digest
    resolved: list[str] = field(default_factory=list)


def week_of(day: date, week_start: int = 0) -> date:
    """The first day of the week holding `day` (week_start: 0 for Monday, 6 for Sunday)."""
    return day - timedelta(days=(day.weekday() - week_start) % 7)


def _linked(signal: Signal, alert: OpenAlert, as_of: date, objectives_of: Mapping[str, frozenset[str]]) -> bool:
    if alert.metric == signal.metric or alert.metric in signal.related:
        return True
    shared = signal.objectives & objectives_of.get(alert.metric, frozenset())
    return bool(shared) and as_of - date.fromisoformat(alert.opened) <= SAME_STORY_WITHIN


def plan(open_alerts: Sequence[OpenAlert], signals: Sequence[Signal], *, as_of: date,
         pings_this_week: Mapping[str, int], budget: int, objectives_of: Mapping[str, frozenset[str]]) -> Plan:
    """The changes one evaluation makes: pure, so the same inputs always give the same plan."""
    out = Plan()
    today = as_of.isoformat()
    by_key = {a.key: a for a in open_alerts}
    # Stories reached so far: their metrics, and who each has messaged (a story messages a team once).
    story_members: dict[int | str, list[str]] = {}
    story_told: dict[int | str, set[str]] = {}
    for a in open_alerts:
        story_members.setdefault(a.story, []).append(a.metric)
        if a.notified:
            story_told.setdefault(a.story, set()).update(a.recipients)
    budget_left = {r: budget - n for r, n in pings_this_week.items()}
    seen: set[str] = set()

    def owe(key: str, story: int | str, recipients: Sequence[str], reason: str) -> None:
        told = story_told.setdefault(story, set())
        for r in recipients:
            ping = Ping(key, r, reason)
            if r in told and reason == "opened":
                out.held.append(ping)
                continue
            if budget_left.get(r, budget) <= 0:
                out.held.append(ping)
                continue
            budget_left[r] = budget_left.get(r, budget) - 1
            told.add(r)
            out.pings.append(ping)

    ordered = sorted(signals, key=lambda s: (KIND_ORDER.get(s.kind, 9), not s.leading, s.severity != "red", s.key))
    for s in ordered:
        seen.add(s.key)
        state = "firing" if s.ready else "pending"
        existing = by_key.get(s.key)
        fields = {"severity": s.severity, "last_seen": today, "periods_seen": s.periods_seen, "needed": s.needed,
                  "recipients": list(s.recipients), "payload": dict(s.payload)}
        if existing is not None:
            change: dict[str, Any] = {"id": existing.id, **fields}
            if existing.state == "pending" and s.ready:
                change["state"] = "firing"
                owe(s.key, existing.story, s.recipients, "opened")
            elif existing.state == "snoozed" and existing.snoozed_until and existing.snoozed_until <= today:
                change["state"] = "firing" if s.ready else "pending"
                change["snoozed_until"] = None
                if s.ready:
                    owe(s.key, existing.story, s.recipients, "snooze_over")
            out.changes.append(change)
            continue
        story: int | str | None = None
        candidates = [a for a in open_alerts if a.state != "resolved" and _linked(s, a, as_of, objectives_of)]
        if candidates:
            story = min(candidates, key=lambda a: a.story).story
        else:  # a story opened earlier in this same run
            story = next((k for k, metrics in story_members.items() if any(
                m == s.metric or m in s.related or s.objectives & objectives_of.get(m, frozenset())
                for m in metrics)), None)
        new: dict[str, Any] = {"key": s.key, "kind": s.kind, "metric": s.metric, "state": state, "opened": today,
                               **fields}
        if story is None:
            story = s.key  # a new story, rooted at this alert
        elif isinstance(story, str):
            new["story_key"] = story
        else:
            new["story"] = story
        story_members.setdefault(story, []).append(s.metric)
        out.changes.append(new)
        if s.ready:
            owe(s.key, story, s.recipients, "opened")
    for a in open_alerts:
        if a.key in seen or a.state == "resolved":
            continue
        if a.state == "pending" or as_of - date.fromisoformat(a.last_seen) >= RESOLVE_AFTER:
            out.changes.append({"id": a.id, "state": "resolved", "resolved_on": today})
            out.resolved.append(a.key)
    return out


__all__ = ["RESOLVE_AFTER", "SAME_STORY_WITHIN", "OpenAlert", "Ping", "Plan", "Signal", "plan", "week_of"]
