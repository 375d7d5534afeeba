"""What the command modules share: the common options, the two consoles, and errors shown to people.

No command lives here, and this module imports none: every command module imports it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from kpilot.i18n import LANGUAGES, Translator, translator
from kpilot.model import Issue, KpilotError, WorkspaceInvalid, workspace_file
from kpilot.model.errors import message_of, msg, render
from kpilot.model.periods import NotADay, parse_day, parse_period

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

STATUS_STYLE = {"green": "green", "amber": "yellow", "red": "red", "none": "dim"}


class Fmt(StrEnum):
    table = "table"
    json = "json"


WorkspaceOpt = Annotated[Path, typer.Option("--workspace", "-w", help="Workspace folder (holds kpilot.yaml).")]
StateOpt = Annotated[Path | None, typer.Option("--state-dir", help="A folder for workspaces' state, as "
                                                "$KPILOT_STATE_DIR: the warehouse goes in DIR/<workspace>-<hash> "
                                                "(default: <workspace>/.kpilot).")]
LangOpt = Annotated[str | None, typer.Option("--lang", help="Output language: en or fr (default: the workspace's).")]
TodayOpt = Annotated[datetime | None, typer.Option("--today", hidden=True, formats=["%Y-%m-%d"],
                                                  help="Pretend today is this date (tests).")]
DbOpt = Annotated[str | None, typer.Option("--db", help="Application database URL (default: $KPILOT_DATABASE_URL, "
                                                        "else SQLite in the state folder).")]


_LANGUAGE_LINE = re.compile(r"""^language:[ \t]*["']?([A-Za-z]+)["']?[ \t]*(?:#.*)?$""", re.MULTILINE)


def _peek_language(workspace: Path | None) -> str:
    """The `language:` of a workspace's kpilot.yaml, read as a line: even a file that does not parse gets
    its errors in its language. English when there is no such line."""
    if workspace is None:
        return "en"
    try:
        text = workspace_file(workspace).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "en"
    m = _LANGUAGE_LINE.search(text)
    return m.group(1) if m and m.group(1) in LANGUAGES else "en"


def _escape(text: str) -> str:
    return text.replace("[", "\\[")


def _fail(message: str, tr: Translator, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]{tr('error:')}[/] " + _escape(render(message, tr)), markup=True)
    return typer.Exit(code)


def _print_issues(issues: list[Issue], tr: Translator) -> None:
    for issue in issues:
        color = "red" if issue.severity == "error" else "yellow"
        where = f"{issue.location}: " if issue.location else ""
        label = tr("error:") if issue.severity == "error" else tr("warning:")
        err.print(f"{where}[{color}]{label}[/] " + _escape((f"{issue.path}: " if issue.path else "")
                                                          + render(issue.message, tr)), markup=True)
        if issue.fix:
            err.print("    " + _escape(tr("fix: {fix}").format(fix=render(issue.fix, tr))), markup=True)


@contextmanager
def _errors(lang: str | None = None, workspace: Path | None = None) -> Iterator[None]:
    """Show kpilot's errors for people, in `lang`, else in the workspace's language, and exit with 1."""
    try:
        yield
    except WorkspaceInvalid as exc:
        tr = translator(lang or _peek_language(workspace))
        _print_issues(exc.issues, tr)
        n = len([i for i in exc.issues if i.severity == "error"])
        raise _fail(msg("{n} error(s); nothing was changed.", n=n), tr) from None
    except KpilotError as exc:
        raise _fail(exc.message, translator(lang or _peek_language(workspace))) from None
    except (click.exceptions.Exit, click.ClickException, click.Abort, KeyboardInterrupt):
        raise
    except Exception as exc:
        if os.environ.get("KPILOT_DEBUG"):
            raise
        from kpilot.service import explain_failure

        raise _fail(explain_failure(exc), translator(lang or _peek_language(workspace))) from None


def _open(workspace: Path, state_dir: Path | None, *, database_url: str | None = None) -> Any:
    """The workspace as every door serves it: kpilot.yaml with the settings saved in the web app."""
    from kpilot.service import WorkspaceService

    svc = WorkspaceService(workspace, state_root=state_dir, database_url=database_url)
    if svc.settings_problem is not None:
        err.print("[yellow]" + translator(svc.ws.language.value)(
            "The settings saved in the web app no longer fit kpilot.yaml and are ignored:") + "[/]\n"
            + svc.settings_problem.render(translator(svc.ws.language.value)))
    return svc


def _as_of(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return parse_day(value)
    except NotADay as exc:
        if exc.out_of_range:
            raise KpilotError(message_of(exc)) from None
        raise KpilotError(msg("--as-of '{value}' is not a date; write it as YYYY-MM-DD", value=value)) from None


def _period(value: str | None) -> date | None:
    """The first day of a --from/--to period."""
    try:
        return parse_period(value)[1] if value else None
    except ValueError as exc:
        raise KpilotError(message_of(exc)) from None


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err, transient=True, disable=not err.is_terminal)


@contextmanager
def _table_progress(label: str) -> Iterator[Callable[..., None]]:
    """A progress bar for a load or a sync: yields `update(table, done, total=None)` ("Loading orders 3/10")."""
    with _progress() as bar:
        task = bar.add_task(label, total=None)

        def update(table: str, done: int, total: int | None = None) -> None:
            bar.update(task, total=total, completed=done, description=f"{label} {table}")

        yield update


def _warn_if_load_failed(svc: Any, lang: str | None) -> None:
    """On stderr, when the latest load failed: the data shown is the last good one, and why the load failed."""
    from zoneinfo import ZoneInfo

    failure = svc.last_load_failure()
    if failure is None:
        return
    tr = translator(lang or svc.ws.language.value)
    at = failure.failed_at.astimezone(ZoneInfo(svc.ws.timezone)).strftime("%Y-%m-%d %H:%M")
    err.print(f"[yellow]{tr('warning:')}[/] " + _escape(tr(
        "the latest load failed ({at}); the data shown is from the last load that succeeded.").format(at=at)),
        markup=True)
    for line in render(failure.message, tr).splitlines():
        err.print("    " + _escape(line), markup=True)
