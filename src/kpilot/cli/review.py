"""The weekly steering review: `review` writes it as HTML, PDF or Markdown, or sends it to the targets of
`review: to:` (--send). Thin, over kpilot.service.review."""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from kpilot.cli.options import (
    DbOpt,
    LangOpt,
    StateOpt,
    WorkspaceOpt,
    _as_of,
    _errors,
    _escape,
    _open,
    _warn_if_load_failed,
    err,
    out,
)
from kpilot.i18n import Translator, translator
from kpilot.model import KpilotError
from kpilot.model.errors import msg

if TYPE_CHECKING:
    from kpilot.service import WorkspaceService
    from kpilot.service.review import Review


class ReviewFmt(StrEnum):
    html = "html"
    pdf = "pdf"
    md = "md"


def review(
    workspace: WorkspaceOpt = Path("."), state_dir: StateOpt = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="The last day of the week reviewed (YYYY-MM-DD), "
                                                             "ignoring later rows. Default: today.")] = None,
    format: Annotated[ReviewFmt, typer.Option("--format", help="html | pdf | md")] = ReviewFmt.html,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file (default: standard "
                                                                      "output; a PDF needs a file).")] = None,
    send: Annotated[bool, typer.Option("--send", help="Send it now to the targets of `review: to:` in kpilot.yaml "
                                                      "(e-mails carry the PDF), through the outbox.")] = False,
    lang: LangOpt = None,
    db: DbOpt = None,
) -> None:
    """The weekly steering review: North Star and board, what changed, predicted misses, alerts, decisions due and
    the effect of past decisions."""
    with _errors(lang, workspace):
        if format is ReviewFmt.pdf and output is None and not send:
            raise KpilotError(msg("a PDF is not written to the terminal. Fix: add --output, e.g. "
                                  "--output review.pdf"))
        day = _as_of(as_of)
        svc = _open(workspace, state_dir, database_url=db)
        from kpilot.service.review import build_review, check_sending, default_day, render_review

        if day is None and (day := default_day(svc)) is not None:
            svc.load()  # a past day is replayed from the loaded rows: load what changed first
        if send:
            check_sending(svc, os.environ)  # a missing setting is an error at kpilot.yaml's line, not a lost message
        built = build_review(svc, as_of=day, lang=lang)
        failed = _send(svc, built, translator(lang or svc.ws.language.value)) if send else 0
        _warn_if_load_failed(svc, lang)
        if send and output is None:
            svc.close()
            if failed:
                raise typer.Exit(1)
            return
        document = render_review(built, format.value)
        svc.close()
        if output is None:
            sys.stdout.write(document.decode("utf-8"))
            sys.stdout.flush()
            return
        output.write_bytes(document)
    err.print(translator(lang or svc.ws.language.value)("Wrote {path}.").format(path=output))
    if failed:
        raise typer.Exit(1)


def _send(svc: WorkspaceService, built: Review, tr: Translator) -> int:
    """Queue the review for its targets, deliver the outbox now, say what happened; returns the messages failed."""
    from kpilot.service import alerts as alerts_service
    from kpilot.service.review import queue_review

    queued = queue_review(svc, review=built)
    delivery = alerts_service.deliver(svc, os.environ)
    out.print(_escape(tr("The review was queued for {n} target(s).").format(n=queued)))
    out.print(_escape(tr("Sent {sent}; retrying later {retry}; failed {failed}.").format(
        sent=len(delivery.sent), retry=len(delivery.retrying), failed=len(delivery.failed))))
    for delivery_id, why in delivery.failed:
        err.print("[bold red]" + _escape(tr("error:")) + "[/] " + _escape(
            tr("message {id} not delivered: {why}").format(id=delivery_id, why=why)), markup=True)
    return len(delivery.failed)
