"""Which columns of which tables the definitions use (so a load can require them)."""

from __future__ import annotations

import contextlib

from sqlglot import exp

from kpilot.model.errors import Message, msg
from kpilot.model.expressions import columns_of, parse_filter, parse_measure
from kpilot.model.workspace import Metric, Model, Workspace

# (model key, expression text, "measure" | "filter", time column override)
Expression = tuple[str, str | None, str, str | None]


def expressions(metric: Metric) -> list[Expression]:
    """The measures and filters a metric aggregates, with the model each one reads."""
    out: list[Expression] = []
    if metric.model:
        out.append((metric.model, metric.measure, "measure", metric.time))
        out.append((metric.model, metric.filter, "filter", None))
    for part in (metric.numerator, metric.denominator):
        if part is not None and not part.metric and (part.model or metric.model):
            model = part.model or metric.model or ""
            out.append((model, part.measure, "measure", part.time or metric.time))
            out.append((model, part.filter, "filter", None))
    return out


def _table_of(ws: Workspace, model: Model, column: str) -> tuple[str, str] | None:
    """(table, column) for `column` or `joined_model.column` read from `model`."""
    if "." not in column:
        return model.table, column
    joined, name = column.split(".", 1)
    try:
        return ws.model_by_key(joined).table, name
    except KeyError:
        return None


def columns_used(ws: Workspace) -> dict[str, dict[str, Message]]:
    """table -> column -> why it is needed (time, validity, dimensions, join keys, measures, filters)."""
    need: dict[str, dict[str, Message]] = {}

    def add(model: Model, column: str, why: Message) -> None:
        found = _table_of(ws, model, column)
        if found is not None:
            need.setdefault(found[0], {}).setdefault(found[1], why)

    for model in ws.models:
        if model.time:
            add(model, model.time, msg("time column of model {model}", model=model.key))
        if model.validity:
            add(model, model.validity.from_, msg("validity start of model {model}", model=model.key))
            if model.validity.to:
                add(model, model.validity.to, msg("validity end of model {model}", model=model.key))
        for dim in model.dimensions:
            add(model, dim, msg("dimension of model {model}", model=model.key))
        for join in model.joins:
            for local, remote in join.pairs():
                add(model, local, msg("join key of model {model}", model=model.key))
                with contextlib.suppress(KeyError):
                    add(ws.model_by_key(join.model), remote, msg("join key from model {model}", model=model.key))
    for metric in ws.metrics:
        for model_key, text, role, time in expressions(metric):
            try:
                model = ws.model_by_key(model_key)
            except KeyError:
                continue
            if time:
                add(model, time, msg("time of metric {metric}", metric=metric.key))
            if text is None:
                continue
            tree = parse_measure(text) if role == "measure" else parse_filter(text)
            for ref in columns_of(tree):
                add(model, str(ref), msg("{role} of metric {metric}", role=role, metric=metric.key))
    return need


def summed_columns(ws: Workspace) -> dict[str, set[str]]:
    """table -> columns the definitions sum or average (they must hold numbers)."""
    out: dict[str, set[str]] = {}
    for metric in ws.metrics:
        for model_key, text, role, _ in expressions(metric):
            if role != "measure" or not text:
                continue
            try:
                model = ws.model_by_key(model_key)
            except KeyError:
                continue
            for agg in parse_measure(text).find_all(exp.Sum, exp.Avg):
                col = agg.this
                if isinstance(col, exp.Column):
                    found = _table_of(ws, model, f"{col.table}.{col.name}" if col.table else col.name)
                    if found is not None:
                        out.setdefault(found[0], set()).add(found[1])
    return out
