"""The board: `status` (the current period's verdicts and decisions), `series` (a metric's periods), and `demo`,
which builds a company and shows its board. Thin, over kpilot.service and kpilot.insights."""

from __future__ import annotations

import csv
import importlib
import io
import json
import sys
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from kpilot.cli.options import (
    STATUS_STYLE,
    Fmt,
    LangOpt,
    StateOpt,
    TodayOpt,
    WorkspaceOpt,
    _as_of,
    _errors,
    _open,
    _period,
    _progress,
    _warn_if_load_failed,
    err,
    out,
)
from kpilot.i18n import (
    STATUS_WORDS,
    VERDICT_COLOURS,
    VERDICT_LABELS,
    Translator,
    counted,
    format_day,
    format_evidence_list,
    format_percent,
    format_value,
    format_verdict,
    period_words,
    translator,
)
from kpilot.model import Direction, Grain, KpilotError
from kpilot.model.errors import did_you_mean, msg, one_of
from kpilot.model.periods import PERIOD_FORMS

STATUS_DOT = {"green": "●", "amber": "▲", "red": "◆", "none": "○"}  # the verdicts' shapes, as on the pages


class SeriesFmt(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


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
            mark, s.name, period_words(s.period, s.grain.value, lang) + ("" if s.complete else "*"),
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

    team = svc.ws.team_name
    def said(label: str) -> str:  # "label:", "label :" in French
        return tr("{label}:").format(label=label)

    ordered = sorted(statuses, key=lambda s: (not s.fires, s.decision is None))
    out.print()
    out.print(f"[bold]{tr('Decisions')}[/]")
    for s in ordered:
        name = s.name.replace("[", "\\[")
        if s.decision is None:
            if s.role != "metric":
                out.print(f"  [yellow]![/] {said(name)} " + tr("no decision rule: vanity metric"))
            continue
        d = s.decision
        condition = describe_when(d.when, Direction(s.direction), tr, lambda x: format_percent(x, lang, digits=0))
        action = d.action.replace("[", "\\[")
        if d.fires:
            owner = said(f"[bold]{team(d.owner)}[/]")
            out.print(f"  [bold red]⚑[/] [bold]{name}[/] — {tr('if')} {condition} → {owner} {action}")
        else:
            out.print(f"  [dim]·[/] {name} — {tr('if')} {condition} → {said(team(d.owner))} [dim]{action}[/]")
        evidence = format_evidence_list(d.evidence, d.projected, s.unit, lang, s.grain)
        if evidence and d.evaluated:
            out.print(f"      [dim]{tr('Evidence:')} {' · '.join(evidence)}[/]")


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
            name = tr("{label}:").format(label=s.name.replace("[", "\\["))
            out.print(f"[yellow]○[/] {name} {tr('no verdict')}, {why}.")
    _decisions(statuses, svc, language, tr)
    fired = [s for s in statuses if s.fires]
    out.print(counted("decisions_to_take", len(fired), language))


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
        _print_breakdown(rows, dims, format, svc, metric, lang, grain)
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
    svc_unit = svc.ws.unit_of(metric)
    shown = (grain or m.grain).value
    table = Table(title=f"{m.label} ({tr(shown)})")
    for col in (tr("Period"), tr("Value"), tr("Target"), tr("Status")):
        table.add_column(col)
    for r in rows:
        style = STATUS_STYLE.get(str(r["status"]), "")
        table.add_row(period_words(date.fromisoformat(str(r["period"])), shown, language)
                      + ("" if r["complete"] else "*"), format_value(r["value"], svc_unit, language),
                      format_value(r["target"], svc_unit, language),
                      f"[{style}]{tr(_status_words(r))}[/]")
    out.print(table)


def _status_words(row: dict[str, Any]) -> str:
    """A period's status in words; the judged period's, its verdict's ("No data" for a source that stopped)."""
    if row.get("verdict") in VERDICT_LABELS:
        return VERDICT_LABELS[str(row["verdict"])]
    return STATUS_WORDS.get(str(row["status"]), str(row["status"]))


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
                     lang: str | None, grain: Grain | None) -> None:
    if format is SeriesFmt.json:
        sys.stdout.write(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
        return
    if format is SeriesFmt.csv:
        _write_csv(rows, ["period", "label", *dims, "value"])
        return
    language = lang or svc.ws.language.value
    tr = translator(language)
    m = svc.ws.metric(metric)
    svc_unit = svc.ws.unit_of(metric)
    said = svc.ws.label_of
    table = Table(title=f"{m.label} — {', '.join(said(d) for d in dims)}")
    for col in (tr("Period"), *[said(d) for d in dims], tr("Value")):
        table.add_column(col)
    for r in rows:
        table.add_row(period_words(date.fromisoformat(str(r["period"])), (grain or m.grain).value, language),
                      *[said(str(r[d])) for d in dims], format_value(r["value"], svc_unit, language))
    out.print(table)


def demo(
    directory: Annotated[Path, typer.Option("--dir", help="Where to write the demo workspace.")] = Path("kpilot-demo"),
    language: Annotated[str, typer.Option(help="en | fr")] = "en",
    serve: Annotated[bool, typer.Option("--serve/--no-serve",
                                        help="Serve the web app after printing the board.")] = True,
    seed: Annotated[int, typer.Option(help="Random seed of the generated company.")] = 7,
    port: Annotated[int, typer.Option(help="Port of the web app (on 127.0.0.1).")] = 8000,
    today: TodayOpt = None,
) -> None:
    """Generate a demo company (three years of marketing, sales and subscriptions), compute it, show the board."""
    from kpilot.templates.demo import create_demo

    tr = translator(language)
    day = today.date() if today else None
    with _errors(language):
        # The port first: one in use is said at once, not after a minute of generating and computing.
        sock = importlib.import_module("kpilot.web").listening_socket("127.0.0.1", port) if serve else None
        with err.status(tr("Generating the demo company...")):
            create_demo(directory, language=language, seed=seed, today=day)
        # Closed before the board and the server: other commands (`kpilot status` in another terminal) read
        # the warehouse while the demo serves.
        with _open(directory, None) as svc:
            svc.load()
            with _progress() as bar:
                task = bar.add_task(tr("Computing"), total=None)
                svc.compute(progress=lambda d, t, w: bar.update(task, total=t, completed=d))
            from kpilot.insights import Insights

            with err.status(tr("Analysing...")):
                summary = Insights(svc, as_of=day).run_all()
    status(workspace=directory, state_dir=None, format=Fmt.table, as_of=day.isoformat() if day else None,
           all_metrics=False, lang=language)
    out.print(tr("Analysis: {edges}, {warnings}, {anomalies} (kpilot leads, warnings, anomalies, forecast, audit -w "
                 "{dir}).").format(edges=counted("leading_indicators", summary["edges"], language),
                                   warnings=counted("early_warnings", summary["warnings"], language),
                                   anomalies=counted("anomalies", summary["anomalies"], language), dir=directory))
    out.print(tr("Demo workspace: {dir} (edit {dir}/kpilot.yaml, then run kpilot status -w {dir}).").format(
        dir=directory))
    if sock is not None:
        with _errors(language):
            importlib.import_module("kpilot.web").serve(directory, port=port, sock=sock)
