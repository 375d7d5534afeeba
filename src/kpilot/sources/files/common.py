"""Values and helpers shared by the CSV, Excel and Parquet readers: table files, errors, column types."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from kpilot.model.errors import KpilotError, Message, did_you_mean, joined, msg, one_of
from kpilot.model.types import INTEGER_TYPES, TYPE_NAMES, column_type
from kpilot.model.validate import is_numeric, is_temporal
from kpilot.model.workspace import Source

NOTHING_LOADED = msg("Nothing was loaded: every table keeps its previous data.")


@dataclass(frozen=True)
class TableFile:
    """One table to load: a CSV or Parquet file, or one sheet of an Excel workbook."""

    table: str
    path: Path
    source: Source
    sheet: str | None = None


class LoadError(KpilotError):
    """A file could not be loaded; the text says which file, where, what is wrong and how to fix it."""


def table_name(stem: str) -> str:
    """Table name for a file stem or sheet name: accents dropped, lower-cased, other characters -> '_'."""
    folded = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode("ascii")
    name = re.sub(r"[^a-z0-9_]", "_", folded.strip().lower())
    return name or "_"


def shown_path(tf: TableFile) -> str:
    """The file as the user wrote it: relative to the workspace folder when it can be, else absolute."""
    rel = Path(tf.source.path or "")
    n = len(rel.parts)
    if n:
        for folder in (tf.path, *tf.path.parents):
            if folder.parts[-n:] == rel.parts:
                inside = tf.path.relative_to(folder)
                return (rel / inside).as_posix() if inside.parts else rel.as_posix()
    return str(tf.path)


def where(tf: TableFile, line: int | None = None, column: str | None = None, cell: str | None = None) -> Message:
    """'data/deals.csv, line 57, column amount' or 'data/b.xlsx, sheet Budget, cell C57'."""
    parts = [shown_path(tf)]
    if tf.sheet is not None:
        parts.append(msg("sheet {sheet}", sheet=tf.sheet))
    if cell is not None:
        parts.append(msg("cell {cell}", cell=cell))
    if line is not None:
        parts.append(msg("line {line}", line=line))
    if column is not None:
        parts.append(msg("column {column}", column=column))
    return joined(", ", parts)


def unreadable(tf: TableFile, e: OSError) -> Message:
    """An operating system error on the file, without the paths it may hold (a temporary copy's)."""
    return msg("{path} could not be read ({reason}). Fix: check that the file exists and that kpilot may read it.",
               path=shown_path(tf), reason=e.strerror or type(e).__name__)


def no_sheet(shown: str, sheet: str, sheets: list[str], source: str) -> LoadError:
    return LoadError(msg("{path} has no sheet '{sheet}';{hint} sheets: {sheets}. Fix: correct `sheet:` or `tables:` in "
                         "source '{source}'.", path=shown, sheet=sheet, hint=did_you_mean(sheet, sheets),
                         sheets=one_of(sheets), source=source))


def null_value_hint(value: str) -> Message:
    return msg("if '{value}' means 'no value', add it to the source's `null_values`", value=value)


def text_column_hint(column: str) -> Message:
    return msg("if the column really holds text, declare it in the model: `columns: {{{column}: varchar}}`",
               column=column)


@contextmanager
def scratch() -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB connection for reading a file outside the load's transaction, closed after use."""
    con = duckdb.connect()
    try:
        yield con
    finally:
        con.close()


def shorten(text: str, limit: int = 120) -> str:
    text = text.split("\n", 1)[0].rstrip("\r")
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- column types -------------------------------------------------------------------------------
# The type names and predicates are the model's (kpilot.model.types, kpilot.model.validate). There
# BOOLEAN counts as numeric, since SUM of a true/false column counts the trues; the loader never turns a
# true/false column into numbers, so it tests for BOOLEAN before it asks is_numeric.


def duckdb_type(declared: str, where_: str) -> str:
    """The DuckDB type of a declared column type ("double", "varchar", "decimal(12,2)"...)."""
    found = column_type(declared)
    if found is not None:
        return found
    raise LoadError(msg("{where}: unknown column type '{type}';{hint} types: {types}, decimal(p,s). Fix: use one of "
                        "these in the model's `columns:`.", where=where_, type=declared,
                        hint=did_you_mean(declared, TYPE_NAMES), types=one_of(TYPE_NAMES, limit=30)))


def merge_type(previous: str | None, detected: str) -> str:
    """Type to read a column with, given its type in the previous load and the one detected now.

    A column that was numbers or dates and now looks like text keeps its type, so that the value
    that broke it is reported instead of the column silently becoming text. Widening is allowed.
    """
    if previous is None or previous == detected:
        return detected
    if detected == "VARCHAR":
        return previous
    if previous == "VARCHAR":
        return detected
    if "BOOLEAN" not in (previous, detected) and is_numeric(previous) and is_numeric(detected):
        if previous in INTEGER_TYPES and detected in INTEGER_TYPES:
            return "BIGINT"
        return "DOUBLE"
    if {previous, detected} == {"DATE", "TIMESTAMP"}:
        return "TIMESTAMP"
    return previous


def holds(t: str) -> Message:
    """What a column of type `t` holds, in words: 'numbers', 'dates'..."""
    if t in INTEGER_TYPES:
        return msg("whole numbers")
    if t == "BOOLEAN":
        return msg("true/false values")
    if is_numeric(t):
        return msg("numbers")
    if t == "DATE":
        return msg("dates")
    if is_temporal(t):
        return msg("dates with times")
    if t == "TIME":
        return msg("times of day")
    return msg("text")


def a_value_of(t: str) -> Message:
    """'a number', 'a date'... for messages about one value."""
    return {
        "whole numbers": msg("a whole number"), "numbers": msg("a number"), "dates": msg("a date"),
        "dates with times": msg("a date and time"), "true/false values": msg("true or false"),
        "times of day": msg("a time of day"),
    }.get(holds(t), msg("text"))


def example_date(fmt: str, with_time: bool = False) -> str:
    """31 December 2026 (and 17:30) in a strftime format, to show people what a format expects."""
    from datetime import datetime

    value = datetime(2026, 12, 31, 17, 30, 0) if with_time else date(2026, 12, 31)
    try:
        return value.strftime(fmt)
    except ValueError:
        return fmt


@dataclass(frozen=True)
class ColumnSpec:
    """The type a column is read with, and why (for error messages)."""

    type: str
    origin: str  # 'declared' | 'previous' | 'detected'


def plan_types(
    detected: Mapping[str, str],
    previous: Mapping[str, str] | None,
    declared: Mapping[str, str] | None,
    where_: str,
) -> dict[str, ColumnSpec]:
    """Final column types: declared types first, then the previous load's types, then detection."""
    prev_ci = {k.lower(): v for k, v in (previous or {}).items()}
    decl_ci = {k.lower(): duckdb_type(v, where_) for k, v in (declared or {}).items()}
    out: dict[str, ColumnSpec] = {}
    for name, t in detected.items():
        key = name.lower()
        if key in decl_ci:
            out[name] = ColumnSpec(decl_ci[key], "declared")
            continue
        merged = merge_type(prev_ci.get(key), t)
        out[name] = ColumnSpec(merged, "previous" if merged != t else "detected")
    return out


def missing_columns(
    tf: TableFile,
    found: Iterable[str],
    required: Mapping[str, str] | None,
    declared: Mapping[str, str] | None,
) -> list[Message]:
    """One message per required or declared column the file lacks (names compared case-insensitively)."""
    pool = list(found)
    have = {c.lower() for c in pool}
    needs: dict[str, Message] = {}
    for col, why in (required or {}).items():
        needs.setdefault(col, msg("needed as {why}", why=why) if why else msg("needed"))
    for col, t in (declared or {}).items():
        needs.setdefault(col, msg("declared as {type} in the model", type=t))
    problems: list[Message] = []
    for col, why in needs.items():
        if col.lower() in have:
            continue
        problems.append(msg(
            "{where} has no column '{column}', {why};{hint} columns found: {columns}. "
            "Fix: rename the column in the file's header, or change the definition that uses it.", where=where(tf),
            column=col, why=why, hint=did_you_mean(col, pool), columns=one_of(pool)))
    return problems
