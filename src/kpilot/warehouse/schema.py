"""The `kpilot` schema of a workspace's DuckDB warehouse: what kpilot keeps beside the loaded tables.

Every table kpilot writes there is declared here, once, with the schema's version. Opening a warehouse brings
it to `SCHEMA_VERSION` by running the migrations it has not had yet, in order, each recorded once done (they are
idempotent: one interrupted runs again), so that an upgraded kpilot needs no manual step. A warehouse written by a newer
kpilot is refused with a clear error rather than misread.

| table | kept by | holds |
|---|---|---|
| loads | the file loader | the file each table was last loaded from, its rows, version and columns |
| load_failures | the file loader | the latest failed load of each source, so read commands can warn |
| syncs | database and SaaS sources | what each copied table holds of its source, up to which cursor |
| pushed_state | the push API | the last pushed row each pushed table holds, and its column types |
| aggregates, agg_state | compute | per-period aggregates and what they were computed from (incremental) |
| series, series_state | compute | each metric's stored series and its definition |
| analyses, findings | insights | analysis runs per as-of date; early warnings and anomalies, never lost |
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import duckdb

from kpilot.model.errors import KpilotError, msg

TABLES: dict[str, str] = {
    "loads": """CREATE TABLE IF NOT EXISTS kpilot.loads (
        table_name VARCHAR PRIMARY KEY, path VARCHAR NOT NULL, size BIGINT NOT NULL, mtime_ns BIGINT NOT NULL,
        sha256 VARCHAR NOT NULL, rows BIGINT NOT NULL, version INTEGER NOT NULL, change VARCHAR NOT NULL,
        append_min VARCHAR, columns VARCHAR NOT NULL, loaded_at TIMESTAMP NOT NULL)""",
    "load_failures": """CREATE TABLE IF NOT EXISTS kpilot.load_failures (
        scope VARCHAR PRIMARY KEY, failed_at TIMESTAMP NOT NULL, message VARCHAR NOT NULL)""",
    "syncs": """CREATE TABLE IF NOT EXISTS kpilot.syncs (
        table_name VARCHAR PRIMARY KEY, source VARCHAR NOT NULL, source_table VARCHAR NOT NULL,
        cursor_column VARCHAR, cursor_value VARCHAR, primary_key VARCHAR NOT NULL, columns VARCHAR NOT NULL,
        rows BIGINT NOT NULL, version INTEGER NOT NULL, synced_at TIMESTAMP NOT NULL, status VARCHAR NOT NULL,
        error VARCHAR)""",
    "pushed_state": """CREATE TABLE IF NOT EXISTS kpilot.pushed_state (
        table_name VARCHAR PRIMARY KEY, last_id BIGINT, types VARCHAR)""",
    "aggregates": """CREATE TABLE IF NOT EXISTS kpilot.aggregates (
        agg_id VARCHAR, grain VARCHAR, period DATE, value DOUBLE, PRIMARY KEY (agg_id, grain, period))""",
    "agg_state": """CREATE TABLE IF NOT EXISTS kpilot.agg_state (
        agg_id VARCHAR, grain VARCHAR, versions VARCHAR, as_of DATE, first DATE, last DATE,
        computed_at TIMESTAMP, PRIMARY KEY (agg_id, grain))""",
    "series": """CREATE TABLE IF NOT EXISTS kpilot.series (
        metric VARCHAR, grain VARCHAR, period DATE, value DOUBLE, numerator DOUBLE, denominator DOUBLE,
        PRIMARY KEY (metric, grain, period))""",
    "series_state": """CREATE TABLE IF NOT EXISTS kpilot.series_state (
        metric VARCHAR, grain VARCHAR, definition VARCHAR, as_of DATE, computed_at TIMESTAMP,
        PRIMARY KEY (metric, grain))""",
    "analyses": """CREATE TABLE IF NOT EXISTS kpilot.analyses (
        kind VARCHAR, as_of DATE, computed_at TIMESTAMP, payload VARCHAR, PRIMARY KEY (kind, as_of))""",
    "findings": """CREATE TABLE IF NOT EXISTS kpilot.findings (
        id VARCHAR PRIMARY KEY, kind VARCHAR, metric VARCHAR, period DATE, severity VARCHAR,
        first_seen TIMESTAMP, last_seen TIMESTAMP, as_of DATE, payload VARCHAR)""",
}

Migration = Callable[[duckdb.DuckDBPyConnection], None]


def _baseline(con: duckdb.DuckDBPyConnection) -> None:
    """Version 1: every table above (warehouses from before the version existed already hold some of them)."""
    for ddl in TABLES.values():
        con.execute(ddl)


# (version reached, migration): run in order on a warehouse below that version. Append, never edit.
MIGRATIONS: Sequence[tuple[int, Migration]] = (
    (1, _baseline),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]


class WarehouseTooNew(KpilotError):
    """The warehouse was written by a newer kpilot, whose schema this one does not know."""


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    """The version of the warehouse's `kpilot` schema (0: none yet, or from before versions were kept)."""
    found = con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'kpilot' "
                        "AND table_name = 'schema_version' AND database_name = current_database()").fetchall()
    if not found[0][0]:
        return 0
    rows = con.execute("SELECT max(version) FROM kpilot.schema_version").fetchall()
    return int(rows[0][0] or 0)


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Bring the warehouse's `kpilot` schema to SCHEMA_VERSION (nothing to do, one query, when it is there)."""
    version = schema_version(con)
    if version == SCHEMA_VERSION:
        return
    if version > SCHEMA_VERSION:
        raise WarehouseTooNew(msg(
            "this workspace's warehouse was written by a newer kpilot (its schema is version {found}, this kpilot "
            "knows up to {known}). Fix: upgrade kpilot, or run `kpilot load --force` to rebuild the warehouse "
            "with this one.", found=version, known=SCHEMA_VERSION))
    _migrate(con, version)


def _migrate(con: duckdb.DuckDBPyConnection, version: int) -> None:
    """The migrations above `version`, each followed by its version row. Inside the caller's transaction when
    there is one (then undone with it); each migration is idempotent, so one interrupted runs again."""
    con.execute("CREATE SCHEMA IF NOT EXISTS kpilot")
    con.execute("CREATE TABLE IF NOT EXISTS kpilot.schema_version (version INTEGER PRIMARY KEY, "
                "applied_at TIMESTAMP DEFAULT current_timestamp)")
    for target, migrate in MIGRATIONS:
        if target > version:
            migrate(con)
            con.execute("INSERT INTO kpilot.schema_version (version) VALUES (?)", [target])


__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "TABLES", "WarehouseTooNew", "ensure_schema", "schema_version"]
