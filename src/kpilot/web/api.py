"""The REST API under /api/v1: the workspace, metric definitions, series, status, findings, the decision log,
and a push endpoint for other systems. Thin: every answer comes from `WorkspaceGate` (the same services and
cache as the pages) or from `AppStore`.

Errors are JSON `{"error": {"message", "fix", "issues"?}}` with the status that says what went wrong (400 a bad
parameter, 404 an unknown metric or decision, 409 an idempotency key reused with another body, 422 a body that
does not validate); an unexpected error is logged and answered as a 500 without its traceback.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import date, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import Field, field_validator
from starlette.concurrency import run_in_threadpool

from kpilot.insights.findings import Finding
from kpilot.model import KpilotError, WorkspaceInvalid
from kpilot.model.errors import message_of, msg, render
from kpilot.model.overrides import metric_path
from kpilot.model.periods import Grain, NotADay, parse_day, period_range
from kpilot.model.workspace import Workspace
from kpilot.service import AppStore, DecisionRecord
from kpilot.service import decisions as service_decisions
from kpilot.web import admin, api_alerts, auth, decisions
from kpilot.web.api_common import (
    ApiError,
    Body,
    JsonErrors,
    bad_field,
    caller_translator,
    metric_key,
    no_nul,
)
from kpilot.web.api_push import PUSH_SCHEMAS, PushRows, PushValues, push_body, push_table, pushed_value
from kpilot.web.decisions import decision_metric
from kpilot.web.guard import read_body
from kpilot.web.locale import COOKIE, choose_language, web_translator
from kpilot.web.state import WorkspaceGate
from kpilot.web.views import Refused

PREFIX = "/api/v1"
VERSION = "1"
log = logging.getLogger("kpilot.web.api")


# --- bodies -------------------------------------------------------------------------------------------

class DecisionIn(Body):
    """A decision to add to the log. With `expected_effect`, `review_on` or `alert_id`, it is recorded through the
    service with the KPI's forecast made now (the counterfactual its effect is measured against at the review): its
    period is then the one holding today, and `period` may be left out."""

    metric: str = Field(min_length=1, max_length=200, description="the metric's key")
    period: str | None = Field(default=None, min_length=1, max_length=40,
                               description="the period it is about, e.g. 2026-11 or 2026-W46 (required without "
                                           "expected_effect, review_on and alert_id)")
    action: str = Field(min_length=1, max_length=5000, description="what was decided")
    owner: str | None = Field(default=None, max_length=200, description="who carries it out (a team key)")
    status: Literal["open", "done", "declined"] = "open"
    note: str | None = Field(default=None, max_length=5000)
    by: str | None = Field(default=None, max_length=200, description="who decided (a name or a team)")
    expected_effect: str | None = Field(default=None, max_length=5000,
                                        description="in words, e.g. \"+15 % demos within 3 weeks\" (the share and "
                                                    "the delay are read from it)")
    review_on: date | None = Field(default=None, description="when to measure the effect (YYYY-MM-DD, after today); "
                                                             "default: from expected_effect, else the rule's")
    alert_id: int | None = Field(default=None, ge=1, le=2**31 - 1, description="the alert this decision answers")

    _text = field_validator("metric", "period", "action", "owner", "note", "by", "expected_effect")(no_nul)

    @property
    def measured(self) -> bool:
        """Whether the decision's effect is to be measured (recorded through the service)."""
        return self.expected_effect is not None or self.review_on is not None or self.alert_id is not None


class DecisionPatch(Body):
    """A decision's new status, and optionally a note."""

    status: Literal["open", "done", "declined"]
    note: str | None = Field(default=None, max_length=5000)

    _text = field_validator("note")(no_nul)


class AnnotationIn(Body):
    """A note on a metric's history at a period (a launch, an outage, a price change)."""

    metric: str = Field(min_length=1, max_length=200, description="the metric's key")
    period: str = Field(min_length=1, max_length=40, description="the period it is about, e.g. 2026-11")
    text: str = Field(min_length=1, max_length=5000)

    _text = field_validator("metric", "period", "text")(no_nul)


class SettingsIn(Body):
    """A metric's settings, as the Settings page edits them (each field optional; null: back to kpilot.yaml's).

    Checked with kpilot.yaml's rules: the same shapes as in the file (`targets: [{from, to, value}]`, `bands:
    {green, amber}`, `owners: [team keys]`, `decision: {when, owner, action}`)."""

    targets: list[dict[str, Any]] | None = Field(default=None, max_length=500)
    bands: dict[str, Any] | None = None
    owners: list[str] | None = Field(default=None, max_length=50)
    decision: dict[str, Any] | None = None


# --- errors -------------------------------------------------------------------------------------------

# --- the router ---------------------------------------------------------------------------------------

def router(gate: WorkspaceGate) -> APIRouter:
    """The /api/v1 routes of one workspace's server, with their OpenAPI description and docs page."""
    api = APIRouter(prefix=PREFIX, route_class=JsonErrors, tags=["kpilot"])

    def store_of(request: Request) -> AppStore:
        """The server's application database (the gate opened it, with the settings every door serves)."""
        return gate.store
    openapi: dict[str, Any] = {}

    def ws() -> Workspace:
        gate.refresh()
        return gate.primary.ws

    @api.get("/workspaces", summary="This server's workspace")
    def workspaces() -> list[dict[str, object]]:
        """The workspace this server steers (one per server): its key, title, language, North Star and board."""
        w = ws()
        return [{"key": w.workspace, "title": w.title, "language": w.language.value, "north_star": w.north_star,
                 "board": list(w.board)}]

    @api.get("/metrics", summary="Metric definitions")
    def metrics() -> list[dict[str, object]]:
        """Every metric as defined in kpilot.yaml, with the settings edited in the web app applied."""
        return [_definition(m) for m in ws().metrics]

    @api.get("/metrics/{key}", summary="One metric's definition")
    def metric(key: str) -> dict[str, object]:
        """A metric as defined in kpilot.yaml, with the settings edited in the web app applied."""
        w = ws()
        return _definition(w.metric(metric_key(w, key)))

    @api.put("/metrics/{key}/settings", summary="Change a metric's settings")
    def put_settings(request: Request, key: str, body: SettingsIn) -> dict[str, object]:
        """Targets, bands, owners and decision rule, as the Settings page saves them: checked with kpilot.yaml's
        rules (422 with the field of each problem), then served by every door. Fields left out keep their value;
        null puts back kpilot.yaml's. Returns the metric's definition as now served."""
        w = ws()
        metric_key(w, key)
        fields = {name: getattr(body, name) for name in body.model_fields_set}
        try:
            with gate.service() as svc:
                served = svc.save_settings(key, fields, by=auth.actor(request))
        except WorkspaceInvalid as exc:
            where = metric_path(gate.base, key) + "."
            issues = [{"field": (i.path or "").replace(where, "", 1), "message": i.render(caller_translator(request))}
                      for i in exc.issues if i.severity == "error"]
            raise ApiError(422, msg("these settings break a rule of kpilot.yaml. Fix: correct the field(s) named in "
                                    "`issues` and send them again."), issues) from None
        gate.settings_changed()
        return _definition(served.metric(key))

    @api.get("/metrics/{key}/series", summary="A metric's series")
    def series(key: str, grain: Grain | None = None,
               from_: Annotated[str | None, Query(alias="from", description="first period (e.g. 2026-01)")] = None,
               to: Annotated[str | None, Query(description="last period (e.g. 2026-11)")] = None,
               as_of: Annotated[str | None, Query(description="YYYY-MM-DD; default: today")] = None,
               ) -> list[dict[str, object]]:
        """Every period of the metric: start, label, value, target, status, complete (and numerator and
        denominator for a ratio); the current period is paced to the as-of date."""
        w = ws()
        metric_key(w, key)
        first = _period(from_, "from")[0] if from_ else None
        last = _period(to, "to")[1] - timedelta(days=1) if to else None  # the last day of `to`
        day = _as_of(as_of, gate)
        with gate.service() as svc:
            return svc.series(key, grain=grain, first=first, last=last, as_of=day)

    @api.get("/metrics/{key}/pushed", summary="Values pushed for a metric")
    def pushed(request: Request, key: str) -> list[dict[str, object]]:
        """The latest value pushed per period for this metric (POST /push)."""
        w = ws()
        return [v.to_dict() for v in store_of(request).pushed_values(w.workspace, metric_key(w, key))]

    @api.get("/status", summary="The board's status")
    def status(as_of: Annotated[str | None, Query(description="YYYY-MM-DD; default: today")] = None
               ) -> list[dict[str, object]]:
        """The North Star and the board's KPIs judged at their current period: value, target, status, pacing,
        projection and the decision rule's verdict."""
        return [s.to_dict() for s in gate.board(_as_of(as_of, gate))]

    @api.get("/findings", summary="Early warnings and anomalies")
    def findings(kind: Annotated[Literal["warning", "anomaly"] | None, Query()] = None,
                 metric: str | None = None,
                 as_of: Annotated[str | None, Query(description="YYYY-MM-DD; default: today")] = None,
                 ) -> dict[str, object]:
        """The findings on record (from `kpilot analyze`) and those of the web's own analysis as of the date,
        newest period first; `recorded` says which ones are on record. `errors` names the analyses that could
        not run, and why."""
        w = ws()
        if metric is not None:
            metric_key(w, metric)
        day = _as_of(as_of, gate)
        with gate.service() as svc:
            recorded = svc.recorded_findings(kind=kind, metric=metric)
        analysis = gate.analysis(day)
        live: list[Finding] = [*(analysis.warnings if kind in (None, "warning") else []),
                               *(analysis.anomalies if kind in (None, "anomaly") else [])]
        seen = {str(f["id"]) for f in recorded}
        out = [{**f, "recorded": True} for f in recorded]
        out += [{**jsonable_encoder(f.to_dict()), "recorded": False} for f in live
                if (metric is None or f.metric == metric) and f.id not in seen]
        out.sort(key=lambda f: (str(f.get("period") or ""), str(f["id"])), reverse=True)
        return {"as_of": day.isoformat(), "findings": jsonable_encoder(out),
                "errors": {k: render(v, web_translator("en")) for k, v in analysis.errors.items()}}

    @api.get("/decisions", summary="The decision log")
    def decisions(request: Request, metric: str | None = None) -> list[dict[str, object]]:
        """Decisions taken or declined about the KPIs, newest first."""
        w = ws()
        return [d.to_dict() for d in store_of(request).decisions(w.workspace, _metric_filter(w, metric))]

    @api.post("/decisions", status_code=201, summary="Log a decision")
    def add_decision(request: Request, body: DecisionIn) -> dict[str, object]:
        """Add a decision to the log (status open, done or declined). With expected_effect, review_on or alert_id,
        the decision is recorded with the forecast made now, and its effect is measured at review_on."""
        w = ws()
        _check_about(w, body)
        auth.require_change(request, w.metric(body.metric).owners)
        actor = auth.actor(request)
        store = store_of(request)
        if not body.measured:
            if body.period is None:
                raise bad_field(422, "period", "required without expected_effect, review_on and alert_id")
            return store.add_decision(w.workspace, body.metric, period=body.period, action=body.action,
                                      owner=body.owner, status=body.status, note=body.note, user=body.by or actor,
                                      actor=actor).to_dict()
        return _decide(gate, w, body, actor).to_dict()

    @api.patch("/decisions/{decision_id}", summary="Change a decision's status")
    def update_decision(request: Request, decision_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
                        body: DecisionPatch) -> dict[str, object]:
        """Mark a decision done or declined (or open again), with an optional note."""
        w = ws()
        about = decision_metric(gate, w.workspace, decision_id)
        if about is not None and about in w.metric_keys:
            auth.require_change(request, w.metric(about).owners)
        return store_of(request).update_decision(w.workspace, decision_id, status=body.status, note=body.note,
                                                 user=auth.actor(request)).to_dict()

    @api.get("/annotations", summary="Notes on metrics' history")
    def annotations(request: Request, metric: str | None = None) -> list[dict[str, object]]:
        """Notes on the metrics' history, in period order."""
        w = ws()
        return [a.to_dict() for a in store_of(request).annotations(w.workspace, _metric_filter(w, metric))]

    @api.post("/annotations", status_code=201, summary="Annotate a metric's history")
    def add_annotation(request: Request, body: AnnotationIn) -> dict[str, object]:
        """Add a note at a period of a metric's history (e.g. a release sent by a deployment pipeline)."""
        w = ws()
        _check_about(w, body)
        auth.require_change(request, w.metric(body.metric).owners)
        return store_of(request).add_annotation(w.workspace, body.metric, period=body.period, text=body.text,
                                                user=auth.actor(request)).to_dict()

    @api.post("/push", summary="Push metric values or rows", openapi_extra={"requestBody": {
        "required": True, "content": {"application/json": {"schema": {"oneOf": PUSH_SCHEMAS["anyOf"]}}}}})
    async def push(request: Request, idempotency_key: Annotated[str | None, Header(
            max_length=200, description="the same key and body answer the same response without pushing twice; "
            "the same key with another body is refused (409)")] = None) -> JSONResponse:
        """Send metric values (`{metric, period, value}` or `{values: [...]}`) or rows of a table
        (`{table, rows: [...]}`, to a table a push source declares) from another system. They are kept in the
        application database (append-only; the latest value per metric and period wins) and materialized into
        the warehouse at once, where models read them: see docs/api.md."""
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/json":
            # A browser sends text/plain or a form across sites without asking first: only JSON is taken.
            raise ApiError(415, msg("a push is JSON: the Content-Type was '{type}'. Fix: send the body with "
                                    "Content-Type: application/json.", type=media or "none"))
        raw = await read_body(request)
        try:
            data = json.loads(raw) if raw else None
        except RecursionError:
            raise ApiError(422, msg("the body is nested too deeply to read. Fix: send a flat JSON object, as "
                                    "docs/api.md shows.")) from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(422, msg("the body is not JSON ({reason}). Fix: send a JSON object with "
                                    "Content-Type: application/json.", reason=str(exc))) from exc
        return await run_in_threadpool(_push, request, data, idempotency_key)

    def _push(request: Request, data: object, key: str | None) -> JSONResponse:
        w = ws()
        store = store_of(request)
        fingerprint = hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
        if key is not None:
            if "\x00" in key or not key.strip():
                raise bad_field(422, "Idempotency-Key", "empty")
            replay = store.seen_push(w.workspace, key, fingerprint)
            if replay is not None:
                return JSONResponse(replay, headers={"Idempotent-Replayed": "true"})
        body = push_body(data)
        values: list[tuple[str, str, float]] = []
        rows: list[tuple[str, dict[str, object]]] = []
        if isinstance(body, PushRows):
            auth.require_unscoped(request)  # a table belongs to no team
            push_table(w, body)
            rows = [(body.table, dict(r)) for r in body.rows]
            response: dict[str, object] = {"accepted": {"rows": len(rows)}, "table": body.table}
        else:
            items = body.values if isinstance(body, PushValues) else [body]
            values = [pushed_value(w, v, f"values[{i}]" if isinstance(body, PushValues) else "")
                      for i, v in enumerate(items)]
            for metric in sorted({m for m, _, _ in values}):
                auth.require_change(request, w.metric(metric).owners)
            response = {"accepted": {"values": len(values)},
                        "values": [{"metric": m, "period": p, "value": v} for m, p, v in values]}
        response["idempotency_key"] = key
        earlier = store.record_push(w.workspace, key=key, fingerprint=fingerprint, response=response,
                                    values=values, rows=rows)
        if earlier is not None:  # a concurrent request with the same key and body won
            return JSONResponse(earlier, headers={"Idempotent-Replayed": "true"})
        try:
            gate.pushed()  # the metrics read the new rows from the next request on
        except KpilotError as exc:  # the push is kept; the previous table stays until a load succeeds
            log.warning("pushed data not materialized: %s", render(exc.message, web_translator("en")))
        return JSONResponse(response)

    api_alerts.register(api, gate)  # /alerts, /outbox
    admin.register_api(api, gate)  # /users, /tokens, /changes (admins)

    @api.get("/openapi.json", include_in_schema=False)
    def openapi_json() -> JSONResponse:
        if not openapi:
            openapi.update(_openapi(api))
        return JSONResponse(openapi)

    @api.get("/docs", include_in_schema=False, response_class=HTMLResponse)
    def docs(request: Request) -> HTMLResponse:
        if not openapi:
            openapi.update(_openapi(api))
        w = gate.primary.ws
        lang = choose_language(request.cookies.get(COOKIE), w.language.value)
        page = _docs_env().get_template("api_docs.html").render(
            _=web_translator(lang), lang=lang, spec=openapi, prefix=PREFIX, operations=_operations(openapi),
            base_path=request.scope.get("root_path", ""))
        return HTMLResponse(page, headers={"Content-Security-Policy": "default-src 'self'; style-src 'self'"})

    @api.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    def not_found(request: Request, path: str) -> None:
        raise ApiError(404, msg("no API endpoint {method} /api/v1/{path}. Fix: see /api/v1/docs for the endpoints.",
                                method=request.method, path=path))

    return api


# --- helpers ------------------------------------------------------------------------------------------

def _definition(m: Any) -> dict[str, object]:
    """A metric's definition as JSON, in kpilot.yaml's field names."""
    out: dict[str, object] = m.model_dump(mode="json", by_alias=True, exclude_none=True)
    return out


def _metric_filter(workspace: Workspace, metric: str | None) -> str | None:
    """The ?metric= of a list: a known metric's key (404 otherwise), or None for every metric."""
    if metric is not None:
        metric_key(workspace, metric)
    return metric


def _check_about(workspace: Workspace, body: DecisionIn | AnnotationIn) -> None:
    """The metric and period a decision or an annotation is about, or a 422 naming the field at fault."""
    metric_key(workspace, body.metric, "metric")
    if body.period is not None:
        _period(body.period, "period", 422)


def _decide(gate: WorkspaceGate, workspace: Workspace, body: DecisionIn, actor: str | None = None) -> DecisionRecord:
    """A decision recorded through the service (as the pages and `kpilot decide` do), its counterfactual kept."""
    today = gate.today()
    where = "expected_effect" if body.review_on is None and body.expected_effect else "review_on"
    try:
        review = decisions.review_for(workspace.metric(body.metric), body.expected_effect, body.review_on, today)
        where = "alert_id"
        if body.alert_id is not None:
            decisions.answered_alert(gate.store, workspace.workspace, body.alert_id, body.metric)
    except Refused as exc:
        raise ApiError(422, exc.message, [{"field": where, "message": str(exc)}]) from None
    with gate.service() as svc:
        made = service_decisions.decide(svc, body.metric, action=body.action, by=body.by or actor, owner=body.owner,
                                        expected_effect=body.expected_effect, review_on=review,
                                        alert_id=body.alert_id, today=today, actor=actor)
    if body.status != "open" or body.note is not None:
        made = gate.store.update_decision(workspace.workspace, made.id, status=body.status, note=body.note,
                                          user=actor)
    return made


def _period(value: str, field: str, status: int = 400) -> tuple[date, date]:
    """[first day, first day after) of a period parameter (400) or body field (422)."""
    try:
        return period_range(value)
    except ValueError as exc:
        reason = exc.args[0] if exc.args else str(exc)
        raise bad_field(status, field, reason) from exc


def _as_of(value: str | None, gate: WorkspaceGate) -> date:
    """?as_of=YYYY-MM-DD; today (in the workspace's timezone) when absent."""
    if value is None or not value.strip():
        return gate.today()
    try:
        return parse_day(value)
    except NotADay as exc:
        raise ApiError(400, message_of(exc), [{"field": "as_of",
                                               "message": "out of range" if exc.out_of_range else "YYYY-MM-DD"}]
                       ) from None


def _openapi(api: APIRouter) -> dict[str, Any]:
    spec = get_openapi(title="kpilot API", version=VERSION, routes=api.routes,
                       description="The REST API of a kpilot server: see docs/api.md.")
    spec.setdefault("components", {}).setdefault("schemas", {}).update(PUSH_SCHEMAS.get("$defs", {}))
    return spec


def _operations(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The operations of an OpenAPI spec, for the docs page."""
    out = []
    for path, methods in spec.get("paths", {}).items():
        for method, op in methods.items():
            out.append({"method": method.upper(), "path": path, "summary": op.get("summary", ""),
                        "description": op.get("description", ""),
                        "parameters": [{"name": p["name"], "in": p["in"], "required": p.get("required", False),
                                        "description": p.get("description", "")} for p in op.get("parameters", [])],
                        "body": "requestBody" in op,
                        "responses": sorted(op.get("responses", {}))})
    return out


_ENV: list[Environment] = []


def _docs_env() -> Environment:
    if not _ENV:
        _ENV.append(Environment(loader=PackageLoader("kpilot.web", "templates"),
                                autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True))
    return _ENV[0]


__all__ = ["PREFIX", "router"]
