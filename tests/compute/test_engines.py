"""The same compiled metrics on another engine: acme on the local PostgreSQL equals acme on DuckDB."""

from __future__ import annotations

import math
import os
from datetime import date
from pathlib import Path

import duckdb
import pytest

from kpilot.compute.engine import DuckDBEngine
from kpilot.compute.metrics import MetricComputer
from kpilot.model import load_workspace

PG_URL = os.environ.get("KPILOT_TEST_POSTGRES", "host=127.0.0.1 port=5432 user=postgres dbname=postgres")
PG_TYPES = {"VARCHAR": "text", "TIMESTAMP": "timestamp", "DATE": "date", "DOUBLE": "double precision",
            "BIGINT": "bigint", "BOOLEAN": "boolean"}


@pytest.fixture(scope="module")
def pg_acme(acme_raw: duckdb.DuckDBPyConnection):
    psycopg = pytest.importorskip("psycopg")  # a test dependency: missing means the install is broken
    schema = f"kpilot_test_{os.getpid()}"
    try:
        conn = psycopg.connect(PG_URL, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {PG_URL} ({exc}); ./run-tests starts it")
    conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    conn.execute(f'CREATE SCHEMA "{schema}"')
    for table in ("leads", "meetings", "deals", "subscriptions", "ad_spend", "web_sessions"):
        cols = acme_raw.execute(f"DESCRIBE {table}").fetchall()
        conn.execute(f'CREATE TABLE "{schema}".{table} ({", ".join(f"{c[0]} {PG_TYPES[c[1]]}" for c in cols)})')
        with conn.cursor().copy(f'COPY "{schema}".{table} FROM STDIN') as copy:
            for row in acme_raw.execute(f"SELECT * FROM {table}").fetchall():
                copy.write_row(row)
    from kpilot.compute.engine_postgres import PostgresEngine

    engine = PostgresEngine(f"{PG_URL} options='-c search_path={schema}'", schema=schema)
    yield engine
    engine.close()
    conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    conn.close()


@pytest.mark.postgres
def test_acme_on_postgres_equals_duckdb(acme_dir: Path, acme_raw, pg_acme) -> None:
    pg_schema = {t: pg_acme.columns(t) for t in pg_acme.tables()}
    ws, _ = load_workspace(acme_dir, pg_schema)
    as_of = date(2026, 11, 26)
    on_pg = MetricComputer(pg_acme, ws, pg_schema, as_of=as_of)
    duck = DuckDBEngine(acme_raw.cursor())
    on_duck = MetricComputer(duck, ws, {t: duck.columns(t) for t in duck.tables()}, as_of=as_of)
    for key in ws.metric_keys:
        a, b = on_pg.series(key), on_duck.series(key)
        assert a.periods == b.periods, key
        for x, y in zip(a.values, b.values, strict=True):
            assert (math.isnan(x) and math.isnan(y)) or x == pytest.approx(y, rel=1e-12), key
    # The queries really ran on PostgreSQL, in its dialect.
    assert on_pg.report.queries > 0 and pg_acme.dialect == "postgres"
