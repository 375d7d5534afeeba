"""The alerts in the REST API: list them, acknowledge or snooze one (through `kpilot.service.alerts`, as the page and
the CLI), and the outbox's messages, with a failed one put back in the queue. Mounted on the /api/v1 router, so its
errors are answered by the one place that maps them (`api_common.JsonErrors`): 404 an unknown alert or message, 409
a resolved alert, 422 a bad date."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import Field, field_validator

from kpilot.model import KpilotError
from kpilot.web import alerts, auth
from kpilot.web.api_common import ApiError, Body, no_nul
from kpilot.web.state import WorkspaceGate

AlertState = Literal["pending", "firing", "acknowledged", "snoozed", "resolved"]
OutboxState = Literal["pending", "sent", "failed", "unrouted", "held", "digested"]
Id = Annotated[int, Path(ge=1, le=2**31 - 1)]


class AckIn(Body):
    """Who takes the alert (a name or a team; optional)."""

    by: str | None = Field(default=None, max_length=200, description="who takes it")

    _text = field_validator("by")(no_nul)


class SnoozeIn(Body):
    """Until when the alert stays quiet."""

    until: date = Field(description="YYYY-MM-DD, after today: no message before it; if its condition still holds "
                                    "then, the alert fires again")


def register(api: APIRouter, gate: WorkspaceGate) -> None:
    """Add the alert and outbox routes to the API's router (before its catch-all)."""

    def workspace() -> str:
        gate.refresh()
        return gate.primary.ws.workspace

    @api.get("/alerts", summary="Alerts")
    def list_alerts(state: Annotated[AlertState | None, Query(description="only the alerts in this state")] = None,
                    ) -> list[dict[str, object]]:
        """The alerts, newest first: what they are about (kind, metric, story), their state, severity, recipients
        (team keys) and the payload the board or the analysis gave when they were raised (name, verdict,
        period_label, value, target, unit, owner, action, ...)."""
        return [a.to_dict() for a in gate.store.alerts(workspace(), states=[state] if state else None)]

    @api.post("/alerts/{alert_id}/ack", summary="Acknowledge an alert")
    def ack(request: Request, alert_id: Id, body: AckIn) -> dict[str, object]:
        """Someone owns the alert: no more messages about it until it resolves. Returns the alert."""
        alerts.may_change_alert(request, gate, alert_id)
        return alerts.acknowledge(gate, alert_id, body.by, auth.actor(request)).to_dict()

    @api.post("/alerts/{alert_id}/snooze", summary="Snooze an alert")
    def snooze(request: Request, alert_id: Id, body: SnoozeIn) -> dict[str, object]:
        """No message about the alert before `until` (a day after today); if its condition still holds then, it
        fires again. Returns the alert."""
        alerts.may_change_alert(request, gate, alert_id)
        try:
            return alerts.snooze(gate, alert_id, body.until.isoformat(), auth.actor(request)).to_dict()
        except KpilotError as exc:
            if getattr(exc, "status", 422) != 422:
                raise  # an unknown alert (404), a resolved one (409)
            raise ApiError(422, exc.message, [{"field": "until", "message": "must be a day after today"}]) from None

    @api.get("/outbox", summary="The outbox's messages")
    def outbox(state: Annotated[OutboxState | None, Query(description="e.g. failed: the messages not delivered")]
               = None) -> list[dict[str, object]]:
        """The messages alerts and reviews queued, newest first (at most 200): channel, recipient, kind, state
        (pending, sent, failed, unrouted: a team without a channel, held: kept for the weekly digest, digested),
        attempts, last_error, subject."""
        return [m.to_dict() for m in gate.store.outbox(workspace(), states=[state] if state else None)]

    @api.post("/outbox/{message_id}/retry", summary="Send a failed message again")
    def retry(message_id: Id) -> dict[str, object]:
        """Put a message that failed back in the queue (after its channel was fixed); the worker sends it."""
        alerts.retry(gate, message_id)
        found = [m for m in gate.store.outbox(workspace(), states=["pending"]) if m.id == message_id]
        return found[0].to_dict() if found else {"id": message_id, "state": "pending"}


__all__ = ["register"]
