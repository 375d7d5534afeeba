"""The weekly steering review: `review` writes it as HTML, PDF or Markdown. Thin, over kpilot.service.review."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from kpilot.cli.options import DbOpt, LangOpt, StateOpt, WorkspaceOpt, _as_of, _errors, _open, _warn_if_load_failed, err
from kpilot.i18n import translator
from kpilot.model import KpilotError
from kpilot.model.errors import msg


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
    lang: LangOpt = None,
    db: DbOpt = None,
) -> None:
    """The weekly steering review: North Star and board, what changed, predicted misses, alerts, decisions due and
    the effect of past decisions."""
    with _errors(lang, workspace):
        if format is ReviewFmt.pdf and output is None:
            raise KpilotError(msg("a PDF is not written to the terminal. Fix: add --output, e.g. "
                                  "--output review.pdf"))
        day = _as_of(as_of)
        svc = _open(workspace, state_dir, database_url=db)
        from kpilot.service.review import build_review, render_review

        document = render_review(build_review(svc, as_of=day, lang=lang), format.value)
        _warn_if_load_failed(svc, lang)
        svc.close()
        if output is None:
            sys.stdout.write(document.decode("utf-8"))
            sys.stdout.flush()
            return
        output.write_bytes(document)
    err.print(translator(lang or svc.ws.language.value)("Wrote {path}.").format(path=output))
