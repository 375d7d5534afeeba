"""Tables computed in place (`mode: in_place`): the metrics' queries run in the source database.

Against the local PostgreSQL (a schema per test, dropped after) and DuckDB files: the values equal
hand-written SQL run in the source database, the warehouse holds no copy, and a row added at the source
shows in the next compute.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from kpilot.compute.engine import DuckDBEngine
from kpilot.compute.metrics import ComputeError, MetricComputer
from kpilot.model import KpilotError, WorkspaceInvalid, load_workspace
from kpilot.model.workspace import Workspace
from kpilot.service import WorkspaceService

PG_URL = os.environ.get("KPILOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
SECRET = "S3cret-Pa55word"

ROWS = [(i, datetime(2026, 1 + i % 3, 1 + i % 27, 9 + i % 10), round(i * 12.5, 2), "paid" if i % 3 else "refunded")
        for i in range(1, 61)]

METRICS: list[dict[str, Any]] = [
    {"key": "revenue", "model": "orders", "measure": "sum(amount)", "grain": "month"},
    {"key": "paid_orders", "model": "orders", "measure": "count(*)", "filter": "status = 'paid'", "grain": "month"},
    {"key": "paid_share", "type": "ratio", "grain": "month",
     "numerator": {"model": "orders", "measure": "count(*)", "filter": "status = 'paid'"},
     "denominator": {"model": "orders", "measure": "count(*)"}},
]

# The same values, by hand, in the source database: month -> (revenue, paid orders, paid share).
EXPECTED_SQL = ("SELECT CAST(date_trunc('month', ordered_at) AS DATE) AS m, sum(amount), "
                "count(*) FILTER (WHERE status = 'paid'), "
                "CAST(count(*) FILTER (WHERE status = 'paid') AS DOUBLE PRECISION) / count(*) "
                "FROM {table} GROUP BY 1 ORDER BY 1")


def _write(ws: Path, source: dict[str, Any], metrics: list[dict[str, Any]] = METRICS,
           models: list[dict[str, Any]] | None = None) -> None:
    doc = {"workspace": "inplace", "sources": [source],
           "models": models or [{"key": "orders", "table": "orders", "source": source["key"], "time": "ordered_at"}],
           "metrics": metrics}
    ws.mkdir(exist_ok=True)
    (ws / "kpilot.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")


def _computed(svc: WorkspaceService) -> dict[str, tuple[float, float, float]]:
    """Month -> (revenue, paid orders, paid share), as kpilot computes and stores them."""
    svc.load()
    svc.compute()
    mc = svc.computer()
    series = [mc.series(k) for k in ("revenue", "paid_orders", "paid_share")]
    out = {}
    for i, p in enumerate(series[0].periods):
        values = tuple(float(s.reindex(series[0].periods).values[i]) for s in series)
        if not math.isnan(values[2]):  # months with rows
            out[p.isoformat()] = values
    return out


def _expected(rows: list[tuple[Any, ...]]) -> dict[str, tuple[float, float, float]]:
    return {m.isoformat(): (float(r), float(n), float(s)) for m, r, n, s in rows}


def _no_copy(svc: WorkspaceService) -> None:
    assert "orders" not in svc.loaded_schema()
    synced = svc.con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'kpilot' "
                             "AND table_name = 'syncs'").fetchall()[0][0]
    if synced:
        assert svc.con.execute("SELECT count(*) FROM kpilot.syncs").fetchall() == [(0,)]
    # The per-period results are stored in the warehouse as usual.
    assert svc.con.execute("SELECT count(*) FROM kpilot.aggregates").fetchall()[0][0] > 0


# --- PostgreSQL -------------------------------------------------------------------------------------


@pytest.fixture
def pg_schema() -> Iterator[tuple[Any, str]]:
    psycopg = pytest.importorskip("psycopg")
    schema = f"kp_{uuid.uuid4().hex[:10]}"
    try:
        con = psycopg.connect(PG_URL, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {PG_URL} ({exc}); ./run-tests starts it")
    con.execute(f'CREATE SCHEMA "{schema}"')
    con.execute(f'CREATE TABLE "{schema}".orders (id integer PRIMARY KEY, ordered_at timestamp, '
                'amount numeric(12,2), status text)')
    with con.cursor() as cur:
        cur.executemany(f'INSERT INTO "{schema}".orders VALUES (%s, %s, %s, %s)', ROWS)
    try:
        yield con, schema
    finally:
        con.execute(f'DROP SCHEMA "{schema}" CASCADE')
        con.close()


def _pg_source(schema: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A postgres source reading `<schema>.orders` in place, its URL in an environment variable."""
    monkeypatch.setenv("KP_TEST_PG_URL", PG_URL)
    return {"key": "shop", "type": "postgres", "url_env": "KP_TEST_PG_URL",
            "tables": {"orders": {"table": f"{schema}.orders", "mode": "in_place"}}}


@pytest.mark.postgres
def test_postgres_table_in_place_equals_sql_in_postgres(pg_schema: tuple[Any, str], tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    con, schema = pg_schema
    ws = tmp_path / "ws"
    _write(ws, _pg_source(schema, monkeypatch))
    table = f'"{schema}".orders'
    with WorkspaceService(ws, state_dir=tmp_path / "state") as svc:
        assert [i for i in svc.validate() if i.severity == "error"] == []
        assert svc.sync().tables == []  # nothing to copy
        got = _computed(svc)
        assert got == pytest.approx(_expected(con.execute(EXPECTED_SQL.format(table=table)).fetchall()))
        assert len(got) == 3
        mc = svc.computer()
        assert mc.engines["orders"].dialect == "postgres"
        _no_copy(svc)

        # A row added in PostgreSQL shows in the next compute (in-place aggregates are recomputed).
        con.execute(f"INSERT INTO {table} VALUES (1000, '2026-05-04 10:00', 99.5, 'paid')")
        got = _computed(svc)
        assert got["2026-05-01"] == pytest.approx((99.5, 1.0, 1.0))
        assert got == pytest.approx(_expected(con.execute(EXPECTED_SQL.format(table=table)).fetchall()))


@pytest.mark.postgres
def test_validate_checks_columns_of_an_in_place_table(pg_schema: tuple[Any, str], tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    ws = tmp_path / "ws"
    _write(ws, _pg_source(pg_schema[1], monkeypatch), metrics=[{"key": "revenue", "model": "orders", "measure": "sum(amont)"}])
    with WorkspaceService(ws, state_dir=tmp_path / "state") as svc:
        errors = [str(i) for i in svc.validate() if i.severity == "error"]
    assert len(errors) == 1 and "amont" in errors[0] and "did you mean 'amount'" in errors[0], errors
    assert "kpilot.yaml:" in errors[0]


def test_credentials_of_an_in_place_source_are_never_printed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Port 1: nothing listens, so connecting fails; the error must not carry the URL or its password.
    monkeypatch.setenv("KP_TEST_PG_BAD_URL", f"postgresql://kpilot:{SECRET}@127.0.0.1:1/shop")
    ws = tmp_path / "ws"
    _write(ws, {"key": "shop", "type": "postgres", "url_env": "KP_TEST_PG_BAD_URL",
                "tables": {"orders": {"table": "public.orders", "mode": "in_place"}}})
    with WorkspaceService(ws, state_dir=tmp_path / "state") as svc:
        issues = [str(i) for i in svc.validate()]
        with pytest.raises(KpilotError) as info:
            svc.computer()
    text = " ".join([*issues, str(info.value)])
    assert "source 'shop': cannot connect to the database" in text and "KP_TEST_PG_BAD_URL" in text
    assert SECRET not in text and "127.0.0.1:1/shop" not in text


# --- DuckDB files -----------------------------------------------------------------------------------


def _duck_file(path: Path) -> None:
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA sales")
        con.execute("CREATE TABLE sales.orders (id INTEGER, ordered_at TIMESTAMP, amount DECIMAL(12,2), status VARCHAR)")
        con.executemany("INSERT INTO sales.orders VALUES (?, ?, ?, ?)", ROWS)


def _duck_expected(path: Path) -> dict[str, tuple[float, float, float]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return _expected(con.execute(EXPECTED_SQL.format(table="sales.orders")).fetchall())


def test_duckdb_file_in_place_equals_sql_in_the_file(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    _duck_file(ws / "shop.duckdb")
    _write(ws, {"key": "shop", "type": "duckdb", "path": "shop.duckdb",
                "tables": {"orders": {"table": "sales.orders", "mode": "in_place"}}})
    with WorkspaceService(ws, state_dir=tmp_path / "state") as svc:
        assert [i for i in svc.validate() if i.severity == "error"] == []
        got = _computed(svc)
        assert svc.computer().engines["orders"].dialect == "duckdb"
        _no_copy(svc)
    assert got == pytest.approx(_duck_expected(ws / "shop.duckdb")) and len(got) == 3

    # The file is opened read-only and only while a service uses it: another program may write to it between.
    with duckdb.connect(str(ws / "shop.duckdb")) as con:
        con.execute("INSERT INTO sales.orders VALUES (1000, '2026-05-04 10:00', 99.5, 'paid')")
    with WorkspaceService(ws, state_dir=tmp_path / "state") as svc:
        got = _computed(svc)
    assert got["2026-05-01"] == pytest.approx((99.5, 1.0, 1.0))
    assert got == pytest.approx(_duck_expected(ws / "shop.duckdb"))


# --- refused --------------------------------------------------------------------------------------------


def test_a_join_across_engines_is_refused_with_its_line(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    _duck_file(ws / "shop.duckdb")
    (ws / "data").mkdir()
    (ws / "data" / "customers.csv").write_text("id,segment\n1,smb\n2,enterprise\n", encoding="utf-8")
    doc = {"workspace": "inplace",
           "sources": [{"key": "shop", "type": "duckdb", "path": "shop.duckdb",
                        "tables": {"orders": {"table": "sales.orders", "mode": "in_place"}}},
                       {"key": "files", "type": "csv", "path": "data/"}],
           "models": [{"key": "orders", "table": "orders", "source": "shop", "time": "ordered_at",
                       "joins": [{"model": "customers", "on": {"id": "id"}}]},
                      {"key": "customers", "table": "customers", "source": "files"}],
           "metrics": [METRICS[0]]}
    (ws / "kpilot.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    with pytest.raises(WorkspaceInvalid) as info:
        WorkspaceService(ws, state_dir=tmp_path / "state")
    errors = [str(i) for i in info.value.issues if i.severity == "error"]
    assert len(errors) == 1, errors
    assert "kpilot.yaml:19:" in errors[0] and "models[0].joins[0].model" in errors[0]
    assert "model orders (in place in source 'shop') joins model customers (in the warehouse)" in errors[0]
    assert "Fix: compute both tables in the same place: copy the in-place one" in errors[0]

    # The computer refuses it too, naming both models, when handed such a workspace directly.
    workspace = Workspace.model_validate(doc)
    warehouse = DuckDBEngine(duckdb.connect())
    elsewhere = DuckDBEngine(duckdb.connect())
    mc = MetricComputer(warehouse, workspace, {"orders": {"ordered_at": "TIMESTAMP", "amount": "DOUBLE", "id": "INTEGER"},
                                               "customers": {"id": "BIGINT", "segment": "VARCHAR"}},
                        as_of=date(2026, 6, 1), engines={"orders": elsewhere})
    with pytest.raises(ComputeError, match=r"model orders joins model customers, but their tables are computed in "
                                           r"different databases .* Fix: copy one of them"):
        mc.series("revenue")


@pytest.mark.parametrize("kind", ["sqlite", "mysql"])
def test_in_place_on_sqlite_or_mysql_is_refused(tmp_path: Path, kind: str) -> None:
    ws = tmp_path / "ws"
    where = {"path": "shop.sqlite"} if kind == "sqlite" else {"url_env": "KP_TEST_MYSQL_URL"}
    _write(ws, {"key": "shop", "type": kind, **where, "tables": {"orders": {"mode": "in_place"}}})
    with pytest.raises(KpilotError) as info:
        load_workspace(ws / "kpilot.yaml")
    text = str(info.value)
    assert f"`mode: in_place` (computing inside the database) is not supported yet for {kind} sources" in text
    assert "Fix: use `mode: copy`" in text and "kpilot.yaml:" in text


def test_cursor_on_an_in_place_table_is_refused(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    _write(ws, {"key": "shop", "type": "duckdb", "path": "shop.duckdb",
                "tables": {"orders": {"mode": "in_place", "cursor": "id"}}})
    with pytest.raises(KpilotError, match="cursor and primary_key are for `mode: copy`"):
        load_workspace(ws / "kpilot.yaml")


@pytest.mark.postgres
def test_an_in_place_source_finds_its_url_among_the_stored_credentials(pg_schema: tuple[Any, str], tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """No environment variable, no secrets file: the URL stored with `kpilot secrets set` is used."""
    from cryptography.fernet import Fernet
    from typer.testing import CliRunner

    from kpilot.cli import app

    con, schema = pg_schema
    ws, state = tmp_path / "ws", tmp_path / "state"
    source = _pg_source(schema, monkeypatch)
    monkeypatch.delenv("KP_TEST_PG_URL")
    monkeypatch.setenv("KPILOT_SECRET_KEY", Fernet.generate_key().decode())
    _write(ws, source)
    stored = CliRunner().invoke(app, ["secrets", "set", "shop", "KP_TEST_PG_URL", "-w", str(ws), "--state-dir",
                                      str(state)], input=PG_URL + "\n")
    assert stored.exit_code == 0, stored.output
    with WorkspaceService(ws, state_dir=state) as svc:
        got = _computed(svc)
    table = f'"{schema}".orders'
    assert got == pytest.approx(_expected(con.execute(EXPECTED_SQL.format(table=table)).fetchall()))
