"""Computing metric series: plan aggregates, refresh what is stale, compose, materialize.

`MetricComputer` is the one entry point for values. Given an as-of date it answers `series(metric,
grain)`. With a store (the workspace's DuckDB) it reuses materialized aggregates and recomputes only
the periods touched by appended rows or a moved as-of date; in replay mode (an explicit past as-of
date) it computes from scratch, ignoring rows after that date, and stores nothing.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

import duckdb
import numpy as np

from kpilot.compute import store as st
from kpilot.compute.compiler import (
    Aggregate,
    CompileContext,
    MetricRef,
    aggregates_of,
    compile_extent,
    compile_flow,
    compile_join_check,
    compile_snapshot_time,
    compile_validity,
    compile_validity_changes,
    is_additive,
    is_linear,
    metric_parts,
    moments_for,
    nature_of,
)
from kpilot.compute.compose import Series, divide, evaluate, fill, running, shift, union_spine
from kpilot.compute.engine import Engine
from kpilot.model.errors import KpilotError, did_you_mean, msg, one_of
from kpilot.model.expressions import parse_formula, parse_measure
from kpilot.model.periods import Grain, period_start, periods_between
from kpilot.model.validate import formula_names
from kpilot.model.workspace import Metric, MetricType, Workspace

Progress = Callable[[int, int, str], None]


class ComputeError(KpilotError):
    pass


@dataclass
class _AggResult:
    rows: dict[date, float | None]
    first: date | None
    last: date | None


@dataclass
class ComputeReport:
    aggregates_total: int = 0
    aggregates_recomputed: int = 0
    aggregates_incremental: int = 0
    queries: int = 0
    metrics: list[str] = field(default_factory=list)


def metric_definition(ws: Workspace, metric: Metric) -> str:
    """A stable text of everything that determines a metric's values."""
    deps = {}
    for part in metric_parts(ws, metric).values():
        if isinstance(part, Aggregate):
            deps[part.id] = part.model_def
    return json.dumps([metric.model_dump(mode="json", exclude={"targets", "bands", "decision", "name",
                                                                "description", "owners", "kind"}),
                       deps, ws.week_start.value, ws.timezone], sort_keys=True, default=str)


def _zero_filled(series: Series) -> np.ndarray:
    return np.where(np.isnan(series.values), 0.0, series.values) if series.additive else series.values


class MetricComputer:
    """Metric series of a workspace, computed by `engine` (the warehouse), or for the models in `engines`
    (model key -> engine: tables computed in place, in their own database), by theirs.

    An in-place table has no load version: its aggregates are recomputed at every refresh.
    """

    def __init__(self, engine: Engine, ws: Workspace, schema: Mapping[str, Mapping[str, str]], *,
                 as_of: date, replay: bool = False, store: duckdb.DuckDBPyConnection | None = None,
                 engines: Mapping[str, Engine] | None = None):
        self.engine = engine
        self.ws = ws
        self.schema = schema
        self.ctx = CompileContext(ws, schema, engine.dialect)
        self.engines = dict(engines or {})
        self._ctxs = {key: CompileContext(ws, schema, e.dialect) for key, e in self.engines.items()}
        self.as_of = as_of
        self.replay = replay
        self.store = None if replay else store
        if self.store is not None:
            st.ensure_schema(self.store)
        self.versions = st.table_versions(self.store) if self.store is not None else {}
        self._aggs: dict[tuple[str, str], _AggResult] = {}
        self._extents: dict[tuple[str, str, str], tuple[date | None, date | None]] = {}
        self._series: dict[tuple[str, str], Series] = {}
        self._checked_joins: set[str] = set()
        self._natures: dict[str, str] = {}
        self.report = ComputeReport()

    # --- planning -------------------------------------------------------------------------------

    def prepare(self, requests: Iterable[tuple[str, Grain]], progress: Progress | None = None) -> None:
        """Make sure every aggregate the requested series need is computed, batching queries."""
        needed = {(agg, grain) for key, grain in requests if (key, grain.value) not in self._series
                  for agg in aggregates_of(self.ws, self.ws.metric(key))}
        self._prepare_aggregates(needed, progress)

    def _prepare_aggregates(self, needed: Iterable[tuple[Aggregate, Grain]], progress: Progress | None = None) -> None:
        todo = [(a, g) for a, g in set(needed) if (a.id, g.value) not in self._aggs]
        self.report.aggregates_total += len(todo)
        groups: dict[tuple[str, str, str, tuple[str, ...], Grain], list[Aggregate]] = defaultdict(list)
        for agg, grain in sorted(todo, key=lambda x: (x[0].group_key, x[1].value, x[0].id)):
            groups[(*agg.group_key, grain)].append(agg)
        done = 0
        for (model_key, mode, time, _, grain), aggs in groups.items():
            self._check_joins(model_key)
            self._refresh_group(model_key, mode, time, grain, aggs)
            done += len(aggs)
            if progress:
                progress(done, len(todo), f"{model_key} by {grain.value}")

    def _engine(self, model_key: str) -> Engine:
        return self.engines.get(model_key, self.engine)

    def _ctx(self, model_key: str) -> CompileContext:
        return self._ctxs.get(model_key, self.ctx)

    def _check_joins(self, model_key: str) -> None:
        if model_key in self._checked_joins:
            return
        self._checked_joins.add(model_key)
        model = self.ctx.model(model_key)
        for join in model.joins:
            if self._engine(join.model) is not self._engine(model_key):
                raise ComputeError(msg(
                    "model {model} joins model {joined}, but their tables are computed in different databases "
                    "(one of them in place). Fix: copy one of them into the warehouse (`mode: copy`), or compute "
                    "both in place in the same source.", model=model_key, joined=join.model))
        for joined, query in compile_join_check(self._ctx(model_key), model_key):
            table = self._engine(model_key).query(query)
            if table.num_rows:
                keys = [j for _, j in next(j for j in model.joins if j.model == joined).pairs()]
                first = table.to_pylist()[0]
                sample = ", ".join(repr(first[k]) for k in keys)
                raise ComputeError(msg(
                    "model {model}: the join to {joined} on {keys} would count rows of {table} several times: "
                    "{keys} = {sample} appears {n} times in {joined_table}. Fix: make {keys} unique in "
                    "{joined_table} (one row per key), or join on a unique key.", model=model_key, joined=joined,
                    keys=", ".join(keys), table=model.table, sample=sample, n=first["n"],
                    joined_table=self.ctx.model(joined).table))

    # --- aggregates -----------------------------------------------------------------------------

    def _tables_of(self, model_key: str) -> list[str]:
        model = self.ctx.model(model_key)
        return [model.table, *[self.ctx.model(j.model).table for j in model.joins]]

    def _current_versions(self, model_key: str) -> dict[str, int | None]:
        if model_key in self.engines:  # computed in place: no version to compare, so always recomputed
            return {t: None for t in self._tables_of(model_key)}
        return {t: (self.versions[t].version if t in self.versions else None) for t in self._tables_of(model_key)}

    def _extent(self, model_key: str, mode: str, time: str) -> tuple[date | None, date | None]:
        key = (model_key, mode, time)
        if key not in self._extents:
            query = compile_extent(self._ctx(model_key), model_key, mode, time)  # type: ignore[arg-type]
            row = self._engine(model_key).query(query).to_pylist()[0]
            self.report.queries += 1
            first, last = row["first"], row["last"]
            if self.replay and last is not None and last > self.as_of:
                last = self.as_of
            self._extents[key] = (first, last)
        return self._extents[key]

    def spine(self, first: date | None, last: date | None, grain: Grain) -> list[date]:
        if first is None:
            return []
        end = self.as_of if self.replay else max(last or self.as_of, self.as_of)
        if self.replay and first > self.as_of:
            return []
        return periods_between(first, end, grain, self.ws.week_start)

    def _since(self, model_key: str, mode: str, time: str, grain: Grain, state: st.AggState | None,
               versions: dict[str, int | None]) -> tuple[bool, date | None]:
        """(fresh, since): fresh when nothing changed; else recompute periods from `since` (None = all)."""
        if state is None or any(v is None for v in versions.values()):
            return False, None
        model = self.ctx.model(model_key)
        changed = [t for t, v in versions.items() if state.versions.get(t) != v]
        as_of_moves = mode != "flow" and state.as_of != self.as_of
        if not changed and not as_of_moves:
            return True, None
        candidates: list[date] = []
        for table in changed:
            info = self.versions[table]
            old = state.versions.get(table)
            if table != model.table or info.change != "append" or old is None or info.version != old + 1:
                return False, None
            column = model.validity.from_ if mode == "validity" and model.validity else time
            raw = info.append_min.get(column)
            if raw is None:
                return False, None
            # One day of margin covers time zone conversions of the appended rows.
            day = date.fromisoformat(str(raw)[:10]) - timedelta(days=1)
            candidates.append(period_start(day, grain, self.ws.week_start))
        if as_of_moves and state.as_of is not None:
            candidates.append(period_start(min(state.as_of, self.as_of), grain, self.ws.week_start))
        elif as_of_moves:
            return False, None
        return False, min(candidates) if candidates else None

    def _refresh_group(self, model_key: str, mode: str, time: str, grain: Grain, aggs: Sequence[Aggregate]) -> None:
        versions = self._current_versions(model_key)
        stale: list[tuple[Aggregate, date | None]] = []
        ids = [a.id for a in aggs]
        # The group's states and stored rows in one query each, not two per aggregate.
        states = st.read_states(self.store, ids, grain.value) if self.store is not None else {}
        stored = st.read_aggregates(self.store, ids, grain.value) if self.store is not None else {}
        for agg in aggs:
            state = states.get(agg.id)
            fresh, since = self._since(model_key, mode, time, grain, state, versions)
            if fresh and state is not None and self.store is not None:
                self._aggs[(agg.id, grain.value)] = _AggResult(stored[agg.id], state.first, state.last)
            else:
                stale.append((agg, since))
        if not stale:
            return
        first, last = self._extent(model_key, mode, time)
        # One query for the whole group, from the earliest period any member needs.
        sinces = [s for _, s in stale]
        since = None if any(s is None for s in sinces) else min(s for s in sinces if s is not None)
        members = [a for a, _ in stale]
        rows = self._run(members, mode, grain, first, last, since)
        batch: list[tuple[str, dict[date, float | None], date | None, st.AggState]] = []
        for i, agg in enumerate(members):
            fresh_rows = {p: r[i] for p, r in rows.items()}
            result = fresh_rows
            if self.store is not None and since is not None:
                kept = stored[agg.id]
                result = {p: v for p, v in kept.items() if p < since}
                result.update(fresh_rows)
                self.report.aggregates_incremental += 1
            batch.append((agg.id, fresh_rows, since, st.AggState(versions, self.as_of, first, last)))
            self.report.aggregates_recomputed += 1
            self._aggs[(agg.id, grain.value)] = _AggResult(result, first, last)
        if self.store is not None:
            st.write_aggregates(self.store, grain.value, batch)

    def _run(self, aggs: Sequence[Aggregate], mode: str, grain: Grain, first: date | None, last: date | None,
             since: date | None) -> dict[date, list[float | None]]:
        if first is None:
            return {}
        ctx, engine = self._ctx(aggs[0].model), self._engine(aggs[0].model)
        until = self.as_of + timedelta(days=1) if self.replay else None
        if mode == "flow":
            query = compile_flow(ctx, aggs, grain, since=since, until=until)
        elif mode == "snapshot_time":
            query = compile_snapshot_time(ctx, aggs, grain, since=since, until=until)
        elif all(is_linear(parse_measure(a.measure)) for a in aggs):
            return self._run_validity_changes(aggs, grain, first, last)
        else:
            periods = [p for p in self.spine(first, last, grain) if since is None or p >= since]
            if not periods:
                return {}
            as_of_end = self.as_of + timedelta(days=1)
            query = compile_validity(ctx, aggs, moments_for(periods, grain, as_of_end))
        table = engine.query(query)
        self.report.queries += 1
        cols = [table.column(f"a{i}").to_pylist() for i in range(len(aggs))]
        out: dict[date, list[float | None]] = {}
        for j, p in enumerate(table.column("period").to_pylist()):
            out[p] = [c[j] for c in cols]
        return out

    def _run_validity_changes(self, aggs: Sequence[Aggregate], grain: Grain, first: date | None,
                              last: date | None) -> dict[date, list[float | None]]:
        """Snapshots as running sums of per-period changes (see compile_validity_changes)."""
        spine = self.spine(first, last, grain)
        if not spine:
            return {}
        as_of_end = self.as_of + timedelta(days=1)
        model = aggs[0].model
        table = self._engine(model).query(compile_validity_changes(self._ctx(model), aggs, grain, as_of_end))
        self.report.queries += 1
        periods = table.column("period").to_pylist()
        current = period_start(self.as_of, grain, self.ws.week_start)
        out: dict[date, list[float | None]] = {p: [] for p in spine}
        for i in range(len(aggs)):
            change = dict(zip(periods, table.column(f"a{i}").to_pylist(), strict=True))
            change_asof = dict(zip(periods, table.column(f"b{i}").to_pylist(), strict=True))
            running = 0.0
            for p in spine:
                own = change_asof.get(p) if p == current else change.get(p)
                out[p].append(running + (own or 0.0))
                running += change.get(p) or 0.0
        return out

    # --- composition ----------------------------------------------------------------------------

    def _aggregate_series(self, agg: Aggregate, grain: Grain) -> Series:
        res = self._aggs.get((agg.id, grain.value))
        if res is None:
            raise ComputeError(msg("internal: aggregate {id} at {grain} was not prepared", id=agg.id,
                                   grain=grain.value))
        spine = self.spine(res.first, res.last, grain)
        additive = is_additive(parse_measure(agg.measure))
        zero = additive and agg.mode == "flow"
        values = fill(res.rows, spine, zero_when_missing=zero)
        if agg.mode != "flow" and additive:
            # A snapshot with no valid row at a period end is 0 (no active subscription), not unknown.
            values = np.where(np.isnan(values), 0.0, values)
        return Series(grain, spine, values, additive=additive and agg.mode == "flow")

    def _part(self, part: Aggregate | MetricRef, grain: Grain) -> Series:
        if isinstance(part, Aggregate):
            return self._aggregate_series(part, grain)
        base = self.series(part.metric, grain)
        if part.offset == 0:
            return base
        return Series(grain, base.periods, shift(base.values, part.offset), additive=False)

    def series(self, metric_key: str, grain: Grain | None = None) -> Series:
        """A metric's series at a grain (default: its own), composed from prepared aggregates."""
        metric = self.ws.metric(metric_key)
        grain = grain or metric.grain
        key = (metric_key, grain.value)
        if key in self._series:
            return self._series[key]
        self.prepare([(metric_key, grain)])
        result = self._compose(metric, grain, lambda part: self._part(part, grain),
                               lambda other: self.series(other, grain))
        self._series[key] = result
        return result

    def _compose(self, metric: Metric, grain: Grain, part_of: Callable[[Aggregate | MetricRef], Series],
                 metric_of: Callable[[str], Series]) -> Series:
        """A metric's values from its parts: the one place where ratios, formulas and running totals are made."""
        t = metric.type
        parts = metric_parts(self.ws, metric)
        if t in (MetricType.simple, MetricType.snapshot):
            return part_of(parts["value"])
        if t is MetricType.cumulative:
            base = part_of(parts["value"])
            return Series(grain, base.periods, running(base.values, base.periods, grain, window=metric.window,
                                                       to_date=metric.to_date, week_start=self.ws.week_start))
        if t is MetricType.ratio:
            num, den = part_of(parts["numerator"]), part_of(parts["denominator"])
            spine = union_spine([num.periods, den.periods])
            # A count or sum with no row in a period is 0 there, even outside its own time column's span.
            n, d = (_zero_filled(part.reindex(spine)) for part in (num, den))
            return Series(grain, spine, divide(n, d), n, d)
        assert metric.formula is not None
        tree, refs = parse_formula(metric.formula, formula_names(self.ws, metric))
        inputs = {r.metric: metric_of(r.metric) for r in refs}
        spine = union_spine([s.periods for s in inputs.values()])
        columns = {r.column: shift(inputs[r.metric].reindex(spine).values, r.offset) for r in refs}
        return Series(grain, spine, evaluate(tree, columns, len(spine)))

    # --- breakdown by dimension -----------------------------------------------------------------

    def allowed_dimensions(self, metric_key: str) -> list[str]:
        """Dimensions a metric can be sliced by: its own list, else those every model it reads shares."""
        metric = self.ws.metric(metric_key)
        if metric.dimensions:
            return list(metric.dimensions)
        aggs = aggregates_of(self.ws, metric)
        if not aggs:
            return []
        shared = set.intersection(*[set(self.ctx.model(a.model).dimensions) for a in aggs])
        return [d for d in self.ctx.model(aggs[0].model).dimensions if d in shared]

    def breakdown(self, metric_key: str, dims: Sequence[str], grain: Grain | None = None
                  ) -> dict[tuple[object, ...], Series]:
        """A metric's series per value of one or more dimensions (computed on demand, not stored)."""
        metric = self.ws.metric(metric_key)
        grain = grain or metric.grain
        allowed = self.allowed_dimensions(metric_key)
        for d in dims:
            if d not in allowed:
                raise ComputeError(msg("metric {metric} cannot be sliced by '{dimension}';{hint} dimensions: "
                                       "{dimensions}. Fix: add it to the model's `dimensions`.", metric=metric_key,
                                       dimension=d, hint=did_you_mean(d, allowed), dimensions=one_of(allowed)))
        rows: dict[str, dict[tuple[object, ...], dict[date, float | None]]] = {}
        spines: dict[str, list[date]] = {}
        for agg in aggregates_of(self.ws, metric):
            self._check_joins(agg.model)
            first, last = self._extent(agg.model, agg.mode, agg.time)
            spines[agg.id] = self.spine(first, last, grain)
            rows[agg.id] = self._run_by(agg, grain, dims, spines[agg.id])
        keys = sorted({k for per in rows.values() for k in per}, key=lambda k: tuple(str(x) for x in k))

        def for_key(key: tuple[object, ...]) -> Series:
            cache: dict[str, Series] = {}

            def part_of(part: Aggregate | MetricRef) -> Series:
                if isinstance(part, MetricRef):
                    base = metric_of(part.metric)
                    return base if part.offset == 0 else Series(grain, base.periods, shift(base.values, part.offset))
                additive = is_additive(parse_measure(part.measure))
                spine = spines[part.id]
                values = fill(rows[part.id].get(key, {}), spine, zero_when_missing=additive)
                return Series(grain, spine, values, additive=additive and part.mode == "flow")

            def metric_of(other: str) -> Series:
                if other not in cache:
                    cache[other] = self._compose(self.ws.metric(other), grain, part_of, metric_of)
                return cache[other]

            return metric_of(metric_key)

        return {k: for_key(k) for k in keys}

    def _run_by(self, agg: Aggregate, grain: Grain, dims: Sequence[str], spine: Sequence[date]
                ) -> dict[tuple[object, ...], dict[date, float | None]]:
        if not spine:
            return {}
        until = self.as_of + timedelta(days=1) if self.replay else None
        ctx = self._ctx(agg.model)
        if agg.mode == "flow":
            query = compile_flow(ctx, [agg], grain, until=until, dims=dims)
        elif agg.mode == "snapshot_time":
            query = compile_snapshot_time(ctx, [agg], grain, until=until, dims=dims)
        else:
            query = compile_validity(ctx, [agg], moments_for(spine, grain, self.as_of + timedelta(days=1)),
                                     dims=dims)
        table = self._engine(agg.model).query(query)
        self.report.queries += 1
        periods = table.column("period").to_pylist()
        values = table.column("a0").to_pylist()
        dim_cols = [table.column(f"d{i}").to_pylist() for i in range(len(dims))]
        out: dict[tuple[object, ...], dict[date, float | None]] = {}
        for j, p in enumerate(periods):
            out.setdefault(tuple(c[j] for c in dim_cols), {})[p] = values[j]
        return out

    def materialize(self, metric_keys: Sequence[str] | None = None, grains: Mapping[str, Grain] | None = None,
                    progress: Progress | None = None) -> ComputeReport:
        """Compute (incrementally) and store every metric's series at its own grain."""
        keys = list(metric_keys or self.ws.metric_keys)
        requests = [(k, (grains or {}).get(k, self.ws.metric(k).grain)) for k in keys]
        self.prepare(requests, progress)
        batch: list[st.SeriesRows] = []
        for k, g in requests:
            s = self.series(k, g)
            if self.store is not None:
                batch.append(st.SeriesRows(k, g.value, s.periods, s.values, s.numerator, s.denominator,
                                           metric_definition(self.ws, self.ws.metric(k))))
            self.report.metrics.append(k)
        if self.store is not None:
            # Every series in one transaction: the board never reads a mix of old and new series.
            st.write_series_batch(self.store, batch, self.as_of)
        if self.store is not None and metric_keys is None:
            st.drop_unknown(self.store, self.ws.metric_keys)
        return self.report

    def is_additive(self, metric_key: str) -> bool:
        """Whether the metric is a flow, whose shorter periods add up to a longer one (sums, counts, and formulas
        over them: see `nature_of`), judged at pace; else a level."""
        if metric_key not in self._natures:
            self._natures[metric_key] = nature_of(self.ws, self.ws.metric(metric_key))
        return self._natures[metric_key] == "flow"

    def arrivals(self, metric_key: str) -> dict[str, list[tuple[date, float]]]:
        """How the data of the tables a metric reads arrives: rows per day (up to the as-of date) of each of their
        time columns the workspace uses ("table.column" -> [(day, rows)]), all rows whatever the metric's filter.

        Every time column counts, not only the metric's own: a table whose closing dates stopped on the 22nd
        stopped arriving then, even if rows dated ahead (meetings booked for next week) keep its creation dates
        going."""
        models = {a.model for a in aggregates_of(self.ws, self.ws.metric(metric_key))}
        columns: dict[tuple[str, str], Aggregate] = {}
        for m in self.ws.metrics:
            for a in aggregates_of(self.ws, m):
                if a.model not in models:
                    continue
                model = self.ctx.model(a.model)
                time = a.time if a.mode == "flow" else (model.validity.from_ if model.validity else a.time)
                if time and (a.model, time) not in columns:
                    columns[(a.model, time)] = Aggregate(a.model, "flow", time, "count(*)", None, a.model_def)
        self._prepare_aggregates((agg, Grain.day) for agg in columns.values())
        out: dict[str, list[tuple[date, float]]] = {}
        for (model_key, time), agg in sorted(columns.items()):
            s = self._aggregate_series(agg, Grain.day)
            out[f"{self.ctx.model(model_key).table}.{time}"] = [
                (day, float(v)) for day, v in zip(s.periods, s.values, strict=True) if day <= self.as_of and v == v]
        return out

    def data_through(self, metric_key: str, grain: Grain | None = None, *, cap: bool = True) -> date:
        """The last day the metric's data reaches, at most the as-of date (unless cap is False).

        Snapshots over validity ranges count as current: a state valid until further notice is known today.
        """
        grain = grain or self.ws.metric(metric_key).grain
        self.prepare([(metric_key, grain)])
        lasts = [res.last for agg in aggregates_of(self.ws, self.ws.metric(metric_key)) if agg.mode != "validity"
                 if (res := self._aggs.get((agg.id, grain.value))) is not None and res.last is not None]
        if not lasts:
            return self.as_of
        return min(min(lasts), self.as_of) if cap else min(lasts)
