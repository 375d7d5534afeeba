"""What the alignment, decisions and settings pages show, worded for people.

The marketing-sales funnel is found in the workspace's metrics by their keys (documented in docs/web.md):
leads = a count metric keyed `leads` (else a count whose key holds "lead"); MQL = a metric whose key holds
"mql" (a ratio counts its numerator, e.g. acme's mql_rate x leads); demos = a count whose key holds "demo";
deals = a count whose key holds "deal" or "opportunit", else the rows counted under the metric whose key
holds "pipeline" (its model, time and filter); won = the numerator of a ratio whose key holds "win", else a
count whose key holds "won". A stage with no such metric is left out. Every stage is counted over the
last complete month before the as-of date.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from kpilot.analysis.audit import AuditVerdict
from kpilot.compute.engine import DuckDBEngine
from kpilot.compute.metrics import MetricComputer
from kpilot.model import Grain, Metric, MetricType
from kpilot.model.errors import render
from kpilot.model.periods import label, period_start
from kpilot.service import MetricStatus
from kpilot.web.views import N_, Page, decision_of

STAGES = (N_("Leads"), N_("MQL"), N_("Demos"), N_("Deals"), N_("Won"))
FUNNEL_DEALS = "funnel_deals_count"


@dataclass(frozen=True)
class Stage:
    name: str  # one of STAGES
    metric: str  # the metric counted
    part: str  # 'value' | 'numerator'
    counted: Metric | None = None  # an ad-hoc count (deals under a pipeline metric)


def _is_count(m: Metric) -> bool:
    return m.type is MetricType.simple and (m.measure or "").replace(" ", "").lower().startswith("count(")


def funnel_stages(metrics: list[Metric]) -> list[Stage]:
    """The funnel's stages found among the metrics (see the module's docstring for the rule)."""
    def first(test: Any) -> Metric | None:
        return next((m for m in metrics if test(m)), None)

    stages: list[Stage] = []
    leads = first(lambda m: m.key == "leads" and _is_count(m)) or first(lambda m: "lead" in m.key and _is_count(m))
    if leads:
        stages.append(Stage("Leads", leads.key, "value"))
    mql = first(lambda m: "mql" in m.key.lower())
    if mql:
        stages.append(Stage("MQL", mql.key, "numerator" if mql.type is MetricType.ratio else "value"))
    demos = first(lambda m: "demo" in m.key and _is_count(m))
    if demos:
        stages.append(Stage("Demos", demos.key, "value"))
    deals = first(lambda m: ("deal" in m.key or "opportunit" in m.key) and _is_count(m))
    pipeline = first(lambda m: "pipeline" in m.key and m.type is MetricType.simple and m.model)
    if deals:
        stages.append(Stage("Deals", deals.key, "value"))
    elif pipeline:
        counted = Metric(key=FUNNEL_DEALS, model=pipeline.model, time=pipeline.time, measure="count(*)",
                         filter=pipeline.filter, grain=Grain.month)
        stages.append(Stage("Deals", pipeline.key, "value", counted))
    won = first(lambda m: "win" in m.key and m.type is MetricType.ratio) or \
        first(lambda m: "won" in m.key and _is_count(m))
    if won:
        stages.append(Stage("Won", won.key, "numerator" if won.type is MetricType.ratio else "value"))
    return stages


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
        extra = [s.counted for s in stages if s.counted is not None]
        scope = ws.model_copy(update={"metrics": [*ws.metrics, *extra]}) if extra else ws
        with gate.service() as svc:
            mc = MetricComputer(DuckDBEngine(svc.con), scope, svc.compute_schema(), as_of=page.as_of, replay=True,
                                engines=svc.in_place.model_engines())
            out: list[float | None] = []
            for s in stages:
                series = mc.series(s.counted.key if s.counted else s.metric, Grain.month)
                values = series.numerator if s.part == "numerator" else series.values
                found = [float(v) for p, v in zip(series.periods, values if values is not None else [], strict=False)
                         if p == month]
                out.append(found[0] if found and not math.isnan(found[0]) else None)
            return out

    period = label(month, Grain.month, ws.week_start)
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
        steps.append(FunnelStep(page.tr(s.name), s.metric, ws.metric(s.metric).label, page.value(v, None), conversion))
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


def decision_row(d: Any, page: Page) -> DecisionRow:
    try:
        name = page.ws.metric(d.metric).label
    except KeyError:
        name = d.metric
    return DecisionRow(d.id, d.metric, name, d.period, d.action, page.team(d.owner) if d.owner else "—", d.status,
                       page.tr(d.status), d.note or "", page.day(d.created_at.date()))


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
    targets = [f"{t.from_}{' → ' + str(t.to) if t.to is not None else ''}: {page.value(t.value, m.unit)}"
               for t in m.targets]
    bands = tr("green ≥ {green}, amber ≥ {amber}").format(green=page.percent(m.bands.green),
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
