"""The warehouse's `kpilot` schema: one owner, a version, migrations that run once and keep what is there."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from kpilot.warehouse import SCHEMA_VERSION, TABLES, WarehouseTooNew, ensure_schema, schema_version


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'kpilot'").fetchall()
    return {r[0] for r in rows}


def test_a_new_warehouse_gets_every_table_and_the_version(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    assert schema_version(con) == 0
    ensure_schema(con)
    assert schema_version(con) == SCHEMA_VERSION
    assert _tables(con) == {*TABLES, "schema_version"}
    ensure_schema(con)  # a second time: nothing to do, no second version row
    assert con.execute("SELECT count(*) FROM kpilot.schema_version").fetchall() == [(SCHEMA_VERSION,)]


def test_a_warehouse_from_before_versions_keeps_its_rows(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("CREATE SCHEMA kpilot")
    con.execute(TABLES["analyses"])
    con.execute("INSERT INTO kpilot.analyses VALUES ('leads', DATE '2026-11-20', TIMESTAMP '2026-11-20 08:00', '[]')")
    ensure_schema(con)
    assert schema_version(con) == SCHEMA_VERSION
    assert con.execute("SELECT kind, payload FROM kpilot.analyses").fetchall() == [("leads", "[]")]


def test_inside_a_transaction_the_migration_is_part_of_it(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("BEGIN TRANSACTION")
    ensure_schema(con)
    con.execute("ROLLBACK")  # the caller's failure undoes the migration with the rest
    assert schema_version(con) == 0


def test_a_warehouse_written_by_a_newer_kpilot_is_refused(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    ensure_schema(con)
    con.execute("INSERT INTO kpilot.schema_version (version) VALUES (?)", [SCHEMA_VERSION + 1])
    with pytest.raises(WarehouseTooNew, match=r"written by a newer kpilot .*upgrade kpilot"):
        ensure_schema(con)
