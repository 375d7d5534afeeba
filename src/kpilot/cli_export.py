"""`kpilot export`: the workspace with the settings saved in the web app, written back to kpilot.yaml. Thin."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kpilot.cli import StateOpt, WorkspaceOpt, _errors, _open, app, err
from kpilot.i18n import translator

OutputOpt = Annotated[Path | None, typer.Option("--output", "-o",
                                                help="Write to this file (default: standard output).")]
DbOpt = Annotated[str | None, typer.Option("--db", help="Application database URL (default: $KPILOT_DATABASE_URL, "
                                                        "else SQLite in the state folder).")]


@app.command("export")
def export(workspace: WorkspaceOpt = Path("."), state_dir: StateOpt = None, output: OutputOpt = None,
           db: DbOpt = None) -> None:
    """Write kpilot.yaml with the settings edited in the web app (comments of the original file are kept)."""
    from kpilot.model.export import export_workspace

    with _errors(workspace=workspace):
        svc = _open(workspace, state_dir, database_url=db)
        original = svc.file.read_text(encoding="utf-8")
        overrides = svc.settings()
        if svc.settings_problem is not None:
            raise svc.settings_problem
        text = export_workspace(svc.ws, original)
        svc.close()
        if output is None:
            typer.echo(text, nl=False)
            return
        output.write_text(text, encoding="utf-8")
        n = sum(len(fields) for fields in overrides.values())
        err.print(translator(svc.ws.language.value)("Wrote {path} ({n} setting(s) from the web app).").format(
            path=output, n=n))
