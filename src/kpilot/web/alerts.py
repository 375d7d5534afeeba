"""The alerts page: the open alerts, newest first, to acknowledge, snooze or decide on; the messages the outbox could
not deliver, to send again; the alerts resolved lately. Changes go through `kpilot.service.alerts`, as the CLI's."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from kpilot.model import KpilotError
from kpilot.model.errors import msg
from kpilot.service import AlertRecord
from kpilot.service import alerts as service
from kpilot.service.alerts import unreached
from kpilot.web import alert_views, auth, views
from kpilot.web.settings import Forms, form_field
from kpilot.web.state import WorkspaceGate

WAITING_COUNTED = 100_000  # pending messages counted at most


class NotFound(KpilotError):
    """An alert or a message that is not in the workspace (HTTP 404)."""

    status = 404


def acknowledge(gate: WorkspaceGate, alert_id: int, by: str | None, actor: str | None = None) -> AlertRecord:
    """Acknowledge through the service (which refuses an unknown alert, 404, or a resolved one, 409): no more
    messages about the alert until it resolves. `by`: who takes it (default: who asks)."""
    with gate.service() as svc:
        return service.acknowledge(svc, alert_id, by or actor, actor=actor)


def snooze(gate: WorkspaceGate, alert_id: int, until: str, actor: str | None = None) -> AlertRecord:
    """Snooze through the service until a day after today (the service refuses another day, 422)."""
    day = views.a_day(until)
    with gate.service() as svc:
        return service.snooze(svc, alert_id, day, actor=actor)


def may_change_alert(request: Request, gate: WorkspaceGate, alert_id: int) -> None:
    """Forbidden unless the asker may change the KPI the alert is about (an unknown alert: the change says 404)."""
    ws = gate.primary.ws
    found = gate.store.alert(ws.workspace, alert_id)
    if found is not None and found.metric in ws.metric_keys:
        auth.require_change(request, ws.metric(found.metric).owners)


def retry(gate: WorkspaceGate, message_id: int) -> None:
    """Put a message that failed back in the outbox's queue (NotFound when there is no such failed message)."""
    if not gate.store.retry_message(gate.primary.ws.workspace, message_id):
        raise NotFound(msg("there is no undelivered message {id} in workspace '{workspace}'. Fix: see the alerts "
                           "page for the messages not delivered.", id=message_id,
                           workspace=gate.primary.ws.workspace))


def register(app: FastAPI, gate: WorkspaceGate, forms: Forms) -> None:
    """Mount /alerts (the page, acknowledge, snooze, send a message again) on the app."""

    @app.get("/alerts", response_class=HTMLResponse)
    async def alerts_page(request: Request) -> Response:
        """The open alerts with what to do about them; the messages not delivered; the alerts resolved lately."""
        page = forms.page_of(request)
        ws = page.ws.workspace
        alerts = await run_in_threadpool(gate.store.alerts, ws)
        failed = await run_in_threadpool(lambda: gate.store.outbox(ws, states=["failed"]))
        waiting = await run_in_threadpool(lambda: gate.store.outbox(ws, states=["pending"], limit=WAITING_COUNTED))
        nowhere = [page.team(t) for t in unreached(page.ws, [a for a in alerts if a.state != "resolved"])]
        return forms.reply(request, "alerts.html", page, unreached=nowhere,
                           open=[alert_views.alert_row(a, page) for a in alerts if a.state != "resolved"],
                           resolved=[alert_views.alert_row(a, page)
                                     for a in alert_views.recently_resolved(alerts, page)],
                           failed=[alert_views.outbox_row(m, page) for m in failed], waiting=len(waiting),
                           first_snooze_day=(gate.today() + timedelta(days=1)).isoformat())

    async def change(request: Request, make: Callable[[dict[str, list[str]]], object],
                     alert_id: int | None = None) -> Response:
        """A posted form's change (refused without the form's token, or to who may not change the alert's KPI),
        then back to the alerts page."""
        got = await forms.posted(request)
        if got is None:
            return forms.refused(request)
        form, page = got
        if alert_id is not None:
            await run_in_threadpool(may_change_alert, request, gate, alert_id)
        return await forms.then(request, page, lambda: make(form), "/alerts" + page.query())

    @app.post("/alerts/{alert_id}/ack", response_class=HTMLResponse)
    async def ack(request: Request, alert_id: int) -> Response:
        """Acknowledge an alert (who takes it: the form's `by`, optional)."""
        return await change(request, lambda form: acknowledge(gate, alert_id, form_field(form, "by") or None,
                                                              auth.actor(request)), alert_id)

    @app.post("/alerts/{alert_id}/snooze", response_class=HTMLResponse)
    async def snooze_alert(request: Request, alert_id: int) -> Response:
        """Snooze an alert until the form's `until` (a day after today)."""
        return await change(request, lambda form: snooze(gate, alert_id, form_field(form, "until"),
                                                         auth.actor(request)), alert_id)

    @app.post("/alerts/outbox/{message_id}/retry", response_class=HTMLResponse)
    async def send_again(request: Request, message_id: int) -> Response:
        """Put a message that could not be delivered back in the queue (the worker sends it)."""
        return await change(request, lambda form: retry(gate, message_id))


__all__ = ["NotFound", "acknowledge", "may_change_alert", "register", "retry", "snooze"]
