"""Delivering the outbox: every due message tried once through its channel, then sent, failed or retried later.

At-least-once: a message is claimed before each attempt (a compare-and-set on its attempt count, so two workers
never send it at the same time) and marked sent only after its channel accepted it; a worker killed in between
leaves it to be retried after the lease. Receivers tell a retry from a new message by its delivery id.

A channel that is down (a 5xx, a timeout, a refused connection, an SMTP 4xx) delays its messages with an exponential
backoff; one that refuses a message (a 4xx, an SMTP 5xx, a missing setting) fails it at once, visibly, with no retry
storm. A message still not delivered after MAX_ATTEMPTS is failed too, and can be sent again by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from kpilot.alerting.message import Message
from kpilot.model.channels import Channel, is_email
from kpilot.model.workspace import Workspace
from kpilot.store.alert_log import OutboxRecord

FIRST_RETRY = timedelta(minutes=1)
LONGEST_WAIT = timedelta(hours=6)
MAX_ATTEMPTS = 16  # about three days of retries with the backoff below
LEASE = timedelta(minutes=5)  # a claimed message is tried again after this if its worker died mid-send
MAILTO = "mailto:"  # a message's channel `mailto:<address>`: an e-mail to that address (the review's `to:`)


class DeliveryLike(Protocol):
    @property
    def outcome(self) -> str: ...
    @property
    def detail(self) -> str: ...
    @property
    def retry_after(self) -> float | None: ...


Send = Callable[[Channel, Message, Mapping[str, str]], DeliveryLike]


class OutboxStore(Protocol):
    def due_messages(self, workspace: str, now: datetime, *, limit: int = 100) -> list[OutboxRecord]: ...
    def claim_message(self, message_id: int, attempts: int, now: datetime, lease: timedelta) -> bool: ...
    def message_done(self, message_id: int, state: str, *, error: str | None = None,
                     next_attempt_at: datetime | None = None) -> None: ...


@dataclass
class DeliveryReport:
    """What one pass over the outbox did."""

    sent: list[str] = field(default_factory=list)  # delivery ids
    retrying: list[tuple[str, str]] = field(default_factory=list)  # (delivery id, why)
    failed: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"sent": self.sent, "retrying": [{"delivery_id": d, "error": e} for d, e in self.retrying],
                "failed": [{"delivery_id": d, "error": e} for d, e in self.failed]}


def backoff(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed attempt: 1, 2, 4... minutes, at most 6 hours."""
    wait: timedelta = FIRST_RETRY * (2 ** max(0, attempts - 1))
    return min(wait, LONGEST_WAIT)


def default_send(channel: Channel, message: Message, environ: Mapping[str, str]) -> DeliveryLike:
    from kpilot.alerting.channels import deliver

    return deliver(channel, message, environ)


def address_channel(key: str) -> Channel | None:
    """The e-mail channel a `mailto:<address>` key stands for; None for any other key."""
    address = key.removeprefix(MAILTO)
    if not key.startswith(MAILTO) or not is_email(address):
        return None
    # Built without validation: the key keeps its address (a declared channel's key may not hold '@').
    return Channel.model_construct(key=key, type="email", to=[address])


def deliver_due(store: OutboxStore, ws: Workspace, environ: Mapping[str, str], *, now: datetime | None = None,
                send: Send = default_send, limit: int = 100) -> DeliveryReport:
    """Try every due message of the workspace once."""
    now = now or datetime.now(UTC)
    report = DeliveryReport()
    channels = {c.key: c for c in ws.channels}
    for record in store.due_messages(ws.workspace, now, limit=limit):
        if not store.claim_message(record.id, record.attempts, now, LEASE):
            continue  # another worker has it
        attempts = record.attempts + 1
        channel = channels.get(record.channel) or address_channel(record.channel)
        if channel is None:
            why = f"channel '{record.channel}' is no longer declared in kpilot.yaml"
            store.message_done(record.id, "failed", error=why)
            report.failed.append((record.delivery_id, why))
            continue
        try:
            result = send(channel, Message.from_dict(record.message), environ)
            outcome, detail, wait = result.outcome, result.detail, result.retry_after
        except Exception as exc:  # a channel must not stop the others; the message is kept and retried
            # Only the exception's type: its text could hold a webhook URL, which is a secret.
            detail = f"unexpected error in the {channel.type} channel ({type(exc).__name__})"
            outcome, wait = "retry", None
        if outcome == "sent":
            store.message_done(record.id, "sent")
            report.sent.append(record.delivery_id)
        elif outcome == "retry" and attempts < MAX_ATTEMPTS:
            later = now + max(backoff(attempts), timedelta(seconds=wait or 0))
            store.message_done(record.id, "pending", error=detail, next_attempt_at=later)
            report.retrying.append((record.delivery_id, detail))
        else:
            store.message_done(record.id, "failed", error=detail)
            report.failed.append((record.delivery_id, detail))
    return report


__all__ = ["MAILTO", "MAX_ATTEMPTS", "DeliveryReport", "address_channel", "backoff", "deliver_due"]
