"""`kpilot sync`: copy the tables of database sources into the warehouse. Thin, over WorkspaceService.sync."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from kpilot.cli import LangOpt, StateOpt, WorkspaceOpt, _errors, _escape, _open, _progress, app, err, out
from kpilot.i18n import format_value, translator
from kpilot.model.errors import N_, msg, render

STATUS = {"copied": N_("copied"), "synced": N_("synced"), "failed": N_("failed")}


@app.command()
def sync(
    source: Annotated[str | None, typer.Argument(help="Key of the database source to sync (default: all).")] = None,
    workspace: WorkspaceOpt = Path("."),
    state_dir: StateOpt = None,
    full: Annotated[bool, typer.Option(help="Copy every table in full again, even incremental ones.")] = False,
    lang: LangOpt = None,
) -> None:
    """Copy the tables of the database sources (PostgreSQL, MySQL/MariaDB, SQLite, DuckDB) into the warehouse."""
    with _errors(lang, workspace):
        svc = _open(workspace, state_dir)
        language = lang or svc.ws.language.value
        tr = translator(language)
        with _progress() as bar:
            task = bar.add_task(tr("Syncing"), total=None)

            def on_batch(table: str, rows: int) -> None:
                bar.update(task, completed=rows, description=f"{tr('Syncing')} {table}")

            report = svc.sync(source, full=full, on_batch=on_batch)
    table = Table(title=tr("Synced tables"), show_lines=False)
    for col in (tr("Source"), tr("Table"), tr("Status"), tr("Rows read"), tr("Rows"), tr("Seconds")):
        table.add_column(col)
    for t in report.tables:
        table.add_row(t.source, t.table, tr(STATUS.get(t.status, t.status)), format_value(t.rows_read, None, language),
                      format_value(t.rows, None, language), f"{t.seconds:.2f}")
    out.print(table)
    for error in dict.fromkeys(t.error or "" for t in report.failed):  # a source that fails fails all its tables
        err.print(f"[bold red]{tr('error:')}[/] " + _escape(render(error, tr)), markup=True)
    if report.failed:
        err.print(_escape(render(msg("{n} table(s) failed; they keep the data of their last good sync.",
                                     n=len(report.failed)), tr)))
        raise typer.Exit(1)
