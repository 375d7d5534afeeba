"""The weekly steering review, worded: what a company reads on Monday morning about its KPIs.

`make_review` turns plain inputs (the board as the service judged it, the same board a week earlier, the forecasts,
the early warnings, the week's alerts and the decision log) into a `Review` whose every text is already in the
workspace's language. The renderers (`kpilot.report.render`) only lay it out, so the page, the PDF and the Markdown
say the same words. No I/O, and nothing is judged again: values and verdicts are the board's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Protocol

from kpilot.analysis.status import describe_when
from kpilot.analysis.verdict import Verdict
from kpilot.analysis.warning import EarlyWarning
from kpilot.i18n import (
    VERDICT_COLOURS,
    VERDICT_LABELS,
    VERDICT_SHAPES,
    Translator,
    format_day,
    format_evidence_list,
    format_percent,
    format_value,
    format_verdict,
    method_words,
    period_words,
    periods_count,
    translator,
)
from kpilot.model.errors import N_
from kpilot.model.periods import Grain
from kpilot.model.workspace import DecisionRule, Direction, When, Workspace
from kpilot.report import charts
from kpilot.store.alert_log import AlertRecord
from kpilot.store.repository import DecisionRecord

WEEK = timedelta(days=7)
EFFECTS_SHOWN_FOR = timedelta(days=28)  # a measured effect stays in the review for four weeks after its review date
MISS_BELOW = 0.5  # a KPI is a predicted miss when its chance of target for the period is below this
CHART_PERIODS: dict[Grain, int] = {Grain.day: 42, Grain.week: 16, Grain.month: 13, Grain.quarter: 8, Grain.year: 5}
CHART_WIDTH, CHART_HEIGHT = 300, 120

ALERT_KINDS = {"kpi": N_("KPI off track or decision due"), "early_warning": N_("Early warning"),
               "anomaly": N_("Unusual value")}
ALERT_STATES = {"pending": N_("pending"), "firing": N_("firing"), "acknowledged": N_("acknowledged"),
                "snoozed": N_("snoozed"), "resolved": N_("resolved")}
# The measured effect of a decision is built elsewhere; its known fields get a label, any other is shown by name.
EFFECT_LABELS = {"actual_change": N_("Actual change"), "expected_change": N_("Expected change"),
                 "counterfactual": N_("Without the decision (forecast)"), "verdict": N_("Verdict"),
                 "actual": N_("Actual value"), "expected": N_("Expected value"), "baseline": N_("Before the decision"),
                 "measured_on": N_("Measured on"), "period": N_("Period")}
EFFECT_VERDICTS = {"worked": N_("worked"), "no_effect": N_("no measurable effect"), "backfired": N_("backfired"),
                   "too_early": N_("too early to tell"), "inconclusive": N_("inconclusive")}


# --- What the review reads (structural types: the service's values fit them without being imported here) -------

class Evidence(Protocol):
    @property
    def label(self) -> str: ...
    @property
    def value(self) -> float | None: ...
    @property
    def target(self) -> float | None: ...
    @property
    def status(self) -> str: ...


class RuleCheck(Protocol):
    """A KPI's decision rule checked now (kpilot.insights.board.DecisionCheck)."""

    @property
    def when(self) -> When: ...
    @property
    def owner(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def fires(self) -> bool: ...
    @property
    def evaluated(self) -> bool: ...
    @property
    def evidence(self) -> Sequence[Evidence]: ...
    @property
    def projected(self) -> float | None: ...


class Tile(Protocol):
    """A KPI as the board judged it (kpilot.insights.board.MetricStatus)."""

    @property
    def key(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def grain(self) -> Grain: ...
    @property
    def period(self) -> date: ...
    @property
    def period_label(self) -> str: ...
    @property
    def value(self) -> float | None: ...
    @property
    def target(self) -> float | None: ...
    @property
    def verdict(self) -> Verdict: ...
    @property
    def verdict_reason(self) -> str | None: ...
    @property
    def stale(self) -> bool: ...
    @property
    def complete(self) -> bool: ...
    @property
    def data_through(self) -> date | None: ...
    @property
    def projected(self) -> float | None: ...
    @property
    def change(self) -> float | None: ...
    @property
    def unit(self) -> str | None: ...
    @property
    def direction(self) -> str: ...
    @property
    def decision(self) -> RuleCheck | None: ...


class Forecast(Protocol):
    """A KPI's forecast (kpilot.insights.KpiForecast): points with period, label, value, probability, observed_share."""

    @property
    def metric(self) -> str: ...
    @property
    def method(self) -> str: ...
    @property
    def points(self) -> Sequence[Mapping[str, Any]]: ...


class Warning(Protocol):
    """An early warning (kpilot.insights.findings.EarlyWarningFinding)."""

    @property
    def metric(self) -> str: ...
    @property
    def label(self) -> str: ...
    @property
    def warning(self) -> EarlyWarning: ...
    @property
    def leader_label(self) -> str: ...
    @property
    def period(self) -> date: ...
    @property
    def leader_period(self) -> date: ...
    @property
    def decision(self) -> DecisionRule | None: ...


# --- The review, worded --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class KpiLine:
    """A KPI of the board: its verdict and numbers for people, and its chart."""

    key: str
    name: str
    north_star: bool
    verdict: str  # on_track | at_risk | off_track | no_data
    colour: str  # green | amber | red | none
    verdict_label: str
    why: str  # why there is no verdict ("" otherwise)
    period: str
    in_progress: bool
    value: str
    target: str
    projected: str | None  # at the end of the period in progress
    change: str | None  # against the same point of the previous period
    change_good: bool | None
    decision: str | None  # "Sales: call the accounts" when the rule fires
    chart: Mapping[str, Any] | None = None  # a Vega-Lite spec (kpilot.report.charts.history)


@dataclass(frozen=True)
class Miss:
    """A KPI projected to miss its target, and what leads it there."""

    kpi: str
    period: str
    projected: str
    target: str
    chance: str  # of hitting the target
    cause: str
    action: str | None  # the KPI's decision rule: "Sales: ..."


@dataclass(frozen=True)
class AlertLine:
    kpi: str
    kind: str
    severity: str  # red | amber
    severity_label: str
    state: str
    opened: str
    text: str


@dataclass(frozen=True)
class DecisionToTake:
    """A decision rule that fires now: the owner must decide this week."""

    kpi: str
    owner: str
    action: str
    condition: str
    evidence: str


@dataclass(frozen=True)
class DecisionDue:
    """A decision whose review date has come (or comes within the week)."""

    kpi: str
    action: str
    owner: str
    review_on: str
    overdue: bool
    expected: str | None


@dataclass(frozen=True)
class Effect:
    """A past decision and its effect as measured at its review."""

    kpi: str
    action: str
    owner: str
    review_on: str
    facts: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Review:
    """The weekly steering review of one workspace, worded in `language`."""

    language: str
    workspace: str
    title: str
    vision: str | None
    currency: str
    as_of: date
    week: str  # "14 Nov 2026 – 20 Nov 2026"
    north_star: KpiLine | None
    board: tuple[KpiLine, ...]
    changes: tuple[str, ...]
    misses: tuple[Miss, ...]
    alerts: tuple[AlertLine, ...]
    to_take: tuple[DecisionToTake, ...]
    due: tuple[DecisionDue, ...]
    effects: tuple[Effect, ...]
    notes: tuple[str, ...] = field(default=())  # why a part is missing (no application database...)

    @property
    def kpis(self) -> tuple[KpiLine, ...]:
        return ((self.north_star,) if self.north_star else ()) + self.board


def make_review(ws: Workspace, *, as_of: date, board: Sequence[Tile], week_before: Sequence[Tile],
                forecasts: Mapping[str, Forecast], warnings: Sequence[Warning], alerts: Sequence[AlertRecord],
                decisions: Sequence[DecisionRecord], history: Mapping[str, Sequence[Mapping[str, object]]],
                lang: str | None = None, notes: Sequence[str] = ()) -> Review:
    """The review as of `as_of` (the last day of its week). `board` and `week_before`: the North Star and board KPIs
    judged at `as_of` and seven days earlier; `forecasts` by metric key; `history`: each KPI's periods as rows
    (period, label, value, target, status, complete) for its chart. Alerts seen in the week and the decisions due
    or measured are picked here; `notes` are shown as they are."""
    w = _Words(ws, lang or ws.language.value)
    first = as_of - WEEK + timedelta(days=1)
    lines = [w.kpi_line(s, history.get(s.key, ()), forecasts.get(s.key)) for s in board]
    north = next((line for line in lines if line.north_star), None)
    return Review(
        language=w.lang, workspace=ws.workspace, title=ws.title or ws.workspace,
        vision=ws.vision.statement if ws.vision else None, currency=ws.currency, as_of=as_of,
        week=f"{format_day(first, w.lang)} – {format_day(as_of, w.lang)}",
        north_star=north, board=tuple(line for line in lines if line is not north),
        changes=tuple(w.changes(board, week_before, first - timedelta(days=1))),
        misses=tuple(w.misses(board, forecasts, warnings)),
        alerts=tuple(w.alert(a) for a in week_alerts(alerts, first, as_of)),
        to_take=tuple(w.to_take(s) for s in board if s.decision is not None and s.decision.fires),
        due=tuple(w.due(d, as_of) for d in decisions_due(decisions, as_of)),
        effects=tuple(w.effect(d) for d in measured(decisions, as_of)),
        notes=tuple(notes),
    )


def week_alerts(alerts: Sequence[AlertRecord], first: date, last: date) -> list[AlertRecord]:
    """The alerts opened or seen between `first` and `last` (both included), red first, then newest."""
    def within(day: str | None) -> bool:
        return day is not None and first.isoformat() <= day[:10] <= last.isoformat()

    found = [a for a in alerts if within(a.opened) or within(a.last_seen)]
    found.sort(key=lambda a: a.opened, reverse=True)
    return sorted(found, key=lambda a: a.severity != "red")


def decisions_due(decisions: Sequence[DecisionRecord], as_of: date) -> list[DecisionRecord]:
    """Open decisions not measured yet whose review date is past or falls within the coming week, earliest first."""
    horizon = (as_of + WEEK).isoformat()
    due = [d for d in decisions if d.status == "open" and d.effect is None and d.review_on is not None
           and d.review_on <= horizon]
    return sorted(due, key=lambda d: (d.review_on or "", d.id))


def measured(decisions: Sequence[DecisionRecord], as_of: date) -> list[DecisionRecord]:
    """Decisions whose effect was measured, reviewed in the last four weeks (or with no review date), newest first."""
    since = (as_of - EFFECTS_SHOWN_FOR).isoformat()
    found = [d for d in decisions if d.effect is not None and (d.review_on is None or d.review_on >= since)]
    return sorted(found, key=lambda d: (d.review_on or "", d.id), reverse=True)


class _Words:
    """Everything the review says, in one language."""

    def __init__(self, ws: Workspace, lang: str):
        self.ws, self.lang = ws, lang
        self.tr: Translator = translator(lang)

    # --- names and numbers

    def value(self, v: float | None, unit: str | None) -> str:
        return format_value(v, unit, self.lang, currency=self.ws.currency)

    def metric(self, key: str) -> str:
        return self.ws.metric(key).label if key in self.ws.metric_keys else key

    def unit(self, key: str) -> str | None:
        return self.ws.unit_of(key) if key in self.ws.metric_keys else None

    def team(self, key: str | None) -> str:
        return self.ws.team_name(key) if key else "—"

    def verdict(self, s: Tile) -> str:
        return format_verdict(s.verdict.value, s.verdict_reason, s.data_through, self.lang)[0]

    def action(self, rule: RuleCheck | DecisionRule | None) -> str | None:
        return None if rule is None else f"{colon(self.tr)(self.team(rule.owner))} {rule.action}"

    # --- the board

    def kpi_line(self, s: Tile, rows: Sequence[Mapping[str, object]], forecast: Forecast | None) -> KpiLine:
        label, why = format_verdict(s.verdict.value, s.verdict_reason, s.data_through, self.lang)
        good = None if not s.change else (s.change > 0) == (s.direction == "up")
        return KpiLine(
            key=s.key, name=s.name, north_star=s.role == "north_star", verdict=s.verdict.value,
            colour=VERDICT_COLOURS[s.verdict.value], verdict_label=label, why=why, period=self.said(s),
            in_progress=not s.complete, value=self.value(s.value, s.unit), target=self.value(s.target, s.unit),
            projected=self.value(s.projected, s.unit) if not s.complete and s.projected is not None else None,
            change=format_percent(s.change, self.lang, signed=True) if s.change is not None else None,
            change_good=good, decision=self.action(s.decision) if s.decision and s.decision.fires else None,
            chart=self.chart(s, rows, forecast),
        )

    def chart(self, s: Tile, rows: Sequence[Mapping[str, object]], forecast: Forecast | None
              ) -> dict[str, Any] | None:
        """The web page's history chart, cut to the last periods (and to the day the data stopped, if it did)."""
        if s.stale and s.data_through is not None:
            rows = [r for r in rows if str(r["period"]) <= s.data_through.isoformat()]
        rows = list(rows)[-CHART_PERIODS[s.grain]:]
        if not any(r.get("value") is not None for r in rows):
            return None
        labels = charts.history_labels(self.tr)
        ahead = [p for p in (forecast.points if forecast and not s.stale else ())
                 if (p.get("observed_share") or 0) < 1]
        return charts.history(rows, unit=s.unit, labels=labels, lang=self.lang, currency=self.ws.currency,
                              width=CHART_WIDTH, height=CHART_HEIGHT, forecast=ahead)

    def changes(self, now: Sequence[Tile], before: Sequence[Tile], then: date) -> list[str]:
        """What changed since a week earlier, in sentences: verdicts, and decision rules that started or stopped
        firing."""
        tr = self.tr
        earlier = {s.key: s for s in before}
        out: list[str] = []
        for s in now:
            b = earlier.get(s.key)
            if b is None:
                continue
            if b.verdict is not s.verdict:
                out.append(tr("{kpi} went from {before} to {after}: {value} against a target of {target} "
                              "({period}).").format(kpi=s.name, before=self.verdict(b), after=self.verdict(s),
                                                    value=self.value(s.value, s.unit),
                                                    target=self.value(s.target, s.unit), period=self.said(s)))
            fires, fired = bool(s.decision and s.decision.fires), bool(b.decision and b.decision.fires)
            if fires and not fired:
                out.append(tr("The decision rule of {kpi} fires now: {action}.").format(
                    kpi=s.name, action=(self.action(s.decision) or "").rstrip(".")))
            elif fired and not fires:
                out.append(tr("The decision rule of {kpi} no longer fires.").format(kpi=s.name))
        if not out:
            out.append(tr("No verdict changed since {date}.").format(date=format_day(then, self.lang)))
        return out

    # --- predictions

    def said(self, s: Tile) -> str:
        """A KPI's period as people say it: "November 2026", "week of 9 Nov"."""
        return period_words(s.period, s.grain.value, self.lang)

    def said_warning(self, w: Warning) -> str:
        grain = self.ws.metric(w.metric).grain.value if w.metric in self.ws.metric_keys else "week"
        return period_words(w.period, grain, self.lang)

    def cause(self, w: Warning) -> str:
        e, tr = w.warning, self.tr
        grain = self.ws.metric(w.metric).grain.value if w.metric in self.ws.metric_keys else "week"
        # A weekly leader of a monthly KPI: its period and lag are counted in the edge's grain (weeks).
        edge_grain = getattr(w, "grain", None)
        grain = edge_grain.value if edge_grain is not None else grain
        return tr("{leader} moved {change} against its usual level in {period}; it leads {kpi} by {lag}.").format(
            leader=self.metric(e.leader), change=format_percent(e.leader_change, self.lang, digits=0, signed=True),
            period=period_words(w.leader_period, grain, self.lang), kpi=self.metric(w.metric),
            lag=periods_count(e.lag, grain, self.lang))

    def misses(self, board: Sequence[Tile], forecasts: Mapping[str, Forecast], warnings: Sequence[Warning]
               ) -> list[Miss]:
        """The board KPIs whose chance of target for the period in progress is below one in two, then the periods
        early warnings project to miss; each with its leading cause."""
        strongest: dict[tuple[str, str], Warning] = {}
        for w in warnings:
            k = (w.metric, w.label)
            if k not in strongest or w.warning.confidence > strongest[k].warning.confidence:
                strongest[k] = w
        by_metric: dict[str, Warning] = {}
        for w in sorted(strongest.values(), key=lambda w: -w.warning.confidence):
            by_metric.setdefault(w.metric, w)
        tr = self.tr
        out: list[Miss] = []
        told: set[tuple[str, str]] = set()
        for s in board:
            f = forecasts.get(s.key)
            point = next((p for p in (f.points if f else ()) if p.get("period") == s.period.isoformat()), None)
            chance = point.get("probability") if point else None
            if f is None or point is None or chance is None or s.complete or chance >= MISS_BELOW:
                continue
            warned = by_metric.get(s.key)
            cause = self.cause(warned) if warned else tr(
                "no leading indicator moved: the forecast follows the KPI's own history ({method}).").format(
                method=method_words(f.method, self.lang))
            projected = s.projected if s.projected is not None else point.get("value")
            out.append(Miss(s.name, self.said(s), self.value(projected, s.unit), self.value(s.target, s.unit),
                            format_percent(chance, self.lang, digits=0), cause, self.action(s.decision)))
            told.add((s.key, s.period_label))
        for w in sorted(strongest.values(), key=lambda w: (w.metric, w.label)):
            if (w.metric, w.label) in told:
                continue
            e, unit = w.warning, self.unit(w.metric)
            out.append(Miss(self.metric(w.metric), self.said_warning(w), self.value(e.projected, unit),
                            self.value(e.target, unit),
                            format_percent(1 - e.confidence, self.lang, digits=0), self.cause(w),
                            self.action(w.decision)))
        return out

    # --- alerts and decisions

    def alert(self, a: AlertRecord) -> AlertLine:
        payload = a.payload or {}
        text = next((str(payload[k]) for k in ("headline", "text", "reason", "summary") if payload.get(k)), "")
        return AlertLine(kpi=self.metric(a.metric), kind=self.tr(ALERT_KINDS.get(a.kind, a.kind)),
                         severity=a.severity, severity_label=self.alert_verdict(a),
                         state=self.tr(ALERT_STATES.get(a.state, a.state)),
                         opened=format_day(_day(a.opened), self.lang), text=text)

    def alert_verdict(self, a: AlertRecord) -> str:
        """What an alert stands for, in the verdict's words and shape (as the alerts page says it): the board's
        verdict for a KPI alert, else from its severity (red: off track; amber: at risk)."""
        verdict = str((a.payload or {}).get("verdict") or "") if a.kind == "kpi" else ""
        if verdict not in VERDICT_LABELS:
            verdict = "off_track" if a.severity == "red" else "at_risk"
        return f"{VERDICT_SHAPES[verdict]} {self.tr(VERDICT_LABELS[verdict])}"

    def to_take(self, s: Tile) -> DecisionToTake:
        d = s.decision
        assert d is not None
        condition = describe_when(d.when, Direction(s.direction), self.tr,
                                  lambda x: format_percent(x, self.lang, digits=0))
        evidence = format_evidence_list(d.evidence, d.projected, s.unit, self.lang, s.grain) if d.evaluated else []
        return DecisionToTake(kpi=s.name, owner=self.team(d.owner), action=d.action, condition=condition,
                              evidence=" · ".join(evidence))

    def due(self, d: DecisionRecord, as_of: date) -> DecisionDue:
        expected = d.expected_effect or (format_percent(d.expected_change, self.lang, digits=0, signed=True)
                                         if d.expected_change is not None else None)
        return DecisionDue(kpi=self.metric(d.metric), action=d.action, owner=self.team(d.owner),
                           review_on=format_day(_day(d.review_on), self.lang),
                           overdue=(d.review_on or "") < as_of.isoformat(), expected=expected)

    def effect(self, d: DecisionRecord) -> Effect:
        return Effect(kpi=self.metric(d.metric), action=d.action, owner=self.team(d.owner),
                      review_on=format_day(_day(d.review_on), self.lang),
                      facts=tuple(self.effect_facts(d.effect or {}, self.unit(d.metric))))

    def effect_facts(self, effect: Mapping[str, Any], unit: str | None) -> list[tuple[str, str]]:
        """Each field of a measured effect as (label, value): changes as signed percents, values in the KPI's unit,
        dates as days, a verdict in words; fields nobody labelled keep their name."""
        out: list[tuple[str, str]] = []
        for name, v in effect.items():
            label = self.tr(EFFECT_LABELS[name]) if name in EFFECT_LABELS else name.replace("_", " ").capitalize()
            out.append((label, self.effect_value(name, v, unit)))
        return out

    def effect_value(self, name: str, v: Any, unit: str | None) -> str:
        tr = self.tr
        if v is None:
            return "—"
        if isinstance(v, bool):
            return tr("yes") if v else tr("no")
        if isinstance(v, int | float):
            return (format_percent(v, self.lang, signed=True) if "change" in name or "effect" in name
                    else self.value(float(v), unit))
        if isinstance(v, str):
            if name == "verdict":
                return tr(EFFECT_VERDICTS.get(v) or VERDICT_LABELS.get(v) or v)
            day = _day(v) if len(v) == 10 else None
            return format_day(day, self.lang) if day else v
        if isinstance(v, Mapping):
            return "; ".join(f"{k}: {self.effect_value(str(k), x, unit)}" for k, x in v.items())
        if isinstance(v, Sequence):
            return ", ".join(self.effect_value(name, x, unit) for x in v)
        return str(v)


def colon(tr: Translator) -> Callable[[str], str]:
    """A label followed by its colon, the language's way ("Owner:", "Responsable :")."""
    return lambda label: tr("{label}:").format(label=label)


def _day(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text[:10]) if text else None
    except ValueError:
        return None


__all__ = ["AlertLine", "DecisionDue", "DecisionToTake", "Effect", "KpiLine", "Miss", "Review", "colon",
           "decisions_due", "make_review", "measured", "week_alerts"]
