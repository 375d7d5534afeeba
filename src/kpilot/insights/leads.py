"""Leading indicators of a workspace: which pairs are tested, at which grain, on which periods.

A follower is tested against each candidate leader at the finer of their two grains when the coarser of the
two can be computed at it (`refines`): a monthly MRR against weekly demos is tested on weekly MRR, and the
lag is counted in weeks. Otherwise the pair is tested at the coarser grain, where anything can be computed.
The Benjamini–Hochberg correction runs over every pair whose follower has the same grain, whatever grain each
pair is tested at: the weekly outcomes form one family, the monthly outcomes another.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date, timedelta
from typing import TYPE_CHECKING

import numpy as np
from sqlglot import exp

from kpilot.analysis import leadlag
from kpilot.analysis.rootcause import data_grain
from kpilot.compute.compiler import Aggregate, MetricRef, aggregates_of, metric_parts
from kpilot.model import Grain, MetricType
from kpilot.model.expressions import AGGREGATES, parse_formula, parse_measure
from kpilot.model.periods import next_start, shift
from kpilot.model.validate import formula_names
from kpilot.model.workspace import Metric, Workspace

if TYPE_CHECKING:
    from kpilot.insights import Insights

MAX_LAG: dict[Grain, int] = {Grain.day: 28, Grain.week: 12, Grain.month: 6, Grain.quarter: 4, Grain.year: 2}

# Aggregates whose value over a period is made of its shorter periods' pieces: sums and counts add up, an
# average is a sum over a count. A distinct count, a minimum, a maximum, a median or a quantile over a week
# is another quantity than over a month (the customers seen in a week are not a part of those of the month).
_PIECEWISE = (exp.Sum, exp.Count, exp.CountIf, exp.Avg)


def defined_piecewise(ws: Workspace, metric: Metric, _seen: frozenset[str] = frozenset()) -> bool:
    """Whether the metric's definition measures the same thing over a shorter period, in smaller pieces.

    Yes for sums, counts and averages of rows (a flow over the period); for snapshots whatever their measure (a
    value at a moment is the same at a week's end as at a month's end, distinct counts included); for ratios
    and formulas whose parts are, reading other metrics in the same or the previous period only (`offset -1`
    is "the period before" at every grain; `offset -12`, a year ago in months, is not 12 weeks ago). No for
    running totals (their changes are the flow to test) and for distinct counts, minimums, maximums, medians
    and quantiles of a flow.
    """
    if metric.key in _seen:
        return False
    seen = _seen | {metric.key}
    if metric.type is MetricType.cumulative:
        return False
    if metric.type is MetricType.derived:
        if not metric.formula:
            return False
        _, refs = parse_formula(metric.formula, formula_names(ws, metric))
        return all(r.offset in (0, -1) and r.metric in ws.metric_keys
                   and defined_piecewise(ws, ws.metric(r.metric), seen) for r in refs)
    for part in metric_parts(ws, metric).values():
        if isinstance(part, MetricRef):
            if part.offset not in (0, -1) or part.metric not in ws.metric_keys \
                    or not defined_piecewise(ws, ws.metric(part.metric), seen):
                return False
        elif not _aggregate_piecewise(part):
            return False
    return True


def _aggregate_piecewise(agg: Aggregate) -> bool:
    if agg.mode != "flow":
        return True  # a value at a moment
    for node in parse_measure(agg.measure).walk():
        if type(node) in AGGREGATES and (not isinstance(node, _PIECEWISE) or isinstance(node.this, exp.Distinct)):
            return False
    return True


def pair_grain(leader: Grain, follower: Grain, leader_refines: Callable[[Grain], bool],
               follower_refines: Callable[[Grain], bool]) -> Grain:
    """The grain a (leader, follower) pair is tested at: the finer grain when the coarser metric can be computed
    at it, else the coarser one."""
    if leader.order < follower.order:
        return leader if follower_refines(leader) else follower
    if follower.order < leader.order:
        return follower if leader_refines(follower) else leader
    return follower


class LeadFinder:
    """The lead-lag pair tests of one workspace's candidates, computed by the engine at the grains they need."""

    def __init__(self, ins: Insights):
        self.ins = ins
        self.ws = ins.ws
        self._dated: dict[str, Grain] = {}

    def dated_by(self, key: str) -> Grain:
        """The coarsest grain the rows a metric reads are dated by (day when nothing says more; see
        `kpilot.analysis.rootcause.data_grain`): monthly usage rows dated on the 1st give month."""
        if key not in self._dated:
            arrivals = self.ins.mc.arrivals(key)
            ctx = self.ins.mc.ctx
            coarsest = Grain.day
            for agg in aggregates_of(self.ws, self.ws.metric(key)):
                model = ctx.model(agg.model)
                column = agg.time if agg.mode == "flow" else (model.validity.from_ if model.validity else agg.time)
                days = [d for d, rows in arrivals.get(f"{model.table}.{column}", []) if rows > 0]
                grain = data_grain(days, self.ws.week_start)
                if grain.order > coarsest.order:
                    coarsest = grain
            self._dated[key] = coarsest
        return self._dated[key]

    def refines(self, key: str, grain: Grain) -> bool:
        """Whether a metric can be computed at `grain`, finer than its own, and still mean the same thing: its
        definition allows it (`defined_piecewise`) and its rows are dated at least that finely."""
        metric = self.ws.metric(key)
        if grain.order >= metric.grain.order:
            return True
        return defined_piecewise(self.ws, metric) and self.dated_by(key).order <= grain.order

    def grain_of(self, leader: str, follower: str) -> Grain:
        return pair_grain(self.ws.metric(leader).grain, self.ws.metric(follower).grain,
                          lambda g: self.refines(leader, g), lambda g: self.refines(follower, g))

    def tests(self, leaders: Sequence[str], followers: Sequence[str], *, max_lag: int | None = None
              ) -> list[leadlag.PairTest]:
        """Every (leader, follower) pair, tested at its grain; one correction per grain of the followers."""
        families: dict[Grain, dict[Grain, list[tuple[str, str]]]] = {}
        for fw in followers:
            family = families.setdefault(self.ws.metric(fw).grain, {})
            for ld in leaders:
                if ld != fw:
                    family.setdefault(self.grain_of(ld, fw), []).append((ld, fw))
        out: list[leadlag.PairTest] = []
        for family in families.values():
            sets = []
            for grain, pairs in family.items():
                keys = list(dict.fromkeys(k for pair in pairs for k in pair))
                sets.append(leadlag.PairSet(self.aligned(keys, grain), pairs, max_lag or MAX_LAG[grain],
                                            grain=grain))
            out += leadlag.pair_tests_across(sets)
        return [self._level_effect(t) for t in out]

    def _level_effect(self, test: leadlag.PairTest) -> leadlag.PairTest:
        """No effect for a stock follower (a snapshot such as MRR, a running total): a lead moves what it adds each
        period, and the elasticity of its level, fitted on a series that accumulates, means nothing."""
        if test.edge is None or self.ws.metric(test.follower).type not in (MetricType.snapshot,
                                                                          MetricType.cumulative):
            return test
        return replace(test, edge=replace(test.edge, effect=math.nan))

    def aligned(self, keys: Sequence[str], grain: Grain) -> dict[str, np.ndarray]:
        """The metrics at `grain` on one spine of periods, each up to its own last complete period (NaN after).

        Unlike `Insights.aligned`, a metric whose data stops early (monthly usage rows, a stale source) shortens
        only its own pairs, not every pair tested at that grain."""
        mc = self.ins.mc
        mc.prepare([(k, grain) for k in keys])
        series = {k: mc.series(k, grain) for k in keys}
        last: dict[str, date] = {}
        for k in keys:
            through = self.ins.through(k, grain) + timedelta(days=1)
            done = [p for p in series[k].periods if next_start(p, grain) <= through]
            if done:
                last[k] = done[-1]
        firsts = [s.periods[0] for s in series.values() if s.periods]
        if not last or not firsts:
            return {k: np.array([]) for k in keys}
        spine = [min(firsts)]
        while spine[-1] < max(last.values()):
            spine.append(shift(spine[-1], grain, 1))
        index = {p: i for i, p in enumerate(spine)}
        out: dict[str, np.ndarray] = {}
        for k, s in series.items():
            arr = np.full(len(spine), np.nan)
            for p, v in zip(s.periods, s.values, strict=True):
                if p in index and k in last and p <= last[k]:
                    arr[index[p]] = v
            out[k] = arr
        return out


def leading(edges: Sequence[leadlag.LeadLagEdge], follower: str, grain: Grain) -> list[leadlag.LeadLagEdge]:
    """The edges that lead `follower` with their lag counted in periods of `grain` (lag >= 1): what a forecast or
    an early warning at that grain can use. An edge with no grain was measured at its follower's grain."""
    return [e for e in edges if e.follower == follower and e.lag >= 1 and (e.grain or grain) is grain]
