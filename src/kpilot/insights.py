"""A workspace's analysis: series from the engine, fed to the pure functions of kpilot.analysis.

Leading indicators (lead-lag edges), forecasts to target, early warnings, anomalies, root cause and the
audit, each over complete periods only (a period counts once the data of every metric involved has
reached its end). Results are stored in the warehouse (kpilot.compute.results) for the web app and the
alerts; the CLI shows them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np

from kpilot.analysis import anomaly as anomaly_mod
from kpilot.analysis import audit as audit_mod
from kpilot.analysis import forecast as forecast_mod
from kpilot.analysis import leadlag, rootcause, warning
from kpilot.compute import results
from kpilot.compute.compiler import aggregates_of, is_additive
from kpilot.compute.metrics import MetricComputer
from kpilot.model import Grain, KpilotError, MetricType
from kpilot.model.errors import did_you_mean, msg, one_of
from kpilot.model.expressions import parse_measure
from kpilot.model.periods import label, next_start, period_start, periods_between, shift
from kpilot.model.targets import target_for
from kpilot.model.workspace import Kind, Metric, Workspace

SEASON: dict[Grain, int | None] = {Grain.day: 7, Grain.week: 52, Grain.month: 12, Grain.quarter: 4,
                                   Grain.year: None}
QUIET: dict[Grain, int] = {Grain.day: 7, Grain.week: 4, Grain.month: 2, Grain.quarter: 1, Grain.year: 1}
MAX_LAG: dict[Grain, int] = {Grain.day: 28, Grain.week: 12, Grain.month: 6, Grain.quarter: 4, Grain.year: 2}


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

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "grain": self.grain.value, "method": self.method, "error": _num(self.error),
                "backtest": {k: _num(v) for k, v in self.backtest.items()}, "points": self.points}


def _num(x: float | None) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


class Insights:
    """The analysis of one workspace as of a date (default: today, after loading and computing)."""

    def __init__(self, svc: Any, *, as_of: date | None = None):
        self.svc = svc
        self.ws: Workspace = svc.ws
        svc.load()  # unchanged files are skipped; a replay needs the data too
        self.mc: MetricComputer = svc.computer(as_of)
        if as_of is None:
            self.mc.materialize()
        self.as_of = self.mc.as_of
        self._edges: list[leadlag.LeadLagEdge] | None = None

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
        through = min(self.mc.data_through(k, grain) for k in keys)
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
        """Lead-lag edges from every candidate leader to the North Star and lagging metrics.

        Each follower is analysed at its own grain, with the leaders computed at that grain; the lag is
        in periods of the follower's grain.
        """
        if self._edges is not None and max_lag is None:
            return self._edges
        leaders, followers = self.candidates()
        edges: list[leadlag.LeadLagEdge] = []
        by_grain: dict[Grain, list[str]] = {}
        for f in followers:
            by_grain.setdefault(self.ws.metric(f).grain, []).append(f)
        for grain, fs in by_grain.items():
            data = self.aligned([*leaders, *fs], grain)
            if len(data.periods) < 12:
                continue
            # No yearly deseasonalising here: on weekly sales data the yearly dips (summer, Christmas)
            # are what carries the lead (see docs/analysis.md); trend and autocorrelation are removed.
            edges += leadlag.discover(data.values, leaders, fs, max_lag=max_lag or MAX_LAG[grain])
        edges.sort(key=lambda e: e.p_value)
        if max_lag is None:
            self._edges = edges
        return edges

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
        lead_edges = [e for e in (edges if edges is not None else self.leads()) if e.follower == key and e.lag >= 1]
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
        through = self.mc.data_through(key, grain)
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
            points.append({"period": period.isoformat(), "label": label(period, grain, self.ws.week_start),
                           "value": _num(value), "lower": _num(lower), "upper": _num(upper),
                           "target": target, "probability": _num(prob), "observed": _num(observed),
                           "observed_share": share})
        return KpiForecast(key, grain, fc.method, float(fc.error), dict(fc.backtest), points)

    def forecasts(self) -> list[KpiForecast]:
        edges = self.leads()
        return [f for k in self.kpis() if (f := self.forecast(k, edges=edges)) is not None]

    # --- early warnings -------------------------------------------------------------------------

    def stored_edges(self) -> list[leadlag.LeadLagEdge] | None:
        """The lead-lag edges of the last `kpilot leads` or `kpilot analyze` run up to the as-of date, if any."""
        run = results.load_run(self.svc.con, "leads", self.as_of)
        if run is None:
            return None
        return [leadlag.LeadLagEdge(e["leader"], e["follower"], int(e["lag"]), float(e["correlation"]),
                                    float(e["p_value"]), float(e["effect"]) if e["effect"] is not None else np.nan,
                                    int(e["n"]), bool(e["stable"])) for e in run.payload]

    def warnings(self, edges: Sequence[leadlag.LeadLagEdge] | None = None) -> list[dict[str, Any]]:
        """Early warnings for every follower with targets, from the edges that lead it.

        The edges are the stored ones (learned when the leads analysis last ran) when there are, else
        found now: a relation measured once keeps warning week after week, and does not come and go
        with each week's p-value.
        """
        if edges is None:
            edges = self.stored_edges()
        if edges is None:
            edges = self.leads()
        known = set(self.ws.metric_keys)
        edges = [e for e in edges if e.leader in known and e.follower in known]
        out: list[dict[str, Any]] = []
        for follower in sorted({e.follower for e in edges}):
            metric = self.ws.metric(follower)
            if not metric.targets:
                continue
            mine = [e for e in edges if e.follower == follower and e.lag >= 1]
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
                out.append({
                    "id": results.finding_id("early_warning", follower, period, [w.leader]),
                    "kind": "early_warning", "metric": follower, "period": period, "severity": w.severity,
                    "label": label(period, metric.grain, self.ws.week_start),
                    "leader_period": leader_period.isoformat(),
                    "leader_label": label(leader_period, metric.grain, self.ws.week_start),
                    **w.to_dict(),
                    "decision": _decision(metric),
                })
        return out

    # --- anomalies ------------------------------------------------------------------------------

    def anomalies(self, keys: Sequence[str] | None = None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for key in keys or self.ws.metric_keys:
            metric = self.metric(key)
            data = self.aligned([key], metric.grain)
            y = data.values[key]
            # A few periods of quiet after an alarm, not NAB's season-long one: a KPI's next bad month
            # is news even if the last one was bad too.
            for a in anomaly_mod.detect(y, season=SEASON[metric.grain], quiet=QUIET[metric.grain]):
                period = data.periods[a.index]
                out.append({"id": results.finding_id("anomaly", key, period), "kind": "anomaly", "metric": key,
                            "period": period, "severity": a.severity,
                            "label": label(period, metric.grain, self.ws.week_start), **a.to_dict()})
        out.sort(key=lambda f: (f["period"], f["metric"]), reverse=True)
        return out

    # --- root cause -----------------------------------------------------------------------------

    def explain(self, key: str, before: date, after: date, dims: Sequence[str] | None = None,
                *, pairs: bool = True) -> rootcause.Explanation:
        """What each dimension value contributed to the change of a metric between two periods."""
        metric = self.metric(key)
        grain = metric.grain
        before, after = period_start(before, grain, self.ws.week_start), period_start(after, grain, self.ws.week_start)
        kind = _decomposable(self.ws, metric)
        dims = list(dims or self.mc.allowed_dimensions(key))
        if not dims:
            raise KpilotError(msg("metric {metric} has no dimension to explain a change by. Fix: list the "
                                  "model's `dimensions` in kpilot.yaml.", metric=key))
        cells = self.mc.breakdown(key, dims, grain)
        if kind == "ratio":
            rb: dict[tuple[str, ...], tuple[float, float]] = {}
            ra: dict[tuple[str, ...], tuple[float, float]] = {}
            for values, s in cells.items():
                cell = tuple(str(v) for v in values)
                for period, target in ((before, rb), (after, ra)):
                    if period in s.periods and s.numerator is not None and s.denominator is not None:
                        i = s.periods.index(period)
                        num, den = float(np.nan_to_num(s.numerator[i])), float(np.nan_to_num(s.denominator[i]))
                        if num or den:
                            target[cell] = (num, den)
            return rootcause.explain_ratio(rb, ra, dims, pairs=pairs)
        ab: dict[tuple[str, ...], float] = {}
        aa: dict[tuple[str, ...], float] = {}
        for values, s in cells.items():
            cell = tuple(str(v) for v in values)
            for period, target_cells in ((before, ab), (after, aa)):
                v = s.value_at(period)
                if v is not None:
                    target_cells[cell] = v
        return rootcause.explain_additive(ab, aa, dims, pairs=pairs)

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

    def audit(self) -> list[audit_mod.AuditVerdict]:
        return audit_mod.audit_workspace(self.ws, self.leads(), self.correlations())

    def audit_inventory(self, text: str, source: str) -> list[audit_mod.AuditVerdict]:
        rows = audit_mod.parse_inventory(text, source)
        return audit_mod.audit_inventory(rows, self.ws, self.leads(), self.correlations())

    # --- everything, stored ---------------------------------------------------------------------

    def keep(self, kind: str, found: Sequence[Any]) -> None:
        """Store an analysis' result (edges, forecasts, verdicts: anything with to_dict) under the as-of date."""
        results.save_run(self.svc.con, kind, self.as_of, [x.to_dict() for x in found])

    def keep_findings(self, findings: Sequence[dict[str, Any]]) -> int:
        """Record early warnings and anomalies (never lost, never duplicated); returns how many are new."""
        return results.record_findings(self.svc.con, findings, self.as_of)

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


def _decision(metric: Metric) -> dict[str, Any] | None:
    if metric.decision is None:
        return None
    return {"when": metric.decision.when.model_dump(exclude_none=True), "owner": metric.decision.owner,
            "action": metric.decision.action}


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
                          "them add up exactly (a distinct count, an average or a formula do not).",
                          metric=metric.key))
