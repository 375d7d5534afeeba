"""The alerts and the outbox in the application database: what fired, in which state, and every message to send.

A message is written to the outbox in the same transaction as the alert change that calls for it, before any
attempt to deliver it; delivery then only moves it from pending to sent (or failed), so a crash, a channel down or a
second worker never loses a message nor sends it twice under two ids.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from kpilot.model.errors import msg
from kpilot.store.accounts import record_change
from kpilot.store.models import AlertRow, OutboxRow

ALERT_STATES = ("pending", "firing", "acknowledged", "snoozed", "resolved")
OPEN_STATES = ("pending", "firing", "acknowledged", "snoozed")


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class AlertRecord:
    """An alert as stored: what it is about, its state and who it is for."""

    id: int
    workspace: str
    key: str
    story: int
    kind: str
    metric: str
    state: str
    severity: str
    opened: str
    last_seen: str
    periods_seen: int
    needed: int
    recipients: tuple[str, ...]
    payload: dict[str, Any]
    snoozed_until: str | None
    resolved_on: str | None
    acknowledged_by: str | None
    notified: int

    @classmethod
    def of(cls, row: AlertRow) -> AlertRecord:
        return cls(row.id, row.workspace, row.key, row.story or row.id, row.kind, row.metric, row.state, row.severity,
                   row.opened, row.last_seen, row.periods_seen, row.needed, tuple(row.recipients or ()),
                   dict(row.payload or {}), row.snoozed_until, row.resolved_on, row.acknowledged_by, row.notified)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "key": self.key, "story": self.story, "kind": self.kind, "metric": self.metric,
                "state": self.state, "severity": self.severity, "opened": self.opened, "last_seen": self.last_seen,
                "periods_seen": self.periods_seen, "needed": self.needed, "recipients": list(self.recipients),
                "snoozed_until": self.snoozed_until, "resolved_on": self.resolved_on,
                "acknowledged_by": self.acknowledged_by, "notified": self.notified, **self.payload}


@dataclass(frozen=True)
class OutboxRecord:
    """A message in the outbox."""

    id: int
    workspace: str
    delivery_id: str
    channel: str
    recipient: str
    kind: str
    week: str
    alert_id: int | None
    message: dict[str, Any]
    state: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None

    @classmethod
    def of(cls, row: OutboxRow) -> OutboxRecord:
        return cls(row.id, row.workspace, row.delivery_id, row.channel, row.recipient, row.kind, row.week,
                   row.alert_id, dict(row.message), row.state, row.attempts, _aware(row.next_attempt_at),
                   row.last_error, _aware(row.created_at), _aware(row.sent_at) if row.sent_at else None)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "delivery_id": self.delivery_id, "channel": self.channel, "recipient": self.recipient,
                "kind": self.kind, "week": self.week, "alert_id": self.alert_id, "state": self.state,
                "attempts": self.attempts, "next_attempt_at": self.next_attempt_at.isoformat(),
                "last_error": self.last_error, "created_at": self.created_at.isoformat(),
                "sent_at": self.sent_at.isoformat() if self.sent_at else None,
                "subject": self.message.get("subject")}


@dataclass(frozen=True)
class NewMessage:
    """A message to queue: for one channel, for one recipient, in the budget's week."""

    channel: str
    recipient: str
    kind: str
    week: str
    message: dict[str, Any]  # Message.to_dict() without its delivery id (given here)
    alert_key: str | None = None  # the alert it is about (by key, as it may be new in the same run)


class _Sessions(Protocol):
    def _session(self) -> AbstractContextManager[Session]: ...


class AlertLog:
    """Alerts and outbox methods of `AppStore` (a mixin: one short session per call, thread-safe)."""

    def alerts(self: _Sessions, workspace: str, *, states: Sequence[str] | None = None,
               metric: str | None = None) -> list[AlertRecord]:
        """Alerts newest first, optionally only in `states` or about `metric`."""
        query = select(AlertRow).where(AlertRow.workspace == workspace)
        if states:
            query = query.where(AlertRow.state.in_(list(states)))
        if metric:
            query = query.where(AlertRow.metric == metric)
        with self._session() as s:
            return [AlertRecord.of(r) for r in s.scalars(query.order_by(AlertRow.id.desc()))]

    def alert(self: _Sessions, workspace: str, alert_id: int) -> AlertRecord | None:
        with self._session() as s:
            row = s.get(AlertRow, alert_id)
            return AlertRecord.of(row) if row is not None and row.workspace == workspace else None

    def apply_alert_run(self: _Sessions, workspace: str, changes: Sequence[dict[str, Any]],
                        messages: Sequence[NewMessage], *, digested: Sequence[int] = (),
                        now: datetime | None = None) -> dict[str, int]:
        """Write one evaluation's alert changes and the messages they call for, in one transaction.

        Each change is a dict of AlertRow fields; with "id" it updates that alert, without it creates one (its
        "story" may be the key of another alert of the same run, as "story_key"). Returns key -> alert id.
        """
        now = now or datetime.now(UTC)
        ids: dict[str, int] = {}
        with self._session() as s:
            pending_story: list[tuple[AlertRow, str]] = []
            for change in changes:
                fields = json_safe(dict(change))
                story_key = fields.pop("story_key", None)
                alert_id = fields.pop("id", None)
                if alert_id is not None:
                    row = s.get(AlertRow, alert_id)
                    if row is None:
                        continue
                    for name, value in fields.items():
                        setattr(row, name, value)
                    row.updated_at = now
                else:
                    row = AlertRow(workspace=workspace, created_at=now, updated_at=now, notified=0, **fields)
                    s.add(row)
                s.flush()
                ids[row.key] = row.id
                if story_key is not None:
                    pending_story.append((row, story_key))
                elif row.story is None:
                    row.story = row.id
            for row, story_key in pending_story:
                row.story = _story_of(s, ids.get(story_key, row.id))
            for m in messages:
                alert_id = ids.get(m.alert_key) if m.alert_key else None
                delivery = uuid.uuid4().hex
                message = {**json_safe(_with_alert_id(m.message, alert_id)), "delivery_id": delivery}
                # Held back for the digest; for a team without a channel, kept (it counts in the budget) unsent.
                state = "held" if m.kind == "held" else "pending" if m.channel else "unrouted"
                s.add(OutboxRow(workspace=workspace, delivery_id=delivery, channel=m.channel, recipient=m.recipient,
                                kind=m.kind, week=m.week, alert_id=alert_id, message=message, state=state,
                                attempts=0, next_attempt_at=now, created_at=now))
                if alert_id is not None:
                    s.execute(update(AlertRow).where(AlertRow.id == alert_id)
                              .values(notified=AlertRow.notified + 1))
            if digested:
                s.execute(update(OutboxRow).where(OutboxRow.workspace == workspace,
                                                  OutboxRow.id.in_(list(digested))).values(state="digested"))
        return ids

    def set_alert_state(self: _Sessions, workspace: str, alert_id: int, state: str, *, by: str | None = None,
                        until: str | None = None, actor: str | None = None) -> AlertRecord | None:
        """Acknowledge or snooze (until a date) an open alert; None when there is no such alert."""
        with self._session() as s:
            row = s.get(AlertRow, alert_id)
            if row is None or row.workspace != workspace:
                return None
            if row.state == "resolved":
                raise ValueError(msg("alert {id} is resolved already: there is nothing left to acknowledge or snooze.",
                                     id=alert_id))
            record_change(s, workspace, actor or by, "alert", f"{row.metric} #{row.id}",
                          {"state": row.state, "snoozed_until": row.snoozed_until},
                          {"state": state, "snoozed_until": until if state == "snoozed" else None})
            row.state = state
            row.acknowledged_by = by if state == "acknowledged" else row.acknowledged_by
            row.snoozed_until = until if state == "snoozed" else None
            row.updated_at = datetime.now(UTC)
            s.flush()
            return AlertRecord.of(row)

    def pings(self: _Sessions, workspace: str, week: str) -> dict[str, int]:
        """Recipient -> alert messages queued for them in `week` (a team counts once per message, not per channel)."""
        query = (select(OutboxRow.recipient, func.count(func.distinct(OutboxRow.alert_id)))
                 .where(OutboxRow.workspace == workspace, OutboxRow.week == week, OutboxRow.kind == "alert")
                 .group_by(OutboxRow.recipient))
        with self._session() as s:
            return {r: int(n) for r, n in s.execute(query)}

    def held_messages(self: _Sessions, workspace: str, *, before: str) -> dict[tuple[str, str], list[OutboxRecord]]:
        """(team, week) -> the alert messages held back for its digest, of the weeks before `before`."""
        query = (select(OutboxRow).where(OutboxRow.workspace == workspace, OutboxRow.state == "held",
                                         OutboxRow.week < before).order_by(OutboxRow.id))
        out: dict[tuple[str, str], list[OutboxRecord]] = {}
        with self._session() as s:
            for row in s.scalars(query):
                out.setdefault((row.recipient, row.week), []).append(OutboxRecord.of(row))
        return out

    # --- outbox -------------------------------------------------------------------------------------------

    def outbox(self: _Sessions, workspace: str, *, states: Sequence[str] | None = None,
               limit: int = 200) -> list[OutboxRecord]:
        query = select(OutboxRow).where(OutboxRow.workspace == workspace)
        if states:
            query = query.where(OutboxRow.state.in_(list(states)))
        with self._session() as s:
            return [OutboxRecord.of(r) for r in s.scalars(query.order_by(OutboxRow.id.desc()).limit(limit))]

    def due_messages(self: _Sessions, workspace: str, now: datetime, *, limit: int = 100) -> list[OutboxRecord]:
        """Pending messages whose next attempt is due, oldest first."""
        query = (select(OutboxRow).where(OutboxRow.workspace == workspace, OutboxRow.state == "pending",
                                         OutboxRow.next_attempt_at <= now)
                 .order_by(OutboxRow.id).limit(limit))
        with self._session() as s:
            return [OutboxRecord.of(r) for r in s.scalars(query)]

    def claim_message(self: _Sessions, message_id: int, attempts: int, now: datetime, lease: timedelta) -> bool:
        """Take a due message for one attempt (compare-and-set on its attempt count): False when another worker
        took it first. Its next attempt moves `lease` ahead, so a worker killed mid-send leaves it to be retried."""
        with self._session() as s:
            done = s.execute(update(OutboxRow)
                             .where(OutboxRow.id == message_id, OutboxRow.state == "pending",
                                    OutboxRow.attempts == attempts)
                             .values(attempts=attempts + 1, next_attempt_at=now + lease))
            return bool(done.rowcount)  # type: ignore[attr-defined]

    def message_done(self: _Sessions, message_id: int, state: str, *, error: str | None = None,
                     next_attempt_at: datetime | None = None) -> None:
        """Record an attempt's outcome: sent, failed (for good), or pending again at `next_attempt_at`."""
        with self._session() as s:
            row = s.get(OutboxRow, message_id)
            if row is None:
                return
            row.state = state
            row.last_error = error
            if state == "sent":
                row.sent_at = datetime.now(UTC)
            if next_attempt_at is not None:
                row.next_attempt_at = next_attempt_at

    def retry_message(self: _Sessions, workspace: str, message_id: int) -> bool:
        """Put a failed message back in the queue (after its channel was fixed)."""
        with self._session() as s:
            row = s.get(OutboxRow, message_id)
            if row is None or row.workspace != workspace or row.state != "failed":
                return False
            row.state, row.next_attempt_at = "pending", datetime.now(UTC)
            return True


def json_safe(value: Any) -> Any:
    """`value` with every non-finite number (NaN, infinity) as None: PostgreSQL's JSON refuses them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


ALERT_ID_SLOT = "{alert_id}"  # in a queued message's texts: the id of its alert, known once the alert is written


def _with_alert_id(value: Any, alert_id: int | None) -> Any:
    """`value` with ALERT_ID_SLOT replaced by the alert's id in every string (a link to decide on that alert)."""
    if isinstance(value, str):
        return value.replace(ALERT_ID_SLOT, str(alert_id)) if alert_id is not None else value
    if isinstance(value, dict):
        return {k: _with_alert_id(v, alert_id) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_alert_id(v, alert_id) for v in value]
    return value


def _story_of(s: Session, alert_id: int) -> int:
    row = s.get(AlertRow, alert_id)
    if row is None:
        return alert_id
    return row.story or row.id

