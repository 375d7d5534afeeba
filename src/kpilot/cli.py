"""The command line: thin commands over `kpilot.service`. Output in the workspace's language."""

from __future__ import annotations

import csv
import importlib
import importlib.util
import io
import json
import os
import re
import sys
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
from rich.table import Table

from kpilot.i18n import (
    LANGUAGES,
    VERDICT_COLOURS,
    Translator,
    format_day,
    format_evidence,
    format_percent,
    format_value,
    format_verdict,
    translator,
)
from kpilot.model import Direction, Grain, Issue, KpilotError, WorkspaceInvalid, workspace_file
from kpilot.model.errors import did_you_mean, message_of, msg, one_of, render
from kpilot.model.periods import PERIOD_FORMS, NotADay, parse_day, parse_period

app = typer.Typer(
    name="kpilot",
    help="kpilot — from vision to action: a North Star, 3-5 KPIs, status, forecasts and decisions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

STATUS_STYLE = {"green": "green", "amber": "yellow", "red": "red", "none": "dim"}
STATUS_DOT = {"green": "●", "amber": "●", "red": "●", "none": "○"}


class Fmt(StrEnum):
    table = "table"
    json = "json"


class SeriesFmt(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


class TextFmt(StrEnum):
    text = "text"
    json = "json"


WorkspaceOpt = Annotated[Path, typer.Option("--workspace", "-w", help="Workspace folder (holds kpilot.yaml).")]
StateOpt = Annotated[Path | None, typer.Option("--state-dir", help="A folder for workspaces' state, as "
                                                "$KPILOT_STATE_DIR: the warehouse goes in DIR/<workspace>-<hash> "
                                                "(default: <workspace>/.kpilot).")]
LangOpt = Annotated[str | None, typer.Option("--lang", help="Output language: en or fr (default: the workspace's).")]


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


TodayOpt = Annotated[datetime | None, typer.Option("--today", hidden=True, formats=["%Y-%m-%d"],
                                                  help="Pretend today is this date (tests).")]


@app.command()
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


@app.command("validate")
def validate_cmd(
    workspace: WorkspaceOpt = Path("."), state_dir: StateOpt = None,
    format: Annotated[TextFmt, typer.Option("--format", help="text | json")] = TextFmt.text,
    no_data: Annotated[bool, typer.Option("--no-data", help="Skip checks against the data files' columns.")] = False,
    lang: LangOpt = None,
    today: TodayOpt = None,
) -> None:
    """Check kpilot.yaml: structure, references, columns, expressions, and the method's rules."""
    with _errors(lang, workspace):
        svc = _open(workspace, state_dir)
        issues = svc.validate(with_data=not no_data, today=today.date() if today else None)
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


@app.command()
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


@app.command()
def compute(workspace: WorkspaceOpt = Path("."), state_dir: StateOpt = None, lang: LangOpt = None) -> None:
    """Compute every metric (loading changed files first); only stale periods are recomputed."""
    with _errors(lang, workspace):
        svc = _open(workspace, state_dir)
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


def _status_table(statuses: list[Any], lang: str, tr: Translator) -> Table:
    table = Table(show_lines=False, pad_edge=False, box=None, header_style="bold")
    for col, justify in (("", "left"), (tr("KPI"), "left"), (tr("Period"), "left"), (tr("Value"), "right"),
                         (tr("Target"), "right"), (tr("Pace"), "right"), (tr("Verdict"), "left"),
                         (tr("Change"), "right"), (tr("Decision"), "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for s in statuses:
        colour = VERDICT_COLOURS[s.verdict.value]
        style = STATUS_STYLE.get(colour, "")
        verdict, _ = format_verdict(s.verdict.value, s.verdict_reason, s.data_through, lang)
        mark = "★" if s.role == "north_star" else ""
        if s.decision is None:
            decision = f"[dim]{tr('no rule')}[/]"
        elif s.decision.fires:
            decision = f"[bold red]⚑ {tr('DECIDE')}[/]"
        else:
            decision = f"[dim]{tr('watching')}[/]"
        table.add_row(
            mark, s.name, s.period_label + ("" if s.complete else "*"),
            format_value(s.value, s.unit, lang), format_value(s.target, s.unit, lang),
            format_percent(s.pacing, lang, digits=0) if s.pacing is not None else "—",
            f"[{style}]{STATUS_DOT.get(colour, '')} {verdict}[/]",
            format_percent(s.change, lang, signed=True) if s.change is not None else "—",
            decision,
        )
    return table


def _decisions(statuses: list[Any], svc: Any, lang: str, tr: Translator) -> None:
    """Below the table: each KPI's decision rule, the fired ones first, in full sentences, with its evidence."""
    from kpilot.service import describe_when

    def team(key: str) -> str:
        try:
            return str(svc.ws.team(key).label)
        except KeyError:
            return key

    ordered = sorted(statuses, key=lambda s: (not s.fires, s.decision is None))
    out.print()
    out.print(f"[bold]{tr('Decisions')}[/]")
    for s in ordered:
        name = s.name.replace("[", "\\[")
        if s.decision is None:
            if s.role != "metric":
                out.print(f"  [yellow]![/] {name}: " + tr("no decision rule: vanity metric"))
            continue
        d = s.decision
        condition = describe_when(d.when, Direction(s.direction), tr, lambda x: format_percent(x, lang, digits=0))
        action = d.action.replace("[", "\\[")
        if d.fires:
            out.print(f"  [bold red]⚑[/] [bold]{name}[/] — {tr('if')} {condition} → [bold]{team(d.owner)}[/]: {action}")
        else:
            out.print(f"  [dim]·[/] {name} — {tr('if')} {condition} → {team(d.owner)}: [dim]{action}[/]")
        evidence = [format_evidence(e.label, e.value, e.target, e.status, s.unit, lang) for e in d.evidence]
        if d.projected is not None:
            projected = format_value(d.projected, s.unit, lang)
            evidence.append(tr("projected at period end: {value}").format(value=projected))
        if evidence and d.evaluated:
            out.print(f"      [dim]{tr('Evidence:')} {' · '.join(evidence)}[/]")


@app.command()
def status(
    workspace: WorkspaceOpt = Path("."), state_dir: StateOpt = None,
    format: Annotated[Fmt, typer.Option("--format", help="table | json")] = Fmt.table,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Judge as of this date (YYYY-MM-DD), ignoring "
                                                             "later rows. Default: today.")] = None,
    all_metrics: Annotated[bool, typer.Option("--all", help="Also show metrics not on the board.")] = False,
    lang: LangOpt = None,
) -> None:
    """The board for the current period: North Star and KPIs with target, pace, status and decision."""
    with _errors(lang, workspace):
        day = _as_of(as_of)
        svc = _open(workspace, state_dir)
        statuses = svc.board(as_of=day, all_metrics=all_metrics)
        _warn_if_load_failed(svc, lang)
    if format is Fmt.json:
        sys.stdout.write(json.dumps([s.to_dict() for s in statuses], indent=2, ensure_ascii=False, default=str) + "\n")
        return
    language = lang or svc.ws.language.value
    tr = translator(language)
    title = svc.ws.title or svc.ws.workspace
    as_of_day = day or svc.today()
    out.print(f"[bold]{title}[/] — " + tr("board as of {date}").format(date=format_day(as_of_day, language)))
    if svc.ws.vision:
        out.print(f"[dim]{svc.ws.vision.statement}[/]")
    out.print(_status_table(statuses, language, tr))
    late = sorted({s.data_through for s in statuses if s.data_through and s.data_through < as_of_day})
    if late:
        out.print("[dim]* " + tr("period in progress, judged on its pace.") + " "
                  + tr("Latest data: {date}.").format(date=format_day(late[0], language)) + "[/]")
    for s in statuses:
        if s.verdict_reason:
            _, why = format_verdict(s.verdict.value, s.verdict_reason, s.data_through, language)
            out.print(f"[yellow]○[/] {s.name.replace('[', chr(92) + '[')}: {tr('no verdict')}, {why}.")
    _decisions(statuses, svc, language, tr)
    fired = [s for s in statuses if s.fires]
    out.print(tr("{n} decision(s) to take this period.").format(n=len(fired)))


@app.command()
def series(
    metric: Annotated[str, typer.Argument(help="Metric key.")],
    workspace: WorkspaceOpt = Path("."), state_dir: StateOpt = None,
    grain: Annotated[Grain | None, typer.Option(help="day | week | month | quarter | year "
                                                     "(default: the metric's).")] = None,
    from_: Annotated[str | None, typer.Option("--from", help=f"First period ({PERIOD_FORMS}).")] = None,
    to: Annotated[str | None, typer.Option("--to", help="Last period.")] = None,
    format: Annotated[SeriesFmt, typer.Option("--format", help="table | json | csv")] = SeriesFmt.table,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Compute as of this date, ignoring later rows.")] = None,
    by: Annotated[str | None, typer.Option("--by", help="Slice by dimension(s), comma-separated, "
                                                        "e.g. --by leads.channel")] = None,
    lang: LangOpt = None,
) -> None:
    """Every period of a metric: value, target and status (or its values by dimension with --by)."""
    with _errors(lang, workspace):
        day, first, last = _as_of(as_of), _period(from_), _period(to)
        svc = _open(workspace, state_dir)
        if metric not in svc.ws.metric_keys:
            raise KpilotError(msg("unknown metric '{metric}';{hint} metrics: {metrics}", metric=metric,
                                  hint=did_you_mean(metric, svc.ws.metric_keys),
                                  metrics=one_of(svc.ws.metric_keys, 40)))
        dims = [d.strip() for d in by.split(",") if d.strip()] if by else []
        if dims:
            rows = svc.breakdown(metric, dims, grain=grain, first=first, last=last, as_of=day)
        else:
            rows = svc.series(metric, grain=grain, first=first, last=last, as_of=day)
        _warn_if_load_failed(svc, lang)
    if dims:
        _print_breakdown(rows, dims, format, svc, metric, lang)
        return
    if format is SeriesFmt.json:
        sys.stdout.write(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
        return
    if format is SeriesFmt.csv:
        _write_csv(rows, ["period", "label", "value", "target", "status", "complete"])
        return
    language = lang or svc.ws.language.value
    tr = translator(language)
    m = svc.ws.metric(metric)
    table = Table(title=f"{m.label} ({(grain or m.grain).value})")
    for col in (tr("Period"), tr("Value"), tr("Target"), tr("Status")):
        table.add_column(col)
    for r in rows:
        style = STATUS_STYLE.get(str(r["status"]), "")
        table.add_row(str(r["label"]) + ("" if r["complete"] else "*"), format_value(r["value"], m.unit, language),
                      format_value(r["target"], m.unit, language),
                      f"[{style}]{tr(str(r['status']))}[/]")
    out.print(table)


def _write_csv(rows: list[dict[str, Any]], fields: list[str]) -> None:
    """Rows as CSV on stdout; ratios also get their numerator and denominator columns."""
    if rows and "numerator" in rows[0]:
        fields = [*fields, "numerator", "denominator"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    sys.stdout.write(buf.getvalue())


def _print_breakdown(rows: list[dict[str, Any]], dims: list[str], format: SeriesFmt, svc: Any, metric: str,
                     lang: str | None) -> None:
    if format is SeriesFmt.json:
        sys.stdout.write(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
        return
    if format is SeriesFmt.csv:
        _write_csv(rows, ["period", "label", *dims, "value"])
        return
    language = lang or svc.ws.language.value
    tr = translator(language)
    m = svc.ws.metric(metric)
    table = Table(title=f"{m.label} — {', '.join(dims)}")
    for col in (tr("Period"), *dims, tr("Value")):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r["label"]), *[str(r[d]) for d in dims], format_value(r["value"], m.unit, language))
    out.print(table)


@app.command("serve")
def serve_cmd(
    workspace: WorkspaceOpt = Path("."), state_dir: StateOpt = None,
    host: Annotated[str, typer.Option(help="Address to listen on (127.0.0.1: this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    db: Annotated[str | None, typer.Option("--db", help="Application database URL (settings, decisions); "
                                                        "default: $KPILOT_DATABASE_URL, else SQLite in the state "
                                                        "folder.")] = None,
    allowed_host: Annotated[list[str] | None, typer.Option(
        "--allowed-host", help="A host name the server is reached by (behind a proxy: its public name); "
                               "repeat for several. Loopback names are always allowed.")] = None,
) -> None:
    """Serve the workspace's web app: the board and a page per KPI, in French or English."""
    with _errors(None, workspace):
        from kpilot.web import serve as serve_web

        with _open(workspace, state_dir) as svc:  # --state-dir is a root, as KPILOT_STATE_DIR is
            state = svc.state_dir
        serve_web(workspace, host=host, port=port, state_dir=state, db_url=db, hosts=allowed_host or [])


@app.command()
def demo(
    directory: Annotated[Path, typer.Option("--dir", help="Where to write the demo workspace.")] = Path("kpilot-demo"),
    language: Annotated[str, typer.Option(help="en | fr")] = "en",
    serve: Annotated[bool, typer.Option("--serve/--no-serve",
                                        help="Serve the web app after printing the board.")] = True,
    seed: Annotated[int, typer.Option(help="Random seed of the generated company.")] = 7,
    today: TodayOpt = None,
) -> None:
    """Generate a demo company (three years of marketing, sales and subscriptions), compute it, show the board."""
    from kpilot.templates.demo import create_demo

    tr = translator(language)
    day = today.date() if today else None
    with _errors(language):
        with err.status(tr("Generating the demo company...")):
            create_demo(directory, language=language, seed=seed, today=day)
        svc = _open(directory, None)
        svc.load()
        with _progress() as bar:
            task = bar.add_task(tr("Computing"), total=None)
            svc.compute(progress=lambda d, t, w: bar.update(task, total=t, completed=d))
        from kpilot.insights import Insights

        with err.status(tr("Analysing...")):
            summary = Insights(svc, as_of=day).run_all()
    status(workspace=directory, state_dir=None, format=Fmt.table, as_of=day.isoformat() if day else None,
           all_metrics=False, lang=language)
    out.print(tr("Analysis: {edges} leading indicator(s), {warnings} early warning(s), {anomalies} anomaly(ies) "
                 "(kpilot leads, warnings, anomalies, forecast, audit -w {dir}).").format(
        edges=summary["edges"], warnings=summary["warnings"], anomalies=summary["anomalies"], dir=directory))
    out.print(tr("Demo workspace: {dir} (edit {dir}/kpilot.yaml, then run kpilot status -w {dir}).").format(
        dir=directory))
    if serve:
        # The web app comes with its own issue; until then the board above is the whole demo.
        if importlib.util.find_spec("kpilot.web") is None:
            out.print(tr("The web app is not part of this version yet; the board above is the demo."))
            return
        importlib.import_module("kpilot.web").serve(directory)


import kpilot.cli_export  # noqa: E402  (registers `kpilot export` on `app`)
import kpilot.cli_secrets  # noqa: E402  (registers `kpilot secrets` on `app`)
import kpilot.cli_sync  # noqa: E402, F401  (registers `kpilot sync` on `app`)
from kpilot import cli_analysis  # noqa: E402, F401  (registers the analysis commands on `app`)


def main() -> None:
    app()


if __name__ == "__main__":
    # Run as a module, this file is __main__; the commands of kpilot.cli_analysis register on the
    # app of the imported kpilot.cli, so run that one.
    from kpilot.cli import main as _main

    _main()
