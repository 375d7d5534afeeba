"""The `push` source: tables other systems send rows to (`POST /api/v1/push`), and pushed metric values.

What was pushed is kept in the application database (`kpilot.store`); on each load it is materialized into
the warehouse under the table's name, typed from the rows (a model's declared `columns:` win), so a model
reads a pushed table like a CSV table. Pushed metric values land in `pushed_metric_values(metric, period,
value, pushed_at)`, the latest value per (metric, period) only. A failed materialization keeps the previous
table (one transaction per table).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

import duckdb
import pyarrow as pa

from kpilot import warehouse
from kpilot.model import KpilotError, Workspace
from kpilot.model.errors import Message, msg
from kpilot.model.usage import columns_used, summed_columns
from kpilot.sources.base import quote_ident

VALUES_TABLE = "pushed_metric_values"
VALUES_COLUMNS = {"metric": "VARCHAR", "period": "DATE", "value": "DOUBLE", "pushed_at": "TIMESTAMP"}
NUMERIC = re.compile(r"^(tinyint|smallint|integer|int|bigint|hugeint|double|float|real|decimal|numeric)\b", re.I)
TEMPORAL = re.compile(r"^(date|timestamp)", re.I)
_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9_ ]*(\(\s*\d+\s*(,\s*\d+\s*)?\))?$")  # a declared type, safe in SQL
PLAUSIBLE_YEARS = (1900, 2199)  # a pushed date outside them is a mistake (year 0001 from an empty date field)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$")
_TIMESTAMP_TZ = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$")


def push_tables(ws: Workspace) -> dict[str, str]:
    """Table -> key of the push source that declares it."""
    return {table: s.key for s in ws.sources if s.type == "push" for table in (s.tables or {})}


def wants_values(ws: Workspace) -> bool:
    """Whether pushed metric values are materialized: the workspace has a push source or a model reads them."""
    return any(s.type == "push" for s in ws.sources) or any(m.table == VALUES_TABLE for m in ws.models)


def declared_columns(ws: Workspace, table: str) -> dict[str, str]:
    """The column types declared by the models over `table` (`columns:`)."""
    out: dict[str, str] = {}
    for m in ws.models:
        if m.table == table and m.columns:
            out.update(m.columns)
    return out


def _time_columns(ws: Workspace, table: str) -> set[str]:
    out: set[str] = set()
    for m in ws.models:
        if m.table != table:
            continue
        if m.time:
            out.add(m.time)
        if m.validity:
            out.update(c for c in (m.validity.from_, m.validity.to) if c)
    return out


@dataclass(frozen=True)
class RowProblem:
    """A value of a pushed row the definitions cannot use: `field` is `rows[i].column`."""

    field: str
    reason: Message


def row_problems(ws: Workspace, table: str, rows: Sequence[Mapping[str, object]]) -> list[RowProblem]:
    """What is wrong with rows pushed to `table`: a summed or numeric column without a number, a time column
    without a date. The first 20 problems."""
    declared = {c.lower(): t for c, t in declared_columns(ws, table).items()}
    numbers = {c.lower() for c in summed_columns(ws).get(table, set())}
    numbers |= {c for c, t in declared.items() if NUMERIC.match(t)}
    times = {c.lower() for c in _time_columns(ws, table)} | {c for c, t in declared.items() if TEMPORAL.match(t)}
    out: list[RowProblem] = []
    for i, row in enumerate(rows):
        for column, value in row.items():
            name = column.lower()
            if not _column_name(column):
                # Kept, such a name would fail every later materialization of the table.
                out.append(RowProblem(f"rows[{i}]", msg("a column's name must be text without control characters, "
                                                        "got {name}", name=repr(column[:80]))))
                continue
            if value is None:
                continue
            if name in numbers and (isinstance(value, bool) or not isinstance(value, int | float)):
                out.append(RowProblem(f"rows[{i}].{column}", msg("a number expected, got {value}",
                                                                  value=repr(value))))
            elif name in times and not _is_time(value):
                out.append(RowProblem(f"rows[{i}].{column}", msg(
                    "a date (YYYY-MM-DD) or a time (YYYY-MM-DDTHH:MM:SS) between {first} and {last} expected, got "
                    "{value}", first=PLAUSIBLE_YEARS[0], last=PLAUSIBLE_YEARS[1], value=repr(value))))
        for column in times:
            if not any(c.lower() == column for c in row):
                out.append(RowProblem(f"rows[{i}].{column}", msg("missing: the time column of the models over "
                                                                  "table {table}", table=table)))
        if len(out) >= 20:
            break
    return out[:20]


def _column_name(name: str) -> bool:
    """Whether a pushed column's name can name a warehouse column: not blank, no control character."""
    return bool(name.strip()) and not any(ord(ch) < 32 or ord(ch) == 127 for ch in name)


def _is_time(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parsed = (date if _DATE.match(value) else datetime).fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return plausible_year(parsed.year)


def plausible_year(year: int) -> bool:
    """Whether a pushed date's year is one data can have (year 1 comes from an empty date field, not a sale)."""
    return PLAUSIBLE_YEARS[0] <= year <= PLAUSIBLE_YEARS[1]


def _infer(values: Iterable[object]) -> str:
    """The DuckDB type of a column from its JSON values (VARCHAR when they disagree or are all null)."""
    seen = [v for v in values if v is not None]
    if not seen:
        return "VARCHAR"
    if all(isinstance(v, bool) for v in seen):
        return "BOOLEAN"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in seen):
        return "BIGINT"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in seen):
        return "DOUBLE"
    if all(isinstance(v, str) for v in seen):
        texts: list[str] = [v for v in seen if isinstance(v, str)]
        for pattern, typ in ((_DATE, "DATE"), (_TIMESTAMP, "TIMESTAMP"), (_TIMESTAMP_TZ, "TIMESTAMPTZ")):
            if all(pattern.match(t) for t in texts):
                return typ
    return "VARCHAR"


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else repr(value)


_VIEW = "_kpilot_pushed"  # the pushed rows, registered for the statement that reads them
RowsAfter = Callable[[int], Sequence[tuple[int, Mapping[str, object]]]]


def materialize_rows(con: duckdb.DuckDBPyConnection, ws: Workspace, table: str, rows_after: RowsAfter) -> int:
    """Bring warehouse table `table` up to date with the rows pushed to it; the number of rows it holds.

    `rows_after(id)` gives (id, row) of the rows pushed after row `id`. New rows are appended when they fit the
    table's columns and types as a rebuild from every row would type them; otherwise (a new column, a value of
    a wider type) the table is rebuilt from every row. Either way atomically: a failure keeps the table. With
    no row yet, an empty table with the columns the definitions use."""
    warehouse.ensure_schema(con)  # kpilot.pushed_state: the last pushed row each table holds, and its types
    found = con.execute("SELECT last_id, types FROM kpilot.pushed_state WHERE table_name = ?", [table]).fetchall()
    existing = _table_types(con, table)
    if found and existing and json.loads(found[0][1]) == _shape(ws, table, existing):
        last_id = int(found[0][0])
        new = rows_after(last_id)
        if not new:
            return _count(con, table)
        appended = _append(con, ws, table, existing, new)
        if appended is not None:
            return appended
    everything = rows_after(0)
    last = max((i for i, _ in everything), default=0)
    return _rebuild(con, ws, table, [dict(r) for _, r in everything], lambda: _save_state(con, ws, table, last))


def _table_types(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    rows = con.execute("SELECT column_name, data_type FROM duckdb_columns() WHERE schema_name = 'main' AND "
                       "table_name = ? AND database_name = current_database() ORDER BY column_index",
                       [table]).fetchall()
    return {str(c): str(t) for c, t in rows}


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return int(con.execute(f"SELECT count(*) FROM {quote_ident(table)}").fetchall()[0][0])


def _shape(ws: Workspace, table: str, types: Mapping[str, str]) -> dict[str, object]:
    """What a table was made from: its column types and the types the definitions declare (a change of either
    means a rebuild)."""
    return {"types": dict(types), "declared": declared_columns(ws, table)}


def _save_state(con: duckdb.DuckDBPyConnection, ws: Workspace, table: str, last_id: int) -> None:
    shape = json.dumps(_shape(ws, table, _table_types(con, table)))
    con.execute("INSERT OR REPLACE INTO kpilot.pushed_state VALUES (?, ?, ?)", [table, last_id, shape])


def _fits(current: str, values: list[object], holds_values: bool) -> bool:
    """Whether `values` appended to a column typed `current` leave it typed as a rebuild from every row would."""
    new = _infer(values)
    if all(v is None for v in values):
        return True
    if current == "VARCHAR":
        return holds_values  # text stays text; a column that held only nulls takes its type from the new values
    return new == current or (current == "DOUBLE" and new == "BIGINT")


def _append(con: duckdb.DuckDBPyConnection, ws: Workspace, table: str, types: Mapping[str, str],
            new: Sequence[tuple[int, Mapping[str, object]]]) -> int | None:
    """Append `new` to `table` in one transaction; None when the table must be rebuilt instead."""
    declared = {c.lower(): t for c, t in declared_columns(ws, table).items()}
    rows = [r for _, r in new]
    names = {c for r in rows for c in r}
    if not names <= set(types):
        return None
    for c in names:
        if c.lower() in declared:
            continue  # the declared type stands whatever the rows hold; a value it can't hold fails below
        holds = types[c] != "VARCHAR" or bool(con.execute(
            f"SELECT count({quote_ident(c)}) > 0 FROM {quote_ident(table)}").fetchall()[0][0])
        if not _fits(types[c], [r.get(c) for r in rows], holds):
            return None
    data = pa.table({c: pa.array([_text(r.get(c)) for r in rows], pa.string()) for c in types})
    select = ", ".join(f"CAST({quote_ident(c)} AS {t}) AS {quote_ident(c)}" for c, t in types.items())
    _write(con, f"INSERT INTO {quote_ident(table)} SELECT {select} FROM {_VIEW}", table, data, len(rows),
           lambda: _save_state(con, ws, table, max(i for i, _ in new)))
    return _count(con, table)


def _rebuild(con: duckdb.DuckDBPyConnection, ws: Workspace, table: str, rows: Sequence[Mapping[str, object]],
             also: Callable[[], None]) -> int:
    """Replace warehouse table `table` by `rows` (atomically, with `also` in the same transaction), typed from
    them (declared `columns:` win)."""
    declared = {c.lower(): t for c, t in declared_columns(ws, table).items()}
    columns: dict[str, str] = {}  # name -> type
    for row in rows:
        for c in row:
            columns.setdefault(c, "")
    if rows:
        for c in columns:
            columns[c] = declared.get(c.lower()) or _infer(r.get(c) for r in rows)
    else:
        numbers = {c.lower() for c in summed_columns(ws).get(table, set())}
        times = {c.lower() for c in _time_columns(ws, table)}
        for c in columns_used(ws).get(table, {}):
            columns[c] = declared.get(c.lower()) or ("DOUBLE" if c.lower() in numbers else
                                                     "TIMESTAMP" if c.lower() in times else "VARCHAR")
    if not columns:
        return 0  # nothing pushed and nothing read from it: no table to make (and no state to keep)
    for c, typ in columns.items():
        if not _TYPE.match(typ):
            raise KpilotError(msg("column {column} of table {table} is declared as '{type}', which is not a type. "
                                  "Fix: use a DuckDB type such as double, bigint, date or timestamp.",
                                  column=c, table=table, type=typ))
    data = pa.table({c: pa.array([_text(r.get(c)) for r in rows], pa.string()) for c in columns})
    select = ", ".join(f"CAST({quote_ident(c)} AS {typ}) AS {quote_ident(c)}" for c, typ in columns.items())
    _replace(con, table, data, select, len(rows), also)
    return len(rows)


def materialize_values(con: duckdb.DuckDBPyConnection,
                       values: Sequence[tuple[str, str, float, datetime]]) -> int:
    """Replace `pushed_metric_values` by the latest value pushed per (metric, period) (atomically)."""
    data = pa.table({"metric": pa.array([v[0] for v in values], pa.string()),
                     "period": pa.array([v[1] for v in values], pa.string()),
                     "value": pa.array([float(v[2]) for v in values], pa.float64()),
                     "pushed_at": pa.array([v[3].replace(tzinfo=None).isoformat() for v in values], pa.string())})
    select = ", ".join(f"CAST({quote_ident(c)} AS {t}) AS {quote_ident(c)}" for c, t in VALUES_COLUMNS.items())
    _replace(con, VALUES_TABLE, data, select, len(values))
    return len(values)


def _replace(con: duckdb.DuckDBPyConnection, table: str, data: pa.Table, select: str, count: int,
             also: Callable[[], None] | None = None) -> None:
    _write(con, f"CREATE OR REPLACE TABLE {quote_ident(table)} AS SELECT {select} FROM {_VIEW}", table, data, count,
           also)


def _write(con: duckdb.DuckDBPyConnection, sql: str, table: str, data: pa.Table, count: int,
           also: Callable[[], None] | None) -> None:
    """Run `sql` (reading `data` as `_VIEW`) and `also` in one transaction; a failure keeps the table as it was.

    `sql` is run as it is, never formatted: it holds pushed column names, in which braces are text."""
    view = _VIEW
    con.register(view, data)
    try:
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(sql)
            if also is not None:
                also()
            con.execute("COMMIT")
        except duckdb.Error as exc:
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            raise KpilotError(msg("cannot materialize the {count} row(s) pushed to table {table}: {reason}. The "
                                  "previous table is kept. Fix: correct the declared `columns:` of its models, or "
                                  "push rows of the right type.", count=count, table=table,
                                  reason=str(exc).splitlines()[0])) from None
    finally:
        con.unregister(view)


__all__ = ["PLAUSIBLE_YEARS", "VALUES_TABLE", "RowProblem", "declared_columns", "materialize_rows",
           "materialize_values", "plausible_year", "push_tables", "row_problems", "wants_values"]
