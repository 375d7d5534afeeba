"""Defence in depth around user expressions: what reaches an engine can read the declared tables and nothing else.

Three layers, each tested on its own with a real engine: `kpilot validate` refuses the escape (the allow-list);
the warehouse's DuckDB connection cannot reach files and cannot be reconfigured (the sandbox); and a generated
query that reads anything but the declared tables is refused before it runs (the emitted-SQL check), on DuckDB
and on PostgreSQL in place, whose session is read-only.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import duckdb
import pytest
import sqlglot
import yaml

from kpilot.compute.engine import DuckDBEngine, EngineError
from kpilot.service import WorkspaceService
from tests.cli.test_acme_cli import kpilot

PG_URL = os.environ.get("KPILOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
ESCAPE = "sum(cast(amount as \"x) + (select length(content) from read_text('/etc/passwd')) + cast(1 as x\"))"


def _workspace(root: Path, measure: str = "sum(amount)") -> Path:
    ws = root / "ws"
    (ws / "data").mkdir(parents=True)
    (ws / "data" / "orders.csv").write_text("id,ordered_at,amount\n1,2026-01-05,10\n2,2026-02-06,20\n",
                                            encoding="utf-8")
    doc = {"workspace": "sandbox", "sources": [{"key": "files", "type": "csv", "path": "data/"}],
           "models": [{"key": "orders", "table": "orders", "source": "files", "time": "ordered_at"}],
           "metrics": [{"key": "revenue", "model": "orders", "measure": measure, "grain": "month"}]}
    (ws / "kpilot.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return ws


def test_validate_refuses_the_cast_escape_at_its_line(tmp_path: Path) -> None:
    ws = _workspace(tmp_path, ESCAPE)
    r = kpilot("validate", "-w", str(ws), env_state=tmp_path / "state")
    assert r.returncode == 1
    assert f"{ws / 'kpilot.yaml'}:" in r.stdout + r.stderr
    assert "is not allowed in a cast" in r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    r = kpilot("compute", "-w", str(ws), env_state=tmp_path / "state")
    assert r.returncode == 1 and "is not allowed in a cast" in r.stderr


def test_the_warehouse_connection_reaches_no_file_and_stays_locked(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    with WorkspaceService(ws, state_dir=tmp_path / "state") as svc:
        svc.load()
        svc.compute()
        assert svc.con.execute("SELECT count(*) FROM orders").fetchall() == [(2,)]
        for attack in ["SELECT * FROM read_text('/etc/passwd')", f"SELECT count(*) FROM glob('{tmp_path}/*')",
                       f"ATTACH '{tmp_path}/other.duckdb'", f"COPY orders TO '{tmp_path}/out.csv'"]:
            with pytest.raises(duckdb.PermissionException):
                svc.con.execute(attack)
        for undo in ["SET enable_external_access = true", "SET lock_configuration = false"]:
            with pytest.raises(duckdb.InvalidInputException):
                svc.con.execute(undo)
        assert not (tmp_path / "out.csv").exists()
        # A second load (a changed file) opens the warehouse with file access for the loader alone.
        (ws / "data" / "orders.csv").write_text("id,ordered_at,amount\n1,2026-01-05,10\n", encoding="utf-8")
        assert [t.status for t in svc.load().tables] == ["loaded"]
        with pytest.raises(duckdb.PermissionException):
            svc.con.execute("SELECT * FROM read_text('/etc/passwd')")


@pytest.mark.parametrize("query", [
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT (SELECT max(id) FROM kpilot.loads) FROM orders",
    "SELECT * FROM '/etc/passwd'",
    "SELECT * FROM duckdb_settings()",
    "WITH orders AS (SELECT 1) SELECT * FROM other.orders",
])
def test_a_generated_query_reading_outside_the_declared_tables_is_refused(tmp_path: Path, query: str) -> None:
    ws = _workspace(tmp_path)
    with WorkspaceService(ws, state_dir=tmp_path / "state") as svc:
        svc.load()
        engine = DuckDBEngine(svc.con)
        assert engine.query(sqlglot.parse_one("SELECT sum(amount) AS s FROM orders")).to_pylist() == [{"s": 30}]
        with pytest.raises(EngineError, match="outside the workspace's tables; nothing was run"):
            engine.query(sqlglot.parse_one(query, read="duckdb"))


@pytest.mark.postgres
def test_postgres_in_place_reads_only_its_declared_table_in_a_read_only_session(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    psycopg = pytest.importorskip("psycopg")
    schema = f"kp_{uuid.uuid4().hex[:10]}"
    admin = psycopg.connect(PG_URL, autocommit=True)
    try:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        admin.execute(f'CREATE TABLE "{schema}".orders (id integer, ordered_at timestamp, amount numeric(12,2))')
        admin.execute(f"INSERT INTO \"{schema}\".orders VALUES (1, '2026-01-05', 10), (2, '2026-02-06', 20)")
        admin.execute(f'CREATE TABLE "{schema}".salaries (name text, amount numeric)')  # never declared
        monkeypatch.setenv("KP_TEST_PG_URL", PG_URL)
        ws = tmp_path / "ws"
        ws.mkdir()
        doc = {"workspace": "sandbox", "sources": [
            {"key": "shop", "type": "postgres", "url_env": "KP_TEST_PG_URL",
             "tables": {"orders": {"table": f"{schema}.orders", "mode": "in_place"}}}],
            "models": [{"key": "orders", "table": "orders", "source": "shop", "time": "ordered_at"}],
            "metrics": [{"key": "revenue", "model": "orders", "measure": "sum(amount)", "grain": "month"}]}
        (ws / "kpilot.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        with WorkspaceService(ws, state_dir=tmp_path / "state") as svc:
            engine = svc.in_place.model_engines()["orders"]
            ok = engine.query(sqlglot.parse_one("SELECT sum(amount) AS s FROM orders", read="postgres"))
            assert ok.to_pylist() == [{"s": 30.0}]
            for query in [f'SELECT * FROM "{schema}".salaries', "SELECT * FROM salaries",
                          "SELECT * FROM pg_catalog.pg_authid", "SELECT * FROM orders, pg_user",
                          "SELECT * FROM generate_series(1, 3)"]:
                with pytest.raises(EngineError, match="outside the workspace's tables"):
                    engine.query(sqlglot.parse_one(query, read="postgres"))
            with pytest.raises(EngineError, match="read-only transaction"):
                engine.query(f'CREATE TABLE "{schema}".stolen AS SELECT 1 AS x')
    finally:
        admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        admin.close()
