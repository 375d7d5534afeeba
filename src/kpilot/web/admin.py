"""The admins' pages: who may sign in (users and API tokens, with their last use) and the audit log of changes.

Both are read-only here: users and tokens are created, changed and revoked with `kpilot user` and `kpilot token`
(a password or a token never passes through a page). The same lists are in the API for admins' tokens:
GET /api/v1/users, /api/v1/tokens and /api/v1/changes. The Auth middleware keeps all of them to admins.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from kpilot.i18n import format_day
from kpilot.model.errors import N_
from kpilot.service.accounts import ChangeRecord
from kpilot.web import views
from kpilot.web.settings import Forms
from kpilot.web.state import WorkspaceGate

KIND_WORDS = {"setting": N_("setting"), "decision": N_("decision"), "annotation": N_("annotation"),
              "alert": N_("alert"), "user": N_("user"), "password": N_("password"), "token": N_("API token"),
              "credential": N_("credential"), "definition": N_("definition in kpilot.yaml")}
ROLE_NAMES = {"admin": N_("admin"), "editor": N_("editor"), "viewer": N_("viewer")}
SHOWN = 500  # changes on the page (the CLI and the API give them all)


@dataclass
class ChangeRow:
    id: int
    at: str
    actor: str
    kind: str
    kind_words: str
    subject: str
    before: str
    after: str


def when(moment: datetime | None, page: views.Page) -> str:
    """A moment as the page says it: its day in words and the time (UTC)."""
    if moment is None:
        return page.tr("never")
    return f"{format_day(moment.date(), page.lang)} {moment:%H:%M} UTC"


def shown_value(value: Any) -> str:
    """A before or after value as compact text ("—" for nothing)."""
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), sort_keys=True)


def change_row(c: ChangeRecord, page: views.Page) -> ChangeRow:
    return ChangeRow(id=c.id, at=when(c.at, page), actor=c.actor or page.tr("this machine (no sign-in)"),
                     kind=c.kind, kind_words=page.tr(KIND_WORDS.get(c.kind, c.kind)), subject=c.subject,
                     before=shown_value(c.before), after=shown_value(c.after))


def register(app: FastAPI, gate: WorkspaceGate, forms: Forms) -> None:
    """Mount /users and /changes on the app."""

    @app.get("/users")
    async def users_page(request: Request) -> Response:
        """The users and API tokens of the workspace: role, teams, last sign-in or use."""
        page = forms.page_of(request)
        ws = page.ws.workspace
        users = await run_in_threadpool(gate.store.users, ws)
        tokens = await run_in_threadpool(gate.store.tokens, ws)
        return forms.reply(request, "users.html", page, users=[{
            "email": u.email, "name": u.name or "", "role": page.tr(ROLE_NAMES[u.role]),
            "teams": ", ".join(page.team(t) for t in u.teams) or page.tr("every KPI"),
            "password": page.tr("yes") if u.has_password else page.tr("single sign-on only"),
            "disabled": u.disabled, "last": when(u.last_login_at, page)} for u in users],
            tokens=[{"id": t.id, "name": t.name, "prefix": t.prefix + "…", "role": page.tr(ROLE_NAMES[t.role]),
                     "teams": ", ".join(page.team(x) for x in t.teams) or page.tr("every KPI"),
                     "created": when(t.created_at, page), "by": t.created_by or "—",
                     "last": when(t.last_used_at, page), "revoked": t.revoked} for t in tokens])

    @app.get("/changes")
    async def changes_page(request: Request, kind: str | None = None) -> Response:
        """The audit log: who changed what, when, the value before and after (newest first)."""
        page = forms.page_of(request)
        chosen = kind if kind in KIND_WORDS else None
        found = await run_in_threadpool(lambda: gate.store.changes(page.ws.workspace, kind=chosen, limit=SHOWN + 1))
        return forms.reply(request, "changes.html", page, rows=[change_row(c, page) for c in found[:SHOWN]],
                           more=len(found) > SHOWN, kinds={k: page.tr(v) for k, v in KIND_WORDS.items()},
                           kind=chosen or "")


def register_api(api: APIRouter, gate: WorkspaceGate) -> None:
    """GET /api/v1/users, /tokens and /changes (admins only: see kpilot.web.auth.ADMIN)."""

    def workspace() -> str:
        return gate.primary.ws.workspace

    @api.get("/users", summary="Users (admins)")
    def users() -> list[dict[str, object]]:
        """Who may sign in: e-mail, name, role, teams, whether they have a password, disabled, last sign-in."""
        return [u.to_dict() for u in gate.store.users(workspace())]

    @api.get("/tokens", summary="API tokens (admins)")
    def tokens() -> list[dict[str, object]]:
        """The API tokens: id, name, first characters, role, teams, created, by whom, last use, revoked."""
        return [t.to_dict() for t in gate.store.tokens(workspace())]

    @api.get("/changes", summary="The audit log (admins)")
    def changes(kind: Annotated[str | None, Query(max_length=40, description="only this kind of change")] = None,
                limit: Annotated[int | None, Query(ge=1, le=100_000)] = None) -> list[dict[str, object]]:
        """Every change, newest first: id, at, actor, kind (setting, decision, annotation, alert, user, password,
        token, credential, definition), subject, before, after."""
        return [c.to_dict() for c in gate.store.changes(workspace(), kind=kind, limit=limit)]


__all__ = ["KIND_WORDS", "change_row", "register", "register_api", "shown_value", "when"]
