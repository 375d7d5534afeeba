"""`kpilot decide` and `kpilot decisions`: the decision log from the command line, with the expected effect, the
review date, and the effect measured against the forecast made before the decision. Thin, over the service."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from kpilot.cli.options import Fmt, LangOpt, StateOpt, TodayOpt, WorkspaceOpt, _as_of, _errors, _open, out
from kpilot.i18n import EFFECT_WORDS, format_value, translator


def decide(
    metric: Annotated[str, typer.Argument(help="The KPI's key.")],
    action: Annotated[str, typer.Option("--action", help="What was decided.")],
    expect: Annotated[str | None, typer.Option("--expect", help="The expected effect, in words: \"+15 % demos "
                                                                "within 3 weeks\".")] = None,
    review_on: Annotated[str | None, typer.Option("--review-on", help="When to measure the effect (YYYY-MM-DD); "
                                                                      "default: from --expect, else the rule's "
                                                                      "review_after.")] = None,
    by: Annotated[str | None, typer.Option("--by", help="Who decided.")] = None,
    owner: Annotated[str | None, typer.Option("--owner", help="The team that acts (default: the rule's owner).")]
    = None,
    alert: Annotated[int | None, typer.Option("--alert", help="The alert this decision answers.")] = None,
    workspace: WorkspaceOpt = Path("."), state_dir: StateOpt = None, lang: LangOpt = None, today: TodayOpt = None,
) -> None:
    """Record a decision about a KPI, with its expected effect and review date; the forecast made now is kept to
    measure the effect against."""
    from kpilot.service import decisions as service

    with _errors(lang, workspace):
        svc = _open(workspace, state_dir)
        record = service.decide(svc, metric, action=action, by=by, owner=owner, expected_effect=expect,
                                review_on=_as_of(review_on), alert_id=alert,
                                today=today.date() if today else None)
    tr = translator(lang or svc.ws.language.value)
    out.print(tr("Decision {id} recorded for {name}; its effect is measured on {day}.").format(
        id=record.id, name=svc.ws.metric(metric).label, day=record.review_on))


def decisions(
    workspace: WorkspaceOpt = Path("."), state_dir: StateOpt = None,
    review: Annotated[bool, typer.Option("--review", help="Measure now the decisions whose review date has "
                                                          "come.")] = False,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Measure as of this date (YYYY-MM-DD).")] = None,
    format: Annotated[Fmt, typer.Option("--format", help="table | json")] = Fmt.table, lang: LangOpt = None,
) -> None:
    """The decision log: what was decided, by whom, the expected effect, and the effect measured at the review."""
    from kpilot.service import decisions as service

    with _errors(lang, workspace):
        svc = _open(workspace, state_dir)
        if review:
            svc.load()
            service.review_due(svc, _as_of(as_of) or svc.today())
        log = svc.app_store().decisions(svc.ws.workspace)
    if format is Fmt.json:
        out.print_json(json.dumps([d.to_dict() for d in log], default=str))
        return
    language = lang or svc.ws.language.value
    tr = translator(language)
    if not log:
        out.print(tr("No decision recorded yet. Record one with `kpilot decide METRIC --action TEXT`, or from a KPI's "
                     "page."))
        return
    table = Table(title=tr("Decisions"))
    for col in ("#", tr("KPI"), tr("Action"), tr("By"), tr("Expected"), tr("Review"), tr("Effect")):
        table.add_column(col)
    for d in log:
        name = svc.ws.metric(d.metric).label if d.metric in svc.ws.metric_keys else d.metric
        unit = svc.ws.unit_of(d.metric) if d.metric in svc.ws.metric_keys else None
        table.add_row(str(d.id), name, d.action, d.user or d.owner or "", d.expected_effect or "", d.review_on or "",
                      _effect(d.effect, unit, language))
    out.print(table)


def _effect(effect: dict[str, Any] | None, unit: str | None, lang: str) -> str:
    if not effect:
        return ""
    tr = translator(lang)
    words = tr(EFFECT_WORDS.get(str(effect.get("verdict")), str(effect.get("verdict"))))
    if effect.get("actual") is None:
        return words
    actual, forecast = format_value(effect.get("actual"), unit, lang), format_value(effect.get("counterfactual"), unit,
                                                                                   lang)
    return tr("{words}: {actual} (forecast without it: {forecast})").format(words=words, actual=actual,
                                                                             forecast=forecast)


__all__ = ["decide", "decisions"]
