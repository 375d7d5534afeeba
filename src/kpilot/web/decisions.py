"""The decisions page and the decision form: the log with each decision's expected and measured effect, the rules
that fire now, and a decision recorded (from this page, a KPI's page or an alert) through
`kpilot.service.decisions.decide`, which keeps the forecast made before it to measure the effect against.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from kpilot.model import KpilotError, Metric
from kpilot.model.errors import msg
from kpilot.service import AlertRecord, AppStore, DecisionRecord
from kpilot.service import decisions as service
from kpilot.web import alert_views, alignment, auth, views
from kpilot.web.settings import Forms, form_field, known
from kpilot.web.state import WorkspaceGate

BACK = {"metric": "/metric/{key}{query}#decision-log", "alerts": "/alerts{query}"}  # where a form returns to


@dataclass(frozen=True)
class Prefill:
    """What the decision form starts with: the KPI, the team that acts and the rule's action; from an alert, its id
    and its reason."""

    key: str
    name: str
    owner_key: str
    action: str
    condition: str = ""
    period_label: str = ""
    alert_id: int | None = None
    reason: str = ""


def prefill(m: Metric, page: views.Page, alert: AlertRecord | None = None) -> Prefill:
    """The form for a decision on `m` (answering `alert`, when given)."""
    rule = m.decision
    owner = rule.owner if rule else (m.owners[0] if m.owners else "")
    action = rule.action if rule else ""
    if alert is None:
        return Prefill(m.key, m.label, owner, action)
    return Prefill(m.key, m.label, str(alert.payload.get("owner") or owner),
                   str(alert.payload.get("action") or action), alert_id=alert.id,
                   reason=alert_views.alert_row(alert, page).reason)


@dataclass(frozen=True)
class DecisionForm:
    """A posted decision, checked: what `decide` takes, and the note kept beside it."""

    action: str
    owner: str | None
    by: str | None
    expected_effect: str | None
    review_on: date
    alert_id: int | None
    note: str | None


def review_for(m: Metric, expected_effect: str | None, review_on: date | None, day: date) -> date:
    """The review date the service will take, checked by the service (Refused, for the form, otherwise)."""
    try:
        return service.review_day(m, expected_effect, review_on, day)
    except KpilotError as exc:
        raise views.Refused(exc.message) from None


def answered_alert(store: AppStore, workspace: str, alert_id: int, key: str) -> AlertRecord:
    """The alert a decision answers, checked by the service (Refused, for the form, otherwise)."""
    try:
        return service.answered_alert(store, workspace, alert_id, key)
    except KpilotError as exc:
        raise views.Refused(exc.message) from None


def read_decision(form: dict[str, list[str]], gate: WorkspaceGate, page: views.Page, key: str) -> DecisionForm:
    """The decision form's fields, checked (Refused names the one at fault)."""
    review = form_field(form, "review_on")
    effect = form_field(form, "expected_effect") or None
    alert = form_field(form, "alert_id")
    alert_id: int | None = None
    if alert:
        if not alert.isdigit() or len(alert) > 10:
            raise views.Refused(msg("'{text}' is not an alert id. Fix: decide from the alerts page.", text=alert))
        alert_id = answered_alert(gate.store, page.ws.workspace, int(alert), key).id
    return DecisionForm(action=form_field(form, "action"), owner=form_field(form, "owner") or None,
                        by=form_field(form, "by") or None, expected_effect=effect,
                        review_on=review_for(page.ws.metric(key), effect, views.a_day(review) if review else None,
                                             page.as_of), alert_id=alert_id, note=form_field(form, "note") or None)


def record(gate: WorkspaceGate, page: views.Page, key: str, f: DecisionForm, actor: str | None = None
           ) -> DecisionRecord:
    """Record the decision through the service, as of the page's date (its counterfactual is the forecast made
    then); the note is kept beside it."""
    with gate.service() as svc:
        made = service.decide(svc, key, action=f.action, by=f.by or actor, owner=f.owner,
                              expected_effect=f.expected_effect, review_on=f.review_on, alert_id=f.alert_id,
                              today=page.as_of, actor=actor)
    if f.note:
        made = gate.store.update_decision(page.ws.workspace, made.id, status=made.status, note=f.note, user=actor)
    return made


def register(app: FastAPI, gate: WorkspaceGate, forms: Forms) -> None:
    """Mount /decisions (the page, the form, closing a decision) on the app."""

    @app.get("/decisions", response_class=HTMLResponse)
    async def decisions_page(request: Request) -> Response:
        """The decision log, the rules that fire now ready to be recorded, and the form asked for by a link (a KPI's,
        an alert's: ?metric=KEY&alert=ID)."""
        page = forms.page_of(request)
        ws = page.ws
        log = await run_in_threadpool(gate.store.decisions, ws.workspace)
        statuses = await run_in_threadpool(gate.board, page.as_of)
        firing = []
        for s in statuses:
            if s.fires:
                done = views.decided_now(s, log)
                firing.append(replace(alignment.firing(s, page),
                                      decided=views.decided_by(done, page) if done else None))
        asked = None
        key = request.query_params.get("metric")
        if key:
            alert = None
            alert_id = request.query_params.get("alert", "")
            if alert_id:
                alert = gate.store.alert(ws.workspace, int(alert_id)) if alert_id.isdigit() and len(alert_id) < 10 \
                    else None
                if alert is None:
                    raise views.PageError(404, msg("there is no alert {id} in workspace '{workspace}'. Fix: see "
                                                   "`kpilot alerts` for the ids.", id=alert_id,
                                                   workspace=ws.workspace))
            asked = prefill(known(page, key), page, alert)
        return forms.reply(request, "decisions.html", page, log=[alignment.decision_row(d, page) for d in log],
                           firing=firing, asked=asked, teams=ws.teams)

    @app.post("/decisions", response_class=HTMLResponse)
    async def record_decision(request: Request) -> Response:
        """Record a decision on a KPI (open until closed), with its expected effect and review date; back to the
        page the form was on."""
        got = await forms.posted(request)
        if got is None:
            return forms.refused(request)
        form, page = got
        metric = known(page, form_field(form, "metric"))
        auth.require_change(request, metric.owners)
        try:
            fields = read_decision(form, gate, page, metric.key)
        except views.Refused as exc:
            return forms.failed(request, page, exc)
        back = BACK.get(form_field(form, "back"), "/decisions{query}#log")
        return await forms.then(request, page, lambda: record(gate, page, metric.key, fields, auth.actor(request)),
                                back.format(key=metric.key, query=page.query()))

    @app.post("/decisions/{decision_id}", response_class=HTMLResponse)
    async def close_decision(request: Request, decision_id: int) -> Response:
        """Close a decision: done or declined."""
        got = await forms.posted(request)
        if got is None:
            return forms.refused(request)
        form, page = got
        about = decision_metric(gate, page.ws.workspace, decision_id)
        if about is not None and about in page.ws.metric_keys:
            auth.require_change(request, page.ws.metric(about).owners)
        return await forms.then(request, page, lambda: gate.store.update_decision(
            page.ws.workspace, decision_id, status=form_field(form, "status") or "done",
            note=form_field(form, "note") or None, user=auth.actor(request)), "/decisions" + page.query())


def decision_metric(gate: WorkspaceGate, workspace: str, decision_id: int) -> str | None:
    """The KPI a decision of the log is about (None: no such decision; changing it then answers 404)."""
    found = gate.store.decision(workspace, decision_id)
    return None if found is None else found.metric


__all__ = ["DecisionForm", "Prefill", "answered_alert", "decision_metric", "prefill", "read_decision", "record",
           "register", "review_for"]
