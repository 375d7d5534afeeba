"""Which connector reads a source: SQL databases through kpilot.sources.databases, SaaS APIs through theirs.

`kpilot.sources.sync` asks this module only, so a new connector is one entry here. A SaaS source may omit
`tables:`: it then copies every object its connector offers, each with its documented cursor and key.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from kpilot.model.errors import msg
from kpilot.model.workspace import SQL_SOURCE_TYPES, Source, SourceTable
from kpilot.sources.base import Connector, SyncError

# SaaS source type -> module name under kpilot.sources.saas; each module has connector_for() and DEFAULT_TABLES.
SAAS_CONNECTORS: dict[str, str] = {
    "hubspot": "hubspot",
    "pipedrive": "pipedrive",
    "ga4": "ga4",
    "salesforce": "salesforce",
    "brevo": "brevo",
}


def syncable(source: Source) -> bool:
    """Whether `kpilot sync` copies this source (a database or a SaaS API with a connector)."""
    return source.type in SQL_SOURCE_TYPES or source.type in SAAS_CONNECTORS


def _module(source: Source):  # type: ignore[no-untyped-def]
    import importlib

    return importlib.import_module(f"kpilot.sources.saas.{SAAS_CONNECTORS[source.type]}")


def connector_for(source: Source, base_dir: Path, environ: Mapping[str, str] | None = None,
                  secrets: Path | None = None) -> Connector:
    """The connector of a source (not connected yet: the first discover or read connects)."""
    if source.type in SQL_SOURCE_TYPES:
        from kpilot.sources.databases import connectors

        return connectors.connector_for(source, base_dir, environ, secrets)
    if source.type in SAAS_CONNECTORS:
        connector: Connector = _module(source).connector_for(source, base_dir, environ, secrets)
        return connector
    raise SyncError(msg("source '{source}' is of type {type}, which has no connector yet.", source=source.key,
                        type=source.type))


def table_specs(source: Source) -> dict[str, SourceTable]:
    """The tables to copy: those `tables:` lists, else (SaaS) every object of the connector, as documented."""
    specs = source.table_specs()
    if source.type not in SAAS_CONNECTORS:
        return specs
    defaults: dict[str, SourceTable] = _module(source).DEFAULT_TABLES
    if not source.tables:
        return {k: v.model_copy() for k, v in defaults.items()}
    # `deals: deals` (a plain object name) takes that object's documented cursor and key.
    by_table = {v.table or k: v for k, v in defaults.items()}
    return {name: by_table[raw].model_copy() if isinstance(raw, str) and raw in by_table else specs[name]
            for name, raw in source.tables.items()}
