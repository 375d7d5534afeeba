"""Signing in and out: /login, /logout, /logout/everywhere and /account.

A sign-in form carries the browser's form token like every form (a page of another site cannot sign a browser in
to an account of its choosing); a successful sign-in gives the browser a new session id, so an id planted before
(session fixation) is worth nothing after. Failures say the same whether the address exists or not, and repeated
failures wait (see `kpilot.service.accounts.Throttle`).
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from kpilot.model.errors import render
from kpilot.service.accounts import AccountService, TooManyAttempts
from kpilot.web import auth
from kpilot.web.settings import Forms, form_field

ROLE_WORDS = {"admin": "Your role: admin (you read and change everything, and manage users and tokens).",
              "editor": "Your role: editor (you read everything and change the KPIs of your teams).",
              "editor-all": "Your role: editor (you read everything and change every KPI).",
              "viewer": "Your role: viewer (you read everything and change nothing)."}


def register(app: FastAPI, forms: Forms, accounts: Callable[[], AccountService], oidc_name: Callable[[], str | None],
             key: bytes) -> None:
    """Mount the sign-in routes on the app."""

    def login_form(request: Request, status: int = 200, error: str | None = None, email: str = "") -> Response:
        page = forms.page_of(request)
        return forms.reply(request, "login.html", page, status=status, error=error, email=email,
                           next=auth.safe_next(request.query_params.get("next")), oidc=oidc_name())

    @app.get("/login")
    def login_page(request: Request) -> Response:
        """The sign-in form (straight to the board when nobody signs in to this workspace)."""
        if not accounts().has_users():
            return RedirectResponse(_root(request) + "/", status_code=303)
        return login_form(request)

    @app.post("/login")
    async def login(request: Request) -> Response:
        """Check the address and password; on success a new session, then back to the page asked for."""
        got = await forms.posted(request)
        if got is None:
            return forms.refused(request)
        form, page = got
        email, password = form_field(form, "email"), (form.get("password") or [""])[0]
        target = auth.safe_next(form_field(form, "next"))
        client = request.client.host if request.client else ""
        service = accounts()
        try:
            user = await run_in_threadpool(service.authenticate, email, password, client)
        except TooManyAttempts as exc:
            response = login_form(request, 429, render(exc.message, page.tr), email)
            response.headers["Retry-After"] = str(exc.wait)
            return response
        if user is None:
            return login_form(request, 401, page.tr("Wrong e-mail address or password."), email)
        session_id = await run_in_threadpool(service.start_session, user)
        response = RedirectResponse(_root(request) + target, status_code=303)
        auth.set_session_cookie(response, request, auth.sign(key, session_id))
        return response

    async def _signed_out(request: Request, everywhere: bool) -> Response:
        got = await forms.posted(request)
        if got is None:
            return forms.refused(request)
        who = auth.principal(request)
        service = accounts()
        session_id = auth.unsign(key, request.cookies.get(auth.SESSION_COOKIE, ""))
        if everywhere and who.user_id is not None:
            await run_in_threadpool(service.end_all_sessions, who.user_id)
        elif session_id:
            await run_in_threadpool(service.end_session, session_id)
        response = RedirectResponse(_root(request) + "/login", status_code=303)
        response.delete_cookie(auth.SESSION_COOKIE, path=request.scope.get("root_path") or "/")
        return response

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        """End this browser's session."""
        return await _signed_out(request, everywhere=False)

    @app.post("/logout/everywhere")
    async def logout_everywhere(request: Request) -> Response:
        """End every session of the signed-in user, in every browser."""
        return await _signed_out(request, everywhere=True)

    @app.get("/account")
    def account(request: Request) -> Response:
        """Who is signed in, with what role; sign out here or everywhere."""
        page = forms.page_of(request)
        who = auth.principal(request)
        role = who.role if who.role != "editor" or who.teams else "editor-all"
        words = page.tr(ROLE_WORDS[role])
        if who.teams:
            words += " " + page.tr("Your teams: {teams}.").format(teams=", ".join(page.team(t) for t in who.teams))
        return forms.reply(request, "account.html", page, me=who, role_words=words)


def _root(request: Request) -> str:
    return str(request.scope.get("root_path") or "")


__all__ = ["register"]
