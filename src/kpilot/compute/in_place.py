"""In-place execution (`mode: in_place`, push-down): the engines computing models in their source's database.

Sources find the in-place tables in their database's catalog and open the connections
(kpilot.sources.databases.in_place); this module picks the engine for each database's dialect, sets up its
read-only session and names the tables as the database names them. A PostgreSQL or MySQL/MariaDB table is
queried on its server (the compiled queries in its dialect, on a read-only session); a DuckDB or SQLite file is
opened read-only and queried by its own engine. Nothing is copied: only the per-period aggregates come back, and
the warehouse stores them as it stores every other aggregate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from kpilot.compute.engine import DuckDBEngine, Engine, MappedEngine
from kpilot.compute.engine_mysql import MySQLEngine
from kpilot.compute.engine_postgres import PostgresEngine
from kpilot.compute.engine_sqlite import SQLiteEngine
from kpilot.model.workspace import Workspace


class Database(Protocol):
    """A source database holding in-place tables, opened by sources: plain values, and the error for a refusal."""

    @property
    def dialect(self) -> str:
        """'postgres', 'mysql', 'duckdb' or 'sqlite'."""
        ...

    @property
    def connection(self) -> Any:
        """The open connection (psycopg's, PyMySQL's, or DuckDB's opened read-only); for SQLite, the file's path."""
        ...

    @property
    def tables(self) -> Mapping[str, tuple[str, str]]:
        """Warehouse table -> (schema, table) as the database names it."""
        ...

    @property
    def columns(self) -> Mapping[str, Mapping[str, str]]:
        """Warehouse table -> column -> type (the warehouse's type names), from the database's catalog."""
        ...

    def refused(self, exc: BaseException) -> Exception:
        """The error to raise when the database refuses the engine's session: it names the source, never a secret."""
        ...


class Databases(Protocol):
    """The in-place tables of a workspace as sources find them; connects on first use, until close()."""

    def discover(self) -> None: ...

    def schema(self) -> dict[str, dict[str, str]]: ...

    def database(self, source: str) -> Database: ...

    def close(self) -> None: ...


def open_engine(db: Database) -> Engine:
    """The engine querying `db` on a read-only session, by the names its tables have there."""
    con = db.connection
    if db.dialect == "postgres":
        con.rollback()  # the discovery's read-only transaction
        con.autocommit = True  # each query sees the rows committed when it starts
        con.execute("SET default_transaction_read_only = on")
        return PostgresEngine.on_connection(con)
    if db.dialect == "duckdb":
        return DuckDBEngine(con)  # opened read-only
    if db.dialect == "mysql":
        try:
            return MySQLEngine(con)  # autocommit, read-only session
        except Exception as exc:
            raise db.refused(exc) from None
    if db.dialect == "sqlite":
        try:
            return SQLiteEngine(con)  # opened read-only
        except Exception as exc:
            raise db.refused(exc) from None
    raise ValueError(f"no in-place engine for the dialect {db.dialect!r}")


class InPlace:
    """The engines of the models on in-place tables, one per source database, opened on first use."""

    def __init__(self, ws: Workspace, databases: Databases):
        self.ws = ws
        self.databases = databases
        self._engines: dict[str, Engine] = {}  # source key -> engine
        self._closing: list[SQLiteEngine] = []  # engines holding their own connection

    def schema(self) -> dict[str, dict[str, str]]:
        """Table -> column -> type (the warehouse's type names) of every in-place table, from the source's catalog."""
        return self.databases.schema()

    def model_engines(self) -> dict[str, Engine]:
        """Model key -> the engine computing it, for every model on an in-place table."""
        self.databases.discover()
        out: dict[str, Engine] = {}
        for model in self.ws.models:
            source = self.ws.engine_of(model.key)
            if source is not None:
                out[model.key] = self._engine(source)
        return out

    def _engine(self, source: str) -> Engine:
        if source not in self._engines:
            db = self.databases.database(source)
            inner = open_engine(db)
            if isinstance(inner, SQLiteEngine):
                self._closing.append(inner)
            self._engines[source] = MappedEngine(inner, db.tables, db.columns)
        return self._engines[source]

    def close(self) -> None:
        for engine in self._closing:
            engine.close()
        self._closing.clear()
        self.databases.close()
        self._engines.clear()
