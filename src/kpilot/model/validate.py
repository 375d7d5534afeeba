"""The semantic validation pass: references, columns, expressions, and (kpilot.model.steering) the method's rules.

Runs after the YAML has been parsed into typed objects. Collects every issue (errors and warnings)
with its file:line:column and a fix, instead of stopping at the first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sqlglot import exp

from kpilot.model.channel_checks import check_channels
from kpilot.model.errors import Issue, IssueList, Message, did_you_mean, message_of, msg, one_of
from kpilot.model.expressions import (
    ExpressionError,
    FormulaRef,
    check_columns,
    parse_filter,
    parse_formula,
    parse_measure,
    unknown_column,
)
from kpilot.model.periods import period_range
from kpilot.model.source_checks import check_sources
from kpilot.model.steering import check_board, check_current_targets, check_incentives
from kpilot.model.targets import target_spans
from kpilot.model.workspace import Metric, MetricType, Model, RatioPart, Workspace
from kpilot.model.yamlsrc import PathKey, SourceMap

# table name -> column name -> engine type name (DuckDB spelling: BIGINT, DOUBLE, VARCHAR, DATE...)
Schema = Mapping[str, Mapping[str, str]]

NUMERIC_PREFIXES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                    "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL", "REAL", "BOOLEAN")
TEMPORAL_PREFIXES = ("DATE", "TIMESTAMP", "TIME WITH TIME ZONE", "TIMESTAMPTZ")


def is_numeric(type_name: str) -> bool:
    return type_name.upper().startswith(NUMERIC_PREFIXES)


def is_temporal(type_name: str) -> bool:
    return type_name.upper().startswith(TEMPORAL_PREFIXES)


@dataclass
class _Ctx:
    ws: Workspace
    smap: SourceMap
    schema: Schema | None
    issues: IssueList

    def error(self, path: PathKey, code: str, message: str, fix: str = "", *, key: bool = False,
              offset: int | None = None) -> None:
        self._add("error", path, code, message, fix, key, offset)

    def warn(self, path: PathKey, code: str, message: str, fix: str = "", *, key: bool = False) -> None:
        self._add("warning", path, code, message, fix, key, None)

    def _add(self, sev: str, path: PathKey, code: str, message: str, fix: str, key: bool,
             offset: int | None) -> None:
        loc = self.smap.locate_in_value(path, offset) if offset is not None else self.smap.locate(path, key=key)
        self.issues.add(Issue(sev, code, message, loc, _dotted(path), fix))  # type: ignore[arg-type]


def _dotted(path: PathKey) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


USE_LISTED_COLUMNS = msg("use one of the listed columns, or check the data file's header")


def in_model(key: str) -> Message:
    """Where a column is used, for messages: "model leads"."""
    return msg("model {model}", model=key)


def unknown_metric(key: str, keys: Sequence[str]) -> Message:
    return msg("unknown metric '{metric}';{hint} metrics: {metrics}", metric=key, hint=did_you_mean(key, keys),
               metrics=one_of(keys))


def unknown_team(key: str, keys: Sequence[str]) -> Message:
    return msg("unknown team '{team}';{hint} teams: {teams}", team=key, hint=did_you_mean(key, keys),
               teams=one_of(keys))


def model_columns(ws: Workspace, model: Model, schema: Schema | None) -> dict[str | None, dict[str, str]] | None:
    """Columns a metric over `model` may use: its own (key None) and each joined model's (by key)."""
    if schema is None or model.table not in schema:
        return None
    out: dict[str | None, dict[str, str]] = {None: dict(schema[model.table])}
    for join in model.joins:
        try:
            other = ws.model_by_key(join.model)
        except KeyError:
            continue
        if other.table in schema:
            out[join.model] = dict(schema[other.table])
    return out


def _check_unique(ctx: _Ctx, section: str, keys: Sequence[str]) -> None:
    seen: dict[str, int] = {}
    for i, k in enumerate(keys):
        if k in seen:
            ctx.error((section, i, "key"), "duplicate_key",
                      msg("{section} key '{key}' is already used by {section}[{index}]", section=section, key=k,
                          index=seen[k]),
                      msg("give each entry its own key"))
        else:
            seen[k] = i


def _check_column(ctx: _Ctx, path: PathKey, cols: Mapping[str | None, Mapping[str, str]] | None, ref: str,
                  where: Message, temporal: bool = False) -> None:
    """Check a column reference; `where` says where it is used (a Message: "model leads")."""
    if cols is None:
        return
    table: str | None = None
    name = ref
    if "." in ref:
        table, name = ref.split(".", 1)
    pool = cols.get(table)
    if pool is None:
        joined = [t for t in cols if t]
        ctx.error(path, "unknown_join", msg("'{ref}' in {where} names model '{table}', which is not joined;{hint} "
                                            "joined models: {models}", ref=ref, where=where, table=table,
                                            hint=did_you_mean(table or '', joined), models=one_of(joined)),
                  msg("add `joins: [{{model: {table}, on: <column>}}]` to the model, or drop the prefix", table=table))
        return
    match = {c.lower(): c for c in pool}.get(name.lower())
    if match is None:
        ctx.error(path, "unknown_column", unknown_column(name, where, pool), USE_LISTED_COLUMNS)
        return
    if temporal and not is_temporal(pool[match]):
        ctx.error(path, "not_temporal", msg("column '{name}' in {where} is {type}, not a date or timestamp",
                                            name=name, where=where, type=pool[match]),
                  msg("pick a date/timestamp column, or declare its format with `date_format`/`timestamp_format` "
                      "on the source"))


def _check_models(ctx: _Ctx) -> None:
    ws, schema = ctx.ws, ctx.schema
    source_keys = [s.key for s in ws.sources]
    model_keys = [m.key for m in ws.models]
    for i, model in enumerate(ws.models):
        base: PathKey = ("models", i)
        if model.source and model.source not in source_keys:
            ctx.error((*base, "source"), "unknown_source", msg("unknown source '{source}';{hint} sources: {sources}",
                      source=model.source, hint=did_you_mean(model.source, source_keys), sources=one_of(source_keys)))
        if schema is not None and model.table not in schema:
            ctx.error((*base, "table"), "unknown_table",
                      msg("model {model}: table '{table}' was not found in the sources;{hint} tables: {tables}",
                          model=model.key, table=model.table, hint=did_you_mean(model.table, schema),
                          tables=one_of(schema)),
                      msg("check the file name under the source's path, or the `tables:` mapping of the source"))
        for j, join in enumerate(model.joins):
            if join.model not in model_keys:
                ctx.error((*base, "joins", j, "model"), "unknown_model",
                          msg("unknown model '{model}' in join;{hint} models: {models}", model=join.model,
                              hint=did_you_mean(join.model, model_keys), models=one_of(model_keys)))
            elif join.model == model.key:
                ctx.error((*base, "joins", j, "model"), "self_join", msg("a model cannot join itself"))
            elif ws.engine_of(model.key) != ws.engine_of(join.model):
                ctx.error((*base, "joins", j, "model"), "join_across_engines", msg(
                    "model {model} ({here}) joins model {joined} ({there}): a join cannot span two databases",
                    model=model.key, joined=join.model, here=_engine_label(ws, model.key),
                    there=_engine_label(ws, join.model)),
                    msg("compute both tables in the same place: copy the in-place one into the warehouse "
                        "(`mode: copy`), or declare both `mode: in_place` on the same source"))
        rewritten = _rewritten_in_place(ws, model.key, timezones=True)
        if rewritten and model.timezone and model.timezone != ws.timezone:
            ctx.error((*base, "timezone"), "not_in_place", msg(
                "model {model}: time zone conversions are not supported on tables computed in place on {database}",
                model=model.key, database=rewritten),
                msg("remove `timezone:` (the model's times must be in the workspace's time zone, {timezone}), or "
                    "copy the table into the warehouse (`mode: copy`)", timezone=ws.timezone))
        cols = model_columns(ws, model, schema)
        if cols is None:
            continue
        where = in_model(model.key)
        if model.time:
            _check_column(ctx, (*base, "time"), cols, model.time, where, temporal=True)
        if model.validity:
            _check_column(ctx, (*base, "validity", "from"), cols, model.validity.from_, where, temporal=True)
            if model.validity.to:
                _check_column(ctx, (*base, "validity", "to"), cols, model.validity.to, where, temporal=True)
        for d, dim in enumerate(model.dimensions):
            _check_column(ctx, (*base, "dimensions", d), cols, dim, where)
        for j, join in enumerate(model.joins):
            if join.model not in cols:
                continue
            for local, remote in join.pairs():
                _check_column(ctx, (*base, "joins", j, "on"), {None: cols[None]}, local, where)
                _check_column(ctx, (*base, "joins", j, "on"), {None: cols[join.model]}, remote,
                              msg("joined model {model}", model=join.model))
        if model.primary_key:
            _check_column(ctx, (*base, "primary_key"), cols, model.primary_key, where)


def _rewritten_in_place(ws: Workspace, model_key: str, *, timezones: bool = False) -> str | None:
    """The database computing a model in place when it is one whose queries are rewritten (MySQL, SQLite; with
    `timezones`, also Spark and ClickHouse, which compute median() but convert no time zone)."""
    try:
        key = ws.engine_of(model_key)
    except KeyError:
        return None
    types = {s.key: s.type for s in ws.sources}
    names = {"mysql": "MySQL/MariaDB", "sqlite": "SQLite"}
    if timezones:
        names.update({"spark": "Spark", "chdb": "ClickHouse", "clickhouse": "ClickHouse"})
    return names.get(types.get(key or "", ""))


def _engine_label(ws: Workspace, model_key: str) -> Message:
    source = ws.engine_of(model_key)
    return msg("in place in source '{source}'", source=source) if source else msg("in the warehouse")


def _check_expression(ctx: _Ctx, path: PathKey, text: str, role: str, model: Model | None) -> exp.Expr | None:
    try:
        tree = parse_measure(text) if role == "measure" else parse_filter(text)
    except ExpressionError as err:
        ctx.error(path, f"invalid_{role}", err.message, err.fix, offset=err.position)
        return None
    if model is None:
        return tree
    rewritten = _rewritten_in_place(ctx.ws, model.key)
    if role == "measure" and rewritten and any(tree.find_all(exp.Median, exp.PercentileCont)):
        ctx.error(path, "not_in_place", msg("median() and quantile_cont() are not supported on tables computed in "
                                            "place on {database} (model {model})", database=rewritten,
                                            model=model.key),
                  msg("copy the table into the warehouse (`mode: copy`), or use another measure"))
    cols = model_columns(ctx.ws, model, ctx.schema)
    if cols is None:
        return tree
    for problem in check_columns(text, tree, cols, in_model(model.key)):
        ctx.error(path, "unknown_column", problem.message, problem.fix or USE_LISTED_COLUMNS,
                  offset=problem.position)
    if role == "measure":
        for agg in tree.find_all(exp.Sum, exp.Avg):
            for col in agg.find_all(exp.Column):
                pool = cols.get(col.table or None) or {}
                typ = {c.lower(): t for c, t in pool.items()}.get(col.name.lower())
                if typ is not None and not is_numeric(typ) and agg.this is col:
                    ctx.error(path, "not_numeric", msg("{function}({column}): column '{column}' is {type}, not a "
                                                       "number", function=agg.sql_name().lower(), column=col.name,
                                                       type=typ),
                              msg("if the data holds a non-numeric value in this column, correct it (kpilot load "
                                  "names its line); otherwise sum a numeric column, or count rows: count(*)"),
                              offset=text.find(col.name))
    return tree


def _metric_model(ctx: _Ctx, path: PathKey, key: str | None, what: Message) -> Model | None:
    if key is None:
        return None
    try:
        return ctx.ws.model_by_key(key)
    except KeyError:
        keys = [m.key for m in ctx.ws.models]
        ctx.error(path, "unknown_model", msg("unknown model '{model}' in {what};{hint} models: {models}", model=key,
                                             what=what, hint=did_you_mean(key, keys), models=one_of(keys)),
                  msg("declare it under `models:`"))
        return None


def _check_time(ctx: _Ctx, path: PathKey, model: Model | None, time: str | None, needs_time: bool) -> None:
    if model is None:
        return
    column = time or model.time
    if column is None:
        if needs_time:
            ctx.error(path, "no_time", msg("model {model} has no time column, so this metric cannot be put in "
                                           "periods", model=model.key),
                      msg("set `time:` on model {model} or on the metric", model=model.key))
        return
    if time:
        _check_column(ctx, path, model_columns(ctx.ws, model, ctx.schema), time, in_model(model.key), temporal=True)


def _check_ratio_part(ctx: _Ctx, base: PathKey, metric: Metric, part: RatioPart | None, side: str) -> None:
    path = (*base, side)
    if part is None:
        ctx.error(base, "ratio_part", msg("a ratio needs a {side}", side=side),
                  msg("add `{side}: {{model: ..., measure: ...}}` or `{side}: {{metric: ..., offset: 0}}`", side=side))
        return
    if part.metric:
        if part.model or part.measure or part.filter or part.time:
            ctx.error(path, "ratio_part", msg("{side} reads metric '{metric}'; it cannot also have "
                                              "model/measure/filter/time", side=side, metric=part.metric),
                      msg("keep either `metric` or `model`+`measure`"))
        if part.metric not in ctx.ws.metric_keys:
            ctx.error((*path, "metric"), "unknown_metric", unknown_metric(part.metric, ctx.ws.metric_keys))
        return
    if part.offset:
        ctx.error((*path, "offset"), "ratio_part", msg("offset applies to a metric reference only"),
                  msg("define the aggregate as its own metric and refer to it with `metric:`"))
    if not part.measure:
        ctx.error(path, "ratio_part", msg("{side} needs a `measure` (e.g. count(*)) or a `metric`", side=side))
        return
    model = _metric_model(ctx, (*path, "model"), part.model or metric.model, msg("the {side}", side=side))
    if model is None and not (part.model or metric.model):
        ctx.error(path, "ratio_part", msg("{side} needs a `model`", side=side))
    _check_time(ctx, (*path, "time"), model, part.time or metric.time, True)
    _check_expression(ctx, (*path, "measure"), part.measure, "measure", model)
    if part.filter:
        _check_expression(ctx, (*path, "filter"), part.filter, "filter", model)


def formula_names(ws: Workspace, metric: Metric) -> dict[str, FormulaRef]:
    """Names usable in a derived metric's formula: every metric key, plus its inputs' aliases."""
    names = {k: FormulaRef(k) for k in ws.metric_keys}
    for inp in metric.inputs:
        names[inp.name] = FormulaRef(inp.metric, inp.offset)
    return names


def dependencies(ws: Workspace, metric: Metric) -> list[str]:
    """Keys of the metrics that `metric` reads (derived formulas and ratio parts)."""
    deps: list[str] = []
    if metric.type is MetricType.derived and metric.formula:
        try:
            _, refs = parse_formula(metric.formula, formula_names(ws, metric))
            deps.extend(r.metric for r in refs)
        except ExpressionError:
            pass
    for part in (metric.numerator, metric.denominator):
        if part is not None and part.metric:
            deps.append(part.metric)
    return list(dict.fromkeys(deps))


def _check_cycles(ctx: _Ctx) -> None:
    ws = ctx.ws
    graph = {m.key: [d for d in dependencies(ws, m) if d in ws.metric_keys] for m in ws.metrics}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                cycle = [*trail[trail.index(nxt):], nxt] if nxt in trail else [node, nxt]
                idx = ws.metric_keys.index(node)
                ctx.error(("metrics", idx), "cycle", msg("metrics depend on each other in a cycle: {cycle}",
                                                         cycle=" -> ".join(cycle)),
                          msg("break the cycle: a metric cannot be computed from itself"))
            elif state.get(nxt) is None:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for key in graph:
        if state.get(key) is None:
            visit(key, [key])


def _check_metric(ctx: _Ctx, i: int, metric: Metric) -> None:
    ws = ctx.ws
    base: PathKey = ("metrics", i)
    team_keys = [t.key for t in ws.teams]
    t = metric.type
    model = None
    if t in (MetricType.simple, MetricType.snapshot, MetricType.cumulative):
        if not metric.model:
            ctx.error(base, "missing_model", msg("a {type} metric needs a `model`", type=t.value),
                      msg("add `model: <key>`; models: {models}", models=one_of([m.key for m in ws.models])))
        if not metric.measure:
            ctx.error(base, "missing_measure", msg("a {type} metric needs a `measure`", type=t.value),
                      msg("e.g. `measure: count(*)` or `measure: sum(amount)`"))
        model = _metric_model(ctx, (*base, "model"), metric.model, msg("metric {metric}", metric=metric.key))
        for field in ("numerator", "denominator", "formula"):
            if getattr(metric, field):
                ctx.error((*base, field), "wrong_field", msg("`{field}` is not used by a {type} metric", field=field,
                                                             type=t.value),
                          msg("set `type: ratio` or `type: derived`, or remove it"), key=True)
        if t is MetricType.snapshot and model is not None:
            if model.validity is None and model.time is None and metric.time is None:
                ctx.error((*base, "model"), "snapshot_without_validity",
                          msg("a snapshot over model {model} needs the model's `validity` (rows valid from..to) "
                              "or a time column holding snapshot dates", model=model.key),
                          msg("add `validity: {{from: <start column>, to: <end column>}}` to model {model}",
                              model=model.key))
        else:
            _check_time(ctx, (*base, "time"), model, metric.time, True)
        if t is not MetricType.cumulative and (metric.window or metric.to_date):
            ctx.error(base, "wrong_field", msg("`window` and `to_date` apply to cumulative metrics only"),
                      msg("set `type: cumulative`"))
        if metric.measure:
            _check_expression(ctx, (*base, "measure"), metric.measure, "measure", model)
        if metric.filter:
            _check_expression(ctx, (*base, "filter"), metric.filter, "filter", model)
    elif t is MetricType.ratio:
        if metric.measure or metric.formula:
            ctx.error(base, "wrong_field", msg("a ratio metric takes `numerator` and `denominator`, not "
                                               "`measure`/`formula`"),
                      msg("move the aggregate into numerator/denominator"))
        if metric.model:
            model = _metric_model(ctx, (*base, "model"), metric.model, msg("metric {metric}", metric=metric.key))
        _check_ratio_part(ctx, base, metric, metric.numerator, "numerator")
        _check_ratio_part(ctx, base, metric, metric.denominator, "denominator")
        if metric.filter:
            ctx.error((*base, "filter"), "wrong_field", msg("a ratio's filter goes inside numerator/denominator"),
                      msg("move it to numerator.filter and/or denominator.filter"))
    elif t is MetricType.derived:
        if not metric.formula:
            ctx.error(base, "missing_formula", msg("a derived metric needs a `formula`"),
                      msg("e.g. `formula: ad_spend / demos_booked`"))
        else:
            try:
                _, refs = parse_formula(metric.formula, formula_names(ws, metric))
                if any(r.metric == metric.key for r in refs):
                    ctx.error((*base, "formula"), "cycle", msg("formula of {metric} reads itself", metric=metric.key),
                              msg("use offset(metric, -1) of another metric, or a cumulative metric"))
            except ExpressionError as err:
                ctx.error((*base, "formula"), "invalid_formula", err.message, err.fix, offset=err.position)
        for j, inp in enumerate(metric.inputs):
            if inp.metric not in ws.metric_keys:
                ctx.error((*base, "inputs", j, "metric"), "unknown_metric",
                          msg("unknown metric '{metric}';{hint}", metric=inp.metric,
                              hint=did_you_mean(inp.metric, ws.metric_keys)))
        if metric.model or metric.measure:
            ctx.error(base, "wrong_field", msg("a derived metric is computed from other metrics; it has no "
                                               "`model`/`measure`"), msg("remove them, or change `type`"))

    if model is not None and metric.dimensions:
        cols = model_columns(ws, model, ctx.schema)
        for d, dim in enumerate(metric.dimensions):
            _check_column(ctx, (*base, "dimensions", d), cols, dim, in_model(model.key))

    for j, owner in enumerate(metric.owners):
        if owner not in team_keys:
            ctx.error((*base, "owners", j), "unknown_team", unknown_team(owner, team_keys),
                      msg("declare it under `teams:`"))
    if metric.decision is not None:
        if metric.decision.owner not in team_keys:
            ctx.error((*base, "decision", "owner"), "unknown_team", unknown_team(metric.decision.owner, team_keys))
        when = metric.decision.when
        needs_target = when.status or when.below_target or when.above_target or when.forecast
        if needs_target and not metric.targets:
            ctx.error((*base, "decision", "when"), "rule_needs_target",
                      msg("this decision rule compares the metric with its target, but the metric has no `targets`"),
                      msg("add targets, or use a trend/change condition"))
    _check_targets(ctx, base, metric)


def _check_targets(ctx: _Ctx, base: PathKey, metric: Metric) -> None:
    ranges: list[tuple[int, date, date | None]] = []
    for j, (target, span) in enumerate(zip(metric.targets, target_spans(metric.targets), strict=True)):
        tpath: PathKey = (*base, "targets", j)
        if span is None:
            try:
                for bound in (target.from_, target.to):
                    if bound is not None:
                        period_range(bound)
            except ValueError as err:
                ctx.error(tpath, "invalid_period", message_of(err))
            continue
        first, after = span  # without `to`, the target runs until the next one starts: it cannot overlap it
        if after is not None and after <= first:
            ctx.error((*tpath, "to"), "invalid_period", msg("target ends ({end}) before it starts ({start})",
                                                            end=target.to, start=target.from_),
                      msg("swap `from` and `to`"))
            continue
        for k, a, b in ranges:
            if (b is None or first < b) and (after is None or a < after):
                ctx.error(tpath, "overlapping_targets", msg("target overlaps targets[{index}] of the same metric",
                                                            index=k),
                          msg("make target periods disjoint; each period has one target"))
        ranges.append((j, first, after))
        if (metric.unit or "").lower() in ("percent", "%") and abs(target.value) > 1.5:
            ctx.warn((*tpath, "value"), "percent_scale", msg("target {value} on a percent metric looks like a "
                                                             "percentage; kpilot stores shares", value=target.value),
                     msg("write {share:g} for {value:g} %", share=target.value / 100, value=target.value))


def _check_settings(ctx: _Ctx) -> None:
    ws = ctx.ws
    try:
        ZoneInfo(ws.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        ctx.error(("timezone",), "unknown_timezone", msg("unknown time zone '{zone}';{hint}", zone=ws.timezone,
                                                         hint=did_you_mean(ws.timezone, available_timezones())),
                  msg("use an IANA name like Europe/Paris"))
    for i, model in enumerate(ws.models):
        if model.timezone:
            try:
                ZoneInfo(model.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                ctx.error(("models", i, "timezone"), "unknown_timezone",
                          msg("unknown time zone '{zone}'", zone=model.timezone),
                          msg("use an IANA name like UTC or Europe/Paris"))
    if ws.vision:
        keys = ws.metric_keys
        for i, obj in enumerate(ws.vision.objectives):
            for j, key in enumerate(obj.metrics):
                if key not in keys:
                    ctx.error(("vision", "objectives", i, "metrics", j), "unknown_metric",
                              msg("objective {objective} names unknown metric '{metric}';{hint}", objective=obj.key,
                                  metric=key, hint=did_you_mean(key, keys)))
        _check_unique(ctx, "objectives", [o.key for o in ws.vision.objectives])


def validate(ws: Workspace, smap: SourceMap, schema: Schema | None = None, *, today: date | None = None,
             environ: Mapping[str, str] | None = None) -> list[Issue]:
    """Check a parsed workspace; `schema` (table -> columns -> type), when given, enables column checks.

    `today` (the workspace's date, in its time zone), when given, enables the checks of the current period:
    a board KPI or the North Star without a target for it is warned. `environ`, when given, enables the checks
    of what sending needs from the environment (the SMTP server, webhook URLs)."""
    ctx = _Ctx(ws, smap, schema, IssueList())
    _check_unique(ctx, "teams", [t.key for t in ws.teams])
    _check_unique(ctx, "sources", [s.key for s in ws.sources])
    _check_unique(ctx, "models", [m.key for m in ws.models])
    _check_unique(ctx, "metrics", ws.metric_keys)
    _check_settings(ctx)
    check_sources(ctx)
    _check_models(ctx)
    for i, metric in enumerate(ws.metrics):
        _check_metric(ctx, i, metric)
    _check_cycles(ctx)
    check_board(ctx)
    if today is not None:
        check_current_targets(ctx, today)
    check_incentives(ctx)
    check_channels(ctx, environ)
    return ctx.issues.items
