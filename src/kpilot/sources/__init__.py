"""Connectors: where data comes from, and how it gets into the workspace's DuckDB database."""

from kpilot.sources.files import (
    LoadError,
    LoadReport,
    TableFile,
    TableLoad,
    discover,
    load_tables,
    loaded_columns,
    sniff_columns,
    table_versions,
)

__all__ = [
    "LoadError", "LoadReport", "TableFile", "TableLoad", "discover", "load_tables", "loaded_columns",
    "sniff_columns", "table_versions",
]
