"""Engines run the SQL the compiler generates, where the data lives.

An engine is small on purpose (the `SqlClient` idea of metricflow): a dialect name for SQLGlot,
a way to run a query and get Arrow back, and the columns of a table. DuckDB is the default.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

import duckdb
import pyarrow as pa
from sqlglot import exp

from kpilot.model.errors import KpilotError, msg


class Engine(Protocol):
    dialect: str

    def query(self, sql: exp.Expr | str) -> pa.Table: ...

    def columns(self, table: str) -> dict[str, str]: ...

    def tables(self) -> list[str]: ...


class EngineError(KpilotError):
    """A query failed in the engine; the message carries the engine's reason and the SQL."""


def connect_duckdb(path: Path | str | None) -> duckdb.DuckDBPyConnection:
    """Open a DuckDB database with extension auto-install off (nothing is downloaded here)."""
    config: dict[str, str | bool | int | float | list[str]] = {
        "autoinstall_known_extensions": "false", "autoload_known_extensions": "true"}
    try:
        return duckdb.connect(str(path) if path else ":memory:", config=config)
    except duckdb.IOException as exc:
        reason = str(exc).splitlines()[0]
        if "lock" in reason.lower():
            raise KpilotError(msg(
                "the workspace database {path} is in use by another kpilot process ({reason}); "
                "stop that process (e.g. `kpilot serve`) or wait for it to finish", path=str(path), reason=reason
            )) from None
        raise KpilotError(msg("cannot open the workspace database {path}: {reason}", path=str(path),
                              reason=reason)) from None


class DuckDBEngine:
    """The embedded default: runs in-process on the workspace's DuckDB file."""

    dialect = "duckdb"

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con
        self._lock = threading.RLock()

    def query(self, sql: exp.Expr | str) -> pa.Table:
        text = sql.sql(dialect=self.dialect) if isinstance(sql, exp.Expr) else sql
        with self._lock:
            try:
                return self.con.sql(text).to_arrow_table()
            except duckdb.Error as exc:
                first = str(exc).splitlines()[0]
                raise EngineError(msg("the engine rejected a generated query: {reason}\nSQL: {sql}", reason=first,
                                      sql=text)) from None

    def columns(self, table: str) -> dict[str, str]:
        with self._lock:
            rows = self.con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position",
                [table],
            ).fetchall()
        return {name: typ for name, typ in rows}

    def tables(self) -> list[str]:
        with self._lock:
            rows = self.con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY 1"
            ).fetchall()
        return [r[0] for r in rows]


class MappedEngine:
    """An engine whose tables are named differently where they live (`orders` -> `sales.orders`).

    The compiler names a model's table as the workspace does; this rewrites those names in each compiled
    tree, so the same queries run on a database computing the tables in place. `columns` are the tables'
    columns as the source described them.
    """

    def __init__(self, inner: Engine, tables: Mapping[str, tuple[str, str]],
                 columns: Mapping[str, Mapping[str, str]]):
        self.inner = inner
        self.dialect = inner.dialect
        self._tables = dict(tables)
        self._columns = {t: dict(c) for t, c in columns.items()}

    def _rename(self, node: exp.Expr) -> exp.Expr:
        if (isinstance(node, exp.Table) and isinstance(node.this, exp.Identifier) and not node.args.get("db")
                and node.name in self._tables):
            schema, name = self._tables[node.name]
            node = node.copy()
            node.set("this", exp.to_identifier(name, quoted=True))
            if schema:
                node.set("db", exp.to_identifier(schema, quoted=True))
        return node

    def query(self, sql: exp.Expr | str) -> pa.Table:
        return self.inner.query(sql.transform(self._rename) if isinstance(sql, exp.Expr) else sql)

    def columns(self, table: str) -> dict[str, str]:
        return dict(self._columns.get(table, {}))

    def tables(self) -> list[str]:
        return sorted(self._tables)
