"""Tables computed in place (`mode: in_place`): the metrics' queries run in the source database.

Against the local PostgreSQL (a schema per test, dropped after) and DuckDB files: the values equal
hand-written SQL run in the source database, the warehouse holds no copy, and a row added at the source
shows in the next compute.
"""

from __future__ import annotations

import contextlib
import math
import os
import sqlite3
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


def approx_rows(expected: dict[str, tuple[float, ...]]) -> dict[str, Any]:
    """Each period's tuple compared approximately (pytest.approx takes no dict of tuples since pytest 9.2)."""
    return {k: pytest.approx(v) for k, v in expected.items()}


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
        assert got == approx_rows(_expected(con.execute(EXPECTED_SQL.format(table=table)).fetchall()))
        assert len(got) == 3
        mc = svc.computer()
        assert mc.engines["orders"].dialect == "postgres"
        _no_copy(svc)

        # A row added in PostgreSQL shows in the next compute (in-place aggregates are recomputed).
        con.execute(f"INSERT INTO {table} VALUES (1000, '2026-05-04 10:00', 99.5, 'paid')")
        got = _computed(svc)
        assert got["2026-05-01"] == pytest.approx((99.5, 1.0, 1.0))
        assert got == approx_rows(_expected(con.execute(EXPECTED_SQL.format(table=table)).fetchall()))


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
    assert got == approx_rows(_duck_expected(ws / "shop.duckdb")) and len(got) == 3

    # The file is opened read-only and only while a service uses it: another program may write to it between.
    with duckdb.connect(str(ws / "shop.duckdb")) as con:
        con.execute("INSERT INTO sales.orders VALUES (1000, '2026-05-04 10:00', 99.5, 'paid')")
    with WorkspaceService(ws, state_dir=tmp_path / "state") as svc:
        got = _computed(svc)
    assert got["2026-05-01"] == pytest.approx((99.5, 1.0, 1.0))
    assert got == approx_rows(_duck_expected(ws / "shop.duckdb"))


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
    with WorkspaceService(ws, state_root=state) as svc:  # --state-dir names a root of state folders
        got = _computed(svc)
    table = f'"{schema}".orders'
    assert got == approx_rows(_expected(con.execute(EXPECTED_SQL.format(table=table)).fetchall()))


# --- MySQL/MariaDB and SQLite -----------------------------------------------------------------------

MARIA = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}

WEEKLY = [{**m, "key": f"{m['key']}_w", "grain": "week"} for m in METRICS]

# The same values by hand in each database, by month and by week (weeks start on Sunday: see _write_dialect).
HAND_SQL = {
    ("mysql", "month"): ("SELECT DATE_FORMAT(ordered_at, '%Y-%m-01'), SUM(amount), "
                         "SUM(status = 'paid'), SUM(status = 'paid') / COUNT(*) FROM orders GROUP BY 1 ORDER BY 1"),
    ("mysql", "week"): ("SELECT DATE_FORMAT(DATE(ordered_at) - INTERVAL DAYOFWEEK(ordered_at) - 1 DAY, '%Y-%m-%d'), "
                        "SUM(amount), SUM(status = 'paid'), SUM(status = 'paid') / COUNT(*) FROM orders "
                        "GROUP BY 1 ORDER BY 1"),
    ("sqlite", "month"): ("SELECT strftime('%Y-%m-01', ordered_at), SUM(amount), SUM(status = 'paid'), "
                          "1.0 * SUM(status = 'paid') / COUNT(*) FROM orders GROUP BY 1 ORDER BY 1"),
    ("sqlite", "week"): ("SELECT date(ordered_at, '-6 days', 'weekday 0'), SUM(amount), SUM(status = 'paid'), "
                         "1.0 * SUM(status = 'paid') / COUNT(*) FROM orders GROUP BY 1 ORDER BY 1"),
}


def _computed_dialect(svc: WorkspaceService, suffix: str) -> dict[str, tuple[float, float, float]]:
    mc = svc.computer()
    series = [mc.series(k + suffix) for k in ("revenue", "paid_orders", "paid_share")]
    out = {}
    for i, p in enumerate(series[0].periods):
        values = tuple(float(s.reindex(series[0].periods).values[i]) for s in series)
        if not math.isnan(values[2]):
            out[p.isoformat()] = values
    return out


def _by_hand(cur: Any, kind: str, grain: str) -> dict[str, tuple[float, float, float]]:
    cur.execute(HAND_SQL[(kind, grain)])
    return {str(p): (float(r), float(n), float(s)) for p, r, n, s in cur.fetchall()}


def _check_dialect(ws: Path, state: Path, cur: Any, kind: str) -> None:
    with WorkspaceService(ws, state_dir=state) as svc:
        assert [str(i) for i in svc.validate() if i.severity == "error"] == []
        assert svc.sync().tables == []
        svc.load()
        svc.compute()
        assert svc.computer().engines["orders"].dialect == kind
        months, weeks = _computed_dialect(svc, ""), _computed_dialect(svc, "_w")
        _no_copy(svc)
    assert len(months) == 3 and months == approx_rows(_by_hand(cur, kind, "month"))
    assert len(weeks) > 3 and weeks == approx_rows(_by_hand(cur, kind, "week"))
    assert all(date.fromisoformat(w).weekday() == 6 for w in weeks)  # Sundays


def _write_dialect(ws: Path, source: dict[str, Any]) -> None:
    _write(ws, source, metrics=METRICS + WEEKLY)
    doc = yaml.safe_load((ws / "kpilot.yaml").read_text(encoding="utf-8"))
    doc["week_start"] = "sunday"
    (ws / "kpilot.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")


@pytest.fixture
def maria_db(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str]]:
    pymysql = pytest.importorskip("pymysql")
    name = f"kp_{uuid.uuid4().hex[:10]}"
    try:
        admin = pymysql.connect(**MARIA, autocommit=True)
    except pymysql.Error as exc:
        pytest.fail(f"MariaDB is not reachable at 127.0.0.1:3306 ({exc}); ./run-tests starts it")
    admin.cursor().execute(f"CREATE DATABASE `{name}`")
    con = pymysql.connect(**MARIA, database=name, autocommit=True)
    cur = con.cursor()
    cur.execute("CREATE TABLE orders (id INT PRIMARY KEY, ordered_at DATETIME, amount DECIMAL(12,2), "
                "status VARCHAR(20))")
    cur.executemany("INSERT INTO orders VALUES (%s, %s, %s, %s)", ROWS)
    monkeypatch.setenv("KP_TEST_MARIA_URL", f"mysql://root@127.0.0.1:3306/{name}")
    try:
        yield con, name
    finally:
        con.close()
        admin.cursor().execute(f"DROP DATABASE `{name}`")
        admin.close()


@pytest.mark.mariadb
def test_mysql_table_in_place_equals_sql_in_mariadb(maria_db: tuple[Any, str], tmp_path: Path) -> None:
    con, name = maria_db
    ws = tmp_path / "ws"
    _write_dialect(ws, {"key": "shop", "type": "mysql", "url_env": "KP_TEST_MARIA_URL",
                        "tables": {"orders": {"table": f"{name}.orders", "mode": "in_place"}}})
    _check_dialect(ws, tmp_path / "state", con.cursor(), "mysql")

    # A row added in MariaDB shows in the next compute, of the same service.
    with WorkspaceService(ws, state_dir=tmp_path / "state") as svc:
        _computed(svc)
        con.cursor().execute("INSERT INTO orders VALUES (1000, '2026-05-04 10:00', 99.5, 'paid')")
        got = _computed(svc)
    assert got["2026-05-01"] == pytest.approx((99.5, 1.0, 1.0))
    assert got == approx_rows(_by_hand(con.cursor(), "mysql", "month"))


@pytest.mark.mariadb
def test_validate_checks_columns_of_a_mysql_table_in_place(maria_db: tuple[Any, str], tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    _write(ws, {"key": "shop", "type": "mysql", "url_env": "KP_TEST_MARIA_URL",
                "tables": {"orders": {"table": f"{maria_db[1]}.orders", "mode": "in_place"}}},
           metrics=[{"key": "revenue", "model": "orders", "measure": "sum(amont)"}])
    with WorkspaceService(ws, state_dir=tmp_path / "state") as svc:
        errors = [str(i) for i in svc.validate() if i.severity == "error"]
    assert len(errors) == 1 and "amont" in errors[0] and "did you mean 'amount'" in errors[0], errors


def _sqlite_file(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as con:
        con.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, ordered_at DATETIME, amount NUMERIC, status TEXT)")
        con.executemany("INSERT INTO orders VALUES (?, ?, ?, ?)",
                        [(i, t.isoformat(sep=" "), a, s) for i, t, a, s in ROWS])
        con.commit()


def test_sqlite_file_in_place_equals_sql_in_sqlite(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    path = ws / "shop.sqlite"
    _sqlite_file(path)
    _write_dialect(ws, {"key": "shop", "type": "sqlite", "path": "shop.sqlite",
                        "tables": {"orders": {"mode": "in_place"}}})
    with contextlib.closing(sqlite3.connect(path)) as con:
        _check_dialect(ws, tmp_path / "state", con.cursor(), "sqlite")
        # A row added to the file shows in the next compute, of the same service.
        with WorkspaceService(ws, state_dir=tmp_path / "state") as svc:
            _computed(svc)
            con.execute("INSERT INTO orders VALUES (1000, '2026-05-04 10:00:00', 99.5, 'paid')")
            con.commit()
            got = _computed(svc)
        assert got["2026-05-01"] == pytest.approx((99.5, 1.0, 1.0))
        assert got == approx_rows(_by_hand(con.cursor(), "sqlite", "month"))


def test_validate_checks_columns_of_a_sqlite_table_in_place(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    _sqlite_file(ws / "shop.sqlite")
    _write(ws, {"key": "shop", "type": "sqlite", "path": "shop.sqlite", "tables": {"orders": {"mode": "in_place"}}},
           metrics=[{"key": "revenue", "model": "orders", "measure": "sum(amont)"}])
    with WorkspaceService(ws, state_dir=tmp_path / "state") as svc:
        errors = [str(i) for i in svc.validate() if i.severity == "error"]
    assert len(errors) == 1 and "amont" in errors[0] and "did you mean 'amount'" in errors[0], errors


@pytest.mark.parametrize(("metric", "model_tz", "expected", "where"), [
    ({"key": "m", "model": "orders", "measure": "median(amount)"}, None,
     "median() and quantile_cont() are not supported on tables computed in place on SQLite", "metrics[0].measure"),
    ({"key": "m", "model": "orders", "measure": "sum(amount)"}, "America/New_York",
     "model orders: time zone conversions are not supported on tables computed in place on SQLite",
     "models[0].timezone"),
])
def test_what_sqlite_cannot_compute_in_place_is_refused_with_its_line(tmp_path: Path, metric: dict[str, Any],
                                                                      model_tz: str | None, expected: str,
                                                                      where: str) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    _sqlite_file(ws / "shop.sqlite")
    model = {"key": "orders", "table": "orders", "source": "shop", "time": "ordered_at",
             **({"timezone": model_tz} if model_tz else {})}
    _write(ws, {"key": "shop", "type": "sqlite", "path": "shop.sqlite", "tables": {"orders": {"mode": "in_place"}}},
           metrics=[metric], models=[model])
    with pytest.raises(WorkspaceInvalid) as info:
        WorkspaceService(ws, state_dir=tmp_path / "state")
    errors = [str(i) for i in info.value.issues if i.severity == "error"]
    assert len(errors) == 1 and expected in errors[0] and where in errors[0] and "kpilot.yaml:" in errors[0], errors
    assert "`mode: copy`" in errors[0]


def test_the_engines_refuse_what_they_cannot_run(tmp_path: Path) -> None:
    """Behind validation, the engine itself refuses a construct it has no rewrite for (never a wrong number)."""
    from sqlglot import exp

    from kpilot.compute.engine import EngineError
    from kpilot.compute.engine_sqlite import SQLiteEngine

    _sqlite_file(tmp_path / "shop.sqlite")
    engine = SQLiteEngine(tmp_path / "shop.sqlite")
    try:
        assert engine.query(exp.select("COUNT(*) AS n").from_("orders")).to_pylist() == [{"n": 60}]
        with pytest.raises(EngineError, match=r"median\(\) and quantile_cont\(\) are not supported .* on SQLite"):
            engine.query(exp.select(exp.Median(this=exp.column("amount"))).from_("orders"))
        with pytest.raises(EngineError, match="time zone conversions are not supported"):
            engine.query(exp.select(exp.AtTimeZone(this=exp.column("ordered_at"), zone=exp.Literal.string("UTC")))
                         .from_("orders"))
        with pytest.raises(EngineError, match="SQLite rejected a generated query: no such column: amont"):
            engine.query(exp.select(exp.Sum(this=exp.column("amont"))).from_("orders"))
    finally:
        engine.close()


# Every construct the compiler uses, computed in place equals computed on a copy of the same rows.

SUBS = [(i, 1 + i % 7, f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}",
         None if i % 4 == 0 else f"2026-{1 + i % 5:02d}-{1 + (i * 3) % 28:02d}",
         float(10 * (1 + i % 9)), ("basic", "pro", "team")[i % 3]) for i in range(1, 80)]
CUSTOMERS = [(c, "enterprise" if c % 2 else "smb") for c in range(1, 8)]
BALANCES = [(f"2026-{1 + d // 28:02d}-{1 + d % 28:02d} 0{d % 3}:00:00", a, float(d * len(a + "x" * d) % 97))
            for d in range(0, 110, 3) for a in ("a", "b")]

FULL_MODELS: list[dict[str, Any]] = [
    {"key": "subs", "table": "subs", "source": "shop", "time": "started_at",
     "validity": {"from": "started_at", "to": "ended_at"}, "dimensions": ["plan"],
     "joins": [{"model": "customers", "on": {"customer_id": "id"}}]},
    {"key": "customers", "table": "customers", "source": "shop"},
    {"key": "balances", "table": "balances", "source": "shop", "time": "taken_at", "dimensions": ["account"]},
]
FULL_METRICS: list[dict[str, Any]] = [
    {"key": "active_mrr", "type": "snapshot", "model": "subs", "measure": "sum(mrr)", "grain": "month"},
    {"key": "active_pro", "type": "snapshot", "model": "subs", "measure": "count(*)", "filter": "plan = 'pro'",
     "grain": "week"},
    {"key": "avg_mrr", "type": "snapshot", "model": "subs", "measure": "avg(mrr)", "grain": "quarter"},
    {"key": "new_plans", "model": "subs", "measure": "count(distinct plan)", "filter": "mrr > 20", "grain": "month"},
    {"key": "big_new", "model": "subs", "measure": "count_if(mrr >= 50)", "grain": "week"},
    {"key": "enterprise_mrr", "model": "subs", "measure": "sum(mrr)", "filter": "customers.segment = 'enterprise'",
     "grain": "quarter"},
    {"key": "balance", "type": "snapshot", "model": "balances", "time": "taken_at", "measure": "sum(balance)",
     "grain": "week"},
    {"key": "year_mrr", "model": "subs", "measure": "max(mrr) - min(mrr)", "grain": "year"},
]


def _full_ws(ws: Path, source: dict[str, Any], mode: str) -> None:
    tables = {t: {**spec, "mode": mode} for t, spec in source["tables"].items()}
    doc = {"workspace": "inplace", "week_start": "wednesday", "sources": [{**source, "tables": tables}],
           "models": FULL_MODELS, "metrics": FULL_METRICS}
    ws.mkdir(exist_ok=True)
    (ws / "kpilot.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")


def series_of(ws: Path, state: Path, *, sync: bool = True) -> dict[str, Any]:
    """Each metric's series and breakdowns, as the service computes them (the sources synced first, with `sync`;
    files loaded)."""
    with WorkspaceService(ws, state_dir=state) as svc:
        assert [str(i) for i in svc.validate() if i.severity == "error"] == []
        if sync:
            svc.sync()
        svc.load()
        svc.compute()
        mc = svc.computer()
        out: dict[str, Any] = {"engines": sorted({e.dialect for e in mc.engines.values()})}
        for key in [m["key"] for m in FULL_METRICS]:
            s = mc.series(key)
            out[key] = (s.periods, [None if math.isnan(v) else v for v in s.values])
        for key, dim in (("active_mrr", "plan"), ("new_plans", "plan"), ("balance", "account")):
            parts = mc.breakdown(key, [dim])
            out[f"{key}/{dim}"] = {k: (s.periods, [None if math.isnan(v) else v for v in s.values])
                                   for k, s in parts.items()}
    return out


def _same_in_place_and_copied(tmp_path: Path, source: dict[str, Any]) -> None:
    _full_ws(tmp_path / "copy", source, "copy")
    _full_ws(tmp_path / "inplace", source, "in_place")
    copied = series_of(tmp_path / "copy", tmp_path / "state_copy")
    in_place = series_of(tmp_path / "inplace", tmp_path / "state_inplace")
    assert copied.pop("engines") == [] and in_place.pop("engines") == [source["type"]]
    assert set(copied) == set(in_place)
    for key, value in copied.items():
        parts = value if isinstance(value, dict) else {(): value}
        got = in_place[key] if isinstance(value, dict) else {(): in_place[key]}
        assert set(got) == set(parts), key
        for k, (periods, values) in parts.items():
            assert got[k][0] == periods, (key, k)
            assert [v is None for v in got[k][1]] == [v is None for v in values], (key, k)
            assert [v for v in got[k][1] if v is not None] == pytest.approx([v for v in values if v is not None]), key
    assert any(v is not None and v > 0 for v in in_place["active_mrr"][1])


def test_every_construct_on_sqlite_in_place_equals_a_copy(tmp_path: Path) -> None:
    for name in ("copy", "inplace"):
        (tmp_path / name).mkdir()
        with contextlib.closing(sqlite3.connect(tmp_path / name / "shop.sqlite")) as con:
            con.execute("CREATE TABLE subs (id INTEGER, customer_id INTEGER, started_at DATE, ended_at DATE, "
                        "mrr REAL, plan TEXT)")
            con.execute("CREATE TABLE customers (id INTEGER, segment TEXT)")
            con.execute("CREATE TABLE balances (taken_at DATETIME, account TEXT, balance REAL)")
            con.executemany("INSERT INTO subs VALUES (?, ?, ?, ?, ?, ?)", SUBS)
            con.executemany("INSERT INTO customers VALUES (?, ?)", CUSTOMERS)
            con.executemany("INSERT INTO balances VALUES (?, ?, ?)", BALANCES)
            con.commit()
    _same_in_place_and_copied(tmp_path, {"key": "shop", "type": "sqlite", "path": "shop.sqlite",
                                         "tables": {"subs": {}, "customers": {}, "balances": {}}})


@pytest.mark.mariadb
def test_every_construct_on_mariadb_in_place_equals_a_copy(maria_db: tuple[Any, str], tmp_path: Path) -> None:
    con, name = maria_db
    cur = con.cursor()
    cur.execute("CREATE TABLE subs (id INT, customer_id INT, started_at DATE, ended_at DATE, mrr DOUBLE, "
                "plan VARCHAR(10))")
    cur.execute("CREATE TABLE customers (id INT, segment VARCHAR(20))")
    cur.execute("CREATE TABLE balances (taken_at DATETIME, account VARCHAR(5), balance DOUBLE)")
    cur.executemany("INSERT INTO subs VALUES (%s, %s, %s, %s, %s, %s)", SUBS)
    cur.executemany("INSERT INTO customers VALUES (%s, %s)", CUSTOMERS)
    cur.executemany("INSERT INTO balances VALUES (%s, %s, %s)", BALANCES)
    _same_in_place_and_copied(tmp_path, {"key": "shop", "type": "mysql", "url_env": "KP_TEST_MARIA_URL",
                                         "tables": {t: {"table": f"{name}.{t}"}
                                                    for t in ("subs", "customers", "balances")}})
