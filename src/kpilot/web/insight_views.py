"""The analysis as the pages show it: forecasts, leading indicators, early warnings, anomalies, root cause,
and the audit, worded and formatted in the page's language.

Nothing is computed here: the numbers come from `kpilot.insights` (through `WorkspaceGate.analysis`);
this module only picks what a page shows and formats it (numbers through kpilot.i18n).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from kpilot.i18n import (
    cause_sentences,
    format_change,
    format_forecast_evidence,
    format_weights,
    method_words,
    periods_count,
)
from kpilot.insights import Explanation, KpiForecast, LeadLagEdge
from kpilot.insights.findings import AnomalyFinding, EarlyWarningFinding
from kpilot.model.errors import render
from kpilot.web import views
from kpilot.web.audit_views import AuditRow, audit_rows  # the audit's page: its own module
from kpilot.web.views import Page

TOP_CONTRIBUTIONS = 3  # per dimension, in the root cause of the last change


def metric_name(key: str, page: Page) -> str:
    return str(page.ws.metric(key).label) if key in page.ws.metric_keys else key


# --- forecasts -------------------------------------------------------------------------------------


@dataclass
class ForecastPoint:
    period_label: str
    value: str
    lower: str
    upper: str
    target: str
    probability: str
    known: bool  # the period is over: the value is what happened, not a forecast
    period: str = ""  # the period's first day (ISO): a key for scripts and tests


@dataclass
class ForecastView:
    method: str
    points: list[ForecastPoint]
    ahead: ForecastPoint | None  # the first period not fully known: the one the tile shows
    evidence: str = ""  # its backtest error beside the yardstick's and its interval's measured coverage, in words
    weights: str = ""  # a combination's main methods and their shares


def ahead_points(fc: KpiForecast | None) -> list[dict[str, Any]]:
    """The forecast's points of periods not fully known yet (what the chart draws as a forecast)."""
    if fc is None:
        return []
    return [p for p in fc.points if (p.get("observed_share") or 0.0) < 1.0 and p.get("value") is not None]


def forecast_view(fc: KpiForecast | None, unit: str | None, page: Page) -> ForecastView | None:
    if fc is None:
        return None
    points = []
    ahead = None
    for p in fc.points:
        known = (p.get("observed_share") or 0.0) >= 1.0
        value, lower, upper = page.values([p.get("value"), p.get("lower"), p.get("upper")], unit)
        point = ForecastPoint(
            period_label=_said(p, fc.grain, page), value=value, lower=lower, upper=upper,
            target=page.value(p.get("target"), unit),
            probability=page.percent(p.get("probability")), known=known, period=str(p.get("period", "")))
        points.append(point)
        if ahead is None and not known and p.get("value") is not None:
            ahead = point
    ev = fc.evidence or {}
    return ForecastView(method=method_words(fc.method, page.lang), points=points, ahead=ahead,
                        evidence=format_forecast_evidence(ev, metric_name(fc.metric, page), page.lang) if ev else "",
                        weights=format_weights(ev.get("weights") or {}, page.lang))


# --- early warnings --------------------------------------------------------------------------------


@dataclass
class WarningView:
    severity: str  # 'amber' | 'red'
    headline: str
    because: str
    action: str | None


def warning_view(f: EarlyWarningFinding, page: Page) -> WarningView:
    tr = page.tr
    w = f.warning
    unit = page.ws.unit_of(f.metric)
    grain = page.ws.metric(f.metric).grain  # the warning's periods and lag are counted in the KPI's grain
    headline = tr("{kpi} in {period}: projected {projected} against a target of {target} "
                  "({confidence} chance of missing it)").format(
        kpi=metric_name(f.metric, page), period=page.period(f.period, grain), projected=page.value(w.projected, unit),
        target=page.value(w.target, unit), confidence=page.percent(w.confidence))
    lead = f.grain or grain  # the leader's periods and the lag: the edge's grain (weeks)
    because = tr("because {leader} was {change} against its normal in {period}, {lag} earlier").format(
        leader=metric_name(w.leader, page), change=page.percent(w.leader_change, digits=1, signed=True),
        period=page.period(f.leader_period, lead), lag=periods_count(w.lag, lead.value, page.lang))
    d = f.decision
    action = f"{page.team(d.owner)} — {d.action}" if d else None
    return WarningView(severity=f.severity, headline=headline, because=because, action=action)


# --- leading indicators ----------------------------------------------------------------------------


@dataclass
class LeadRow:
    key: str  # the other metric: the leader, or the follower in "what this metric leads"
    name: str
    lag: str
    correlation: str
    effect: str
    stable: str
    follower: str = ""  # in the tree's other measured leads: the metric led
    follower_name: str = ""


def lead_rows(edges: Sequence[LeadLagEdge], page: Page, *, other: str) -> list[LeadRow]:
    """One row per edge; `other` is 'leader' or 'follower': which end of the edge the row names."""
    tr = page.tr
    out = []
    for e in edges:
        key = e.leader if other == "leader" else e.follower
        effect = page.percent(e.effect / 100, digits=1, signed=True) if e.effect == e.effect else "—"
        out.append(LeadRow(key=key, name=metric_name(key, page), lag=views.lag_words(e, page),
                           correlation=_signed(e.correlation, page), effect=effect,
                           stable=tr("yes") if e.stable else tr("no")))
    return out


def _signed(x: float, page: Page) -> str:
    """A correlation: two decimals and a sign, with the language's decimal mark."""
    text = f"{abs(x):.2f}"
    if page.lang == "fr":
        text = text.replace(".", ",")
    return ("+" if x >= 0 else "−") + text


# --- anomalies -------------------------------------------------------------------------------------


@dataclass
class AnomalyRow:
    period_label: str
    value: str
    expected: str
    lower: str
    upper: str
    severity: str
    severity_label: str
    direction: str


def _said(point: Mapping[str, Any], grain: Any, page: Page) -> str:
    """A forecast point's period as people say it ("November 2026"), else its label."""
    try:
        return page.period(date.fromisoformat(str(point["period"])[:10]), grain)
    except (KeyError, ValueError):
        return str(point.get("label", ""))


def anomaly_rows(found: Sequence[AnomalyFinding], unit: str | None, page: Page) -> list[AnomalyRow]:
    out = []
    for f in found:
        a = f.anomaly
        value, expected, lower, upper = page.values([a.value, a.expected, a.lower, a.upper], unit)
        period = page.period(f.period, page.ws.metric(f.metric).grain) if f.metric in page.ws.metric_keys else f.label
        out.append(AnomalyRow(period_label=period, value=value, expected=expected, lower=lower, upper=upper,
                              severity=f.severity, severity_label=page.tr(f.severity), direction=a.direction))
    return out


# --- root cause ------------------------------------------------------------------------------------


@dataclass
class ContributionRow:
    value: str
    before: str
    after: str
    change: str
    share: str
    mix: str | None
    rate: str | None
    good: bool | None


@dataclass
class RootCause:
    before_label: str
    after_label: str
    total_before: str = ""
    total_after: str = ""
    total_change: str = ""
    ratio: bool = False
    dimensions: dict[str, list[ContributionRow]] = field(default_factory=dict)
    note: str | None = None  # why there is no split
    causes: list[str] = field(default_factory=list)  # what moved it: a headline, then one sentence per combination


def root_cause(found: Explanation | str | None, before_label: str, after_label: str, unit: str | None, up: bool,
               page: Page) -> RootCause:
    """The largest contributions per dimension to the change between two periods; a note when none."""
    tr = page.tr
    out = RootCause(before_label=before_label, after_label=after_label)
    if found is None:
        out.note = tr("Two complete periods are needed to explain a change.")
        return out
    if isinstance(found, str):
        out.note = render(found, page.tr)
        return out
    out.total_before, out.total_after = page.value(found.total_before, unit), page.value(found.total_after, unit)
    out.causes = cause_sentences(found, page.ws, unit, page.lang)
    out.total_change = _change(found.total_change, unit, page)
    out.ratio = found.kind == "ratio"
    for c in found.contributions:
        if len(c.dimensions) != 1:
            continue
        rows = out.dimensions.setdefault(c.dimensions[0], [])
        if len(rows) >= TOP_CONTRIBUTIONS:
            continue
        rows.append(ContributionRow(
            value=page.ws.label_of(c.values[0]), before=page.value(c.before, unit), after=page.value(c.after, unit),
            change=_change(c.change, unit, page),
            share=page.percent(c.share, signed=True) if c.share is not None else "—",
            mix=_change(c.mix, unit, page) if out.ratio and c.mix is not None else None,
            rate=_change(c.rate, unit, page) if out.ratio and c.rate is not None else None,
            good=None if c.change == 0 else (c.change > 0) == up))
    return out


def _change(x: float | None, unit: str | None, page: Page) -> str:
    """A signed change in the metric's unit (percentage points for a share)."""
    return format_change(x, unit, page.lang, currency=page.ws.currency)


__all__ = ["AnomalyRow", "AuditRow", "ContributionRow", "ForecastView", "LeadRow", "RootCause",
           "WarningView", "ahead_points", "anomaly_rows", "audit_rows", "forecast_view", "lead_rows", "root_cause",
           "warning_view"]
