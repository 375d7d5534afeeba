"""The connector interface, the batches it returns, and the sync state every copied table keeps in the warehouse.

A connector discovers its tables and their column types, and reads a table in batches (pyarrow tables typed
like the warehouse columns: rows_to_arrow), in cursor order when a cursor column is given. What was copied
lives in `kpilot.syncs`, one row per warehouse table, written in the same DuckDB transaction as the rows it
covers: a sync killed at any point resumes from the last committed cursor.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, Protocol

import duckdb
import pyarrow as pa

from kpilot.model.errors import KpilotError


class SyncError(KpilotError):
    """A source could not be synced; the text names the source, says what is wrong and how to fix it."""


@dataclass(frozen=True)
class Column:
    """A column of a source table: its name, its type in the source, and the warehouse type it lands as."""

    name: str
    source_type: str
    type: str  # DuckDB type


@dataclass(frozen=True)
class SourceTableInfo:
    """A table a connector found: `schema.table` as the database names it, and its columns in order."""

    schema: str
    name: str
    columns: tuple[Column, ...]

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


class Connector(Protocol):
    """One database or service. Every method may raise SyncError (never with a secret in its text)."""

    def discover(self) -> list[SourceTableInfo]:
        """Every table the connection can read, with its columns and their types."""
        ...

    def read(self, table: SourceTableInfo, cursor: str | None, after: Any, *, inclusive: bool,
             batch_size: int) -> Iterator[pa.Table]:
        """The table's rows in batches of at most `batch_size` rows.

        With a cursor: only rows whose cursor is > `after` (>= when `inclusive`; all non-null when `after`
        is None), in cursor order. Without: every row, in no particular order.
        """
        ...

    def close(self) -> None:
        ...


# --- batches and identifiers ---------------------------------------------------------------------

_ARROW: dict[str, pa.DataType] = {
    "BIGINT": pa.int64(), "DOUBLE": pa.float64(), "BOOLEAN": pa.bool_(), "DATE": pa.date32(),
    "TIMESTAMP": pa.timestamp("us"), "TIMESTAMPTZ": pa.timestamp("us", tz="UTC"), "TIME": pa.time64("us"),
    "BLOB": pa.binary(), "VARCHAR": pa.string(),
}


def arrow_type(duck: str) -> pa.DataType:
    """The pyarrow type of a warehouse (DuckDB) type; text for a type without one."""
    m = re.match(r"^DECIMAL\((\d+),(\d+)\)$", duck)
    return pa.decimal128(int(m.group(1)), int(m.group(2))) if m else _ARROW.get(duck, pa.string())


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, dict | list):
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)


def rows_to_arrow(columns: Sequence[Column], rows: Sequence[Sequence[Any]]) -> pa.Table:
    """Rows (of a DB-API cursor, or an API's records) as a pyarrow table typed like the warehouse columns.

    A value the typed array refuses (SQLite keeps any value in any column) makes the column text; the
    warehouse then casts it on insert, and a value that really does not fit is reported there.
    """
    arrays = []
    for i, col in enumerate(columns):
        values = [r[i] for r in rows]
        typ = arrow_type(col.type)
        if typ == pa.string():
            arrays.append(pa.array([_text(v) for v in values], type=pa.string()))
            continue
        try:
            arrays.append(pa.array(values, type=typ))
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
            arrays.append(pa.array([_text(v) for v in values], type=pa.string()))
    return pa.table(arrays, names=[c.name for c in columns])


def quote_ident(name: str) -> str:
    """A DuckDB identifier, quoted so that any table or column name is safe in SQL."""
    return '"' + name.replace('"', '""') + '"'


# --- cursor values ------------------------------------------------------------------------------


def dump_cursor(value: Any) -> str | None:
    """A cursor value as JSON that keeps its type (a date stays a date when it is passed back to the source)."""
    if value is None:
        return None
    for kind, typ in (("bool", bool), ("int", int), ("float", float)):
        if isinstance(value, typ):
            return json.dumps({"type": kind, "value": value})
    if isinstance(value, Decimal):
        return json.dumps({"type": "decimal", "value": str(value)})
    for kind, typ2 in (("datetime", datetime), ("date", date), ("time", time)):
        if isinstance(value, typ2):
            return json.dumps({"type": kind, "value": value.isoformat()})
    return json.dumps({"type": "str", "value": str(value)})


def load_cursor(text: str | None) -> Any:
    if text is None:
        return None
    data = json.loads(text)
    kind, value = data["type"], data["value"]
    parse: dict[str, Any] = {
        "decimal": Decimal, "datetime": datetime.fromisoformat, "date": date.fromisoformat,
        "time": time.fromisoformat,
    }
    return parse[kind](value) if kind in parse else value


# --- sync state ---------------------------------------------------------------------------------

_FIELDS = ("table_name", "source", "source_table", "cursor_column", "cursor_value", "primary_key", "columns",
           "rows", "version", "synced_at", "status", "error")


@dataclass
class SyncState:
    """One row of kpilot.syncs: what a warehouse table holds of its source table, up to which cursor."""

    table_name: str
    source: str
    source_table: str
    cursor_column: str | None
    cursor_value: Any  # the last committed cursor, as the source returned it
    primary_key: list[str]
    columns: dict[str, str]  # column -> DuckDB type
    rows: int
    version: int
    synced_at: datetime
    status: str = "ok"  # 'ok' | 'failed' (the rows are those of the last good sync)
    error: str | None = None

    def values(self) -> list[Any]:
        return [self.table_name, self.source, self.source_table, self.cursor_column, dump_cursor(self.cursor_value),
                json.dumps(self.primary_key), json.dumps(self.columns), self.rows, self.version, self.synced_at,
                self.status, self.error]

    def same_shape(self, source: str, source_table: str, cursor: str | None, key: Sequence[str],
                   columns: dict[str, str]) -> bool:
        """Whether the copy can continue: same source table, cursor, primary key and columns."""
        return (self.source, self.source_table, self.cursor_column, self.primary_key, self.columns) == (
            source, source_table, cursor, list(key), columns)


def read_states(con: duckdb.DuckDBPyConnection) -> dict[str, SyncState]:
    """Every row of kpilot.syncs by warehouse table (empty before the first sync)."""
    exists = con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'kpilot' AND table_name = 'syncs' "
                         "AND database_name = current_database()").fetchall()
    if not exists[0][0]:
        return {}
    rows = con.execute(f"SELECT {', '.join(_FIELDS)} FROM kpilot.syncs").fetchall()
    out = {}
    for r in rows:
        out[r[0]] = SyncState(r[0], r[1], r[2], r[3], load_cursor(r[4]), json.loads(r[5]), json.loads(r[6]),
                              int(r[7]), int(r[8]), r[9], r[10], r[11])
    return out


def write_state(con: duckdb.DuckDBPyConnection, state: SyncState) -> None:
    """Save one table's state; call it inside the transaction that writes the rows it covers."""
    marks = ", ".join("?" for _ in _FIELDS)
    con.execute(f"INSERT OR REPLACE INTO kpilot.syncs VALUES ({marks})", state.values())


def main_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The tables the warehouse holds for the models (its `main` schema), whichever kind of source filled them."""
    rows = con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' "
                       "AND database_name = current_database()").fetchall()
    return {r[0] for r in rows}
