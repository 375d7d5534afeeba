"""The options of file sources (delimiter, decimal, quote, date formats...) and the column types models declare,
checked before any load: a wrong option is an error at its line in kpilot.yaml, not a confusing load failure."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from kpilot.model.errors import Message, did_you_mean, msg, one_of
from kpilot.model.steering import Checks
from kpilot.model.types import FILE_OPTIONS, TYPE_NAMES, column_type, delimiter_char, format_problem
from kpilot.model.workspace import ENGINE_SOURCE_TYPES, FILE_SOURCE_TYPES, Source
from kpilot.model.yamlsrc import PathKey


@dataclass(frozen=True)
class SourceProblem:
    """A wrong option of a file source: the field within the source, what is wrong, and the fix."""

    field: PathKey
    message: Message
    fix: Message
    key: bool = False  # the field's name is wrong, not its value


_OPTION_EXAMPLES = {"quote": "'", "escape": "\\\\", "comment": "#"}


def _one_character(value: object, *, ascii_only: bool) -> bool:
    return isinstance(value, str) and len(value) == 1 and (value.isascii() or not ascii_only)


def _line_count(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().isdigit()
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def source_problems(source: Source) -> list[SourceProblem]:
    """The options of a file source that a load cannot use (the load refuses them too)."""
    if source.type not in FILE_SOURCE_TYPES:
        return []
    out: list[SourceProblem] = []
    allowed = FILE_OPTIONS[source.type]
    for key, value in source.options.items():
        if key not in allowed:
            out.append(SourceProblem(
                ("options", key),
                msg("unknown option '{option}' for a CSV file;{hint} options: {options}", option=key,
                    hint=did_you_mean(key, allowed), options=one_of(allowed)) if allowed else
                msg("a source of type {type} reads no `options:`, so '{option}' would be ignored",
                    type=source.type, option=key),
                msg("remove it or correct its name") if allowed else msg("remove it"), key=True))
        elif key == "skip":
            if not _line_count(value):
                out.append(SourceProblem(("options", key), msg("`skip: {value}` is not a number of lines",
                                                               value=value),
                                         msg("give the number of lines above the header, e.g. `skip: 2`")))
        elif not _one_character(value, ascii_only=True):
            out.append(SourceProblem(("options", key),
                                     msg("`{option}` must be one ASCII character, not \"{value}\"", option=key,
                                         value=value),
                                     msg("write one character, e.g. `{option}: \"{example}\"`", option=key,
                                         example=_OPTION_EXAMPLES.get(key, "'"))))
    delimiter = delimiter_char(source.delimiter) if source.delimiter is not None else None
    if delimiter is not None and not _one_character(delimiter, ascii_only=False):
        out.append(SourceProblem(("delimiter",), msg("`delimiter` must be one character, not \"{value}\"",
                                                     value=source.delimiter),
                                 msg("write one character, e.g. `delimiter: \";\"`, or `tab`")))
    if source.decimal and source.decimal == delimiter:
        out.append(SourceProblem(("decimal",), msg("`decimal: \"{decimal}\"` is also the `delimiter:`, so a value "
                                                   "like 1{decimal}5 could not be told from two fields",
                                                   decimal=source.decimal),
                                 msg("change one of them (a file with decimal commas usually has "
                                     "`delimiter: \";\"`)")))
    return out


# The Python package each engine source needs, and the extra that installs it.
ENGINE_PACKAGES = {"spark": ("pyspark", "spark"), "chdb": ("chdb", "chdb"),
                   "clickhouse": ("clickhouse_connect", "clickhouse")}


def missing_package(source: Source) -> SourceProblem | None:
    """The package a spark, chdb or clickhouse source needs, when it is not installed."""
    if source.type not in ENGINE_SOURCE_TYPES:
        return None
    package, extra = ENGINE_PACKAGES[source.type]
    needed = [package]
    if source.type == "spark" and source.url:  # Spark Connect speaks gRPC
        needed, extra = [package, "grpc"], "spark-connect"
    if all(importlib.util.find_spec(p) is not None for p in needed):
        return None
    return SourceProblem(("type",), msg("a {type} source needs the Python package {package}, which is not "
                                        "installed", type=source.type, package=package),
                         msg("install it: pip install 'kpilot[{extra}]'", extra=extra))


def check_sources(ctx: Checks) -> None:
    """Options of file sources, their date formats, and the column types models declare."""
    for i, source in enumerate(ctx.ws.sources):
        for p in source_problems(source):
            ctx.error(("sources", i, *p.field), "source_option", p.message, p.fix, key=p.key)
        missing = missing_package(source)
        if missing is not None:
            ctx.error(("sources", i, *missing.field), "missing_package", missing.message, missing.fix)
        if source.type not in FILE_SOURCE_TYPES:
            continue
        for name, fmt in (("date_format", source.date_format), ("timestamp_format", source.timestamp_format)):
            problem = format_problem(fmt) if fmt is not None else None
            if problem is not None:
                ctx.error(("sources", i, name), "invalid_format",
                          msg("`{name}: \"{format}\"` is not a valid format: {problem}", name=name, format=fmt,
                              problem=problem),
                          msg("use strftime codes, e.g. \"%d/%m/%Y\" for 31/12/2026 or \"%d/%m/%Y %H:%M\" for "
                              "31/12/2026 17:30"))
    for i, model in enumerate(ctx.ws.models):
        for column, declared in (model.columns or {}).items():
            if column_type(declared) is None:
                ctx.error(("models", i, "columns", column), "unknown_type",
                          msg("unknown column type '{type}' for column {column};{hint} types: {types}, decimal(p,s)",
                              type=declared, column=column, hint=did_you_mean(declared, TYPE_NAMES),
                              types=one_of(TYPE_NAMES, limit=30)),
                          msg("use one of these in the model's `columns:`"))


__all__ = ["ENGINE_PACKAGES", "SourceProblem", "check_sources", "missing_package", "source_problems"]
