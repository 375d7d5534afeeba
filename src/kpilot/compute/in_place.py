"""In-place execution (`mode: in_place`, push-down): the engines computing models in their source's database.

Sources find the in-place tables in their database's catalog and open the connections
(kpilot.sources.databases.in_place); this module picks the engine for each database's dialect, sets up its
read-only session and names the tables as the database names them. A PostgreSQL or MySQL/MariaDB table is
queried on its server (the compiled queries in its dialect, on a read-only session); a DuckDB or SQLite file is
opened read-only and queried by its own engine. Spark and ClickHouse (chDB in-process, or a server) are engines
of their own: their sources are opened here (open_source_engine), their tables read from their catalog or from
files. Nothing is copied: only the per-period aggregates come back, and the warehouse stores them as it stores
every other aggregate.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from kpilot.compute.engine import DuckDBEngine, Engine, MappedEngine
from kpilot.compute.engine_mysql import MySQLEngine
from kpilot.compute.engine_postgres import PostgresEngine
from kpilot.compute.engine_sqlite import SQLiteEngine
from kpilot.model.errors import KpilotError, msg
from kpilot.model.workspace import ENGINE_SOURCE_TYPES, Source, Workspace


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

    base_dir: Path  # the workspace folder (an engine's table files are relative to it)
    environ: Mapping[str, str] | None  # where `url_env:` is read; None: the process's environment

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


def table_file(source: Source, table: str, path: str, base_dir: Path) -> Path:
    """The file or folder of an engine's table, inside the workspace folder (symbolic links followed)."""
    base = base_dir.resolve()
    found = (base / path).resolve()
    if not found.is_relative_to(base):
        raise KpilotError(msg("source '{source}', table {table}: `path: {path}` leads outside the workspace folder "
                              "{folder}. Fix: keep the table's files under the workspace folder",
                              source=source.key, table=table, path=path, folder=str(base)))
    if not found.exists():
        raise KpilotError(msg("source '{source}', table {table}: no file or folder at {path}. Fix: check `path:` "
                              "(relative to the workspace folder {folder})", source=source.key, table=table,
                              path=str(found), folder=str(base)))
    return found


def open_source_engine(source: Source, ws: Workspace, base_dir: Path,
                       environ: Mapping[str, str] | None = None) -> OwnedEngine:
    """The engine of a spark, chdb or clickhouse source, by the names its tables have there; its tables only."""
    specs = source.table_specs()
    files = {name: table_file(source, name, spec.path, base_dir) for name, spec in specs.items() if spec.path}
    inner: Any
    if source.type == "spark":
        from kpilot.compute.engine_spark import SparkEngine, SparkTable, root_session

        tables = {name: SparkTable(name=spec.table, path=files.get(name), format=spec.format or "parquet")
                  for name, spec in specs.items()}
        inner = SparkEngine(root_session(source.master, source.url), tables, timezone=ws.timezone,
                            own=bool(source.url))
        mapping = inner.mapping()
    elif source.type == "chdb":
        from kpilot.compute.engine_clickhouse import SCHEMA, ChDBEngine

        if len(files) != len(specs):
            raise KpilotError(msg("source '{source}': a chdb table is a file, named with `path:` (e.g. `tables: "
                                  "{{orders: {{path: data/orders.parquet}}}}`)", source=source.key))
        inner = ChDBEngine(files)
        mapping = {name: (SCHEMA, name) for name in specs}
    else:
        from kpilot.compute.engine_clickhouse import ClickHouseEngine

        env = os.environ if environ is None else environ
        url = source.url or env.get(source.url_env or "", "")
        if not url:
            raise KpilotError(msg("source '{source}': the environment variable {env} is not set. Fix: set it to "
                                  "the ClickHouse server's URL", source=source.key, env=source.url_env))
        mapping = {}
        for name, spec in specs.items():
            db, _, short = (spec.table or name).rpartition(".")
            mapping[name] = (db, short)
        inner = ClickHouseEngine(url, mapping)
    try:
        columns = {name: inner.columns(name) for name in specs}
    except BaseException:
        inner.close()
        raise
    return OwnedEngine(inner, mapping, columns)


class OwnedEngine(MappedEngine):
    """A mapped engine holding its own session (Spark, chDB, a ClickHouse client): closed with it."""

    def close(self) -> None:
        self.inner.close()  # type: ignore[attr-defined]


class InPlace:
    """The engines of the models on in-place tables, one per source database, opened on first use."""

    def __init__(self, ws: Workspace, databases: Databases):
        self.ws = ws
        self.databases = databases
        self._engines: dict[str, Engine] = {}  # source key -> engine
        self._closing: list[SQLiteEngine | OwnedEngine] = []  # engines holding their own connection

    def _engine_sources(self) -> list[Source]:
        return [s for s in self.ws.sources if s.type in ENGINE_SOURCE_TYPES and s.tables]

    def schema(self) -> dict[str, dict[str, str]]:
        """Table -> column -> type (the warehouse's type names) of every in-place table, from the source's catalog."""
        out = self.databases.schema()
        for source in self._engine_sources():
            engine = self._engine(source.key)
            out.update({name: engine.columns(name) for name in source.table_specs()})
        return out

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
        own = next((s for s in self._engine_sources() if s.key == source), None)
        if own is not None and source not in self._engines:
            engine = open_source_engine(own, self.ws, self.databases.base_dir, self.databases.environ)
            self._closing.append(engine)
            self._engines[source] = engine
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
