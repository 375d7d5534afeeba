"""Tables computed where they live (`mode: in_place`, push-down): their databases, opened, and their columns.

Sources find each in-place table in its database's catalog and hold the connection; the engines querying them
are compute's (kpilot.compute.in_place), which the service wires to what this module opens.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kpilot.model.errors import msg
from kpilot.model.workspace import ENGINE_SOURCE_TYPES, Source, Workspace
from kpilot.sources.base import Connector, SourceTableInfo, SyncError
from kpilot.sources.databases.connectors import (
    DuckDBConnector,
    MySQLConnector,
    PostgresConnector,
    SQLiteConnector,
    connector_for,
)
from kpilot.sources.secrets import CredentialLayers, secrets_file
from kpilot.sources.sync import resolve
from kpilot.store.credentials import stored_credentials

InPlaceConnector = PostgresConnector | MySQLConnector | SQLiteConnector | DuckDBConnector


@dataclass(frozen=True)
class InPlaceDatabase:
    """One source's database and its in-place tables, as compute's engines take them (kpilot.compute.in_place)."""

    dialect: str  # postgres | mysql | sqlite | duckdb
    connection: Any  # the connector's open connection; for SQLite, the file's path (its engine opens it read-only)
    tables: dict[str, tuple[str, str]]  # warehouse table -> (schema, table) in the database
    columns: dict[str, dict[str, str]]  # warehouse table -> column -> warehouse type
    connector: InPlaceConnector = field(repr=False)

    def refused(self, exc: BaseException) -> SyncError:
        """The error for a database refusing the engine's read-only session (or file), scrubbed of secrets."""
        connector = self.connector
        assert not isinstance(connector, DuckDBConnector)  # opened read-only by the connector: nothing left to refuse
        doing = (msg("opening {path}", path=connector.source.path) if isinstance(connector, SQLiteConnector)
                 else msg("opening a read-only session"))
        return connector.failed(exc, doing)


class InPlaceTables:
    """The in-place tables of a workspace. Connects on first use (discovery), holds the connections until close."""

    def __init__(self, ws: Workspace, base_dir: Path, environ: Mapping[str, str] | None = None, *,
                 state_dir: Path | None = None):
        self.ws = ws
        self.base_dir = base_dir
        self.environ = environ
        self.state_dir = state_dir  # where the app database keeps encrypted credentials, if any
        self._connectors: dict[str, Connector] = {}
        self._tables: dict[str, tuple[str, SourceTableInfo]] = {}  # warehouse name -> (source key, found table)

    @property
    def sources(self) -> list[Source]:
        keys = set(self.ws.in_place_tables().values())
        # Spark and ClickHouse sources are engines of their own, opened by compute (kpilot.compute.in_place).
        return [s for s in self.ws.sources if s.key in keys and s.type not in ENGINE_SOURCE_TYPES]

    def discover(self) -> None:
        """Connect to each source with in-place tables and find the tables in its catalog (once)."""
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
        self.discover()
        return {name: {c.name: c.type for c in info.columns} for name, (_, info) in self._tables.items()}

    def database(self, source_key: str) -> InPlaceDatabase:
        """The database of a source with in-place tables, connected, and the tables found there."""
        self.discover()
        connector = self._connectors[source_key]
        connection: Any
        if isinstance(connector, PostgresConnector):
            dialect, connection = "postgres", connector.con
        elif isinstance(connector, DuckDBConnector):
            dialect, connection = "duckdb", connector.con
        elif isinstance(connector, MySQLConnector):
            dialect, connection = "mysql", connector.con
        elif isinstance(connector, SQLiteConnector):
            dialect, connection = "sqlite", connector.path
        else:  # the workspace validator refuses in_place on other source types
            raise SyncError(msg("source '{source}': `mode: in_place` is not supported for this source type. "
                                "Fix: use `mode: copy`.", source=source_key))
        mine = {name: info for name, (key, info) in self._tables.items() if key == source_key}
        return InPlaceDatabase(dialect, connection, {name: (info.schema, info.name) for name, info in mine.items()},
                               {name: {c.name: c.type for c in info.columns} for name, info in mine.items()},
                               connector)

    def close(self) -> None:
        for connector in self._connectors.values():
            connector.close()
        self._connectors.clear()
        self._tables.clear()
