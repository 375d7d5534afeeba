"""`kpilot alerts`: evaluate the alerts, queue and send their messages, acknowledge or snooze one, replay history.

Thin, over `kpilot.service.alerts`: the alerts are the board's verdicts and the analysis's findings, so what this
command says about a KPI is what the board, the pages and the API say.
"""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from kpilot.cli.options import Fmt, LangOpt, StateOpt, TodayOpt, WorkspaceOpt, _as_of, _errors, _escape, _open, err, out
from kpilot.i18n import ALERT_KINDS, ALERT_STATES, Translator, format_verdict, translator
from kpilot.model import KpilotError
from kpilot.model.errors import msg

group = typer.Typer(help="Alerts to the owners of the KPIs: evaluate, send, acknowledge, snooze, replay.")

AsOfOpt = Annotated[str | None, typer.Option("--as-of", help="Evaluate as of this date (YYYY-MM-DD); default today.")]
FormatOpt = Annotated[Fmt, typer.Option("--format", help="table | json")]
IdArg = Annotated[int, typer.Argument(help="The alert's id (see `kpilot alerts`).")]

KIND_WORDS, STATE_WORDS = ALERT_KINDS, ALERT_STATES


@group.callback(invoke_without_command=True)
def alerts(
    ctx: typer.Context,
    workspace: WorkspaceOpt = Path("."),
    state_dir: StateOpt = None,
    as_of: AsOfOpt = None,
    send: Annotated[bool, typer.Option("--send", help="Deliver the queued messages now (else `kpilot worker` "
                                                      "delivers them).")] = False,
    format: FormatOpt = Fmt.table,
    lang: LangOpt = None,
    today: TodayOpt = None,
) -> None:
    """Evaluate the alerts (board verdicts and decision rules, early warnings, anomalies), store them and queue their
    messages; with --send, deliver them."""
    if ctx.invoked_subcommand is not None:
        return
    from kpilot.service import alerts as service

    with _errors(lang, workspace):
        svc = _open(workspace, state_dir)
        if today is not None:
            svc.today = lambda: today.date()
        if send:
            _check_sending(svc)
        run = service.evaluate(svc, as_of=_as_of(as_of))
        delivery = service.deliver(svc, os.environ) if send else None
        outbox = svc.app_store().outbox(svc.ws.workspace, states=["pending", "failed"])
    if format is Fmt.json:
        out.print_json(json.dumps({**run.to_dict(), "delivery": delivery.to_dict() if delivery else None,
                                   "outbox": [m.to_dict() for m in outbox]}, default=str))
        return
    tr = translator(lang or svc.ws.language.value)
    _print_run(run, svc, tr, lang or svc.ws.language.value)
    if delivery is not None:
        out.print(tr("Sent {sent}; retrying later {retry}; failed {failed}.").format(
            sent=len(delivery.sent), retry=len(delivery.retrying), failed=len(delivery.failed)))
    failed = [m for m in outbox if m.state == "failed"]
    for m in failed:
        err.print("[red]" + _escape(tr("not delivered:")) + "[/] " + _escape(
            tr("{subject} to {channel}: {error}").format(subject=m.message.get("subject", ""), channel=m.channel,
                                                          error=m.last_error or "")), markup=True)
    waiting = [m for m in outbox if m.state == "pending"]
    if waiting and not send:
        out.print(tr("{n} message(s) wait in the outbox: `kpilot alerts --send` or `kpilot worker` delivers them.")
                  .format(n=len(waiting)))


def _check_sending(svc: Any) -> None:
    from kpilot.model import WorkspaceInvalid

    issues = [i for i in svc.validate(with_data=False, environ={**os.environ, **svc.alert_secrets()})
              if i.severity == "error" and i.code in ("no_smtp", "bad_smtp", "env_not_set", "unknown_channel")]
    if issues:
        raise WorkspaceInvalid(issues)


def _team(svc: Any, key: str) -> str:
    return str(svc.ws.team_name(key))


def _print_run(run: Any, svc: Any, tr: Translator, lang: str) -> None:
    table = Table(title=tr("Alerts as of {day}").format(day=run.as_of.isoformat()))
    for col in ("#", tr("KPI"), tr("Alert"), tr("Verdict"), tr("State"), tr("Since"), tr("For"), tr("Story")):
        table.add_column(col)
    from kpilot.service.alerts import unreached

    nowhere = unreached(svc.ws, run.alerts)
    told = {(k, t) for k, t in run.pinged if t not in nowhere}
    for a in run.alerts:
        verdict = a.payload.get("verdict") or ("off_track" if a.severity == "red" else "at_risk")
        label, _ = format_verdict(verdict, None, None, lang)
        teams = ", ".join(_team(svc, t) + (" ✉" if (a.key, t) in told else "") for t in a.recipients)
        table.add_row(str(a.id), str(a.payload.get("name", a.metric)), tr(KIND_WORDS.get(a.kind, a.kind)), label,
                      tr(STATE_WORDS.get(a.state, a.state)), a.opened, teams, str(a.story))
    if not run.alerts:
        out.print(tr("No alert: every KPI is on track or waiting for data."))
        return
    out.print(table)
    out.print(tr("✉: messaged in this run. {n} held back for the weekly digest.").format(n=len(run.held)))
    for team in nowhere:
        out.print("[yellow]" + _escape(tr("Nothing reaches {team}: the team has no channel. Fix: give it an `email:` "
                                          "or a `notify:` list in kpilot.yaml (see docs/channels.md).")
                                       .format(team=_team(svc, team))) + "[/]")


@group.command("ack")
def ack(alert_id: IdArg, workspace: WorkspaceOpt = Path("."), state_dir: StateOpt = None,
        by: Annotated[str | None, typer.Option("--by", help="Who takes it (a name or a team).")] = None,
        lang: LangOpt = None) -> None:
    """Acknowledge an alert: someone owns it, and no more messages are sent about it until it resolves."""
    from kpilot.service import alerts as service

    with _errors(lang, workspace):
        svc = _open(workspace, state_dir)
        record = service.acknowledge(svc, alert_id, by)
    out.print(translator(lang or svc.ws.language.value)("Alert {id} acknowledged.").format(id=record.id))


@group.command("snooze")
def snooze(alert_id: IdArg, until: Annotated[str, typer.Option("--until", help="Quiet until this date "
                                                                              "(YYYY-MM-DD).")],
           workspace: WorkspaceOpt = Path("."), state_dir: StateOpt = None, lang: LangOpt = None) -> None:
    """Snooze an alert until a date: if its condition still holds then, it fires again."""
    from kpilot.service import alerts as service

    with _errors(lang, workspace):
        svc = _open(workspace, state_dir)
        day = _as_of(until)
        if day is None:
            raise KpilotError(msg("--until must be a date after today, e.g. {example}",
                                  example=date.fromordinal(svc.today().toordinal() + 7).isoformat()))
        record = service.snooze(svc, alert_id, day)
    out.print(translator(lang or svc.ws.language.value)("Alert {id} snoozed until {day}.").format(
        id=record.id, day=day.isoformat()))


@group.command("replay")
def replay(
    first: Annotated[str, typer.Option("--from", help="First week (a day in it, YYYY-MM-DD).")],
    last: Annotated[str, typer.Option("--to", help="Last week (a day in it, YYYY-MM-DD).")],
    workspace: WorkspaceOpt = Path("."), state_dir: StateOpt = None, format: FormatOpt = Fmt.table,
    lang: LangOpt = None,
) -> None:
    """The alerts kpilot would have raised week by week over history, with only the data known each week; nothing
    is sent or stored."""
    from kpilot.service import alerts as service

    with _errors(lang, workspace):
        svc = _open(workspace, state_dir)
        start, end = _as_of(first), _as_of(last)
        if start is None or end is None or end < start:
            raise KpilotError(msg("--to must not be before --from"))
        svc.load()
        result = service.replay(svc, start, end)
    if format is Fmt.json:
        out.print_json(json.dumps(result, default=str))
        return
    tr = translator(lang or svc.ws.language.value)
    table = Table(title=tr("Alerts week by week"))
    for col in (tr("Week"), tr("KPI"), tr("Alert"), tr("State"), tr("Messaged"), tr("Story")):
        table.add_column(col)
    for a in result["alerts"]:
        table.add_row(a["week"], a["metric"], tr(KIND_WORDS.get(a["kind"], a["kind"])),
                      tr(STATE_WORDS.get(a["state"], a["state"])), ", ".join(_team(svc, t) for t in a["pinged"]),
                      str(a["story"]))
    out.print(table)
    worst = max((n for weeks in result["pings"].values() for n in weeks.values()), default=0)
    out.print(tr("At most {n} message(s) to one team in one week.").format(n=worst))
