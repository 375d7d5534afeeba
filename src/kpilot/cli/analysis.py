"""The analysis commands: leads, forecast, warnings, anomalies, explain, audit, analyze. Thin, over kpilot.insights."""

from __future__ import annotations

import json
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from kpilot.cli.options import (
    STATUS_STYLE,
    Fmt,
    LangOpt,
    StateOpt,
    WorkspaceOpt,
    _as_of,
    _errors,
    _open,
    _warn_if_load_failed,
    err,
    out,
)
from kpilot.i18n import (
    Translator,
    cause_sentences,
    counted,
    format_change,
    format_day,
    format_forecast_evidence,
    format_percent,
    format_value,
    method_words,
    period_words,
    periods_count,
    translator,
)
from kpilot.model import Grain, KpilotError
from kpilot.model.errors import msg, render

AsOfOpt = Annotated[str | None, typer.Option("--as-of", help="Analyse as of this date (YYYY-MM-DD), ignoring "
                                                             "later rows. Default: today.")]
FmtOpt = Annotated[Fmt, typer.Option("--format", help="table | json")]


def _insights(workspace: Path, state_dir: Path | None, as_of: str | None, lang: str | None) -> Any:
    from kpilot.insights import Insights

    svc = _open(workspace, state_dir)
    ins = Insights(svc, as_of=_as_of(as_of))
    _warn_if_load_failed(svc, lang)
    return ins


def _json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, ensure_ascii=False, default=str) + "\n")


def _lang(lang: str | None, ins: Any) -> tuple[str, Translator]:
    language = lang or ins.ws.language.value
    return language, translator(language)


def _name(ins: Any, key: str) -> str:
    return str(ins.ws.metric(key).label).replace("[", "\\[")


def leads(
    workspace: WorkspaceOpt = Path("."), state_dir: StateOpt = None, format: FmtOpt = Fmt.table,
    as_of: AsOfOpt = None, lang: LangOpt = None,
) -> None:
    """Leading indicators found in the data: which metric moves first, by how many periods, how strongly."""
    with _errors(lang, workspace):
        ins = _insights(workspace, state_dir, as_of, lang)
        edges = ins.leads()
        ins.keep("leads", edges)
    if format is Fmt.json:
        _json([e.to_dict() for e in edges])
        return
    language, tr = _lang(lang, ins)
    table = Table(title=tr("Leading indicators"), box=None, header_style="bold")
    for col in (tr("Leader"), tr("Follower"), tr("Lag"), tr("Correlation"), tr("Effect of +10 %"), tr("p-value"),
                tr("Periods"), tr("Stable")):
        table.add_column(col)
    for e in edges:
        table.add_row(_name(ins, e.leader), _name(ins, e.follower),
                      periods_count(e.lag, (e.grain or ins.ws.metric(e.follower).grain).value, language),
                      f"{e.correlation:+.2f}",
                      format_percent(e.effect / 100, language, signed=True) if e.effect == e.effect else "—",
                      f"{e.p_value:.1g}", str(e.n), tr("yes") if e.stable else tr("no"))
    out.print(table)
    if not edges:
        out.print(tr("No leading indicator found: no pair passed the test after correcting for the number of "
                     "pairs tried."))


def forecast(
    metric: Annotated[str | None, typer.Argument(help="Metric key (default: the North Star and the board).")] = None,
    workspace: WorkspaceOpt = Path("."), state_dir: StateOpt = None, format: FmtOpt = Fmt.table,
    as_of: AsOfOpt = None, lang: LangOpt = None,
) -> None:
    """Each KPI at the end of the current and next periods, with an 80 % interval and the chance of target."""
    with _errors(lang, workspace):
        ins = _insights(workspace, state_dir, as_of, lang)
        if metric:
            ins.metric(metric)
            found = [f for f in [ins.forecast(metric)] if f is not None]
        else:
            found = ins.forecasts()
            ins.keep("forecasts", found)
    if format is Fmt.json:
        _json([f.to_dict() for f in found])
        return
    language, tr = _lang(lang, ins)
    if not found:
        out.print(tr("No forecast: no complete period of data as of {date}.").format(
            date=format_day(ins.as_of, language)))
        return
    table = Table(title=tr("Forecasts"), box=None, header_style="bold")
    for col in (tr("KPI"), tr("Period"), tr("Forecast"), tr("80 % interval"), tr("Target"), tr("Chance of target"),
                tr("Method")):
        table.add_column(col)
    for f in found:
        unit = ins.ws.unit_of(f.metric)
        for p in f.points:
            table.add_row(_name(ins, f.metric), period_words(date.fromisoformat(str(p["period"])), f.grain.value,
                                                             language), format_value(p["value"], unit, language),
                          f"{format_value(p['lower'], unit, language)} – {format_value(p['upper'], unit, language)}",
                          format_value(p["target"], unit, language),
                          format_percent(p["probability"], language, digits=0) if p["probability"] is not None
                          else "—", method_words(f.method, language))
    out.print(table)
    out.print(tr("How these forecasts fared on each KPI's own past (rolling-origin backtest):"))
    for f in found:
        out.print("  " + format_forecast_evidence(f.evidence, _name(ins, f.metric), language))


def warnings_cmd(
    workspace: WorkspaceOpt = Path("."), state_dir: StateOpt = None, format: FmtOpt = Fmt.table,
    as_of: AsOfOpt = None, lang: LangOpt = None,
) -> None:
    """Early warnings: a leading indicator moved and the KPI it leads is projected to miss its target."""
    with _errors(lang, workspace):
        ins = _insights(workspace, state_dir, as_of, lang)
        found = ins.warnings()
        ins.keep_findings(found)
    if format is Fmt.json:
        _json([f.to_dict() for f in found])
        return
    language, tr = _lang(lang, ins)
    if not found:
        out.print(tr("No early warning: no leading indicator moved enough to put a KPI's target at risk."))
        return
    for f in found:
        w = f.warning
        unit = ins.ws.unit_of(f.metric)
        style = STATUS_STYLE.get(f.severity, "")
        out.print(f"[{style}]⚠[/] " + tr("{kpi} in {period}: projected {projected} against a target of {target} "
                                        "({confidence} chance of missing it)").format(
            kpi=_name(ins, f.metric), period=period_words(f.period, ins.ws.metric(f.metric).grain.value, language),
            projected=format_value(w.projected, unit, language),
            target=format_value(w.target, unit, language),
            confidence=format_percent(w.confidence, language, digits=0)))
        grain = (f.grain or ins.ws.metric(f.metric).grain).value  # the lag's: weeks for a weekly leader
        out.print("   " + tr("because {leader} was {change} against its normal in {period}, {lag} earlier").format(
            leader=_name(ins, w.leader), change=format_percent(w.leader_change, language, signed=True),
            period=period_words(f.leader_period, grain, language), lag=periods_count(w.lag, grain, language)))
        d = f.decision
        if d:
            owner = ins.ws.team_name(d.owner)
            out.print("   → " + (tr("{label}:").format(label=owner) + f" {d.action}").replace("[", "\\["))
        else:
            out.print("   → " + tr("no decision rule for this KPI: decide who acts and how."))


def anomalies(
    metric: Annotated[str | None, typer.Argument(help="Metric key (default: every metric).")] = None,
    workspace: WorkspaceOpt = Path("."), state_dir: StateOpt = None, format: FmtOpt = Fmt.table,
    as_of: AsOfOpt = None, lang: LangOpt = None,
) -> None:
    """Unusual values, each scored against the metric's own past (seasonality and robust spread)."""
    with _errors(lang, workspace):
        ins = _insights(workspace, state_dir, as_of, lang)
        if metric:
            ins.metric(metric)
        found = ins.anomalies([metric] if metric else None)
        ins.keep_findings(found)
    if format is Fmt.json:
        _json([f.to_dict() for f in found])
        return
    language, tr = _lang(lang, ins)
    table = Table(title=tr("Anomalies"), box=None, header_style="bold")
    for col in (tr("Metric"), tr("Period"), tr("Value"), tr("Expected"), tr("Normal range"), tr("Severity")):
        table.add_column(col)
    for f in found:
        a = f.anomaly
        unit = ins.ws.unit_of(f.metric)
        table.add_row(_name(ins, f.metric), period_words(f.period, ins.ws.metric(f.metric).grain.value, language),
                      format_value(a.value, unit, language),
                      format_value(a.expected, unit, language),
                      f"{format_value(a.lower, unit, language)} – {format_value(a.upper, unit, language)}",
                      tr(f.severity))
    out.print(table)


def explain(
    metric: Annotated[str, typer.Argument(help="Metric key.")],
    from_: Annotated[str, typer.Option("--from", help="The period before: 2026, 2026-Q3, 2026-09, 2026-W38, or a "
                                                      "day (the period of --grain holding it).")],
    to: Annotated[str, typer.Option("--to", help="The period after, of the same kind.")],
    by: Annotated[str | None, typer.Option("--by", help="Dimensions, comma-separated (default: all).")] = None,
    grain: Annotated[Grain | None, typer.Option(help="day | week | month | quarter | year: the grain of periods "
                                                     "given as days (default: the metric's).")] = None,
    pairs: Annotated[bool, typer.Option("--pairs/--no-pairs", help="Also pairs of dimensions.")] = True,
    top: Annotated[int, typer.Option(help="Rows to show per dimension (table format).")] = 5,
    workspace: WorkspaceOpt = Path("."), state_dir: StateOpt = None, format: FmtOpt = Fmt.table,
    as_of: AsOfOpt = None, lang: LangOpt = None,
) -> None:
    """Root cause: what each dimension value (and pair) contributed to a change between two periods."""
    with _errors(lang, workspace):
        ins = _insights(workspace, state_dir, as_of, lang)
        dims = [d.strip() for d in by.split(",") if d.strip()] if by else None
        result = ins.explain(metric, from_, to, dims, pairs=pairs, grain=grain)
    compared = result.compared
    if format is Fmt.json:
        _json({"metric": metric, "from": compared.before.isoformat(), "to": compared.after.isoformat(),
               "grain": compared.grain.value, **result.to_dict()})
        return
    language, tr = _lang(lang, ins)
    unit = ins.ws.unit_of(metric)
    before_words = period_words(compared.before, compared.grain.value, language)
    after_words = period_words(compared.after, compared.grain.value, language)
    heading = tr("{label}:").format(label=f"[bold]{_name(ins, metric)}[/], {before_words} → {after_words}")
    out.print(heading + " " + tr("{before} → {after} ({change})").format(
        before=format_value(result.total_before, unit, language),
        after=format_value(result.total_after, unit, language),
        change=format_change(result.total_change, unit, language, currency=ins.ws.currency)))
    if compared.regrained:
        out.print(tr("Compared by {grain} (the metric's own grain is {metric_grain}): its value for each {grain} is "
                     "computed from the rows of that {grain}.").format(grain=tr(compared.grain.value),
                                                                       metric_grain=tr(compared.metric_grain.value)))
    if compared.days is not None:
        earlier, later = sorted([(before_words, compared.before, compared.before_end),
                                 (after_words, compared.after, compared.after_end)], key=lambda p: p[1])

        def days(first: date, end: date) -> str:
            return f"{format_day(first, language)} – {format_day(end - timedelta(days=1), language)}"

        out.print(tr("{period} is in progress: it is compared with {other} over the same first {days} day(s) "
                     "({other_days} against {period_days}), not with the whole of {other}.").format(
            period=later[0], other=earlier[0], days=compared.days, other_days=days(*earlier[1:]),
            period_days=days(*later[1:])))
    for line in _cause_lines(result, ins.ws, unit, language, tr):
        out.print(line.replace("[", "\\["))
    table = Table(box=None, header_style="bold")
    ratio = result.kind == "ratio"
    cols = [tr("Dimension"), tr("Value"), tr("Before"), tr("After"), tr("Contribution"), tr("Share")]
    if ratio:
        cols += [tr("Mix effect"), tr("Rate effect")]
    for col in cols:
        table.add_column(col)
    shown: dict[tuple[str, ...], int] = {}
    for c in result.contributions:
        if shown.get(c.dimensions, 0) >= top:
            continue
        shown[c.dimensions] = shown.get(c.dimensions, 0) + 1
        said = ins.ws.label_of
        row = [" × ".join(said(d) for d in c.dimensions), " × ".join(said(str(v)) for v in c.values),
               format_value(c.before, unit, language), format_value(c.after, unit, language),
               format_change(c.change, unit, language, currency=ins.ws.currency),
               format_percent(c.share, language, digits=0) if c.share is not None else "—"]
        if ratio:
            row += [format_change(c.mix, unit, language, currency=ins.ws.currency),
                    format_change(c.rate, unit, language, currency=ins.ws.currency)]
        table.add_row(*row)
    out.print(table)


def _cause_lines(result: Any, ws: Any, unit: str | None, language: str, tr: Translator) -> list[str]:
    """The combinations of dimension values that moved the metric, in words (i18n.cause_sentences), as lines."""
    said = cause_sentences(result, ws, unit, language)
    return said[:1] + ["  • " + line for line in said[1:]]


def _fix_words(fix: Any, metric: str | None, ins: Any, tr: Translator, inventory: Path | None) -> str:
    """An audit's fix in words, with where to make it: the metric's settings page (and kpilot.yaml), kpilot.yaml
    alone, or the inventory file; the same places the web page links to."""
    text = render(fix.text, tr)
    if fix.where == "settings" and metric is not None and metric in ins.ws.metric_keys:
        address = f"{ins.ws.base_url or ''}/settings/metric/{metric}"
        return tr("{fix} — on the settings page {address}, or in kpilot.yaml").format(fix=text, address=address)
    if fix.where == "inventory" and inventory is not None:
        return tr("{fix} — in the inventory file {file}").format(fix=text, file=str(inventory))
    return tr("{fix} — in kpilot.yaml").format(fix=text)


def audit(
    inventory: Annotated[Path | None, typer.Option("--inventory", help="CSV of an existing dashboard's charts: "
                                                                        "title, metric, owner, decision.")] = None,
    workspace: WorkspaceOpt = Path("."), state_dir: StateOpt = None, format: FmtOpt = Fmt.table,
    as_of: AsOfOpt = None, lang: LangOpt = None,
) -> None:
    """The Christmas-tree test: for every metric (or chart), keep, fix or delete, and why."""
    with _errors(lang, workspace):
        ins = _insights(workspace, state_dir, as_of, lang)
        if inventory is not None:
            try:
                text = inventory.read_text(encoding="utf-8-sig")
            except (OSError, UnicodeDecodeError) as exc:
                raise KpilotError(msg("cannot read the inventory {file}: {reason}. Fix: give a UTF-8 CSV file "
                                      "with the columns title, metric, owner, decision.", file=str(inventory),
                                      reason=str(exc))) from None
            verdicts = ins.audit_inventory(text, str(inventory))
        else:
            verdicts = ins.audit()
            ins.keep("audit", verdicts)
    if format is Fmt.json:
        _json([v.to_dict() for v in verdicts])
        return
    _, tr = _lang(lang, ins)
    style = {"keep": "green", "fix": "yellow", "delete": "red"}
    for v in verdicts:
        title = str(v.title).replace("[", "\\[")
        out.print(f"[{style.get(v.verdict, '')}]{tr(v.verdict).upper()}[/] [bold]{title}[/]")
        for reason in v.reasons:
            out.print("   · " + render(reason, tr).replace("[", "\\["))
        if v.question:
            out.print("   ? " + render(v.question, tr).replace("[", "\\["))
        for f in v.fixes:
            out.print("   → " + _fix_words(f, v.metric, ins, tr, inventory).replace("[", "\\["))
    counts = {k: sum(1 for v in verdicts if v.verdict == k) for k in ("keep", "fix", "delete")}
    out.print(tr("{keep} to keep, {fix} to fix, {delete} to delete.").format(**counts))


def analyze(
    workspace: WorkspaceOpt = Path("."), state_dir: StateOpt = None, format: FmtOpt = Fmt.table,
    as_of: AsOfOpt = None, lang: LangOpt = None,
) -> None:
    """Run every analysis (leading indicators, forecasts, warnings, anomalies, audit) and store the results."""
    with _errors(lang, workspace):
        ins = _insights(workspace, state_dir, as_of, lang)
        with err.status(translator(lang or ins.ws.language.value)("Analysing...")):
            summary = ins.run_all()
    if format is Fmt.json:
        _json(summary)
        return
    language, tr = _lang(lang, ins)
    out.print(tr("Analysed as of {date}: {edges}, {forecasts}, {warnings}, {anomalies}, {audit}; {new}.").format(
        date=format_day(ins.as_of if isinstance(ins.as_of, date) else None, language),
        edges=counted("leading_indicators", summary["edges"], language),
        forecasts=counted("forecasts", summary["forecasts"], language),
        warnings=counted("early_warnings", summary["warnings"], language),
        anomalies=counted("anomalies", summary["anomalies"], language),
        audit=counted("metrics_audited", summary["audit"], language),
        new=counted("new_findings", summary["new_findings"], language)))
