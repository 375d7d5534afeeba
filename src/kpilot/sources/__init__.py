"""Connectors: where data comes from, and how it gets into the workspace's DuckDB database."""

from kpilot.sources.files import (
    LoadError,
    LoadReport,
    TableFile,
    TableLoad,
    discover,
    load_tables,
    sniff_columns,
)

__all__ = ["LoadError", "LoadReport", "TableFile", "TableLoad", "discover", "load_tables", "sniff_columns"]
