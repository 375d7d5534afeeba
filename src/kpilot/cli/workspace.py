"""The workspace's life: `init`, `validate`, `load`, `compute`, and `export` (kpilot.yaml with the web app's
settings written back). Thin, over kpilot.service and kpilot.templates."""

from __future__ import annotations

import json
import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from kpilot.cli.options import (
    DbOpt,
    LangOpt,
    StateOpt,
    TodayOpt,
    WorkspaceOpt,
    _errors,
    _open,
    _print_issues,
    _progress,
    _table_progress,
    _warn_if_load_failed,
    err,
    out,
)
from kpilot.i18n import format_value, translator
from kpilot.model import KpilotError
from kpilot.model.errors import msg


class TextFmt(StrEnum):
    text = "text"
    json = "json"


OutputOpt = Annotated[Path | None, typer.Option("--output", "-o",
                                                help="Write to this file (default: standard output).")]


def init(
    directory: Annotated[Path | None, typer.Argument(help="Folder to create (default: --workspace).")] = None,
    template: Annotated[str, typer.Option(help="saas | esn | smarketing | ecommerce")] = "saas",
    language: Annotated[str, typer.Option(help="en | fr")] = "en",
    force: Annotated[bool, typer.Option(help="Overwrite an existing kpilot.yaml.")] = False,
    crm: Annotated[str | None, typer.Option(help="hubspot | pipedrive | salesforce: a workspace fed by that CRM's "
                                                 "API, with pipeline generated, demos booked and win rate ready "
                                                 "(same as --source).")] = None,
    source: Annotated[str | None, typer.Option(help="hubspot | pipedrive | salesforce | ga4 | brevo: a workspace "
                                                    "fed by that service's API, its metrics ready.")] = None,
    workspace: WorkspaceOpt = Path("."),
    today: TodayOpt = None,
) -> None:
    """Create a workspace from a template: a commented kpilot.yaml and sample data (or a SaaS source's mapping)."""
    from kpilot.templates import init_workspace

    target = directory or workspace
    with _errors(language):
        ready = source or crm
        if crm is not None and source is not None and crm != source:
            raise KpilotError(msg("--crm {crm} and --source {source} name two sources. Fix: pass only one.",
                                  crm=crm, source=source))
        if ready is not None:
            from kpilot.templates import crm as crm_templates

            if (Path(target) / "kpilot.yaml").exists() and not force:
                raise KpilotError(msg("{path} already exists. Fix: pass --force to overwrite it, or pick another "
                                      "folder.", path=str(Path(target) / "kpilot.yaml")))
            path = crm_templates.write(Path(target), ready, today.date() if today else None, language)
            template = ready
        else:
            path = init_workspace(target, template, language, force=force, today=today.date() if today else None)
    tr = translator(language)
    out.print(tr("Created {path} from the {template} template.").format(path=path, template=template))
    if crm is not None or source is not None:
        out.print(tr("Next: set the credentials named in {path} (environment, secrets file or kpilot secrets set), "
                     "then kpilot sync -w {dir} && kpilot status -w {dir}").format(path=path, dir=target))
    else:
        out.print(tr("Next: kpilot validate -w {dir} && kpilot status -w {dir}").format(dir=target))


def validate(
    workspace: WorkspaceOpt = Path("."), state_dir: StateOpt = None,
    format: Annotated[TextFmt, typer.Option("--format", help="text | json")] = TextFmt.text,
    no_data: Annotated[bool, typer.Option("--no-data", help="Skip checks against the data files' columns.")] = False,
    lang: LangOpt = None,
    today: TodayOpt = None,
) -> None:
    """Check kpilot.yaml: structure, references, columns, expressions, and the method's rules."""
    with _errors(lang, workspace):
        svc = _open(workspace, state_dir)
        issues = svc.validate(with_data=not no_data, today=today.date() if today else None, environ=os.environ)
    errors = [i for i in issues if i.severity == "error"]
    if format is TextFmt.json:
        out.print_json(json.dumps({"valid": not errors, "issues": [i.to_dict() for i in issues]}, default=str))
    else:
        tr = translator(lang or svc.ws.language.value)
        _print_issues(issues, tr)
        if not errors:
            out.print(tr("{file} is valid: {metrics} metrics, {models} models, {warnings} warning(s).").format(
                file=svc.file, metrics=len(svc.ws.metrics), models=len(svc.ws.models),
                warnings=len(issues)))
    if errors:
        raise typer.Exit(1)


def load(
    workspace: WorkspaceOpt = Path("."), state_dir: StateOpt = None,
    force: Annotated[bool, typer.Option(help="Reload files even when unchanged.")] = False,
    allow_shrink: Annotated[bool, typer.Option("--allow-shrink", help="Load a file even when it would empty its "
                                               "table or remove more than half of its rows.")] = False,
    lang: LangOpt = None,
) -> None:
    """Load the workspace's data files into its warehouse (atomic; unchanged files are skipped)."""
    with _errors(lang, workspace):
        svc = _open(workspace, state_dir)
        language = lang or svc.ws.language.value
        tr = translator(language)
        with _table_progress(tr("Loading")) as on_progress:
            report = svc.load(force=force, progress=on_progress, allow_shrink=allow_shrink, strict=True)
    table = Table(title=tr("Loaded tables"), show_lines=False)
    for col in (tr("Table"), tr("File"), tr("Status"), tr("Rows"), tr("Seconds")):
        table.add_column(col)
    for t in report.tables:
        table.add_row(t.table, str(t.path), tr(t.status), format_value(t.rows, None, language),
                      f"{t.seconds:.2f}")
    out.print(table)


def compute(workspace: WorkspaceOpt = Path("."), state_dir: StateOpt = None, lang: LangOpt = None,
            today: TodayOpt = None) -> None:
    """Compute every metric (loading changed files first); only stale periods are recomputed."""
    with _errors(lang, workspace):
        svc = _open(workspace, state_dir)
        if today is not None:
            svc.today = lambda: today.date()
        tr = translator(lang or svc.ws.language.value)
        svc.load()
        with _progress() as bar:
            task = bar.add_task(tr("Computing"), total=None)

            def on_progress(done: int, total: int, what: str) -> None:
                bar.update(task, total=total, completed=done, description=f"{tr('Computing')} {what}")

            report = svc.compute(progress=on_progress)
        _warn_if_load_failed(svc, lang)
        out.print(tr("Computed {metrics} metrics: {recomputed} aggregates recomputed ({incremental} incrementally), "
                     "{fresh} up to date, {queries} queries.").format(
            metrics=len(report.metrics), recomputed=report.aggregates_recomputed,
            incremental=report.aggregates_incremental,
            fresh=report.aggregates_total - report.aggregates_recomputed, queries=report.queries))
        if svc.ws.channels:  # a workspace that delivers alerts evaluates them after each compute
            from kpilot.service import alerts

            run = alerts.evaluate(svc, load=False)
            firing = sum(1 for a in run.alerts if a.state == "firing")
            out.print(tr("Alerts: {firing} firing, {queued} message(s) queued (`kpilot alerts --send` or `kpilot "
                         "worker` delivers them).").format(firing=firing, queued=run.queued))


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
