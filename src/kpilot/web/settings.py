"""The settings and alignment pages, and what every page with forms shares (the form token).

Settings edit a metric's targets, bands, owners and decision rule. A form is read into the data a
kpilot.yaml would hold, checked by `kpilot.model.overrides.apply_overrides` (the pydantic model and the
semantic pass, the same rules as the file), and saved as overrides in the application database; the
gate then serves the workspace with them. Forms carry a per-browser token (a cookie and a hidden field):
a page of another site cannot post them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from babel.numbers import format_decimal
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from kpilot.i18n import LOCALES
from kpilot.model import KpilotError, Metric, WorkspaceInvalid
from kpilot.model.errors import N_, Issue, msg, render
from kpilot.model.overrides import apply_overrides, as_json, metric_path
from kpilot.model.periods import PERIOD_FORMS, period_range
from kpilot.web import alignment, auth, views
from kpilot.web.guard import read_body
from kpilot.web.state import WorkspaceGate

SESSION_COOKIE = "kpilot_session"
CSRF_FIELD = "csrf"
TARGET_ROWS_SPARE = 2  # empty target rows under the existing ones, for new periods
# The statuses a rule can wait for, in words (their keys are kpilot.yaml's).
STATUSES = {"red": N_("off track"), "amber": N_("at risk"), "green": N_("on track"), "not_green": N_("not on track")}
FORECASTS = {"miss": N_("the target will be missed"), "hit": N_("the target will be hit")}
NUMBER = re.compile(r"^[+-]?\d+(?:\.\d+)?$")
GROUPED = re.compile(r"^[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")

PageOf = Callable[[Request], views.Page]
Html = Callable[..., HTMLResponse]


class BadForm(Exception):
    """A form that did not come from one of kpilot's pages (no or a wrong token)."""


@dataclass
class FieldErrors:
    """A form's errors by the field they belong to ('targets[0]', 'bands', 'owners', 'decision', '')."""

    by_field: dict[str, list[str]] = field(default_factory=dict)

    def add(self, where: str, text: str) -> None:
        self.by_field.setdefault(where, []).append(text)

    def at(self, prefix: str) -> list[str]:
        """Errors of a field and of what it holds ('targets[1]' holds 'targets[1].value')."""
        return [t for k, texts in self.by_field.items() if k == prefix or k.startswith((prefix + ".", prefix + "["))
                for t in texts]

    def exact(self, where: str) -> list[str]:
        return self.by_field.get(where, [])

    def __bool__(self) -> bool:
        return bool(self.by_field)


def issue_errors(issues: list[Issue], base: str, tr: Any) -> FieldErrors:
    """Issues of a metric's validation, keyed by the metric's field (path without `metrics[i].`)."""
    out = FieldErrors()
    for issue in issues:
        if issue.severity != "error":
            continue
        text = render(issue.message, tr)
        if issue.fix:
            text += " " + tr("Fix: {fix}").format(fix=render(issue.fix, tr))
        where = issue.path[len(base) + 1:] if issue.path.startswith(base + ".") else ""
        out.add(where, text if where else f"{issue.path}: {text}" if issue.path else text)
    return out


# --- the form <-> the data a kpilot.yaml holds ---------------------------------------------------------


def _number(text: str, lang: str = "en") -> object:
    """A number typed in a form as the page's language writes it: "800 000" and "0,85" in French, "800,000" and
    "0.85" in English (either takes "800000", and French "0.85" too); the text itself when it is none (the check
    says why, beside the field)."""
    cleaned = re.sub(r"[\s\u202f\u00a0']", "", text)
    if lang == "fr":
        cleaned = cleaned.replace(",", ".")
    elif GROUPED.match(cleaned):  # English thousands: 1,200,000
        cleaned = cleaned.replace(",", "")
    if NUMBER.match(cleaned):
        value = float(cleaned)
        return int(value) if value.is_integer() and "." not in cleaned else value
    return text


def _shown(value: float, lang: str = "en") -> str:
    """A number as the form shows it in the page's language: 800 000 and 0,85; 800,000 and 0.85."""
    return format_decimal(value, format="#,##0.##########", locale=LOCALES.get(lang, "en_US"))


def _period(text: str) -> object:
    """A target's `from`/`to` as YAML reads it: 2026 is a year (an integer), anything else is text."""
    text = text.strip()
    return int(text) if text.isdigit() else text


def form_values(metric: Metric, lang: str = "en") -> dict[str, Any]:
    """A metric's editable fields as the form shows them, numbers in the page's language."""
    rule = metric.decision
    when = rule.when if rule else None
    return {
        "targets": [{"from": str(t.from_), "to": "" if t.to is None else str(t.to), "value": _shown(t.value, lang)}
                    for t in metric.targets],
        "green": _shown(metric.bands.green, lang), "amber": _shown(metric.bands.amber, lang),
        "owners": list(metric.owners),
        "has_rule": rule is not None,
        "status": (when.status if when else None) or "",
        "below_target": "" if when is None or when.below_target is None else _shown(when.below_target, lang),
        "forecast": (when.forecast if when else None) or "",
        "periods": str(when.periods) if when else "1",
        "rule_owner": rule.owner if rule else "",
        "action": rule.action if rule else "",
    }


def parse_form(form: dict[str, list[str]], metric: Metric, lang: str = "en"
               ) -> tuple[dict[str, object], dict[str, Any], list[int]]:
    """The fields a metric's form sets, as JSON-able override values; the values to show again; and, per
    target given, the form row it came from (to put its errors beside it)."""
    def one(name: str) -> str:
        return form_field(form, name)

    froms, tos, values = form.get("target_from", []), form.get("target_to", []), form.get("target_value", [])
    targets: list[dict[str, object]] = []
    rows: list[int] = []
    shown_targets = []
    for i, (f, t, v) in enumerate(zip(froms, tos, values, strict=False)):
        shown_targets.append({"from": f.strip(), "to": t.strip(), "value": v.strip()})
        if not (f.strip() or t.strip() or v.strip()):
            continue
        target: dict[str, object] = {"from": _period(f), "value": _number(v.strip(), lang)}
        if t.strip():
            target["to"] = _period(t)
        targets.append(target)
        rows.append(i)
    out: dict[str, object] = {"targets": targets, "owners": form.get("owners", [])}
    green, amber = one("green"), one("amber")
    out["bands"] = {"green": _number(green, lang), "amber": _number(amber, lang)} if green or amber else None
    if one("has_rule"):
        # Conditions the form does not show (trend, change_below, ...) are kept as they are.
        kept = metric.decision.when.model_dump(exclude_none=True, exclude={"status", "below_target", "forecast",
                                                                             "periods"}) if metric.decision else {}
        when: dict[str, object] = {**kept, "periods": _number(one("periods") or "1", lang)}
        if one("status"):
            when["status"] = one("status")
        if one("below_target"):
            when["below_target"] = _number(one("below_target"), lang)
        if one("forecast"):
            when["forecast"] = one("forecast")
        rule: dict[str, object] = {"when": when, "owner": one("rule_owner"), "action": one("action")}
        if metric.decision is not None and metric.decision.review_after is not None:
            rule["review_after"] = metric.decision.review_after
        out["decision"] = rule
    else:
        out["decision"] = None
    shown = {"targets": shown_targets, "green": green, "amber": amber, "owners": form.get("owners", []),
             "has_rule": bool(one("has_rule")), "status": one("status"), "below_target": one("below_target"),
             "forecast": one("forecast"), "periods": one("periods"), "rule_owner": one("rule_owner"),
             "action": one("action")}
    return out, shown, rows


# --- CSRF --------------------------------------------------------------------------------------------


def _session(request: Request) -> str:
    """This browser's session id: its cookie's, else a new one (kept on the request until the answer sets it)."""
    known = getattr(request.state, "kpilot_session", None)
    if known:
        return str(known)
    sid = request.cookies.get(SESSION_COOKIE) or ""
    if not (32 <= len(sid) <= 200 and sid.replace("-", "").replace("_", "").replace(".", "").isalnum()):
        sid = secrets.token_urlsafe(32)
    request.state.kpilot_session = sid
    return sid


def _sign(request: Request, sid: str) -> str:
    key: bytes = request.app.state.form_key
    digest = hmac.new(key, b"form:" + sid.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def csrf_token(request: Request) -> str:
    """This browser's form token: its session id signed with the server's key. A cookie and field that merely
    match are not enough; a token made for another session, or by anyone without the key, is refused."""
    return _sign(request, _session(request))


def with_token(response: Response, request: Request) -> Response:
    """The response with the browser's session cookie set (HttpOnly, SameSite=Strict; Secure behind HTTPS)."""
    secure = request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "") == "https"
    response.set_cookie(SESSION_COOKIE, _session(request), httponly=True, samesite="strict", secure=secure,
                        max_age=30 * 24 * 3600, path=base_path(request) or "/")  # one session per workspace
    return response


async def read_form(request: Request) -> dict[str, list[str]]:
    """A posted form's fields, after checking its token against the browser's session."""
    body = (await read_body(request)).decode("utf-8", errors="replace")
    form: dict[str, list[str]] = {}
    for name, value in parse_qsl(body, keep_blank_values=True):
        form.setdefault(name, []).append(value)
    sid = request.cookies.get(SESSION_COOKIE) or ""
    sent = (form.get(CSRF_FIELD) or [""])[0]
    if not sid or not hmac.compare_digest(_sign(request, sid), sent):
        raise BadForm
    return form


# --- pages with forms ---------------------------------------------------------------------------------


@dataclass
class Forms:
    """What every page with forms shares: its answer with the browser's token, the refusal of a form without it,
    a posted form and its page, a change and then back to a page."""

    page_of: PageOf
    html: Html

    def reply(self, request: Request, template: str, page: views.Page, status: int = 200, **context: Any) -> Response:
        token = csrf_token(request)
        return with_token(self.html(request, template, page, status=status, csrf=token, **context), request)

    def refused(self, request: Request) -> Response:
        page = self.page_of(request)
        return self.reply(request, "error.html", page, status=403, issues=[], message=page.tr(
            "This form has expired or did not come from this site. Open the page again and resubmit."))

    def failed(self, request: Request, page: views.Page, exc: KpilotError) -> Response:
        """The store's or the service's refusal, worded for people (422, or the error's own status)."""
        status = getattr(exc, "status", 422)
        return self.reply(request, "error.html", page, status=status if 400 <= status < 500 else 422,
                          message=render(exc.message, page.tr), issues=[])

    async def posted(self, request: Request) -> tuple[dict[str, list[str]], views.Page] | None:
        """A posted form and its page; None when the form's token is wrong."""
        try:
            form = await read_form(request)
        except BadForm:
            return None
        return form, self.page_of(request)

    async def then(self, request: Request, page: views.Page, change: Callable[[], object], back: str) -> Response:
        """Make a change (in a worker thread), then back to `back`; or the refusal, worded for people."""
        try:
            await run_in_threadpool(change)
        except KpilotError as exc:
            return self.failed(request, page, exc)
        return RedirectResponse(base_path(request) + back, status_code=303)


def known(page: views.Page, key: str) -> Metric:
    """The workspace's metric `key` (a 404 page otherwise)."""
    if key not in page.ws.metric_keys:
        raise views.PageError(404, msg("unknown metric '{metric}'", metric=key))
    return page.ws.metric(key)


# --- routes ------------------------------------------------------------------------------------------


def register(app: FastAPI, gate: WorkspaceGate, forms: Forms) -> None:
    """Mount /settings, /alignment and a KPI's annotations on the app."""
    page_of, reply, refused, posted = forms.page_of, forms.reply, forms.refused, forms.posted

    @app.get("/settings", response_class=HTMLResponse)
    def settings_index(request: Request) -> Response:
        """Every metric's targets, bands, owners and decision rule, and which of them the settings changed."""
        page = page_of(request)
        overrides = gate.overrides()
        rows = [alignment.settings_row(m, overrides.get(m.key, {}), page) for m in page.ws.metrics]
        problem = gate.override_error
        return reply(request, "settings.html", page, rows=rows,
                     override_issues=[i.render(page.tr) for i in problem.issues] if problem else [])

    @app.get("/settings/metric/{key}", response_class=HTMLResponse)
    def settings_metric(request: Request, key: str) -> Response:
        page = page_of(request)
        metric = known(page, key)
        return metric_form(request, page, metric, form_values(metric, page.lang), FieldErrors(), [])

    def metric_form(request: Request, page: views.Page, metric: Metric, values: dict[str, Any],
                    errors: FieldErrors, rows: list[int], status: int = 200) -> Response:
        targets = list(values["targets"]) + [{"from": "", "to": "", "value": ""}] * TARGET_ROWS_SPARE
        overridden = [page.tr(f) for f in sorted(gate.overrides().get(metric.key, {}))]
        return reply(request, "settings_metric.html", page, status=status, metric=metric, values=values,
                     targets=targets, errors=errors, teams=page.ws.teams, statuses=STATUSES, forecasts=FORECASTS,
                     overridden=overridden, saved=request.query_params.get("saved") == "1")

    @app.post("/settings/metric/{key}", response_class=HTMLResponse)
    async def save_metric(request: Request, key: str) -> Response:
        """Check the form with kpilot.yaml's rules; save what differs from kpilot.yaml, or show the errors."""
        got = await posted(request)
        if got is None:
            return refused(request)
        form, page = got
        metric = known(page, key)
        if form_field(form, "reset"):
            await run_in_threadpool(_reset, gate, key, auth.actor(request))
            return RedirectResponse(base_path(request) + _saved(key, page), status_code=303)
        data, shown, rows = parse_form(form, metric, page.lang)
        stored = gate.overrides()
        edited = {**stored.get(key, {}), **{f: as_json(v) for f, v in data.items()}}
        try:
            merged = apply_overrides(gate.base, {**stored, key: edited})
        except WorkspaceInvalid as exc:
            errors = issue_errors(exc.issues, metric_path(gate.base, key), page.tr)
            errors = _rows_to_form(errors, rows)
            return metric_form(request, page, metric, shown, errors, rows, status=422)
        await run_in_threadpool(_save, gate, key, merged.metric(key), auth.actor(request))
        return RedirectResponse(base_path(request) + _saved(key, page), status_code=303)

    @app.get("/alignment", response_class=HTMLResponse)
    async def alignment_page(request: Request) -> Response:
        """Who owns what, the marketing-sales funnel, and the incentive warnings of the audit."""
        page = page_of(request)
        funnel = await run_in_threadpool(alignment.funnel, gate, page)
        analysis = await run_in_threadpool(gate.analysis, page.as_of)
        return reply(request, "alignment.html", page, matrix=alignment.matrix(page), funnel=funnel,
                     risks=alignment.incentive_risks(analysis.audit, page))

    @app.post("/metric/{key}/annotations", response_class=HTMLResponse)
    async def annotate(request: Request, key: str) -> Response:
        """Add a note to a KPI's history (a launch, an outage, a price change), then back to its page."""
        got = await posted(request)
        if got is None:
            return refused(request)
        form, page = got
        metric = known(page, key)
        period = form_field(form, "period")
        try:
            period_range(period)
        except ValueError as exc:
            reason = exc.args[0] if exc.args else str(exc)
            return reply(request, "error.html", page, status=422, issues=[], message=render(msg(
                "the annotation's period '{period}' is not a period: {reason}. Fix: write it as {forms}.",
                period=period, reason=reason, forms=PERIOD_FORMS), page.tr))
        return await forms.then(request, page, lambda: gate.store.add_annotation(
            page.ws.workspace, metric.key, period=period, text=form_field(form, "text"), user=auth.actor(request)),
            f"/metric/{metric.key}{page.query()}#annotations")


def base_path(request: Request) -> str:
    """Where this workspace's app is mounted ("" when it is served alone, "/<key>" under `kpilot serve --root`):
    every URL the app hands out starts with it."""
    return str(request.scope.get("root_path") or "")


def form_field(form: dict[str, list[str]], name: str) -> str:
    """A form's single value for `name`, trimmed ("" when absent)."""
    return (form.get(name) or [""])[0].strip()


def _saved(key: str, page: views.Page) -> str:
    """The metric's settings page after a save (keeping the chosen date)."""
    return f"/settings/metric/{key}?saved=1" + (f"&as_of={page.as_of.isoformat()}" if page.pinned else "")


def _rows_to_form(errors: FieldErrors, rows: list[int]) -> FieldErrors:
    """Target errors moved from their index among the targets given to their row in the form."""
    out = FieldErrors()
    for where, texts in errors.by_field.items():
        m = re.match(r"^targets\[(\d+)\](.*)$", where)
        if m and int(m.group(1)) < len(rows):
            where = f"targets[{rows[int(m.group(1))]}]{m.group(2)}"
        for t in texts:
            out.add(where, t)
    return out


def _save(gate: WorkspaceGate, key: str, edited: Metric, by: str | None = None) -> None:
    """Keep as overrides the editable fields that differ from kpilot.yaml; clear the others (the service's rules,
    the same as `PUT /api/v1/metrics/{key}/settings`)."""
    with gate.service() as svc:
        svc.keep_settings(key, edited, by=by)
    gate.settings_changed()


def _reset(gate: WorkspaceGate, key: str, by: str | None = None) -> None:
    with gate.service() as svc:
        svc.reset_settings(key, by=by)
    gate.settings_changed()


__all__ = ["FieldErrors", "Forms", "base_path", "form_field", "form_values", "issue_errors", "known", "parse_form",
           "register"]
