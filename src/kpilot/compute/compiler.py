"""Metric definitions -> SQL, through SQLGlot syntax trees (never string pasting).

A metric is planned as one or more `Aggregate`s (an aggregate of a model's rows per period), then
composed (ratio, offsets, formulas, running totals) by `kpilot.compute.compose`. Aggregates over the
same model, time column and grain are compiled into one query with `FILTER (WHERE ...)` clauses, so
a table is scanned once per grain, not once per metric.

Time: naive timestamps are read in the model's time zone (default: the workspace's), converted to
the workspace's time zone, then bucketed into periods that start on the workspace's week start.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from sqlglot import exp

from kpilot.model.expressions import AGGREGATES, FormulaRef, parse_filter, parse_formula, parse_measure
from kpilot.model.periods import Grain, WeekStart, next_start
from kpilot.model.validate import dependencies, formula_names
from kpilot.model.workspace import Metric, MetricType, Model, RatioPart, Workspace

Mode = Literal["flow", "validity", "snapshot_time"]
ADDITIVE = (exp.Sum, exp.Count, exp.CountIf)


@dataclass(frozen=True)
class Aggregate:
    """An aggregate of a model's rows per period: `measure` over rows matching `filter`.

    mode "flow": rows are bucketed by `time`. "validity": value at each period end over rows valid
    then (model.validity). "snapshot_time": rows of the last snapshot time inside each period.
    """

    model: str
    mode: Mode
    time: str
    measure: str
    filter: str | None
    model_def: str = field(compare=False, default="")

    @property
    def id(self) -> str:
        raw = json.dumps([self.model, self.mode, self.time, self.measure, self.filter, self.model_def])
        return hashlib.sha1(raw.encode()).hexdigest()[:16]

    @property
    def joined(self) -> tuple[str, ...]:
        """Joined models this aggregate reads (its measure or filter names `model.column`)."""
        trees = [parse_measure(self.measure), *([parse_filter(self.filter)] if self.filter else [])]
        return tuple(sorted({c.table for t in trees for c in t.find_all(exp.Column) if c.table}))

    @property
    def group_key(self) -> tuple[str, str, str, tuple[str, ...]]:
        """Aggregates with the same key are computed by one query (one scan of the model).

        Those reading a joined model get their own query, so the join only sees their rows.
        """
        return (self.model, self.mode, self.time, self.joined)

    @property
    def additive(self) -> bool:
        """Sums and counts add up across periods and segments; avg, min, max, distinct counts do not."""
        return is_additive(parse_measure(self.measure))


def is_additive(tree: exp.Expr) -> bool:
    """True for sums and differences of sum()/count()/count_if() (optionally scaled by a constant)."""
    for node in tree.walk():
        if node.find_ancestor(*AGGREGATES.keys()):
            continue
        if type(node) in AGGREGATES:
            if not isinstance(node, ADDITIVE) or isinstance(node.this, exp.Distinct):
                return False
            continue
        if isinstance(node, exp.Mul):
            if not (isinstance(node.this, exp.Literal) or isinstance(node.expression, exp.Literal)):
                return False
            continue
        if not isinstance(node, exp.Add | exp.Sub | exp.Neg | exp.Paren | exp.Literal):
            return False
    return True


@dataclass(frozen=True)
class MetricRef:
    """A part read from another metric's series, `offset` periods away."""

    metric: str
    offset: int = 0


Part = Aggregate | MetricRef


def model_fingerprint(ws: Workspace, model: Model) -> str:
    """What of a model's definition changes its aggregates (so a change invalidates them)."""
    joined = {j.model: ws.model_by_key(j.model).model_dump(mode="json") for j in model.joins
              if j.model in {m.key for m in ws.models}}
    return json.dumps([model.model_dump(mode="json"), joined, ws.timezone], sort_keys=True)


def _norm(text: str | None, role: str) -> str | None:
    if text is None:
        return None
    tree = parse_measure(text) if role == "measure" else parse_filter(text)
    return tree.sql(dialect="duckdb")


def aggregate_for(ws: Workspace, model_key: str, measure: str, filt: str | None, time: str | None,
                  snapshot: bool) -> Aggregate:
    model = ws.model_by_key(model_key)
    mode: Mode = "flow"
    column = time or model.time or ""
    if snapshot:
        if model.validity is not None and time is None:
            mode, column = "validity", ""
        else:
            mode = "snapshot_time"
    return Aggregate(model_key, mode, column, _norm(measure, "measure") or "", _norm(filt, "filter"),
                     model_fingerprint(ws, model))


def ratio_part(ws: Workspace, metric: Metric, part: RatioPart) -> Part:
    if part.metric:
        return MetricRef(part.metric, part.offset)
    assert part.measure is not None
    return aggregate_for(ws, part.model or metric.model or "", part.measure, part.filter,
                         part.time or metric.time, snapshot=False)


def metric_parts(ws: Workspace, metric: Metric) -> dict[str, Part]:
    """The named parts a metric is composed from: value, or numerator/denominator."""
    t = metric.type
    if t in (MetricType.simple, MetricType.cumulative, MetricType.snapshot):
        assert metric.model and metric.measure
        agg = aggregate_for(ws, metric.model, metric.measure, metric.filter, metric.time,
                            snapshot=t is MetricType.snapshot)
        return {"value": agg}
    if t is MetricType.ratio:
        assert metric.numerator and metric.denominator
        return {"numerator": ratio_part(ws, metric, metric.numerator),
                "denominator": ratio_part(ws, metric, metric.denominator)}
    return {}


Nature = Literal["flow", "level"]


def nature_of(ws: Workspace, metric: Metric, _seen: frozenset[str] = frozenset()) -> Nature:
    """Whether a metric is a flow (adds up over a period: judged at pace) or a level (a state or a rate).

    Declared with `nature:`, else inferred: sums and counts are flows; snapshots, ratios, averages and distinct
    counts are levels; a formula is a flow when it is a sum or difference of flows, the change of a level
    (`mrr - offset(mrr, -1)`), a flow scaled by a constant, or a flow per level (margin per consultant); a
    ratio of two flows, or anything else, is a level.
    """
    if metric.nature is not None:
        return metric.nature
    if metric.type is MetricType.simple:
        part = metric_parts(ws, metric)["value"]
        return "flow" if isinstance(part, Aggregate) and part.mode == "flow" and part.additive else "level"
    if metric.type is not MetricType.derived or not metric.formula or metric.key in _seen:
        return "level"
    seen = _seen | {metric.key}
    tree, found = parse_formula(metric.formula, formula_names(ws, metric))
    refs = {r.column: r for r in found}

    def of(node: exp.Expr) -> str:  # "flow", "level", "constant" or "other"
        if isinstance(node, exp.Paren):
            return of(node.this)
        if isinstance(node, exp.Literal):
            return "constant"
        if isinstance(node, exp.Neg):
            return of(node.this)
        if isinstance(node, exp.Column) and node.name in refs:
            return nature_of(ws, ws.metric(refs[node.name].metric), seen)
        if isinstance(node, exp.Add | exp.Sub):
            a, b = of(node.this), of(node.expression)
            if {a, b} <= {"flow", "constant"} and "flow" in (a, b):
                return "flow"
            if isinstance(node, exp.Sub) and a == b == "level" and _change_of_level(node, refs):
                return "flow"
            return "constant" if a == b == "constant" else "level" if {a, b} <= {"level", "constant"} else "other"
        if isinstance(node, exp.Mul):
            a, b = of(node.this), of(node.expression)
            if {a, b} == {"flow", "constant"} or {a, b} == {"flow", "level"}:
                return "flow"
            return "constant" if a == b == "constant" else "level"
        if isinstance(node, exp.Div):
            a, b = of(node.this), of(node.expression)
            if a == "flow" and b in ("constant", "level"):
                return "flow"
            return "constant" if a == b == "constant" else "level"
        return "other"

    return "flow" if of(tree) == "flow" else "level"


def _change_of_level(node: exp.Sub, refs: Mapping[str, FormulaRef]) -> bool:
    """`x - offset(x, -1)`: a level minus its own earlier value is what flowed in between."""
    a, b = node.this, node.expression
    while isinstance(a, exp.Paren):
        a = a.this
    while isinstance(b, exp.Paren):
        b = b.this
    if not (isinstance(a, exp.Column) and isinstance(b, exp.Column) and a.name in refs and b.name in refs):
        return False
    ra, rb = refs[a.name], refs[b.name]
    return ra.metric == rb.metric and ra.offset - rb.offset == 1


def aggregates_of(ws: Workspace, metric: Metric) -> list[Aggregate]:
    """Every aggregate a metric reads, through ratio parts, metric references and formulas (no repeats)."""
    out: dict[str, Aggregate] = {}
    seen: set[str] = set()

    def visit(m: Metric) -> None:
        if m.key in seen:
            return
        seen.add(m.key)
        for part in metric_parts(ws, m).values():
            if isinstance(part, Aggregate):
                out.setdefault(part.id, part)
        for key in dependencies(ws, m):
            visit(ws.metric(key))

    visit(metric)
    return list(out.values())


# --- SQL generation -------------------------------------------------------------------------------

BASE = "t"


def _alias(model_key: str) -> str:
    return f"j_{model_key}"


def _col(table: str, name: str) -> exp.Column:
    return exp.column(name, table=table, quoted=True)


def local_time(column: exp.Expr, column_type: str, source_tz: str, workspace_tz: str) -> exp.Expr:
    """A time column as a naive timestamp (or date) in the workspace's time zone."""
    typ = column_type.upper()
    if typ.startswith("TIMESTAMP WITH TIME ZONE") or typ == "TIMESTAMPTZ":
        return exp.AtTimeZone(this=column, zone=exp.Literal.string(workspace_tz))
    if typ.startswith("TIMESTAMP") and source_tz != workspace_tz:
        instant = exp.AtTimeZone(this=column, zone=exp.Literal.string(source_tz))
        return exp.AtTimeZone(this=instant, zone=exp.Literal.string(workspace_tz))
    return column


def bucket(local: exp.Expr, grain: Grain, week_start: WeekStart, dialect: str = "duckdb") -> exp.Expr:
    """The first day of the period containing `local` (a DATE)."""
    day = exp.cast(local, exp.DataType.build("DATE"))
    if grain is Grain.day:
        return day
    if grain is Grain.week and not (week_start is WeekStart.monday and dialect in ISO_WEEK_TRUNC):
        isodow = exp.Extract(this=exp.var("isodow"), expression=day)
        back = exp.Mod(
            this=exp.paren(exp.Add(this=exp.Sub(this=isodow, expression=exp.Literal.number(week_start.isodow)),
                                   expression=exp.Literal.number(7))),
            expression=exp.Literal.number(7),
        )
        return exp.Sub(this=day, expression=exp.cast(back, exp.DataType.build("INT")))
    unit = {Grain.week: "WEEK", Grain.month: "MONTH", Grain.quarter: "QUARTER", Grain.year: "YEAR"}[grain]
    trunc = exp.DateTrunc(this=day, unit=exp.var(unit))  # type: ignore[no-untyped-call]
    return exp.cast(trunc, exp.DataType.build("DATE"))


# Engines whose date_trunc('week') starts weeks on Monday (ISO), so it can serve Monday weeks directly.
ISO_WEEK_TRUNC = ("duckdb", "postgres", "spark", "databricks", "trino", "presto")


def _qualify(tree: exp.Expr, joins_used: set[str]) -> exp.Expr:
    def fix(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and not isinstance(node.this, exp.Star):
            table = node.table
            if table:
                joins_used.add(table)
                return _col(_alias(table), node.name)
            return _col(BASE, node.name)
        return node

    return tree.copy().transform(fix)


def _with_filter(measure: exp.Expr, cond: exp.Expr | None) -> exp.Expr:
    if cond is None:
        return measure

    def wrap(node: exp.Expr) -> exp.Expr:
        if type(node) in AGGREGATES:
            return exp.Filter(this=node, expression=exp.Where(this=cond.copy()))
        return node

    # Transform top-down once: aggregates are never nested (validation forbids it).
    return measure.transform(wrap, copy=True)


def column_ref(ref: str) -> exp.Column:
    """A dimension like `channel` or `leads.channel` as a column node."""
    if "." in ref:
        table, name = ref.split(".", 1)
        return exp.column(name, table=table)
    return exp.column(ref)


@dataclass
class CompileContext:
    ws: Workspace
    schema: Mapping[str, Mapping[str, str]]
    dialect: str = "duckdb"

    def model(self, key: str) -> Model:
        return self.ws.model_by_key(key)

    def column_type(self, model: Model, column: str) -> str:
        cols = self.schema.get(model.table, {})
        exact = cols.get(column)
        if exact is not None:
            return exact
        return {c.lower(): t for c, t in cols.items()}.get(column.lower(), "TIMESTAMP")

    def local(self, model: Model, column: str) -> exp.Expr:
        typ = self.column_type(model, column)
        return local_time(_col(BASE, column), typ, model.timezone or self.ws.timezone, self.ws.timezone)


def _from_with_joins(ctx: CompileContext, model: Model, joins_used: set[str], base: exp.Expr) -> exp.Select:
    select = exp.select().from_(base)
    for join in model.joins:
        if join.model not in joins_used:
            continue
        other = ctx.model(join.model)
        cond: exp.Expr | None = None
        for local, remote in join.pairs():
            eq = exp.EQ(this=_col(BASE, local), expression=_col(_alias(join.model), remote))
            cond = eq if cond is None else exp.and_(cond, eq)
        select = select.join(
            exp.Table(this=exp.to_identifier(other.table, quoted=True), alias=exp.TableAlias(
                this=exp.to_identifier(_alias(join.model)))),
            on=cond,
            join_type="left" if join.how == "left" else "inner",
        )
    return select


def _table(model: Model, alias: str = BASE) -> exp.Table:
    return exp.Table(this=exp.to_identifier(model.table, quoted=True),
                     alias=exp.TableAlias(this=exp.to_identifier(alias)))


def _aggregate_columns(aggs: Sequence[Aggregate], joins_used: set[str]) -> list[exp.Expr]:
    out: list[exp.Expr] = []
    for i, agg in enumerate(aggs):
        measure = _qualify(parse_measure(agg.measure), joins_used)
        cond = _qualify(parse_filter(agg.filter), joins_used) if agg.filter else None
        value = exp.cast(_with_filter(measure, cond), exp.DataType.build("DOUBLE"))
        out.append(exp.alias_(value, f"a{i}", quoted=True))
    return out


def _dimension_columns(dims: Sequence[str], joins_used: set[str]) -> list[exp.Expr]:
    return [exp.alias_(_qualify(column_ref(d), joins_used), f"d{i}", quoted=True) for i, d in enumerate(dims)]


def compile_flow(ctx: CompileContext, aggs: Sequence[Aggregate], grain: Grain, *, since: date | None = None,
                 until: date | None = None, dims: Sequence[str] = ()) -> exp.Select:
    """One query for aggregates sharing a model and time column: period, [d0..], a0, a1, ..."""
    model = ctx.model(aggs[0].model)
    joins_used: set[str] = set()
    local = ctx.local(model, aggs[0].time)
    period = bucket(local, grain, ctx.ws.week_start, ctx.dialect)
    columns = [exp.alias_(period, "period", quoted=True), *_dimension_columns(dims, joins_used),
               *_aggregate_columns(aggs, joins_used)]
    select = _from_with_joins(ctx, model, joins_used, _table(model)).select(*columns)
    where: exp.Expr = exp.Not(this=exp.Is(this=_col(BASE, aggs[0].time), expression=exp.Null()))
    if since is not None:
        where = exp.and_(where, exp.GTE(this=local.copy(), expression=_date(since)))
    if until is not None:
        where = exp.and_(where, exp.LT(this=local.copy(), expression=_date(until)))
    if joins_used and all(a.filter for a in aggs):
        # Only rows some aggregate counts need to go through the join.
        wanted = [_qualify(parse_filter(a.filter), set()) for a in aggs if a.filter]
        where = exp.and_(where, exp.paren(exp.or_(*wanted)) if len(wanted) > 1 else wanted[0])
    n_group = 1 + len(dims)
    return select.where(where).group_by(*[exp.Literal.number(i + 1) for i in range(n_group)])


def _date(d: date) -> exp.Expr:
    return exp.cast(exp.Literal.string(d.isoformat()), exp.DataType.build("DATE"))


def _periods_values(moments: Sequence[tuple[date, date]]) -> exp.Expr:
    rows = [exp.Tuple(expressions=[_date(p), _date(m)]) for p, m in moments]
    return exp.Values(expressions=rows, alias=exp.TableAlias(
        this=exp.to_identifier("p"), columns=[exp.to_identifier("period"), exp.to_identifier("moment")]))


def compile_validity(ctx: CompileContext, aggs: Sequence[Aggregate], moments: Sequence[tuple[date, date]],
                     *, dims: Sequence[str] = ()) -> exp.Select:
    """Value at each period's moment (its end, or the as-of date) over rows valid at that moment.

    A row is valid while from <= t < to (an empty `to` means still valid). At the moment m (the first
    instant after the period), the rows that count are those with from < m and (to is null or to >= m).
    """
    model = ctx.model(aggs[0].model)
    assert model.validity is not None
    joins_used: set[str] = set()
    start = ctx.local(model, model.validity.from_)
    moment = exp.column("moment", table="p")
    cond: exp.Expr = exp.LT(this=start, expression=moment)
    if model.validity.to:
        end = ctx.local(model, model.validity.to)
        cond = exp.and_(cond, exp.paren(exp.or_(exp.Is(this=end, expression=exp.Null()),
                                                exp.GTE(this=end.copy(), expression=moment.copy()))))
    columns = [exp.alias_(exp.column("period", table="p"), "period", quoted=True),
               *_dimension_columns(dims, joins_used), *_aggregate_columns(aggs, joins_used)]
    select = exp.select(*columns).from_(_periods_values(moments)).join(_table(model), on=cond, join_type="inner")
    for join in model.joins:
        if join.model in joins_used:
            other = ctx.model(join.model)
            jcond: exp.Expr | None = None
            for local, remote in join.pairs():
                eq = exp.EQ(this=_col(BASE, local), expression=_col(_alias(join.model), remote))
                jcond = eq if jcond is None else exp.and_(jcond, eq)
            select = select.join(_table(other, _alias(join.model)), on=jcond,
                                 join_type="left" if join.how == "left" else "inner")
    return select.group_by(*[exp.Literal.number(i + 1) for i in range(1 + len(dims))])


def is_linear(tree: exp.Expr) -> bool:
    """Additive and without constants added: running sums of it can be built from per-period changes."""
    if not is_additive(tree):
        return False
    for node in tree.walk():
        if node.find_ancestor(*AGGREGATES.keys()):
            continue
        if isinstance(node, exp.Literal) and not isinstance(node.parent, exp.Mul):
            return False
    return True


def _signed(measure: exp.Expr, sign: exp.Expr) -> exp.Expr:
    """Turn each additive aggregate into the sum of its signed contributions."""

    def flip(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Sum):
            return exp.Sum(this=exp.Mul(this=sign.copy(), expression=exp.paren(node.this.copy())))
        if isinstance(node, exp.Count):
            if isinstance(node.this, exp.Star):
                return exp.Sum(this=sign.copy())
            cond: exp.Expr = exp.Not(this=exp.Is(this=node.this.copy(), expression=exp.Null()))
        elif isinstance(node, exp.CountIf):
            cond = node.this.copy()
        else:
            return node
        return exp.Sum(this=exp.Case(ifs=[exp.If(this=cond, true=sign.copy())], default=exp.Literal.number(0)))

    return measure.transform(flip, copy=True)


def compile_validity_changes(ctx: CompileContext, aggs: Sequence[Aggregate], grain: Grain,
                             as_of_end: date) -> exp.Select:
    """Per-period changes of linear snapshot aggregates: +value when a row starts, -value when it ends.

    A snapshot at a period's end is then the running sum of the changes of all periods up to it
    (one scan instead of a join of every row with every period end). Column a{i} is the change of
    the period; b{i} only counts changes before the as-of date (for the period in progress).
    """
    model = ctx.model(aggs[0].model)
    assert model.validity is not None
    start_col, end_col = model.validity.from_, model.validity.to
    ts = exp.DataType.build("TIMESTAMP")
    start = ctx.local(model, start_col)
    valid_row: exp.Expr = exp.Not(this=exp.Is(this=_col(BASE, start_col), expression=exp.Null()))
    branches = [exp.select(exp.alias_(exp.cast(start, ts), "_at", quoted=True),
                           exp.alias_(exp.Literal.number(1), "_sign", quoted=True), exp.Star())
                .from_(_table(model))]
    if end_col:
        end = ctx.local(model, end_col)
        # A row ending before it starts is never valid; it must not subtract anything.
        ordered = exp.or_(exp.Is(this=_col(BASE, end_col), expression=exp.Null()),
                          exp.GTE(this=_col(BASE, end_col), expression=_col(BASE, start_col)))
        valid_row = exp.and_(valid_row, exp.paren(ordered))
        branches.append(exp.select(exp.alias_(exp.cast(end, ts), "_at", quoted=True),
                                   exp.alias_(exp.Literal.number(-1), "_sign", quoted=True), exp.Star())
                        .from_(_table(model))
                        .where(exp.and_(valid_row.copy(), exp.Not(this=exp.Is(this=_col(BASE, end_col),
                                                                              expression=exp.Null())))))
    branches[0] = branches[0].where(valid_row)
    union: exp.Expr = branches[0]
    for b in branches[1:]:
        union = exp.union(union, b, distinct=False)
    sub = exp.Subquery(this=union, alias=exp.TableAlias(this=exp.to_identifier(BASE)))
    joins_used: set[str] = set()
    at = _col(BASE, "_at")
    sign = _col(BASE, "_sign")
    before = exp.LT(this=at.copy(), expression=_date(as_of_end))
    columns: list[exp.Expr] = [exp.alias_(bucket(at, grain, ctx.ws.week_start, ctx.dialect), "period", quoted=True)]
    for i, agg in enumerate(aggs):
        measure = _signed(_qualify(parse_measure(agg.measure), joins_used), sign)
        cond = _qualify(parse_filter(agg.filter), joins_used) if agg.filter else None
        dbl = exp.DataType.build("DOUBLE")
        columns.append(exp.alias_(exp.cast(_with_filter(measure, cond), dbl), f"a{i}", quoted=True))
        asof_cond = before.copy() if cond is None else exp.and_(cond.copy(), before.copy())
        columns.append(exp.alias_(exp.cast(_with_filter(measure, asof_cond), dbl), f"b{i}", quoted=True))
    select = _from_with_joins(ctx, model, joins_used, sub).select(*columns)
    return select.group_by(exp.Literal.number(1))


def compile_snapshot_time(ctx: CompileContext, aggs: Sequence[Aggregate], grain: Grain, *,
                          since: date | None = None, until: date | None = None,
                          dims: Sequence[str] = ()) -> exp.Select:
    """Rows of the last snapshot time inside each period (periodic snapshot tables)."""
    model = ctx.model(aggs[0].model)
    local = ctx.local(model, aggs[0].time)
    period = bucket(local, grain, ctx.ws.week_start, ctx.dialect)
    inner_where: exp.Expr = exp.Not(this=exp.Is(this=_col(BASE, aggs[0].time), expression=exp.Null()))
    if since is not None:
        inner_where = exp.and_(inner_where, exp.GTE(this=local.copy(), expression=_date(since)))
    if until is not None:
        inner_where = exp.and_(inner_where, exp.LT(this=local.copy(), expression=_date(until)))
    last = exp.Window(this=exp.Max(this=local.copy()), partition_by=[period.copy()])
    inner = (exp.select(exp.Star(), exp.alias_(period, "_period", quoted=True),
                        exp.alias_(local.copy(), "_ts", quoted=True), exp.alias_(last, "_last", quoted=True))
             .from_(_table(model)).where(inner_where))
    sub = exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier(BASE)))
    joins_used: set[str] = set()
    columns = [exp.alias_(_col(BASE, "_period"), "period", quoted=True), *_dimension_columns(dims, joins_used),
               *_aggregate_columns(aggs, joins_used)]
    select = _from_with_joins(ctx, model, joins_used, sub).select(*columns)
    select = select.where(exp.EQ(this=_col(BASE, "_ts"), expression=_col(BASE, "_last")))
    return select.group_by(*[exp.Literal.number(i + 1) for i in range(1 + len(dims))])


def compile_extent(ctx: CompileContext, model_key: str, mode: Mode, time: str) -> exp.Select:
    """First and last local time of a model's rows (the span its series cover)."""
    model = ctx.model(model_key)
    column = model.validity.from_ if mode == "validity" and model.validity else time
    local = ctx.local(model, column)
    return exp.select(
        exp.alias_(exp.cast(exp.Min(this=local), exp.DataType.build("DATE")), "first", quoted=True),
        exp.alias_(exp.cast(exp.Max(this=local.copy()), exp.DataType.build("DATE")), "last", quoted=True),
    ).from_(_table(model))


def compile_join_check(ctx: CompileContext, model_key: str) -> list[tuple[str, exp.Select]]:
    """Queries finding duplicate join keys on the joined side (a join must not multiply rows)."""
    model = ctx.model(model_key)
    out: list[tuple[str, exp.Select]] = []
    for join in model.joins:
        other = ctx.model(join.model)
        keys = [_col(BASE, remote) for _, remote in join.pairs()]
        q = (exp.select(*keys, exp.alias_(exp.Count(this=exp.Star()), "n", quoted=True)).from_(_table(other))
             .group_by(*[exp.Literal.number(i + 1) for i in range(len(keys))])
             .having(exp.GT(this=exp.Count(this=exp.Star()), expression=exp.Literal.number(1)))
             .order_by(exp.Ordered(this=exp.column("n", quoted=True), desc=True)).limit(3))
        out.append((join.model, q))
    return out


def moments_for(periods: Sequence[date], grain: Grain, as_of_end: date | None) -> list[tuple[date, date]]:
    """(period, moment) pairs: a snapshot is read at the end of each period, or at the as-of date."""
    out = []
    for p in periods:
        end = next_start(p, grain)
        out.append((p, min(end, as_of_end) if as_of_end is not None else end))
    return out


