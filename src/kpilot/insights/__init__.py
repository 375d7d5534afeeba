"""A workspace's analysis: series from the engine, fed to the pure functions of kpilot.analysis.

Leading indicators (lead-lag edges), forecasts to target, early warnings, anomalies, root cause and the
audit, each over complete periods only (a period counts once the data of every metric involved has
reached its end). Results are stored in the warehouse (kpilot.compute.results) for the web app and the
alerts; the CLI shows them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

import numpy as np
from sqlglot import exp

from kpilot.analysis import anomaly as anomaly_mod
from kpilot.analysis import audit as audit_mod
from kpilot.analysis import forecast as forecast_mod
from kpilot.analysis import leadlag, rootcause, warning
from kpilot.analysis import verdict as verdict_mod
from kpilot.analysis.domain import COUNT, NON_NEGATIVE, SHARE, UNBOUNDED, Domain
from kpilot.analysis.verdict import Freshness
from kpilot.compute import results
from kpilot.compute.compiler import aggregates_of, is_additive
from kpilot.compute.metrics import MetricComputer
from kpilot.insights.findings import AnomalyFinding, EarlyWarningFinding, Finding
from kpilot.insights.funnel import funnel_stages
from kpilot.insights.leads import LeadFinder, leading
from kpilot.model import Grain, KpilotError, MetricType
from kpilot.model.errors import did_you_mean, msg, one_of
from kpilot.model.expressions import AGGREGATES, counts_rows, parse_measure
from kpilot.model.periods import WeekStart, label, next_start, period_start, periods_between, shift
from kpilot.model.targets import target_for
from kpilot.model.workspace import Kind, Metric, RatioPart, Workspace

SEASON: dict[Grain, int | None] = {Grain.day: 7, Grain.week: 52, Grain.month: 12, Grain.quarter: 4,
                                   Grain.year: None}
QUIET: dict[Grain, int] = {Grain.day: 7, Grain.week: 4, Grain.month: 2, Grain.quarter: 1, Grain.year: 1}


@dataclass(frozen=True)
class Aligned:
    """Metrics on one spine of complete periods of one grain (NaN where a metric has no value)."""

    grain: Grain
    periods: list[date]
    values: dict[str, np.ndarray]
    through: date          # the last day every metric's data reaches


@dataclass(frozen=True)
class KpiForecast:
    metric: str
    grain: Grain
    method: str
    error: float
    backtest: dict[str, float]
    points: list[dict[str, Any]] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)  # kpilot.analysis.forecast.Forecast.evidence()

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "grain": self.grain.value, "method": self.method, "error": _num(self.error),
                "backtest": {k: _num(v) for k, v in self.backtest.items()}, "points": self.points,
                "evidence": self.evidence}


def _num(x: float | None) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


class Insights:
    """The analysis of one workspace as of a date (default: today, after loading and computing)."""

    def __init__(self, svc: Any, *, as_of: date | None = None, computer: MetricComputer | None = None):
        """`computer`: a metric computer the caller already holds (loaded, and materialized for today)."""
        self.svc = svc
        self.ws: Workspace = svc.ws
        if computer is None:
            svc.load()  # unchanged files are skipped; a replay needs the data too
            computer = svc.computer(as_of)
            if as_of is None:
                computer.materialize()
        self.mc: MetricComputer = computer
        self.as_of = self.mc.as_of
        self._edges: list[leadlag.LeadLagEdge] | None = None
        self._fresh: dict[str, Freshness] = {}

    # --- data -----------------------------------------------------------------------------------

    def metric(self, key: str) -> Metric:
        if key not in self.ws.metric_keys:
            raise KpilotError(msg("unknown metric '{metric}';{hint} metrics: {metrics}", metric=key,
                                  hint=did_you_mean(key, self.ws.metric_keys),
                                  metrics=one_of(self.ws.metric_keys, 40)))
        return self.ws.metric(key)

    def aligned(self, keys: Sequence[str], grain: Grain) -> Aligned:
        """The metrics' complete periods at `grain`, on one spine."""
        keys = list(dict.fromkeys(keys))
        self.mc.prepare([(k, grain) for k in keys])
        through = min(self.through(k, grain) for k in keys)
        series = {k: self.mc.series(k, grain) for k in keys}
        periods = sorted({p for s in series.values() for p in s.periods
                          if next_start(p, grain) <= through + timedelta(days=1)})
        if periods:  # contiguous: a metric with no row in a period still has that period
            spine = [periods[0]]
            while spine[-1] < periods[-1]:
                spine.append(shift(spine[-1], grain, 1))
            periods = spine
        index = {p: i for i, p in enumerate(periods)}
        values: dict[str, np.ndarray] = {}
        for k, s in series.items():
            arr = np.full(len(periods), np.nan)
            for p, v in zip(s.periods, s.values, strict=True):
                if p in index:
                    arr[index[p]] = v
            values[k] = arr
        return Aligned(grain, periods, values, through)

    def freshness(self, key: str) -> Freshness:
        """Whether the metric's data still arrives at its usual rate (see kpilot.analysis.verdict.freshness)."""
        if key not in self._fresh:
            self._fresh[key] = verdict_mod.stalest([verdict_mod.freshness(rows, self.as_of)
                                                    for rows in self.mc.arrivals(key).values()])
        return self._fresh[key]

    def through(self, key: str, grain: Grain | None = None) -> date:
        """The last day the metric's data reaches: its latest row (never after the as-of date), or, when its data
        stopped arriving, the last day it arrived as usual (rows dated ahead do not count then)."""
        latest = self.mc.data_through(key, grain)
        fresh = self.freshness(key)
        if fresh.stale and fresh.data_through is not None:
            return min(latest, fresh.data_through)
        return latest

    def edges(self) -> list[leadlag.LeadLagEdge]:
        """The lead-lag edges forecasts and warnings use: those stored by the last `kpilot leads` or `kpilot
        analyze` up to the as-of date, else found now. Every door's forecast then uses the same leaders."""
        stored = self.stored_edges()
        if stored is None:
            return self.leads()
        known = set(self.ws.metric_keys)
        return [e for e in stored if e.leader in known and e.follower in known]

    def candidates(self) -> tuple[list[str], list[str]]:
        """(leaders, followers): the North Star and lagging metrics follow.

        Leaders are the metrics declared leading, and the other flows (sums, counts and their ratios);
        stocks (snapshots) and formulas over other metrics are left out: they carry no signal of their
        own, and every extra pair tested makes the correction for multiple tests stricter for all.
        """
        followers = [m.key for m in self.ws.metrics if m.key == self.ws.north_star or m.kind is Kind.lagging]
        leaders = [m.key for m in self.ws.metrics if m.key not in followers and (
            m.kind is Kind.leading or m.type in (MetricType.simple, MetricType.ratio))]
        return leaders, followers

    # --- lead-lag -------------------------------------------------------------------------------

    def leads(self, *, max_lag: int | None = None) -> list[leadlag.LeadLagEdge]:
        """Lead-lag edges from every candidate leader to the North Star and lagging metrics, strongest first.

        Each pair is tested at the finer of its two grains when the coarser metric can be computed at it (a
        monthly MRR against weekly demos: weekly MRR), else at the coarser grain (kpilot.insights.leads); an
        edge's `lag` counts periods of its `grain`.
        """
        if self._edges is not None and max_lag is None:
            return self._edges
        tests = self.lead_tests(max_lag=max_lag)
        edges = sorted((t.edge for t in tests if t.significant and t.edge is not None),
                       key=lambda e: (e.p_value, e.p_raw, e.leader, e.follower))
        if max_lag is None:
            self._edges = edges
        return edges

    def lead_tests(self, *, max_lag: int | None = None) -> list[leadlag.PairTest]:
        """Every candidate pair with its estimates and adjusted p-value, or why it could not be tested.

        No yearly deseasonalising: on weekly sales data the yearly dips (summer, Christmas) are what carries
        the lead (see docs/analysis.md); trend and autocorrelation are removed. `max_lag` overrides the
        grain's default (kpilot.insights.leads.MAX_LAG) for every pair.
        """
        leaders, followers = self.candidates()
        return LeadFinder(self).tests(leaders, followers, max_lag=max_lag)

    # --- forecasts ------------------------------------------------------------------------------

    def kpis(self) -> list[str]:
        keys = [self.ws.north_star] if self.ws.north_star else []
        return keys + [k for k in self.ws.board if k not in keys]

    def forecast(self, key: str, *, edges: Sequence[leadlag.LeadLagEdge] | None = None) -> KpiForecast | None:
        """The KPI at the end of the current and the next period, with an 80 % interval and P(target).

        The model sees complete periods only. In the period in progress, what is already known is used:
        a sum or count adds the forecast of the rest of the period to what happened so far; a snapshot
        moves from its value today by the forecast change over the rest of the period; a ratio blends
        its value so far with the forecast by the share of the period elapsed. The interval narrows in
        proportion (a square root of it for ratios, whose noise shrinks with the volume behind them).
        """
        metric = self.metric(key)
        grain = metric.grain
        lead_edges = leading(edges if edges is not None else self.edges(), key, grain)
        data = self.aligned([key, *[e.leader for e in lead_edges]], grain)
        y = data.values[key]
        valid = np.flatnonzero(np.isfinite(y))
        if len(valid) == 0:
            return None
        current = period_start(self.as_of, grain, self.ws.week_start)
        last_complete = data.periods[-1]
        wanted = [current, shift(current, grain, 1)]
        horizon = max(1, len(periods_between(last_complete, wanted[-1], grain, self.ws.week_start)) - 1)
        fc = forecast_mod.forecast(y[valid[0]:], horizon, season=SEASON[grain], leaders=[
            forecast_mod.Leader(data.values[e.leader][valid[0]:], e.lag) for e in lead_edges])
        additive = self.mc.is_additive(key)
        now = self.mc.series(key, grain)
        domain = domain_of(self.ws, metric).admitting(now.values)
        through = self.through(key, grain)
        last_value = float(y[-1])
        offset = 0.0  # a snapshot's gap between what today shows and the model: it carries on
        points: list[dict[str, Any]] = []
        for period in wanted:
            target = target_for(metric, period, grain, self.ws.week_start, additive)
            observed = now.value_at(period) if period <= through else None
            if period <= last_complete:  # over and complete: nothing left to forecast
                value = lower = upper = observed
                share = 1.0
            else:
                step = len(periods_between(last_complete, period, grain, self.ws.week_start)) - 1
                point = fc.points[step - 1]
                value, lower, upper = point.value + offset, point.lower + offset, point.upper + offset
                length = (next_start(period, grain) - period).days
                share = min(1.0, max(0.0, ((through - period).days + 1) / length)) if observed is not None else 0.0
                if share > 0 and observed is not None:
                    rest = 1 - share
                    if additive:
                        value, lower, upper = (observed + rest * v for v in (value, lower, upper))
                    elif metric.type is MetricType.snapshot:
                        moved = observed + rest * (value - last_value)
                        offset = moved - value
                        value, lower, upper = (observed + rest * (v - last_value) for v in (value, lower, upper))
                    else:
                        centre = share * observed + rest * value
                        half = (upper - lower) / 2 * np.sqrt(rest)
                        value, lower, upper = centre, centre - half, centre + half
            prob: float | None = None
            if target is not None and value is not None and lower is not None and upper is not None:
                if upper > lower:
                    prob = forecast_mod.probability_of_target(forecast_mod.ForecastPoint(1, value, lower, upper),
                                                              target, direction=metric.direction.value,
                                                              level=fc.level)
                else:  # known exactly
                    meets = value >= target if metric.direction.value == "up" else value <= target
                    prob = 1.0 if meets else 0.0
            if value is not None and lower is not None and upper is not None:
                # Cut after P(target): inside the domain the chance of a target is the same either way.
                value, lower, upper = domain.interval(value, lower, upper)
            points.append({"period": period.isoformat(), "label": label(period, grain, self.ws.week_start),
                           "value": _num(value), "lower": _num(lower), "upper": _num(upper),
                           "target": target, "probability": _num(prob), "observed": _num(observed),
                           "observed_share": share})
        return KpiForecast(key, grain, fc.method, float(fc.error), dict(fc.backtest), points, fc.evidence())

    def forecasts(self) -> list[KpiForecast]:
        edges = self.edges()
        return [f for k in self.kpis() if (f := self.forecast(k, edges=edges)) is not None]

    # --- early warnings -------------------------------------------------------------------------

    def stored_edges(self) -> list[leadlag.LeadLagEdge] | None:
        """The lead-lag edges of the last `kpilot leads` or `kpilot analyze` run up to the as-of date, if any."""
        run = results.load_run(self.svc.con, "leads", self.as_of)
        if run is None:
            return None
        return [leadlag.LeadLagEdge(e["leader"], e["follower"], int(e["lag"]), float(e["correlation"]),
                                    float(e["p_value"]), float(e["effect"]) if e["effect"] is not None else np.nan,
                                    int(e["n"]), bool(e["stable"]), grain=self._edge_grain(e))
                for e in run.payload]

    def _edge_grain(self, stored: dict[str, Any]) -> Grain | None:
        """A stored edge's grain; an edge stored without one was measured at its follower's grain."""
        if stored.get("grain"):
            return Grain(stored["grain"])
        follower = stored["follower"]
        return self.ws.metric(follower).grain if follower in self.ws.metric_keys else None

    def warnings(self, edges: Sequence[leadlag.LeadLagEdge] | None = None) -> list[EarlyWarningFinding]:
        """Early warnings for every follower with targets, from the edges that lead it.

        The edges are the stored ones (learned when the leads analysis last ran) when there are, else
        found now: a relation measured once keeps warning week after week, and does not come and go
        with each week's p-value.
        """
        if edges is None:
            edges = self.edges()
        known = set(self.ws.metric_keys)
        edges = [e for e in edges if e.leader in known and e.follower in known]
        out: list[EarlyWarningFinding] = []
        for follower in sorted({e.follower for e in edges}):
            metric = self.ws.metric(follower)
            if not metric.targets:
                continue
            out += self._finer_warnings(metric, edges)
            mine = leading(edges, follower, metric.grain)
            if not mine:
                continue
            data = self.aligned([follower, *[e.leader for e in mine]], metric.grain)
            if not data.periods:
                continue
            additive = self.mc.is_additive(follower)
            horizon = max(e.lag for e in mine)
            future = [shift(data.periods[-1], metric.grain, s) for s in range(1, horizon + 1)]
            targets = [target_for(metric, p, metric.grain, self.ws.week_start, additive) for p in future]
            found = warning.early_warnings(follower, data.values[follower], data.values, mine, targets,
                                           direction=metric.direction.value, amber=metric.bands.amber)
            for w in found:
                period = shift(data.periods[-1], metric.grain, w.period - len(data.periods) + 1)
                leader_period = data.periods[w.leader_period]
                out.append(EarlyWarningFinding(
                    results.finding_id("early_warning", follower, period, [w.leader]), follower, period,
                    label(period, metric.grain, self.ws.week_start), w, leader_period,
                    label(leader_period, metric.grain, self.ws.week_start), metric.decision, metric.grain))
        return out

    def _finer_warnings(self, metric: Metric, edges: Sequence[leadlag.LeadLagEdge]) -> list[EarlyWarningFinding]:
        """Early warnings from edges measured at a grain finer than the KPI's (weekly leaders of a monthly KPI).

        The KPI's values at the edge's grain are projected at the edge's lag, then judged on the KPI's own periods
        against their targets: a flow as the sum of its fine periods (each weighted by its days in the period), a
        snapshot as its value at the period's end (the fine period holding the last day). Other levels (ratios,
        averages) do not add up from their fine periods and are left to the edges of their own grain.
        """
        additive = self.mc.is_additive(metric.key)
        if not additive and metric.type is not MetricType.snapshot:
            return []
        week_start = self.ws.week_start
        out: list[EarlyWarningFinding] = []
        finer = sorted({e.grain for e in edges if e.follower == metric.key and e.lag >= 1 and e.grain is not None
                        and e.grain.order < metric.grain.order}, key=lambda g: g.order)
        for grain in finer:
            mine = leading(edges, metric.key, grain)
            data = self.aligned([metric.key, *[e.leader for e in mine]], grain)
            if not data.periods:
                continue
            n = len(data.periods)
            first = data.periods[0]
            ahead = [shift(first, grain, i) for i in range(n, n + max(e.lag for e in mine))]
            coarse_starts = list(dict.fromkeys(period_start(p, metric.grain, week_start) for p in ahead))
            coarse = [warning.CoarsePeriod(
                _fine_parts(start, metric.grain, first, grain, additive, week_start),
                target_for(metric, start, metric.grain, week_start, additive)) for start in coarse_starts]
            found = warning.rolled_up_warnings(metric.key, data.values[metric.key], data.values, mine, coarse,
                                               direction=metric.direction.value, amber=metric.bands.amber)
            for w in found:
                period = coarse_starts[w.period]
                leader_period = data.periods[w.leader_period]
                out.append(EarlyWarningFinding(
                    results.finding_id("early_warning", metric.key, period, [w.leader]), metric.key, period,
                    label(period, metric.grain, week_start), w, leader_period,
                    label(leader_period, grain, week_start), metric.decision, grain))
        return out

    # --- anomalies ------------------------------------------------------------------------------

    def anomalies(self, keys: Sequence[str] | None = None) -> list[AnomalyFinding]:
        """Unusual values of every metric (or of `keys`), each with its normal range, kept in the metric's domain.

        A running total (a year to date, a total since the start) is judged on what each period added (`basis`:
        "increment"), not on its level, which falls at every restart by design; a rolling total is judged as it is.
        """
        out: list[AnomalyFinding] = []
        for key in keys or self.ws.metric_keys:
            metric = self.metric(key)
            data = self.aligned([key], metric.grain)
            y = data.values[key]
            basis = "value"
            if metric.type is MetricType.cumulative and metric.window is None:
                y = anomaly_mod.increments(y, _restarts(self.ws, metric, data.periods))
                basis = "increment"
            # A few periods of quiet after an alarm, not NAB's season-long one: a KPI's next bad month
            # is news even if the last one was bad too.
            for a in anomaly_mod.detect(y, season=SEASON[metric.grain], quiet=QUIET[metric.grain],
                                        domain=domain_of(self.ws, metric).admitting(y)):
                period = data.periods[a.index]
                out.append(AnomalyFinding(results.finding_id("anomaly", key, period), key, period,
                                          label(period, metric.grain, self.ws.week_start), a, basis))
        out.sort(key=lambda f: (f.period, f.metric), reverse=True)
        return out

    # --- root cause -----------------------------------------------------------------------------

    def explain(self, key: str, before: date | str, after: date | str, dims: Sequence[str] | None = None,
                *, pairs: bool = True, grain: Grain | None = None) -> rootcause.Explanation:
        """What each dimension value contributed to the change of a metric between two periods.

        `before`/`after` are period references (2026-10, 2026-W45, 2026-Q3, 2026, a day) or days; both are
        compared at the grain they name (see rootcause.periods_to_compare), the metric recomputed from its
        rows at that grain, never read off periods of its own grain. When the later period holds the as-of
        date, the earlier one is cut after as many days. `Explanation.compared` says what was compared.
        """
        metric = self.metric(key)
        kind = _decomposable(self.ws, metric)
        dims = list(dims or self.mc.allowed_dimensions(key))
        if not dims:
            raise KpilotError(msg("metric {metric} has no dimension to explain a change by. Fix: list the "
                                  "model's `dimensions` in kpilot.yaml.", metric=key))
        week_start = self.ws.week_start
        grain, first, second = rootcause.periods_to_compare(before, after, metric.grain, grain, week_start)
        if grain.order < metric.grain.order:
            # A grain finer than the metric's own: only if its rows are dated finely enough.
            daily = self.mc.series(key, Grain.day)
            parts = [daily.values] if daily.numerator is None else [daily.numerator, daily.denominator]
            dated = [p for i, p in enumerate(daily.periods)
                     if any(x is not None and np.isfinite(x[i]) and x[i] != 0 for x in parts)]
            rootcause.check_data_grain(metric.label, grain, dated, week_start)
        compared = rootcause.comparison(metric.label, grain, first, second, as_of=self.as_of,
                                        through=self.through(key, grain), metric_grain=metric.grain,
                                        week_start=week_start)
        cells = self.mc.breakdown(key, dims, grain)
        sides = []
        for start, end in ((compared.before, compared.before_end), (compared.after, compared.after_end)):
            whole = end == next_start(start, grain) or start <= self.as_of < next_start(start, grain)
            # An earlier period cut after N days: as it stood then, replayed (snapshots read that day).
            at = cells if whole else self.svc.computer(end - timedelta(days=1)).breakdown(key, dims, grain)
            sides.append(_cells_at(at, start, kind, metric.label, label(start, grain, week_start)))
        if kind == "ratio":
            found = rootcause.explain_ratio(sides[0], sides[1], dims, pairs=pairs)
        else:
            found = rootcause.explain_additive(sides[0], sides[1], dims, pairs=pairs)
        return replace(found, compared=compared)

    # --- audit ----------------------------------------------------------------------------------

    def correlations(self) -> dict[tuple[str, str], float]:
        """Correlation of period-to-period changes between metrics of the same grain (duplicates ~1)."""
        out: dict[tuple[str, str], float] = {}
        by_grain: dict[Grain, list[str]] = {}
        for m in self.ws.metrics:
            by_grain.setdefault(m.grain, []).append(m.key)
        for grain, keys in by_grain.items():
            if len(keys) < 2:
                continue
            data = self.aligned(keys, grain)
            diffs = {k: np.diff(v) for k, v in data.values.items()}
            for i, a in enumerate(keys):
                for b in keys[i + 1:]:
                    ok = np.isfinite(diffs[a]) & np.isfinite(diffs[b])
                    if ok.sum() < 8 or np.std(diffs[a][ok]) == 0 or np.std(diffs[b][ok]) == 0:
                        continue
                    r = float(np.corrcoef(diffs[a][ok], diffs[b][ok])[0, 1])
                    out[(a, b)] = out[(b, a)] = r
        return out

    def _funnel(self) -> list[tuple[str, str]]:
        """The marketing-sales funnel's (stage name, metric key) pairs: what the audit counts as a stage's job."""
        return [(s.name, s.metric) for s in funnel_stages(list(self.ws.metrics))]

    def audit(self) -> list[audit_mod.AuditVerdict]:
        return audit_mod.audit_workspace(self.ws, self.leads(), self.correlations(), funnel=self._funnel())

    def audit_inventory(self, text: str, source: str) -> list[audit_mod.AuditVerdict]:
        rows = audit_mod.parse_inventory(text, source)
        return audit_mod.audit_inventory(rows, self.ws, self.leads(), self.correlations(), funnel=self._funnel())

    # --- everything, stored ---------------------------------------------------------------------

    def keep(self, kind: str, found: Sequence[Any]) -> None:
        """Store an analysis' result (edges, forecasts, verdicts: anything with to_dict) under the as-of date."""
        results.save_run(self.svc.con, kind, self.as_of, [x.to_dict() for x in found])

    def keep_findings(self, findings: Sequence[Finding]) -> int:
        """Record early warnings and anomalies (never lost, never duplicated); returns how many are new."""
        return results.record_findings(self.svc.con, [f.to_dict() for f in findings], self.as_of)

    def run_all(self) -> dict[str, Any]:
        """Run every analysis, store the results and findings; returns a summary."""
        edges = self.leads()
        self.keep("leads", edges)
        forecasts = self.forecasts()
        self.keep("forecasts", forecasts)
        warnings = self.warnings(edges)
        anomalies = self.anomalies()
        audit = self.audit()
        self.keep("audit", audit)
        new = self.keep_findings([*warnings, *anomalies])
        return {"edges": len(edges), "forecasts": len(forecasts), "warnings": len(warnings),
                "anomalies": len(anomalies), "audit": len(audit), "new_findings": new}


def _fine_parts(start: date, grain: Grain, first: date, fine: Grain, flow: bool, week_start: WeekStart
                ) -> tuple[tuple[int, float], ...]:
    """The fine periods (index on a spine of `fine` periods from `first`, weight) that make up one coarse period.

    A flow: every fine period overlapping it, weighted by the share of its days inside. A stock: the fine period
    holding its last day. Empty when the period starts before the spine does.
    """
    end = next_start(start, grain)
    if start < first:
        return ()
    i = len(periods_between(first, start, fine, week_start)) - 1  # the fine period holding its first day
    if not flow:
        return ((len(periods_between(first, end - timedelta(days=1), fine, week_start)) - 1, 1.0),)
    parts: list[tuple[int, float]] = []
    while (p := shift(first, fine, i)) < end:
        q = next_start(p, fine)
        inside = (min(q, end) - max(p, start)).days
        if inside > 0:
            parts.append((i, inside / (q - p).days))
        i += 1
    return tuple(parts)


def _decomposable(ws: Workspace, metric: Metric) -> str:
    """'additive' (sums and counts, also as snapshots) or 'ratio'; anything else cannot be split exactly."""
    if metric.type is MetricType.ratio:
        parts = aggregates_of(ws, metric)
        if parts and all(is_additive(parse_measure(a.measure)) for a in parts):
            return "ratio"
    elif metric.type in (MetricType.simple, MetricType.snapshot) and metric.measure is not None \
            and is_additive(parse_measure(metric.measure)):
        return "additive"
    raise KpilotError(msg("a change of {metric} cannot be split by dimension: only sums, counts and ratios of "
                          "them add up exactly (a distinct count, an average or a formula do not). Fix: explain the "
                          "sums or counts it is made of (an average as a ratio of two sums: `type: ratio`).",
                          metric=metric.key))


def _cells_at(cells: dict[tuple[object, ...], Any], period: date, kind: str, metric: str, period_label: str
              ) -> dict[tuple[str, ...], Any]:
    """Each cell's value in `period` (sum, or (numerator, denominator) for a ratio); cells with none are left out.

    Raises KpilotError when the metric's data does not reach `period` at all (0 would be a made-up value).
    """
    spines = [s.periods for s in cells.values()]
    if not any(period in spine for spine in spines):
        first = min((spine[0] for spine in spines if spine), default=None)
        raise KpilotError(msg("{metric} has no data for {period}: its data starts on {first}. Fix: compare "
                              "later periods.", metric=metric, period=period_label,
                              first=first.isoformat() if first else "—"))
    out: dict[tuple[str, ...], Any] = {}
    for values, s in cells.items():
        cell = tuple(str(v) for v in values)
        if kind == "ratio":
            if period in s.periods and s.numerator is not None and s.denominator is not None:
                i = s.periods.index(period)
                num, den = float(np.nan_to_num(s.numerator[i])), float(np.nan_to_num(s.denominator[i]))
                if num or den:
                    out[cell] = (num, den)
        elif (v := s.value_at(period)) is not None:
            out[cell] = v
    return out


def domain_of(ws: Workspace, metric: Metric) -> Domain:
    """Where a metric's values can lie, from its definition (the data may still overrule it: Domain.admitting).

    A rate in percent lies in [0, 1]; a count is a whole number >= 0 (also as a running total); one aggregate of
    a column (a sum, an average...) and a ratio of such metrics are >= 0; anything else (a difference, a
    formula) is unbounded.
    """
    if (metric.unit or "").lower() in ("percent", "%"):
        return SHARE
    if metric.type is MetricType.ratio:
        parts = (metric.numerator, metric.denominator)
        return NON_NEGATIVE if all(_part_domain(ws, p).lower == 0 for p in parts) else UNBOUNDED
    if metric.type is not MetricType.derived and metric.measure is not None:
        return _measure_domain(metric.measure)
    return UNBOUNDED


def _part_domain(ws: Workspace, part: RatioPart | None) -> Domain:
    if part is None:
        return UNBOUNDED
    if part.metric is not None:
        return domain_of(ws, ws.metric(part.metric)) if part.metric in ws.metric_keys else UNBOUNDED
    return _measure_domain(part.measure) if part.measure is not None else UNBOUNDED


def _measure_domain(measure: str) -> Domain:
    if counts_rows(measure):
        return COUNT
    tree = parse_measure(measure)
    while isinstance(tree, exp.Paren):
        tree = tree.this
    return UNBOUNDED if AGGREGATES.get(type(tree)) is None else NON_NEGATIVE


def _restarts(ws: Workspace, metric: Metric, periods: Sequence[date]) -> list[bool]:
    """Where a running total starts again: at its first period, and at the first of each `to_date` period."""
    if metric.to_date is None:
        return [i == 0 for i in range(len(periods))]
    starts = [period_start(p, metric.to_date, ws.week_start) for p in periods]
    return [i == 0 or s != starts[i - 1] for i, s in enumerate(starts)]


# The analysis' typed results, as the doors receive them (pages, API and CLI import them from here).
AuditVerdict = audit_mod.AuditVerdict
LeadLagEdge = leadlag.LeadLagEdge
Explanation = rootcause.Explanation

__all__ = ["Aligned", "AuditVerdict", "Explanation", "Insights", "KpiForecast", "LeadLagEdge"]
