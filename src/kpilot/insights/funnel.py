"""The marketing-sales funnel of a workspace: its stages found among the metrics, counted over a month.

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
from datetime import date
from typing import Any

from kpilot.compute.metrics import MetricComputer
from kpilot.model import Grain, Metric, MetricType
from kpilot.model.errors import N_

STAGES = (N_("Leads"), N_("MQL"), N_("Demos"), N_("Deals"), N_("Won"))  # translated where shown
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


def funnel_values(ins: Any, stages: list[Stage], month: date) -> list[float | None]:
    """Each stage's count over `month` (None where the data has none), from the metrics as `ins` computes them
    (an `Insights`); the ad-hoc counts of a stage computed beside the workspace's metrics."""
    ws = ins.ws
    extra = [s.counted for s in stages if s.counted is not None]
    mc = ins.mc
    if extra:
        scope = ws.model_copy(update={"metrics": [*ws.metrics, *extra]})
        mc = MetricComputer(mc.engine, scope, mc.schema, as_of=mc.as_of, replay=True, engines=mc.engines)
    out: list[float | None] = []
    for s in stages:
        series = mc.series(s.counted.key if s.counted else s.metric, Grain.month)
        values = series.numerator if s.part == "numerator" else series.values
        found = [float(v) for p, v in zip(series.periods, values if values is not None else [], strict=False)
                 if p == month]
        out.append(found[0] if found and not math.isnan(found[0]) else None)
    return out


__all__ = ["FUNNEL_DEALS", "STAGES", "Stage", "funnel_stages", "funnel_values"]
