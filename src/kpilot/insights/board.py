"""The board judged: each KPI's one verdict, from the engine's series, its forecast and the freshness of its data.

Every door (`kpilot status`, the pages, the API, the alerts) shows these typed values; none of them judges again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from kpilot.analysis.status import PeriodJudgement, RuleResult, assess, describe_when
from kpilot.analysis.verdict import Verdict
from kpilot.compute.metrics import MetricComputer
from kpilot.insights import Insights
from kpilot.model.periods import Grain, WeekStart, label, period_start
from kpilot.model.workspace import Metric, When


@dataclass(frozen=True)
class Evidence:
    """A period a decision rule read: its value, target and status."""

    period: date
    label: str
    value: float | None
    target: float | None
    status: str

    def to_dict(self) -> dict[str, object]:
        return {"period": self.period.isoformat(), "label": self.label, "value": self.value, "target": self.target,
                "status": self.status}


@dataclass(frozen=True)
class DecisionCheck:
    """A KPI's decision rule checked now: whether it fires, and on what evidence."""

    when: When
    condition: str  # in English words; the doors word it in their language with `describe_when`
    owner: str
    action: str
    fires: bool
    evaluated: bool
    evidence: tuple[Evidence, ...]
    projected: float | None  # the projection a forecast condition compared with the target
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {"when": self.when.model_dump(exclude_none=True), "condition": self.condition, "owner": self.owner,
                "action": self.action, "fires": self.fires, "evaluated": self.evaluated,
                "evidence": [e.to_dict() for e in self.evidence], "projected": self.projected,
                "reasons": list(self.reasons)}


@dataclass
class MetricStatus:
    """A metric judged at its current period: what the board shows for one tile, the same at every door."""

    key: str
    name: str
    grain: Grain
    period: date
    period_label: str
    value: float | None
    target: float | None
    expected: float | None
    status: str  # green | amber | red | none: the period at pace against its target
    verdict: Verdict
    verdict_reason: str | None  # for no_data: stale | no_value | no_target
    stale: bool
    pacing: float | None
    pacing_share: float
    pacing_method: str
    projected: float | None
    change: float | None
    previous: float | None
    previous_to_date: bool
    complete: bool
    data_through: date | None
    decision: DecisionCheck | None
    unit: str | None
    direction: str
    kind: str | None
    nature: str
    owners: list[str]
    role: str  # north_star | board | metric
    history: list[PeriodJudgement] = field(default_factory=list)

    @property
    def fires(self) -> bool:
        return self.decision is not None and self.decision.fires

    def to_dict(self) -> dict[str, object]:
        return {
            "key": self.key, "name": self.name, "role": self.role, "grain": self.grain.value,
            "period": self.period.isoformat(), "period_label": self.period_label,
            "verdict": self.verdict.value, "verdict_reason": self.verdict_reason, "stale": self.stale,
            "value": self.value, "target": self.target, "expected": self.expected, "status": self.status,
            "pacing": self.pacing, "pacing_share": self.pacing_share, "pacing_method": self.pacing_method,
            "projected": self.projected, "change": self.change, "previous": self.previous,
            "previous_to_date": self.previous_to_date, "complete": self.complete,
            "data_through": self.data_through.isoformat() if self.data_through else None,
            "unit": self.unit, "direction": self.direction, "kind": self.kind, "nature": self.nature,
            "owners": self.owners, "decision": self.decision.to_dict() if self.decision else None,
        }


def _number(v: float) -> float | None:
    return None if v != v else float(v)


def daily_values(mc: MetricComputer, key: str, through: date) -> list[tuple[date, float]] | None:
    """Daily values of a flow up to `through` (seasonal pacing, the previous period to date); None for levels."""
    if not mc.is_additive(key):
        return None
    daily = mc.series(key, Grain.day)
    return [(p, float(v)) for p, v in zip(daily.periods, daily.values, strict=True) if p <= through]


def _decision(metric: Metric, a_rule: RuleResult | None, grain: Grain, week_start: WeekStart) -> DecisionCheck | None:
    rule = metric.decision
    if rule is None or a_rule is None:
        return None
    evidence = tuple(Evidence(j.period, label(j.period, grain, week_start), j.value, j.target, j.status)
                     for j in a_rule.window)
    return DecisionCheck(rule.when, describe_when(rule.when, metric.direction), rule.owner, rule.action,
                         a_rule.fires, a_rule.evaluated, evidence, a_rule.projected, tuple(a_rule.reasons))


def judge(ins: Insights, key: str, role: str = "metric") -> MetricStatus:
    """One metric judged at the period holding the as-of date: the verdict every door shows."""
    mc, ws = ins.mc, ins.ws
    metric = ws.metric(key)
    grain = metric.grain
    series = mc.series(key, grain)
    # The current period is paced up to the metric's latest data, so a source a few days late is not mistaken
    # for a bad week; data that stopped arriving is not judged at all.
    through = ins.through(key)
    fresh = ins.freshness(key)
    current = period_start(mc.as_of, grain, ws.week_start)
    forecast = ins.forecast(key)
    projected = None
    if forecast is not None:
        point = next((p for p in forecast.points if p["period"] == current.isoformat()), None)
        projected = point["value"] if point is not None else None
    additive = mc.is_additive(key)
    a = assess(metric, series.periods, [_number(v) for v in series.values], current=current, through=through,
               additive=additive, week_start=ws.week_start, projected=projected, fresh=fresh,
               daily=daily_values(mc, key, through))
    now = a.current
    return MetricStatus(
        key=key, name=metric.label, grain=grain, period=current, period_label=label(current, grain, ws.week_start),
        value=now.value if now else None, target=now.target if now else None,
        expected=now.expected if now else None, status=now.status if now else "none",
        verdict=a.verdict, verdict_reason=a.verdict_reason, stale=fresh.stale,
        pacing=a.pace_ratio, pacing_share=a.share, pacing_method=a.method, projected=a.projected,
        change=a.change, previous=a.previous, previous_to_date=a.previous_to_date,
        complete=now.complete if now else False, data_through=through,
        decision=_decision(metric, a.rule, grain, ws.week_start), unit=ws.unit_of(key),
        direction=metric.direction.value,
        kind=metric.kind.value if metric.kind else None, nature="flow" if additive else "level",
        owners=list(metric.owners), role=role, history=a.history,
    )


def board(ins: Insights, keys: Sequence[tuple[str, str]]) -> list[MetricStatus]:
    """The metrics (key, role) judged, their series computed in as few queries as possible."""
    mc = ins.mc
    requests = [(k, ins.ws.metric(k).grain) for k, _ in keys]
    requests += [(k, Grain.day) for k, _ in keys if mc.is_additive(k)]
    mc.prepare(requests)
    return [judge(ins, k, role) for k, role in keys]


__all__ = ["DecisionCheck", "Evidence", "MetricStatus", "board", "daily_values", "judge"]
