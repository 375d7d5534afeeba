"""What every route of the REST API shares: the bodies' base, the errors as JSON for people, and the checks of a
metric key or a field. One place maps exceptions to answers (`JsonErrors`): JSON, never an HTML page or a
traceback."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException

from kpilot.i18n import Translator
from kpilot.model import KpilotError, WorkspaceInvalid
from kpilot.model.errors import did_you_mean, msg, render
from kpilot.model.workspace import Workspace
from kpilot.service import explain_failure
from kpilot.web.locale import COOKIE, choose_language, web_translator

log = logging.getLogger("kpilot.web.api")
_FIX = re.compile(r"\s*(?:Fix|Correction)\s*:\s*")


def no_nul(value: str | None) -> str | None:
    # PostgreSQL text cannot hold NUL; refuse it here rather than fail in the database.
    if value is not None and "\x00" in value:
        raise ValueError("must not contain the NUL character")
    return value


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ApiError(Exception):
    """An answer other than 2xx, with a message (and a fix) for people."""

    def __init__(self, status: int, message: str, issues: list[dict[str, str]] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.issues = issues or []


def caller_translator(request: Request) -> Translator:
    """The caller's language: Accept-Language (fr or en), else the web's cookie, else English."""
    accept = request.headers.get("accept-language", "").lower()
    if accept.startswith("fr"):
        return web_translator("fr")
    if accept.startswith("en"):
        return web_translator("en")
    return web_translator(choose_language(request.cookies.get(COOKIE), "en"))


def error_answer(request: Request, status: int, message: str,
                 issues: list[dict[str, str]] | None = None) -> JSONResponse:
    text = render(message, caller_translator(request))
    parts = _FIX.split(text, maxsplit=1)
    body: dict[str, object] = {"message": parts[0].rstrip(), "fix": parts[1] if len(parts) > 1 else ""}
    if issues:
        body["issues"] = issues
    return JSONResponse({"error": body}, status_code=status)


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    """A pydantic location as people write it: values[2].period."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def invalid(errors: list[Any]) -> ApiError:
    """A 422 naming every field at fault (pydantic's errors), the first one in the message."""
    issues = []
    for e in errors:
        loc = list(e.get("loc", ()))
        if loc and loc[0] in ("query", "path", "header", "body"):
            loc = loc[1:]
        if e.get("type") == "json_invalid":
            loc = []  # its location is a character offset, not a field
        issues.append({"field": _field(loc) or "body", "message": str(e.get("msg", ""))})
    first = issues[0] if issues else {"field": "body", "message": ""}
    more = len(issues) - 1
    message = msg("invalid {field}: {reason}", field=first["field"], reason=first["message"])
    if more:
        message = msg("invalid {field}: {reason} (and {count} more problems)", field=first["field"],
                      reason=first["message"], count=more)
    return ApiError(422, msg("{problem}. Fix: correct the field(s) named in `issues` and send again.",
                             problem=message), issues)


class JsonErrors(APIRoute):
    """Every error of an API route as JSON {error: {message, fix}}, never an HTML page or a traceback."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except ApiError as exc:
                return error_answer(request, exc.status, exc.message, exc.issues)
            except RequestValidationError as exc:
                api = invalid(list(exc.errors()))
                return error_answer(request, api.status, api.message, api.issues)
            except HTTPException as exc:
                return error_answer(request, exc.status_code, str(exc.detail))
            except WorkspaceInvalid as exc:
                issues = [{"field": i.path, "message": i.render(caller_translator(request))} for i in exc.issues]
                return error_answer(request, 503, exc.message, issues)
            except KpilotError as exc:
                status = getattr(exc, "status", 500)
                if status == 500:
                    log.warning("API %s %s: %s", request.method, request.url.path, exc)
                return error_answer(request, status, exc.message)
            except Exception as exc:
                log.exception("API %s %s failed", request.method, request.url.path)
                return error_answer(request, 500, explain_failure(exc))

        return route


def bad_field(status: int, field: str, reason: str) -> ApiError:
    """An answer naming the one field at fault and why."""
    return ApiError(status, msg("invalid {field}: {reason}. Fix: correct the field(s) named in `issues` and send "
                                "again.", field=field, reason=reason), [{"field": field, "message": str(reason)}])


def metric_key(workspace: Workspace, key: str, field: str | None = None) -> str:
    """`key` when it is a metric of the workspace; else 404 (a path or query parameter) or 422 naming the
    body's `field`."""
    if key not in workspace.metric_keys:
        issues = [{"field": field, "message": f"unknown metric '{key}'"}] if field else None
        message = msg("unknown metric '{metric}';{hint} metrics: {metrics}. Fix: use a key from "
                      "GET /api/v1/metrics.", metric=key, hint=did_you_mean(key, workspace.metric_keys),
                      metrics=", ".join(workspace.metric_keys))
        raise ApiError(422 if field else 404, message, issues)
    return key


__all__ = ["ApiError", "Body", "JsonErrors", "bad_field", "caller_translator", "error_answer", "invalid", "metric_key",
           "no_nul"]
