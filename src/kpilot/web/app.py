"""The FastAPI app: server-rendered pages (Jinja2 + htmx), thin routes over the workspace service.

Routes only parse the request (language, as-of date), ask `WorkspaceGate` for the service's results
and hand them to `views` for wording; every asset is served from the package (no CDN).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from kpilot.i18n import LANGUAGES
from kpilot.model import KpilotError, WorkspaceInvalid
from kpilot.model.errors import message_of, msg, render
from kpilot.model.periods import NotADay, parse_day, period_start
from kpilot.report import charts
from kpilot.service import DecisionRecord, signing_key
from kpilot.service.accounts import AccountService, Throttle
from kpilot.web import (
    admin,
    alerts,
    alignment,
    api,
    auth,
    decisions,
    insight_views,
    login,
    oidc,
    review,
    settings,
    tree,
    views,
)
from kpilot.web.api_common import error_answer
from kpilot.web.guard import Guard, allowed_hosts
from kpilot.web.locale import COOKIE, choose_language, web_translator
from kpilot.web.state import Analysis, WorkspaceGate
from kpilot.web.views import PageError

STATIC = Path(__file__).parent / "static"
VENDOR = {"htmx": "htmx-2.0.11.min.js", "vega": "vega-6.4.0.min.js", "vega_lite": "vega-lite-6.4.3.min.js",
          "vega_embed": "vega-embed-7.3.0.min.js"}
# Scripts only from this server; inline styles are used by vega's tooltips and the breakdown bars.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")

CSRF_SLOT = "__kpilot_csrf_token__"  # where a cached page's forms get the browser's token
log = logging.getLogger("kpilot.web")


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("kpilot.web", "templates"), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.globals["STATUS_COLORS"] = charts.STATUS_COLORS
    env.globals["VENDOR"] = VENDOR
    return env


def create_app(workspace_dir: Path, *, state_dir: Path | None = None, pool_size: int = 1,
               cache_size: int = 256, db_url: str | None = None, hosts: Iterable[str] = (),
               warm: bool = False) -> FastAPI:
    """The web app of one workspace. The warehouse lives in `state_dir` (default: the workspace's).

    `pool_size` services answer requests in parallel (each one DuckDB connection, used by one request at a
    time); `cache_size` answers are kept per version of the workspace's files (0: no cache). Requests are
    answered for loopback host names, `hosts` and `KPILOT_ALLOWED_HOSTS` only (see `kpilot.web.guard`). With `warm`,
    today's analysis and board are computed in the background after the data is loaded (at start and after each
    load), so that nobody waits for them on the first page."""
    gate = WorkspaceGate(Path(workspace_dir), state_dir=state_dir, pool_size=pool_size, cache_size=cache_size,
                         db_url=db_url)  # gate.store: the application database (settings, decisions)
    gate.warm = warm
    env = _environment()
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        stop = _start_scheduler(gate)
        yield
        if stop is not None:
            stop()
        gate.close()

    app = FastAPI(title="kpilot", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.gate = gate
    app.state.form_key = signing_key(gate.state_dir or gate.primary.state_dir, "forms")
    app.state.throttle = Throttle()  # the limits on failed sign-ins, per address and per client (kept in the store)

    def accounts() -> AccountService:
        return AccountService(gate.store, gate.primary.ws.workspace, app.state.throttle)

    def owners(key: str) -> list[str] | None:
        ws = gate.primary.ws
        return list(ws.metric(key).owners) if key in ws.metric_keys else None

    app.state.accounts = accounts
    # Who is asking and whether they may (kpilot.web.auth), inside the Host check (added last: runs first).
    app.add_middleware(auth.Auth, routes=lambda: app.router.routes, accounts=accounts, key=app.state.form_key,
                       owners=owners)
    app.add_middleware(Guard, hosts=allowed_hosts(hosts))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    # The API's routes as routes of the app itself (not an included router), so that the Auth middleware and the
    # access tests see each one with its full path.
    app.router.routes.extend(api.router(gate).routes)

    def page_of(request: Request) -> views.Page:
        ws = gate.primary.ws
        lang = choose_language(request.cookies.get(COOKIE), ws.language.value)
        today = gate.today()
        return views.Page(lang=lang, tr=web_translator(lang), ws=ws, as_of=_as_of(request, today), today=today)

    def render_page(request: Request, template: str, page: views.Page, **context: Any) -> str:
        return env.get_template(template).render(
            request=request, page=page, _=page.tr, lang=page.lang, ws=page.ws, languages=LANGUAGES,
            here=_here(request), base_path=request.scope.get("root_path", ""), who=auth.principal(request),
            may_change=auth.may_change_kpi(request, page.ws), may_change_any=auth.principal(request).unscoped_writer,
            embed_options=charts.embed_options(page.lang, page.ws.currency), **context)

    def html(request: Request, template: str, page: views.Page, status: int = 200, **context: Any) -> HTMLResponse:
        return HTMLResponse(render_page(request, template, page, status=status, **context), status_code=status,
                            headers={"Content-Security-Policy": CSP})

    async def cached(request: Request, page: views.Page, render: Callable[[], str], version: str = "") -> HTMLResponse:
        """A page from the cache when the workspace's files have not changed, else rendered in a worker thread
        (computing may take a while; the event loop keeps answering cached pages meanwhile). `version` names
        what else the page shows (e.g. the decision log's state)."""
        key = ("page", page.lang, page.as_of, request.url.path, request.url.query, version, auth.access_key(request))
        text = gate.peek(key)
        if text is None:
            text = await run_in_threadpool(gate.remember, key, render)
        return HTMLResponse(text, headers={"Content-Security-Policy": CSP})

    @app.exception_handler(PageError)
    def _page_error(request: Request, exc: PageError) -> HTMLResponse:
        page = _fallback_page(request, gate)
        return html(request, "error.html", page, status=exc.status, message=render(exc.message, page.tr), issues=[])

    @app.exception_handler(StarletteHTTPException)
    def _no_route(request: Request, exc: StarletteHTTPException) -> Response:
        """No route for the path (a 404 or 405 of the router itself): the API's JSON error under /api/, a page
        elsewhere; never the framework's own answer."""
        path = request.url.path[len(settings.base_path(request)):]
        if path.startswith(api.PREFIX + "/") or path == api.PREFIX:
            return error_answer(request, exc.status_code, msg(
                "no API endpoint {method} /api/v1/{path}. Fix: see /api/v1/docs for the endpoints.",
                method=request.method, path=path[len(api.PREFIX) + 1:]))
        page = _fallback_page(request, gate)
        return html(request, "error.html", page, status=exc.status_code, issues=[], message=page.tr(
            "There is no such page here. Fix: start from the board.") if exc.status_code == 404 else str(exc.detail))

    @app.exception_handler(KpilotError)
    def _kpilot_error(request: Request, exc: KpilotError) -> HTMLResponse:
        page = _fallback_page(request, gate)
        issues = [i.render(page.tr) for i in exc.issues] if isinstance(exc, WorkspaceInvalid) else []
        status = getattr(exc, "status", 500)  # a refusal (403 Forbidden, 404...) keeps its own status
        return html(request, "error.html", page, status=status if 400 <= status < 600 else 500,
                    message=render(exc.message, page.tr), issues=issues)

    @app.get("/", response_class=HTMLResponse)
    async def board(request: Request) -> HTMLResponse:
        """The board: the vision, the North Star and the KPIs with their decisions."""
        page = page_of(request)
        log = await run_in_threadpool(gate.store.decisions, page.ws.workspace)
        return await cached(request, page, lambda: board_page(request, page, log), views.log_version(log))

    def board_page(request: Request, page: views.Page, log: list[DecisionRecord]) -> str:
        statuses = gate.board(page.as_of)
        analysis = gate.analysis(page.as_of)
        tiles = [views.with_decision(_with_analysis(views.tile(s, views.judged_rows(s, page), page,
                                                               big=s.role == "north_star"),
                                                    analysis.forecasts.get(s.key), analysis, page), log, page)
                 for s in statuses]
        north = next((t for t in tiles if t.role == "north_star"), None)
        kpis = [t for t in tiles if t is not north]
        shown = {t.key for t in tiles}
        others = [m for m in page.ws.metrics if m.key not in shown]
        through = [s.data_through for s in statuses if s.data_through]
        board_keys = {s.key for s in statuses}
        moves = views.week_moves(statuses, [t for t in tiles for t in t.warnings],
                                 [a for a in analysis.anomalies if a.metric in board_keys], page)
        return render_page(request, "board.html", page, north=north, kpis=kpis, others=others, moves=moves,
                           to_decide=views.to_decide(tiles),
                           data_through=page.day(max(through)) if through else None,
                           in_progress=any(not t.complete for t in tiles),
                           analysis_errors=_analysis_errors(analysis, page), load_failure=_load_failure(gate, page))

    @app.get("/metric/{key}", response_class=HTMLResponse)
    async def metric(request: Request, key: str) -> Response:
        """One metric: its status and decision, its history against target, its breakdown by dimension."""
        page = page_of(request)
        if key not in page.ws.metric_keys:
            raise PageError(404, msg("unknown metric '{metric}'", metric=key))
        notes = await run_in_threadpool(_notes, gate, page, key)
        # The page is cached for every browser: its forms carry a slot that gets this browser's token.
        text = (await cached(request, page, lambda: metric_page(request, page, key, notes), notes.version)).body
        token = settings.csrf_token(request)
        body = bytes(text).decode("utf-8").replace(CSRF_SLOT, token)
        return settings.with_token(HTMLResponse(body, headers={"Content-Security-Policy": CSP}), request)

    def metric_page(request: Request, page: views.Page, key: str, notes: views.Notes) -> str:
        ws = page.ws
        m = ws.metric(key)
        unit = ws.unit_of(key)
        status = gate.status(key, page.as_of)
        rows = gate.series(key, page.as_of)
        shown = [r for r in rows if date.fromisoformat(str(r["period"])) <= status.period]
        current = status.period
        previous = period_start(current - timedelta(days=1), m.grain, ws.week_start)
        breakdowns = []
        for dim in gate.dimensions(key, page.as_of):
            try:
                bd_rows = gate.breakdown(key, dim, previous, current, page.as_of)
                breakdowns.append(views.breakdown(dim, bd_rows, current, previous, unit, page))
            except KpilotError as exc:
                breakdowns.append(views.Breakdown(dimension=dim, slices=[], error=render(exc.message, page.tr)))
        analysis = gate.analysis(page.as_of)
        fc = gate.forecast(key, page.as_of)
        forecast = insight_views.forecast_view(fc, unit, page)
        big = views.tile(status, views.judged_rows(status, page), page, big=True)
        tile = views.with_decision(_with_analysis(big, fc, analysis, page), notes.decisions, page)
        complete = [r for r in shown if r.get("complete", True)]
        if len(complete) >= 2:
            before, after = (date.fromisoformat(str(r["period"])) for r in complete[-2:])
            explained = gate.explain(key, before, after, page.as_of)
            cause = insight_views.root_cause(explained, page.period(before, m.grain), page.period(after, m.grain),
                                             unit, m.direction.value == "up", page)
        else:
            cause = insight_views.root_cause(None, "", "", unit, m.direction.value == "up", page)
        span = views.chart_range(request.query_params.get("range"))
        return render_page(request, "metric.html", page, metric=m, tile=tile, span=span, spans=views.RANGES,
                           history_spec=views.history_chart(views.in_range(shown, span, current), unit, m.grain, page,
                                                            insight_views.ahead_points(fc), notes.annotations),
                           decisions=[alignment.decision_row(d, page) for d in notes.decisions],
                           annotations=notes.annotations, csrf=CSRF_SLOT, teams=page.ws.teams,
                           decide=decisions.prefill(m, page),
                           history_rows=views.history_rows(shown, unit, m.grain, page),
                           breakdowns=breakdowns, previous_label=page.period(previous, m.grain),
                           owners=[page.team(o) for o in m.owners], forecast=forecast,
                           leaders=insight_views.lead_rows(analysis.leaders_of(key), page, other="leader"),
                           leads=insight_views.lead_rows(analysis.led_by(key), page, other="follower"),
                           anomalies=insight_views.anomaly_rows(analysis.anomalies_of(key), unit, page),
                           warnings=tile.warnings, cause=cause, analysis_errors=_analysis_errors(analysis, page))

    @app.get("/audit", response_class=HTMLResponse)
    async def audit(request: Request) -> HTMLResponse:
        """The audit: keep, fix or delete for every metric, with the reasons."""
        page = page_of(request)
        return await cached(request, page, lambda: audit_page(request, page))

    def audit_page(request: Request, page: views.Page) -> str:
        analysis = gate.analysis(page.as_of)
        rows = insight_views.audit_rows(analysis.audit, page)
        counts = {v: sum(1 for r in rows if r.verdict == v) for v in ("keep", "fix", "delete")}
        return render_page(request, "audit.html", page, rows=rows, counts=counts,
                           analysis_errors=_analysis_errors(analysis, page))

    @app.get("/metric/{key}/history.svg")
    def history_svg(request: Request, key: str) -> Response:
        """The history chart rendered on the server: the same Vega-Lite spec as the page's."""
        page = page_of(request)
        if key not in page.ws.metric_keys:
            raise PageError(404, msg("unknown metric '{metric}'", metric=key))
        current = gate.current_period(key, page.as_of)
        rows = [r for r in gate.series(key, page.as_of) if date.fromisoformat(str(r["period"])) <= current]
        rows = views.in_range(rows, views.chart_range(request.query_params.get("range")), current)
        spec = views.history_chart(rows, page.ws.unit_of(key), page.ws.metric(key).grain, page,
                                   insight_views.ahead_points(gate.forecast(key, page.as_of)),
                                   gate.store.annotations(page.ws.workspace, key))
        svg = charts.to_svg(spec, page.lang, currency=page.ws.currency)
        return Response(svg, media_type="image/svg+xml")

    @app.get("/lang/{code}")
    def set_language(request: Request, code: str, next: str = "/") -> RedirectResponse:
        """Remember the user's language in a cookie, then go back to the page they were on (in this workspace)."""
        response = RedirectResponse(settings.base_path(request) + auth.safe_next(next), status_code=303)
        if code in LANGUAGES:
            response.set_cookie(COOKIE, code, max_age=365 * 24 * 3600, samesite="lax", httponly=True)
        return response

    forms = settings.Forms(page_of, html)
    settings.register(app, gate, forms)  # /settings, /alignment, a KPI's annotations
    decisions.register(app, gate, forms)  # /decisions
    alerts.register(app, gate, forms)  # /alerts
    review.register(app, gate, forms)  # /review, /review.pdf
    tree.register(app, gate, forms)  # /tree
    admin.register(app, gate, forms)  # /users, /changes (admins)
    login.register(app, forms, accounts, oidc.provider_name, app.state.form_key)  # /login, /logout, /account
    oidc.register(app, forms, accounts, app.state.form_key)  # /login/oidc, /login/oidc/callback

    @app.get("/healthz")
    def healthz() -> dict[str, object]:
        """Alive; `warming` while today's analysis is being computed in the background."""
        return {"status": "ok", "warming": gate.warming}

    return app


def _start_scheduler(gate: WorkspaceGate) -> Callable[[], None] | None:
    """Sync the sources on their `schedule:` in a background thread, through the gate's lock; returns how to
    stop it (None when no source has a schedule)."""
    from kpilot.worker import Scheduler, background

    if not any(s.schedule for s in gate.primary.ws.sources):
        return None
    thread, event = background(Scheduler(gate.exclusive, lambda: gate.primary.ws))
    log.info("scheduler started")

    def stop() -> None:
        event.set()
        thread.join(timeout=30)

    return stop


def _notes(gate: WorkspaceGate, page: views.Page, key: str) -> views.Notes:
    """A KPI's decision log and annotations, read on every request (they change without the files changing)."""
    return views.Notes(gate.store.decisions(page.ws.workspace, key), gate.store.annotations(page.ws.workspace, key))


def _as_of(request: Request, today: date) -> date:
    """The ?as_of=YYYY-MM-DD of the period selector; today when absent or empty."""
    value = (request.query_params.get("as_of") or "").strip()
    if not value:
        return today
    try:
        return parse_day(value)
    except NotADay as exc:
        raise PageError(400, message_of(exc)) from None


def _here(request: Request) -> str:
    """This page's path in the workspace and its query, URL-quoted, for the language switch to come back to."""
    path, root = request.url.path, settings.base_path(request)
    path = path[len(root):] if root and path.startswith(root) else path
    path += f"?{request.url.query}" if request.url.query else ""
    return quote(path, safe="")


def _fallback_page(request: Request, gate: WorkspaceGate) -> views.Page:
    """A page context that needs no valid request (for error pages)."""
    ws = gate.primary.ws
    lang = choose_language(request.cookies.get(COOKIE), ws.language.value)
    today = gate.today()
    return views.Page(lang=lang, tr=web_translator(lang), ws=ws, as_of=today, today=today)


def _with_analysis(tile: views.Tile, fc: Any, analysis: Analysis, page: views.Page) -> views.Tile:
    """A tile with its forecast (in place of the pace's projection) and the early warnings on its KPI."""
    shown = insight_views.forecast_view(fc, tile.raw.unit, page)
    tile.forecast = shown.ahead if shown else None
    if tile.forecast is not None:
        tile.projected = None
    tile.warnings = [insight_views.warning_view(w, page) for w in analysis.warnings_on(tile.key)]
    tile.leads = views.lead_links(tile.key, analysis.leaders_of(tile.key), analysis.led_by(tile.key), page)
    return tile


def _load_failure(gate: WorkspaceGate, page: views.Page) -> str | None:
    """The latest failed load, for a note above the board: when, and why (in the page's language)."""
    failure = gate.load_failure()
    if failure is None:
        return None
    return page.tr("The latest load failed ({when}): {reason}. The board shows the last good data.").format(
        when=page.day(failure.failed_at.date()), reason=render(failure.message, page.tr))


def _analysis_errors(analysis: Analysis, page: views.Page) -> list[str]:
    """The parts of the analysis that could not run, and why, for a note on the page."""
    return [render(reason, page.tr) for reason in analysis.errors.values()]


def serve(directory: Path, host: str = "127.0.0.1", port: int = 8000, *, state_dir: Path | None = None,
          pool_size: int = 1, db_url: str | None = None, hosts: Iterable[str] = (),
          sock: socket.socket | None = None) -> None:
    """Serve a workspace's web app until interrupted (Ctrl-C). It answers to loopback names, to `host` when it
    names one address, and to `hosts`. The port is taken first (or `sock`, taken by the caller: `listening_socket`):
    one in use is an error before any work."""
    from kpilot.web.exposure import refuse_exposure
    from kpilot.web.listen import listening_socket, run

    sock = sock or listening_socket(host, port)
    named = [] if host in ("0.0.0.0", "::", "") else [host]
    try:
        app = create_app(Path(directory), state_dir=state_dir, pool_size=pool_size, db_url=db_url,
                         hosts=[*named, *hosts], warm=True)
        try:
            refuse_exposure(host, [(Path(directory), app)])  # off loopback: users and a kept key first
        except KpilotError:
            app.state.gate.close()
            raise
        app.state.gate.refresh()  # load the data now: a broken file is reported here, not on the first page
    except BaseException:
        sock.close()
        raise
    tr = web_translator(app.state.gate.primary.ws.language.value)
    print(tr("Serving {workspace} on {url} (Ctrl-C to stop).").format(
        workspace=Path(directory).resolve(), url=f"http://{host}:{port}/"), flush=True)
    if not named and not hosts:
        print(tr("Listening on every address, but answering only to loopback names: give the name people use to "
                 "reach this server with --allowed-host NAME (see docs/security.md)."), flush=True)
    run(app, sock)


__all__ = ["create_app", "serve"]
