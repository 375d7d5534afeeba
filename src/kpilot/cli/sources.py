"""`kpilot sync` (copy the tables of database sources into the warehouse) and `kpilot worker` (sync on schedules).

Thin, over WorkspaceService.sync and kpilot.worker."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from kpilot.cli.options import LangOpt, StateOpt, WorkspaceOpt, _errors, _escape, _open, _table_progress, err, out
from kpilot.i18n import Translator, format_value, translator
from kpilot.model import KpilotError, Workspace, load_workspace
from kpilot.model.errors import N_, msg, render

if TYPE_CHECKING:
    from kpilot.service import WorkspaceService
    from kpilot.worker import TickReport

STATUS = {"copied": N_("copied"), "synced": N_("synced"), "failed": N_("failed")}


def sync(
    source: Annotated[str | None, typer.Argument(help="Key of the source to sync (default: all).")] = None,
    workspace: WorkspaceOpt = Path("."),
    state_dir: StateOpt = None,
    full: Annotated[bool, typer.Option(help="Copy every table in full again, even incremental ones.")] = False,
    lang: LangOpt = None,
) -> None:
    """Copy the tables of the database and SaaS sources (PostgreSQL, MySQL/MariaDB, SQLite, DuckDB, HubSpot,
    Pipedrive, GA4, Salesforce, Brevo) into the warehouse."""
    with _errors(lang, workspace):
        svc = _open(workspace, state_dir)
        language = lang or svc.ws.language.value
        tr = translator(language)
        with _table_progress(tr("Syncing")) as on_batch:
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


def worker(
    workspace: WorkspaceOpt = Path("."),
    state_dir: StateOpt = None,
    once: Annotated[bool, typer.Option("--once", help="Sync every scheduled source now, recompute, then exit.")]
    = False,
    lang: LangOpt = None,
) -> None:
    """Sync each source on its `schedule:` (cron), then recompute the metrics that read it and run the analysis."""
    from contextlib import contextmanager

    from kpilot.worker import REVIEW, Scheduler, schedules

    with _errors(lang, workspace):
        first = _open(workspace, state_dir)
        first.close()
        tr = translator(lang or first.ws.language.value)
        scheduled = list(schedules(first.ws))
        review_scheduled = first.ws.review is not None and first.ws.review.schedule is not None
        if not scheduled and not first.ws.channels and not review_scheduled:
            raise KpilotError(msg("{file} has no source with a `schedule:` and no channel to deliver alerts to. "
                                  "Fix: add a schedule to a source, e.g. `schedule: \"*/15 * * * *\"` (every 15 "
                                  "minutes), or declare `channels:`.", file=str(first.file)))

    @contextmanager
    def session() -> Iterator[WorkspaceService]:
        # A fresh service per tick: kpilot.yaml is read again, and the warehouse is free between ticks.
        with _open(workspace, state_dir) as svc:
            yield svc

    def workspace_now() -> Workspace:
        return load_workspace(first.file)[0]

    def show(report: TickReport) -> None:
        _print_tick(report, tr, lang or first.ws.language.value, retried=not once)

    logging.getLogger("kpilot.scheduler").addHandler(logging.NullHandler())  # the lines below say it all

    scheduler = Scheduler(session, workspace_now, on_tick=show)
    if once:
        report = scheduler.tick(scheduled)
        if report.failed or report.error:
            raise typer.Exit(1)
        return
    runs = scheduler.next_runs()
    zone = ZoneInfo(first.ws.timezone)
    for key, at in sorted(runs.items(), key=lambda kv: kv[1]):
        when = at.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
        out.print(_escape(tr("weekly review: next sending at {time}").format(time=when) if key == REVIEW else
                          tr("{source}: next sync at {time}").format(source=key, time=when)))
    try:
        scheduler.run_forever()
    except KeyboardInterrupt:
        err.print(tr("Stopped."))


def _print_tick(report: TickReport, tr: Translator, language: str, *, retried: bool) -> None:
    """One tick as lines: each source's outcome, the metrics recomputed, what the analysis found."""
    stamp = report.at.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    for run in report.runs:
        if run.ok:
            out.print(_escape(f"{stamp} " + tr("{source}: synced in {seconds} s; changed tables: {tables}").format(
                source=run.source, seconds=f"{run.seconds:.2f}", tables=", ".join(run.changed) or tr("(none)"))))
        else:
            err.print(f"{stamp} [bold red]{tr('error:')}[/] " + _escape(render(run.error or "", tr)), markup=True)
            failed = (msg("source '{source}' failed; it keeps its last good data and is tried again at the next "
                          "tick.", source=run.source) if retried else
                      msg("source '{source}' failed; it keeps its last good data.", source=run.source))
            err.print(_escape(render(failed, tr)))
    for key in report.busy:
        err.print(_escape(tr("{source}: a sync of this source is still running; skipped").format(source=key)))
    if report.metrics:
        out.print(_escape(f"{stamp} " + tr("recomputed {n} metric(s): {metrics}").format(
            n=format_value(len(report.metrics), None, language), metrics=", ".join(report.metrics))))
    if report.analysis is not None:
        out.print(_escape(f"{stamp} " + tr("analysis: {warnings} warning(s), {anomalies} anomaly(ies), "
                                           "{new} new finding(s)").format(
            warnings=report.analysis.get("warnings", 0), anomalies=report.analysis.get("anomalies", 0),
            new=report.analysis.get("new_findings", 0))))
    if report.alerts:
        out.print(_escape(f"{stamp} " + tr("alerts: {n} message(s) queued").format(n=report.alerts)))
    if report.review is not None:
        out.print(_escape(f"{stamp} " + tr("weekly review: {n} message(s) queued").format(n=report.review)))
    if report.delivery is not None and (report.delivery.sent or report.delivery.retrying or report.delivery.failed):
        out.print(_escape(f"{stamp} " + tr("outbox: {sent} sent, {retry} to retry, {failed} failed").format(
            sent=len(report.delivery.sent), retry=len(report.delivery.retrying), failed=len(report.delivery.failed))))
        for delivery_id, why in report.delivery.failed:
            err.print(f"{stamp} [bold red]{tr('error:')}[/] " + _escape(tr("message {id} not delivered: {why}").format(
                id=delivery_id, why=why)), markup=True)
    if report.error:
        err.print(f"{stamp} [bold red]{tr('error:')}[/] " + _escape(render(report.error, tr)), markup=True)
