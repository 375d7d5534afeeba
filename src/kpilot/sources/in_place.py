"""Tables computed where they live (`mode: in_place`, push-down): their columns, and the engines for their models.

A PostgreSQL or MySQL/MariaDB table is queried on its server (the compiled queries in its dialect, on a
read-only session); a DuckDB or SQLite file is opened read-only and queried by its own engine. Nothing is
copied: only the per-period aggregates come back, and the warehouse stores them as it stores every other aggregate.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path

from kpilot.compute.engine import DuckDBEngine, Engine, MappedEngine
from kpilot.compute.engine_mysql import MySQLEngine
from kpilot.compute.engine_postgres import PostgresEngine
from kpilot.compute.engine_sqlite import SQLiteEngine
from kpilot.model.errors import msg
from kpilot.model.workspace import Source, Workspace
from kpilot.sources.base import Connector, SourceTableInfo, SyncError
from kpilot.sources.secrets import CredentialLayers, secrets_file
from kpilot.sources.sql import DuckDBConnector, MySQLConnector, PostgresConnector, SQLiteConnector, connector_for
from kpilot.sources.sync import resolve
from kpilot.store.credentials import stored_credentials


class InPlace:
    """The in-place tables of a workspace. Connects on first use (discovery), holds the connections until close."""

    def __init__(self, ws: Workspace, base_dir: Path, environ: Mapping[str, str] | None = None, *,
                 state_dir: Path | None = None):
        self.ws = ws
        self.base_dir = base_dir
        self.environ = environ
        self.state_dir = state_dir  # where the app database keeps encrypted credentials, if any
        self._connectors: dict[str, Connector] = {}
        self._tables: dict[str, tuple[str, SourceTableInfo]] = {}  # warehouse name -> (source key, found table)
        self._engines: dict[str, Engine] = {}  # source key -> engine
        self._closing: list[SQLiteEngine] = []  # engines holding their own connection

    @property
    def sources(self) -> list[Source]:
        keys = set(self.ws.in_place_tables().values())
        return [s for s in self.ws.sources if s.key in keys]

    def _discover(self) -> None:
        if self._tables or not self.sources:
            return
        secrets = secrets_file(self.base_dir, self.environ)
        env = os.environ if self.environ is None else self.environ
        with contextlib.ExitStack() as stack:
            # As for a sync: the environment, the secrets file, then the credentials stored encrypted.
            stored = (stack.enter_context(stored_credentials(self.state_dir, self.ws.workspace, self.environ))
                      if self.state_dir is not None else None)
            for source in self.sources:
                if source.key not in self._connectors:
                    self._connectors[source.key] = connector_for(
                        source, self.base_dir, CredentialLayers(env, secrets, source.key, stored), secrets)
        for source in self.sources:
            connector = self._connectors[source.key]
            found = connector.discover()
            for name, spec in source.table_specs().items():
                if spec.mode == "in_place":
                    self._tables[name] = (source.key, resolve(source, spec, found,
                                                              getattr(connector, "search_path", ())))

    def schema(self) -> dict[str, dict[str, str]]:
        """Table -> column -> type (the warehouse's type names) of every in-place table, from the source's catalog."""
        self._discover()
        return {name: {c.name: c.type for c in info.columns} for name, (_, info) in self._tables.items()}

    def model_engines(self) -> dict[str, Engine]:
        """Model key -> the engine computing it, for every model on an in-place table."""
        self._discover()
        out: dict[str, Engine] = {}
        for model in self.ws.models:
            source = self.ws.engine_of(model.key)
            if source is not None:
                out[model.key] = self._engine(source)
        return out

    def _engine(self, source_key: str) -> Engine:
        if source_key not in self._engines:
            connector = self._connectors[source_key]
            inner: Engine
            if isinstance(connector, PostgresConnector):
                con = connector.con
                con.rollback()  # the discovery's read-only transaction
                con.autocommit = True  # each query sees the rows committed when it starts
                con.execute("SET default_transaction_read_only = on")
                inner = PostgresEngine.on_connection(con)
            elif isinstance(connector, DuckDBConnector):
                inner = DuckDBEngine(connector.con)  # opened read-only
            elif isinstance(connector, MySQLConnector):
                try:
                    inner = MySQLEngine(connector.con)  # autocommit, read-only session
                except Exception as exc:
                    raise connector.failed(exc, msg("opening a read-only session")) from None
            elif isinstance(connector, SQLiteConnector):
                try:
                    inner = SQLiteEngine(connector.path)  # opened read-only
                except Exception as exc:
                    raise connector.failed(exc, msg("opening {path}", path=connector.source.path)) from None
                self._closing.append(inner)
            else:  # the workspace validator refuses in_place on other source types
                raise SyncError(msg("source '{source}': `mode: in_place` is not supported for this source type. "
                                    "Fix: use `mode: copy`.", source=source_key))
            mine = {name: info for name, (key, info) in self._tables.items() if key == source_key}
            self._engines[source_key] = MappedEngine(
                inner, {name: (info.schema, info.name) for name, info in mine.items()},
                {name: {c.name: c.type for c in info.columns} for name, info in mine.items()})
        return self._engines[source_key]

    def close(self) -> None:
        for engine in self._closing:
            engine.close()
        self._closing.clear()
        for connector in self._connectors.values():
            connector.close()
        self._connectors.clear()
        self._tables.clear()
        self._engines.clear()
