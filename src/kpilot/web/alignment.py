"""What the alignment, decisions and settings pages show, worded for people.
The marketing-sales funnel's stages and values come from `kpilot.insights.funnel`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from kpilot.i18n import EFFECT_WORDS
from kpilot.insights import AuditVerdict, Insights
from kpilot.insights.funnel import funnel_stages, funnel_values
from kpilot.model import Grain, Metric
from kpilot.model.errors import render
from kpilot.model.periods import parse_period, period_start
from kpilot.service import DecisionRecord, MetricStatus
from kpilot.web.views import N_, Page, decided_by, decision_of


@dataclass
class FunnelStep:
    name: str
    metric: str
    metric_name: str
    value: str
    conversion: str | None  # from the stage before


@dataclass
class Funnel:
    period_label: str
    steps: list[FunnelStep]
    error: str | None = None


def funnel(gate: Any, page: Page) -> Funnel:
    """The funnel over the last complete month before the as-of date (computed once per files and date)."""
    ws = page.ws
    month = period_start(period_start(page.as_of, Grain.month) - timedelta(days=1), Grain.month)
    stages = funnel_stages(list(ws.metrics))

    def compute() -> list[float | None]:
        with gate.service() as svc:
            return funnel_values(Insights(svc, as_of=page.as_of), stages, month)

    period = page.period(month, Grain.month)
    try:
        values = gate.remember(("funnel", page.as_of), compute)
    except Exception as exc:  # a KpilotError (data not loaded...) is said on the page, the rest still shows
        from kpilot.model import KpilotError

        if not isinstance(exc, KpilotError):
            raise
        return Funnel(period, [], render(exc.message, page.tr))
    steps: list[FunnelStep] = []
    for i, (s, v) in enumerate(zip(stages, values, strict=True)):
        before = values[i - 1] if i else None
        conversion = page.percent(v / before, digits=1) if v is not None and before else None
        steps.append(FunnelStep(page.tr(s.name), s.metric, ws.metric(s.metric).label,
                                page.value(v, "count"), conversion))  # how many reached the stage
    return Funnel(period, steps)


@dataclass
class MatrixRow:
    key: str
    name: str
    cells: list[str]  # per team: 'alone' | 'shared' | ''
    board: bool


def matrix(page: Page) -> dict[str, Any]:
    """Teams x metrics: which team owns which metric, alone or shared."""
    ws = page.ws
    teams = list(ws.teams)
    rows = []
    for m in ws.metrics:
        cells = [("alone" if len(m.owners) == 1 else "shared") if t.key in m.owners else "" for t in teams]
        rows.append(MatrixRow(m.key, m.label, cells, m.key in ws.board or m.key == ws.north_star))
    totals = [sum(1 for r in rows if r.cells[i]) for i in range(len(teams))]
    orphans = [m.label for m in ws.metrics if not m.owners]
    return {"teams": [t.label for t in teams], "rows": rows, "totals": totals, "orphans": orphans}


@dataclass
class Risk:
    key: str
    name: str
    reasons: list[str]


def incentive_risks(audit: list[AuditVerdict], page: Page) -> list[Risk]:
    """The audit's incentive warnings: volumes owned by one team alone, with the audit's advice."""
    out = []
    for v in audit:
        if v.checks.get("incentive_risk"):
            reasons = [render(r, page.tr) for r in v.reasons if "quantity over quality" in str(r)]
            out.append(Risk(v.key, str(v.title), reasons))
    return out


@dataclass
class Firing:
    key: str
    name: str
    period: str
    period_label: str
    condition: str
    owner_key: str
    owner: str
    action: str
    decided: str | None = None  # an open decision of this period, in words: nothing left to decide


def firing(s: MetricStatus, page: Page) -> Firing:
    """A KPI whose decision rule fires now, as the decision form prefills it."""
    d = decision_of(s, page)
    assert d is not None
    return Firing(s.key, s.name, s.period.isoformat(), s.period_label, d.condition, d.owner_key, d.owner, d.action)


@dataclass
class DecisionRow:
    id: int
    metric: str
    metric_name: str
    period: str
    action: str
    owner: str
    status: str
    status_label: str
    note: str
    created: str
    decided: str  # "Decided by ... on ..., review on ..."
    expected_effect: str
    effect: str  # the effect measured at the review, in words ("" until then)
    effect_verdict: str  # worked | partly | no_clear_effect | backfired | not_measurable | ""
    alert_id: int | None


def said(period: str, page: Page) -> str:
    """A decision's period (as stored: 2026-W37, 2026-09) as the tiles say it: "week of 7 Sep", "September 2026"."""
    try:
        grain, start = parse_period(period)
    except ValueError:
        return period
    return page.period(start, grain)


def decision_row(d: DecisionRecord, page: Page) -> DecisionRow:
    unit = page.ws.unit_of(d.metric) if d.metric in page.ws.metric_keys else None
    name = page.ws.metric(d.metric).label if d.metric in page.ws.metric_keys else d.metric
    effect = d.effect or {}
    return DecisionRow(d.id, d.metric, name, said(d.period, page), d.action,
                       page.team(d.owner) if d.owner else "—", d.status,
                       page.tr(d.status), d.note or "", page.day(d.created_at.date()), decided_by(d, page),
                       d.expected_effect or "", effect_words(effect, unit, page), str(effect.get("verdict") or ""),
                       d.alert_id)


def effect_words(effect: dict[str, Any], unit: str | None, page: Page) -> str:
    """A measured effect in words, with the actual value against the forecast made before the decision."""
    if not effect:
        return ""
    verdict = str(effect.get("verdict"))
    words = page.tr(EFFECT_WORDS.get(verdict, verdict))
    if effect.get("actual") is None:
        return words
    return page.tr("{words}: {actual} (forecast without it: {forecast})").format(
        words=words, actual=page.value(effect.get("actual"), unit), forecast=page.value(effect.get("counterfactual"),
                                                                                          unit))


@dataclass
class SettingsRow:
    key: str
    name: str
    targets: list[str]
    bands: str
    owners: list[str]
    decision: str
    overridden: list[str]


def settings_row(m: Metric, overridden: dict[str, object], page: Page) -> SettingsRow:
    tr = page.tr
    unit = page.ws.unit_of(m.key)
    targets = [f"{t.from_}{' → ' + str(t.to) if t.to is not None else ''}: {page.value(t.value, unit)}"
               for t in m.targets]
    bands = tr("on track ≥ {green}, at risk ≥ {amber}").format(green=page.percent(m.bands.green),
                                                          amber=page.percent(m.bands.amber))
    decision = ""
    if m.decision is not None:
        from kpilot.service import describe_when

        decision = tr("If {condition} →").format(condition=describe_when(m.decision.when, m.direction, tr,
                                                                          lambda x: page.percent(x)))
        decision += f" {page.team(m.decision.owner)}: {m.decision.action}"
    return SettingsRow(m.key, m.label, targets, bands, [page.team(o) for o in m.owners], decision,
                       [tr(f) for f in sorted(overridden)])


FIELD_NAMES = (N_("targets"), N_("bands"), N_("owners"), N_("decision"), N_("open"), N_("done"), N_("declined"))
