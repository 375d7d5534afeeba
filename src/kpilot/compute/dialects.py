"""SQL for BigQuery and Snowflake: the compiled trees, rewritten for what each warehouse runs.

SQL checked, not run here: no connector of this build reaches these warehouses; the SQL they would receive is
reviewed and kept as snapshot files (tests/compute/snapshots/<dialect>/), so a change shows as a diff.

What SQLGlot's own transpilation leaves wrong, and the rewrites here:
- weeks: BigQuery's `DATE_TRUNC(d, WEEK(MONDAY))` names the week's first day, so the compiler's arithmetic on
  the ISO day of the week becomes that; Snowflake's `DATE_TRUNC('WEEK')` follows a session setting
  (WEEK_START), so the arithmetic stays, with `DAYOFWEEKISO(d)` and `DATEADD(DAY, -n, d)`;
- time zones: `x AT TIME ZONE src AT TIME ZONE ws` (a naive time read in src, shown in ws) becomes
  `DATETIME(TIMESTAMP(x, src), ws)` on BigQuery and `CONVERT_TIMEZONE(src, ws, x)` on Snowflake;
- `agg(x) FILTER (WHERE c)` (neither has FILTER) becomes `agg(CASE WHEN c THEN x END)`;
- a division inside a measure runs in doubles and, as on DuckDB, a zero divisor gives +-inf or NaN (0 / 0)
  where both would fail the query: BigQuery's `IEEE_DIVIDE`; on Snowflake a CASE on the divisor (its NUMBER
  division would also keep only 6 more decimals);
- Snowflake folds unquoted names to upper case: the source's tables and columns are written unquoted (so
  `amount` finds AMOUNT), the names the query makes itself (t, period, a0) quoted, so they come back as written;
- BigQuery has no VALUES list (-> UNION ALL of SELECTs), no MEDIAN and no aggregate PERCENTILE_CONT (refused).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import date, timedelta

from sqlglot import exp

from kpilot.compute.compiler import (
    Aggregate,
    CompileContext,
    Mode,
    aggregates_of,
    compile_extent,
    compile_flow,
    compile_join_check,
    compile_snapshot_time,
    compile_validity,
    compile_validity_changes,
    is_linear,
    moments_for,
)
from kpilot.compute.engine import EngineError
from kpilot.compute.engine_dbapi import filter_to_case, values_to_union
from kpilot.compute.engine_mysql import is_date_minus_days, is_isodow
from kpilot.model.errors import msg
from kpilot.model.expressions import parse_measure
from kpilot.model.periods import Grain, period_start, periods_between
from kpilot.model.workspace import Workspace

DIALECTS = ("bigquery", "snowflake")
LABELS = {"bigquery": "BigQuery", "snowflake": "Snowflake"}
DAYS = {1: "MONDAY", 2: "TUESDAY", 3: "WEDNESDAY", 4: "THURSDAY", 5: "FRIDAY", 6: "SATURDAY", 7: "SUNDAY"}
_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _unwrap(node: exp.Expr) -> exp.Expr:
    while isinstance(node, exp.Paren):
        node = node.this
    return node


def week_start_of(node: exp.Expr) -> int | None:
    """The ISO day a week starts on, when `node` is the compiler's week bucket:
    `CAST(d AS DATE) - CAST(MOD((isodow(d) - k) + 7, 7) AS INT)`; else None."""
    if not is_date_minus_days(node):
        return None
    mod = _unwrap(node.expression.this)
    if not isinstance(mod, exp.Mod):
        return None
    add = _unwrap(mod.this)
    sub = _unwrap(add.this) if isinstance(add, exp.Add) else None
    if not (isinstance(sub, exp.Sub) and is_isodow(sub.this) and isinstance(sub.expression, exp.Literal)):
        return None
    k = int(sub.expression.this)
    return k if k in DAYS else None


def _bigquery_dates(node: exp.Expr) -> exp.Expr:
    k = week_start_of(node)
    if k is not None:
        day = node.this.copy()
        trunc = exp.DateTrunc(this=day, unit=exp.WeekStart(this=exp.var(DAYS[k])))  # type: ignore[no-untyped-call]
        return exp.cast(trunc, exp.DataType.build("DATE"))
    if is_isodow(node):  # DAYOFWEEK: 1 = Sunday .. 7 = Saturday
        dow = exp.Extract(this=exp.var("DAYOFWEEK"), expression=node.expression.copy())
        shifted = exp.Mod(this=exp.paren(exp.Add(this=dow, expression=exp.Literal.number(5))),
                          expression=exp.Literal.number(7))
        return exp.paren(exp.Add(this=shifted, expression=exp.Literal.number(1)))
    if is_date_minus_days(node):
        days = node.expression.copy().transform(_bigquery_dates)
        return exp.DateSub(this=node.this.copy(), expression=days, unit=exp.var("DAY"))
    return node


def _snowflake_dates(node: exp.Expr) -> exp.Expr:
    if is_isodow(node):  # 1 = Monday .. 7 = Sunday, whatever the session's WEEK_START
        return exp.Anonymous(this="DAYOFWEEKISO", expressions=[node.expression.copy()])
    if is_date_minus_days(node):
        days = node.expression.copy().transform(_snowflake_dates)
        return exp.DateSub(this=node.this.copy(), expression=days, unit=exp.var("DAY"))
    return node


def _bigquery_zones(node: exp.Expr) -> exp.Expr:
    if not isinstance(node, exp.AtTimeZone):
        return node
    inner = node.this
    if isinstance(inner, exp.AtTimeZone):  # naive, read in the source's zone, shown in the workspace's
        instant = exp.Anonymous(this="TIMESTAMP", expressions=[inner.this.copy(), inner.args["zone"].copy()])
    else:  # a TIMESTAMP (an instant) shown in the workspace's zone
        instant = inner.copy()
    return exp.Anonymous(this="DATETIME", expressions=[instant, node.args["zone"].copy()])


def _snowflake_zones(node: exp.Expr) -> exp.Expr:
    if not isinstance(node, exp.AtTimeZone):
        return node
    inner = node.this
    if isinstance(inner, exp.AtTimeZone):
        return exp.Anonymous(this="CONVERT_TIMEZONE", expressions=[
            inner.args["zone"].copy(), node.args["zone"].copy(), inner.this.copy()])
    converted = exp.Anonymous(this="CONVERT_TIMEZONE", expressions=[node.args["zone"].copy(), inner.copy()])
    return exp.cast(converted, exp.DataType.build("TIMESTAMPNTZ"))


def _bigquery_division(node: exp.Expr) -> exp.Expr:
    if isinstance(node, exp.Div):  # FLOAT64; a zero divisor gives +-inf or NaN, as DuckDB's division
        return exp.Anonymous(this="IEEE_DIVIDE", expressions=[node.this.copy(), node.expression.copy()])
    return node


def _snowflake_float(text: str) -> exp.Expr:
    return exp.cast(exp.Literal.string(text), exp.DataType.build("DOUBLE"))


def _snowflake_division(node: exp.Expr) -> exp.Expr:
    """`a / b` in doubles (Snowflake's NUMBER division keeps 6 more decimals only), and for a zero divisor the
    +-inf or NaN DuckDB gives, where Snowflake fails the query."""
    if not isinstance(node, exp.Div):
        return node
    a, b = node.this, node.expression
    dbl = exp.DataType.build("DOUBLE")
    zero = exp.Literal.number(0)
    by_zero = exp.Case(ifs=[exp.If(this=exp.GT(this=a.copy(), expression=zero.copy()), true=_snowflake_float("inf")),
                            exp.If(this=exp.LT(this=a.copy(), expression=zero.copy()), true=_snowflake_float("-inf")),
                            exp.If(this=exp.EQ(this=a.copy(), expression=zero.copy()), true=_snowflake_float("NaN"))])
    quotient = exp.Div(this=exp.cast(a.copy(), dbl), expression=exp.cast(b.copy(), dbl))
    return exp.Case(ifs=[exp.If(this=exp.EQ(this=b.copy(), expression=zero.copy()), true=by_zero)], default=quotient)


def _refuse_bigquery(tree: exp.Expr) -> None:
    """BigQuery has no MEDIAN, and its PERCENTILE_CONT is a window function only."""
    for node in tree.walk():
        if isinstance(node, exp.Median | exp.PercentileCont):
            raise EngineError(msg("median() and quantile_cont() are not supported on tables computed in place on "
                                  "{database}. Fix: copy the table into the warehouse (`mode: copy`)",
                                  database=LABELS["bigquery"]))


def _made_names(tree: exp.Expr) -> set[str]:
    """Names the query gives itself: table aliases, column aliases (kept quoted on Snowflake)."""
    names = {a.alias for a in tree.find_all(exp.Alias)}
    for alias in tree.find_all(exp.TableAlias):
        names |= {alias.name, *(c.name for c in alias.columns)} - {""}
    names |= {c.alias_or_name for c in tree.find_all(exp.CTE)}
    return names


def _snowflake_names(tree: exp.Expr) -> exp.Expr:
    made = _made_names(tree)

    def fix(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Identifier):
            if node.name in made:
                return exp.to_identifier(node.name, quoted=True)
            if _PLAIN.match(node.name):
                return exp.to_identifier(node.name, quoted=False)
        return node

    return tree.transform(fix)


def _locate(prefix: Sequence[str]) -> Callable[[exp.Expr], exp.Expr]:
    """Qualify the source's tables: `events` -> `project.dataset.events` (BigQuery), `DB.SCHEMA.events`."""

    def fix(node: exp.Expr) -> exp.Expr:
        if not prefix or not isinstance(node, exp.Table) or node.args.get("db") or not isinstance(node.this,
                                                                                                  exp.Identifier):
            return node
        node = node.copy()
        parts = list(prefix)
        node.set("db", exp.to_identifier(parts[-1], quoted=True))
        if len(parts) > 1:
            node.set("catalog", exp.to_identifier(parts[-2], quoted=True))
        return node

    return fix


REWRITES: dict[str, tuple[Callable[[exp.Expr], exp.Expr], ...]] = {
    "bigquery": (values_to_union, filter_to_case, _bigquery_dates, _bigquery_zones, _bigquery_division),
    "snowflake": (filter_to_case, _snowflake_dates, _snowflake_zones, _snowflake_division),
}


def rewrite(tree: exp.Expr, dialect: str, *, location: Sequence[str] = ()) -> exp.Expr:
    """A compiled tree rewritten for `dialect` (bigquery or snowflake); `location`: where the source's tables
    are (BigQuery: project, dataset; Snowflake: database, schema)."""
    if dialect not in REWRITES:
        raise ValueError(f"no rewrites for dialect {dialect!r}; one of {', '.join(DIALECTS)}")
    tree = tree.copy()
    if dialect == "bigquery":
        _refuse_bigquery(tree)
    for fn in REWRITES[dialect]:
        tree = tree.transform(fn)
    tree = tree.transform(_locate(location))
    if dialect == "snowflake":
        tree = _snowflake_names(tree)
    return tree


def render(tree: exp.Expr, dialect: str, *, location: Sequence[str] = (), pretty: bool = True) -> str:
    """The SQL `dialect` receives for a compiled tree."""
    return rewrite(tree, dialect, location=location).sql(dialect=dialect, pretty=pretty)


def metric_queries(ws: Workspace, schema: Mapping[str, Mapping[str, str]], metric_key: str, dialect: str, *,
                   as_of: date, location: Sequence[str] = (), grain: Grain | None = None) -> list[str]:
    """The queries computing a metric's per-period aggregates on `dialect`, grouped as `MetricComputer` groups
    them (one query per model, time column and grain); ratios, formulas and running totals are then composed
    by kpilot from the rows that come back. A non-linear snapshot is read at the ends of the three periods up to
    `as_of`."""
    metric = ws.metric(metric_key)
    grain = grain or metric.grain
    ctx = CompileContext(ws, schema, dialect)
    groups: dict[tuple[str, str, str, tuple[str, ...]], list[Aggregate]] = defaultdict(list)
    for agg in sorted(aggregates_of(ws, metric), key=lambda a: (a.group_key, a.id)):
        groups[agg.group_key].append(agg)
    as_of_end = as_of + timedelta(days=1)
    out = []
    for (_, mode, _, _), aggs in groups.items():
        if mode == "flow":
            tree: exp.Expr = compile_flow(ctx, aggs, grain)
        elif mode == "snapshot_time":
            tree = compile_snapshot_time(ctx, aggs, grain)
        elif all(is_linear(parse_measure(a.measure)) for a in aggs):
            tree = compile_validity_changes(ctx, aggs, grain, as_of_end)
        else:
            current = period_start(as_of, grain, ws.week_start)
            first = current
            for _ in range(2):
                first = period_start(first - timedelta(days=1), grain, ws.week_start)
            periods = periods_between(first, as_of, grain, ws.week_start)
            tree = compile_validity(ctx, aggs, moments_for(periods, grain, as_of_end))
        out.append(render(tree, dialect, location=location))
    return out


def model_queries(ws: Workspace, schema: Mapping[str, Mapping[str, str]], model_key: str, dialect: str, *,
                  location: Sequence[str] = ()) -> list[str]:
    """The other queries kpilot runs on a model: the span of its rows, and its joins' duplicate-key check."""
    ctx = CompileContext(ws, schema, dialect)
    model = ws.model_by_key(model_key)
    mode: Mode = "validity" if model.validity is not None else "flow"
    trees: list[exp.Expr] = [compile_extent(ctx, model_key, mode, model.time or "")]
    trees += [q for _, q in compile_join_check(ctx, model_key)]
    return [render(t, dialect, location=location) for t in trees]
