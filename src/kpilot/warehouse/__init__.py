"""The warehouse's own `kpilot` schema: its tables, its version and its migrations, in one place."""

from kpilot.warehouse.schema import SCHEMA_VERSION, TABLES, WarehouseTooNew, ensure_schema, schema_version

__all__ = ["SCHEMA_VERSION", "TABLES", "WarehouseTooNew", "ensure_schema", "schema_version"]
