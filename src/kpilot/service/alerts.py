"""Alerts through the one door: the board's verdicts and the analysis's findings turned into signals, run through the
alert state machine, stored with the messages they call for; the outbox delivered; history replayed week by week.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kpilot.alerting.compose import alert_message, decision_review_message, digest_message
from kpilot.alerting.engine import Signal, plan, week_of
from kpilot.alerting.outbox import DeliveryReport, deliver_due
from kpilot.i18n import format_day, format_evidence_list
from kpilot.model.errors import message_of, msg
from kpilot.model.workspace import Workspace
from kpilot.store import AppStore, StoreConflict, StoreInvalid, StoreNotFound
from kpilot.store.alert_log import OPEN_STATES, AlertRecord, NewMessage

if TYPE_CHECKING:
    from kpilot.insights import Insights
    from kpilot.insights.board import MetricStatus
    from kpilot.service import WorkspaceService

@dataclass
class AlertRun:
    """One evaluation: the alerts open after it, who was messaged, what waits for the digest."""

    as_of: date
    week: date
    alerts: list[AlertRecord]
    pinged: list[tuple[str, str]]  # (alert key, team)
    held: list[tuple[str, str]]
    resolved: list[str]
    queued: int
    verdicts: dict[str, str] = field(default_factory=dict)  # board metric -> its verdict at this run

    def to_dict(self) -> dict[str, Any]:
        return {"as_of": self.as_of.isoformat(), "week": self.week.isoformat(),
                "alerts": [a.to_dict() for a in self.alerts],
                "pinged": [{"alert": k, "team": t} for k, t in self.pinged],
                "held": [{"alert": k, "team": t} for k, t in self.held], "resolved": self.resolved,
                "queued": self.queued, "verdicts": self.verdicts}


def _week_start(ws: Workspace) -> int:
    """The workspace's first day of the week as `date.weekday()` counts: Monday 0 ... Sunday 6."""
    return ws.week_start.isodow - 1


def _recipients(ws: Workspace, key: str) -> tuple[str, ...]:
    metric = ws.metric(key)
    owners = list(metric.owners)
    if metric.decision is not None:
        owners.insert(0, metric.decision.owner)
    return tuple(dict.fromkeys(owners))


def _held(status: MetricStatus) -> int:
    """Consecutive latest periods in which a decision rule's condition held on its own (its "for N periods" not met
    yet): status and below/above-target conditions; 0 for the others."""
    check = status.decision
    if check is None:
        return 0
    when = check.when
    held = 0
    for e in reversed(check.evidence):
        if when.status:
            ok = e.status == when.status if when.status != "not_green" else e.status in ("amber", "red")
        elif when.below_target is not None and e.value is not None and e.target:
            ok = e.value < when.below_target * e.target
        elif when.above_target is not None and e.value is not None and e.target:
            ok = e.value > when.above_target * e.target
        else:
            return 0
        if not ok:
            break
        held += 1
    return held


def _objectives(ws: Workspace) -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for o in ws.vision.objectives if ws.vision else []:
        for m in o.metrics:
            out.setdefault(m, set()).add(o.key)
    return {k: frozenset(v) for k, v in out.items()}


def signals(ins: Insights, statuses: Sequence[MetricStatus]) -> list[Signal]:
    """What the board and the analysis found, as signals for the alert state machine."""
    ws = ins.ws
    edges = ins.edges()
    related: dict[str, set[str]] = {}
    for e in edges:
        related.setdefault(e.leader, set()).add(e.follower)
        related.setdefault(e.follower, set()).add(e.leader)
    objectives = _objectives(ws)
    lang = ws.language.value
    out: list[Signal] = []

    def base(key: str) -> dict[str, Any]:
        metric = ws.metric(key)
        owner = metric.decision.owner if metric.decision else (metric.owners[0] if metric.owners else None)
        return {"metric": key, "name": metric.label, "unit": ws.unit_of(key), "grain": metric.grain.value,
                "owner": owner, "owner_name": ws.team_name(owner) if owner else None,
                "action": metric.decision.action if metric.decision else None}

    def signal(key: str, kind: str, skey: str, severity: str, ready: bool, seen: int, needed: int,
               payload: dict[str, Any], extra: frozenset[str] = frozenset()) -> Signal:
        metric = ws.metric(key)
        return Signal(key=skey, kind=kind, metric=key, severity=severity, ready=ready, periods_seen=seen,
                      needed=needed, recipients=_recipients(ws, key),
                      related=frozenset(related.get(key, set())) | extra,
                      objectives=objectives.get(key, frozenset()),
                      leading=metric.kind is not None and metric.kind.value == "leading",
                      payload={**payload, "severity": severity})

    for s in statuses:
        off = s.verdict.value == "off_track"
        needed = s.decision.when.periods if s.decision else 1
        held = _held(s)
        if not (off or s.fires or 0 < held < needed):
            continue
        ready = off or s.fires
        payload = {**base(s.key), "verdict": s.verdict.value, "verdict_reason": s.verdict_reason,
                   "period": s.period.isoformat(), "period_label": s.period_label, "value": s.value,
                   "target": s.target, "projected": s.projected, "change": s.change, "fires": s.fires,
                   "role": s.role,
                   "condition": s.decision.condition if s.decision else None,
                   "evidence_text": format_evidence_list(s.decision.evidence, s.decision.projected, s.unit, lang,
                                                         s.grain)
                   if s.decision else []}
        out.append(signal(s.key, "kpi", f"kpi:{s.key}", "red" if off else "amber", ready,
                          needed if ready else held, needed, payload))
    watched = {s.key for s in statuses}
    if ws.alerts.early_warnings:
        for w in ins.warnings(edges):
            if w.metric not in watched:
                continue
            leader = ws.metric(w.warning.leader)
            payload = {**base(w.metric), "period": w.period.isoformat(), "period_label": w.label,
                       "projected": w.warning.projected, "target": w.warning.target,
                       "confidence": w.warning.confidence, "leader": leader.key, "leader_name": leader.label,
                       "leader_label": w.leader_label, "leader_change": w.warning.leader_change,
                       "lag": w.warning.lag, "lag_grain": (w.grain or ws.metric(w.metric).grain).value}
            out.append(signal(w.metric, "early_warning", f"early_warning:{w.metric}", w.severity, True, 1, 1,
                              payload, frozenset({leader.key})))
    if ws.alerts.anomalies:
        by_key = {s.key: s for s in statuses}
        for a in ins.anomalies(sorted(watched)):
            status = by_key[a.metric]
            grain_days = {"day": 1, "week": 7, "month": 31, "quarter": 92, "year": 366}[status.grain.value]
            if a.period < status.period - timedelta(days=grain_days):
                continue  # an old unusual value: news when it happened, not now
            payload = {**base(a.metric), "period": a.period.isoformat(), "period_label": a.label,
                       "value": a.anomaly.value, "lower": a.anomaly.lower, "upper": a.anomaly.upper,
                       "expected": a.anomaly.expected, "direction": a.anomaly.direction}
            severity = "red" if a.severity == "high" else "amber"
            out.append(signal(a.metric, "anomaly", f"anomaly:{a.metric}:{a.period.isoformat()}", severity, True, 1,
                              1, payload))
    return out


CHART_PERIODS = {"day": 60, "week": 26, "month": 24, "quarter": 12, "year": 8}


def chart_png(ins: Insights, key: str) -> bytes | None:
    """The KPI page's history chart (the same Vega-Lite spec) as a PNG, for a message; None if it cannot be drawn."""
    from kpilot.i18n import translator
    from kpilot.model.periods import period_start, shift
    from kpilot.report import charts
    from kpilot.service import tables

    ws = ins.ws
    metric = ws.metric(key)
    lang = ws.language.value
    current = period_start(ins.as_of, metric.grain, ws.week_start)
    rows = tables.series_rows(ins, key, metric.grain, shift(current, metric.grain,
                                                           -CHART_PERIODS[metric.grain.value]), current)
    if not any(r.get("value") is not None for r in rows):
        return None
    spec = charts.history(rows, unit=ws.unit_of(metric.key), labels=charts.history_labels(translator(lang)), lang=lang,
                          currency=ws.currency, width=560, height=220)
    try:
        return charts.to_png(spec, lang, currency=ws.currency, width=560, scale=1.5)
    except Exception:  # a chart is a plus: the message goes without it rather than not at all
        return None


def root_cause(ins: Insights, key: str, period: date) -> dict[str, Any] | None:
    """What moved the KPI most the wrong way between the period before `period` and `period` (`kpilot explain`'s
    localisation: a combination of dimension values, else one value), or None when the KPI has no dimension or
    nothing moved the wrong way."""
    from kpilot.model import KpilotError
    from kpilot.model.periods import label, shift

    ws = ins.ws
    metric = ws.metric(key)
    before = shift(period, metric.grain, -1)
    try:
        found = ins.explain(key, before.isoformat(), period.isoformat(), pairs=False)
    except (KpilotError, ValueError):
        return None
    sign = 1.0 if metric.direction.value == "up" else -1.0
    # The localised causes first (combinations at any depth that moved together), else the single value that
    # moved most the wrong way. A value that is the whole metric (a filter's only value) explains nothing.
    moved: list[Any] = [c for c in found.causes if sign * c.change < 0]
    moved = moved or [c for c in found.contributions
                      if c.before != found.total_before or c.after != found.total_after]
    worst = min(moved, key=lambda c: sign * c.change, default=None)
    if worst is None or sign * worst.change >= 0:
        return None
    return {"cause_dimension": " × ".join(ws.label_of(d) for d in worst.dimensions),
            "cause_value": " × ".join(ws.label_of(v) for v in worst.values),
            "cause_before": worst.before, "cause_after": worst.after,
            "cause_from": before.isoformat(), "cause_from_label": label(before, metric.grain, ws.week_start),
            "cause_to": period.isoformat(), "cause_to_label": label(period, metric.grain, ws.week_start)}


def _messages(ws: Workspace, pings: Sequence[tuple[str, str, str]], payloads: Mapping[str, tuple[str, dict[str, Any]]],
              week: date, kind: str = "alert", charts: Mapping[str, bytes | None] | None = None) -> list[NewMessage]:
    """Each ping as one message per channel of the team (a team without channels: one unrouted row, so it counts)."""
    lang = ws.language.value
    out: list[NewMessage] = []
    for alert_key, team, _ in pings:
        alert_kind, payload = payloads[alert_key]
        message = alert_message(alert_kind, payload, workspace=ws.workspace, lang=lang, base_url=ws.base_url,
                                chart_png=(charts or {}).get(str(payload.get("metric")))).to_dict()
        channels = team_channels(ws, team)
        for channel in channels or [""]:
            out.append(NewMessage(channel, team, kind, week.isoformat(), message, alert_key))
    return out


def unreached(ws: Workspace, alerts: Sequence[AlertRecord]) -> list[str]:
    """The teams among these alerts' recipients that nothing reaches (no channel: their messages are stored as not
    routed), by name."""
    teams = {t for a in alerts for t in a.recipients}
    return sorted((t for t in teams if not team_channels(ws, t)), key=lambda t: ws.team_name(t).lower())


def team_channels(ws: Workspace, team: str) -> list[str]:
    """The channels a team's messages go to: its `notify`, else an e-mail to its `email` (none: not routed)."""
    try:
        declared = ws.team(team)
    except KeyError:
        return []
    if declared.notify:
        return list(declared.notify)
    return [f"mailto:{declared.email}"] if declared.email else []


def _digests(ws: Workspace, store: AppStore, week: date) -> tuple[list[NewMessage], list[int]]:
    """The digests of the weeks before `week` still owed: one per team, listing what the budget held back."""
    lang = ws.language.value
    out: list[NewMessage] = []
    carried: list[int] = []
    for (team, held_week), rows in store.held_messages(ws.workspace, before=week.isoformat()).items():
        items = [(r.message.get("data", {}).get("kind", "kpi"), r.message.get("data", {})) for r in rows]
        message = digest_message(items, workspace=ws.workspace, week_label=format_day(date.fromisoformat(held_week),
                                                                                      lang),
                                 lang=lang, base_url=ws.base_url, team=ws.team_name(team)).to_dict()
        for channel in team_channels(ws, team) or [""]:
            out.append(NewMessage(channel, team, "digest", held_week, message))
        carried += [r.id for r in rows]
    return out, carried


def evaluate(svc: WorkspaceService, *, as_of: date | None = None, store: AppStore | None = None,
             load: bool = True, draw: bool = True) -> AlertRun:
    """Evaluate the alerts at `as_of` (default: today, after computing), store their changes and queue the messages
    they call for (delivered by `deliver` or `kpilot worker`). `load`: load the changed files first; `draw`: draw the
    KPI's chart into each message sent to a channel."""
    from kpilot.insights import Insights
    from kpilot.insights.board import board

    ws = svc.ws
    if load:
        svc.load()
    mc = svc.computer(as_of)
    if as_of is None:
        mc.materialize()
    ins = Insights(svc, computer=mc)
    day = ins.as_of
    statuses = board(ins, svc.board_keys())
    found = signals(ins, statuses)
    store = store or svc.app_store()
    week = week_of(day, _week_start(ws))
    digests, carried = _digests(ws, store, week)
    open_alerts = store.alerts(ws.workspace, states=OPEN_STATES)
    p = plan(open_alerts, found, as_of=day, pings_this_week=store.pings(ws.workspace, week.isoformat()),
             budget=ws.alerts.budget, objectives_of=_objectives(ws))
    payloads = {s.key: (s.kind, dict(s.payload)) for s in found}
    if draw:  # the root cause of each KPI messaged, as `kpilot explain` finds it (not in a replay: it sends nothing)
        for key in {x.alert_key for x in p.pings}:
            kind, payload = payloads[key]
            if kind == "kpi" and not payload.get("leader_name"):
                payload.update(root_cause(ins, str(payload["metric"]), date.fromisoformat(str(payload["period"])))
                               or {})
    pings = [(x.alert_key, x.recipient, x.reason) for x in p.pings]
    held = [(x.alert_key, x.recipient, x.reason) for x in p.held]
    routed = {payloads[k][1].get("metric") for k, t, _ in pings if team_channels(ws, t)}
    drawn = {str(m): chart_png(ins, str(m)) for m in routed} if draw else {}
    messages = [*digests, *_messages(ws, pings, payloads, week, charts=drawn),
                *_messages(ws, held, payloads, week, kind="held")]
    store.apply_alert_run(ws.workspace, p.changes, messages, digested=carried)
    reviewed = _decision_reviews(svc, store, day, week)
    active = [a for a in store.alerts(ws.workspace) if a.state in OPEN_STATES or (a.key in p.resolved
              and a.resolved_on == day.isoformat())]
    return AlertRun(day, week, active, [(k, t) for k, t, _ in pings], [(k, t) for k, t, _ in held], p.resolved,
                    len(messages) + reviewed, {s.key: s.verdict.value for s in statuses})


def _decision_reviews(svc: WorkspaceService, store: AppStore, day: date, week: date) -> int:
    """Measure the decisions whose review date has come, and tell each one's owner what it changed."""
    from kpilot.service.decisions import review_due

    ws = svc.ws
    messages: list[NewMessage] = []
    for d in review_due(svc, day, store=store):
        metric = ws.metric(d.metric)
        message = decision_review_message(d.to_dict(), metric.label, ws.unit_of(metric.key), workspace=ws.workspace,
                                          lang=ws.language.value, base_url=ws.base_url).to_dict()
        team = d.owner or (metric.decision.owner if metric.decision else None)
        if team is None:
            continue
        for channel in team_channels(ws, team) or [""]:
            messages.append(NewMessage(channel, team, "decision_review", week.isoformat(), message))
    if messages:
        store.apply_alert_run(ws.workspace, [], messages)
    return len(messages)


def replay(svc: WorkspaceService, first: date, last: date) -> dict[str, Any]:
    """The alerts kpilot would have raised week by week from `first` to `last`, sending nothing: each week is
    evaluated on its last day, with only the data known then; weeks are named by their first day."""
    ws = svc.ws
    start = _week_start(ws)
    alerts: list[dict[str, Any]] = []
    pings: dict[str, dict[str, int]] = {}
    verdicts: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory(prefix="kpilot-replay-") as tmp, \
            AppStore(f"sqlite:///{Path(tmp) / 'replay.db'}", state_dir=Path(tmp)) as store:
        week = week_of(first, start)
        while week <= last:
            run = evaluate(svc, as_of=week + timedelta(days=6), store=store, load=False, draw=False)
            told: dict[str, list[str]] = {}
            for key, team in run.pinged:
                told.setdefault(key, []).append(team)
                pings.setdefault(team, {})
                pings[team][week.isoformat()] = pings[team].get(week.isoformat(), 0) + 1
            verdicts[week.isoformat()] = run.verdicts
            for a in run.alerts:
                if a.state == "resolved":
                    continue
                alerts.append({"week": week.isoformat(), "id": a.id, "story": a.story, "key": a.key, "kind": a.kind,
                               "metric": a.metric, "state": a.state, "severity": a.severity,
                               "verdict": a.payload.get("verdict") or ("off_track" if a.severity == "red"
                                                                       else "at_risk"),
                               "opened": a.opened, "recipients": list(a.recipients),
                               "pinged": told.get(a.key, []), "period_label": a.payload.get("period_label")})
            week += timedelta(days=7)
    return {"first": first.isoformat(), "last": last.isoformat(), "alerts": alerts, "pings": pings,
            "verdicts": verdicts}


def deliver(svc: WorkspaceService, environ: Mapping[str, str], *, now: datetime | None = None,
            store: AppStore | None = None) -> DeliveryReport:
    """Try every due message of the outbox once (what `kpilot alerts --send` and the worker do). The settings stored
    with `kpilot secrets set alerts NAME` win over the environment's."""
    return deliver_due(store or svc.app_store(), svc.ws, {**environ, **svc.alert_secrets()}, now=now)


def acknowledge(svc: WorkspaceService, alert_id: int, by: str | None, *, actor: str | None = None) -> AlertRecord:
    """Someone owns the alert: no more messages about it until it resolves. `actor`: who asked (the audit log)."""
    _open_alert(svc, alert_id)
    return _set_state(svc, alert_id, "acknowledged", by=by, actor=actor)


def snooze(svc: WorkspaceService, alert_id: int, until: date, *, actor: str | None = None) -> AlertRecord:
    """No message about the alert before `until` (a day after today); if its condition still holds then, it fires
    again."""
    _open_alert(svc, alert_id)
    today = svc.today()
    if until <= today:
        raise StoreInvalid(msg("an alert is snoozed until a day after today; {day} is not. Fix: pick a later day, "
                               "e.g. {example}.", day=until.isoformat(),
                               example=(today + timedelta(days=7)).isoformat()))
    return _set_state(svc, alert_id, "snoozed", until=until.isoformat(), actor=actor)


def _open_alert(svc: WorkspaceService, alert_id: int) -> AlertRecord:
    """An open alert of the workspace: StoreNotFound (404) when there is none, StoreConflict (409) when resolved."""
    found = svc.app_store().alert(svc.ws.workspace, alert_id)
    if found is None:
        raise StoreNotFound(msg("there is no alert {id} in workspace '{workspace}'. Fix: see `kpilot alerts` for "
                                "the ids.", id=alert_id, workspace=svc.ws.workspace))
    if found.state == "resolved":
        raise StoreConflict(msg("alert {id} is resolved already: there is nothing left to acknowledge or snooze.",
                                id=alert_id))
    return found


def _set_state(svc: WorkspaceService, alert_id: int, state: str, **kw: Any) -> AlertRecord:
    try:
        record = svc.app_store().set_alert_state(svc.ws.workspace, alert_id, state, **kw)
    except ValueError as exc:  # resolved between the check and the change
        raise StoreConflict(message_of(exc)) from None
    if record is None:
        raise StoreNotFound(msg("there is no alert {id} in workspace '{workspace}'. Fix: see `kpilot alerts` for "
                                "the ids.", id=alert_id, workspace=svc.ws.workspace))
    return record


__all__ = ["AlertRun", "acknowledge", "deliver", "evaluate", "replay", "signals", "snooze", "team_channels",
           "unreached"]
