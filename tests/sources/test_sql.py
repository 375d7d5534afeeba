"""Database sources against real engines: PostgreSQL and MariaDB on this machine, SQLite and DuckDB files.

Each test creates its own schema, database or file, and checks the warehouse against the source with
hand-written SQL on both sides.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from kpilot.model.workspace import Source
from kpilot.sources.sync import SyncReport, sync_sources

PG_URL = os.environ.get("KPILOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
MARIA = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}
SECRET = "S3cret-Pa55word"


# --- source databases ---------------------------------------------------------------------------


@dataclass
class Db:
    """A source database for one test: run SQL on it, and the source fields that point kpilot at it."""

    kind: str
    con: Any
    fields: dict[str, Any]
    env: dict[str, str]
    placeholder: str
    ts_type: str

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.many(sql, [params]) if params else self.con.cursor().execute(sql)
        self.con.commit()

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        cur = self.con.cursor()
        cur.executemany(sql.replace("?", self.placeholder), [tuple(self._value(v) for v in r) for r in rows])
        self.con.commit()

    def _value(self, v: Any) -> Any:
        """SQLite takes text for dates (as applications write them) and floats for decimals."""
        if self.kind != "sqlite":
            return v
        if isinstance(v, Decimal):
            return float(v)
        return v.isoformat(" ") if isinstance(v, datetime) else v.isoformat() if isinstance(v, date) else v

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        cur = self.con.cursor()
        cur.execute(sql)
        out = [tuple(r) for r in cur.fetchall()]
        self.con.commit()
        return out


def _postgres(tmp_path: Path) -> Iterator[Db]:
    import psycopg

    schema = f"kp_{uuid.uuid4().hex[:10]}"
    con = psycopg.connect(PG_URL)
    con.execute(f'CREATE SCHEMA "{schema}"')
    con.commit()
    con.execute(f'SET search_path TO "{schema}"')
    con.commit()
    try:
        # The connector's session searches this test's schema first: bare names like `orders` resolve there,
        # whatever other tests running beside it hold in other schemas.
        url = f"{PG_URL}{'&' if '?' in PG_URL else '?'}options=-csearch_path%3D{schema}"
        yield Db("postgres", con, {"url_env": "KP_TEST_PG_URL"}, {"KP_TEST_PG_URL": url}, "%s", "timestamp")
    finally:
        con.rollback()
        con.execute(f'DROP SCHEMA "{schema}" CASCADE')
        con.commit()
        con.close()


def _mariadb(tmp_path: Path) -> Iterator[Db]:
    import pymysql

    name = f"kp_{uuid.uuid4().hex[:10]}"
    admin = pymysql.connect(**MARIA, autocommit=True)  # type: ignore[arg-type]
    admin.cursor().execute(f"CREATE DATABASE `{name}`")
    con = pymysql.connect(**MARIA, database=name)  # type: ignore[arg-type]
    try:
        yield Db("mariadb", con, {"url_env": "KP_TEST_MARIA_URL"},
                 {"KP_TEST_MARIA_URL": f"mysql://root@127.0.0.1:3306/{name}"}, "%s", "datetime")
    finally:
        con.close()
        admin.cursor().execute(f"DROP DATABASE `{name}`")
        admin.close()


def _sqlite(tmp_path: Path) -> Iterator[Db]:
    path = tmp_path / "ws" / "shop.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path)
    yield Db("sqlite", con, {"path": "shop.sqlite"}, {}, "?", "datetime")
    con.close()


class _DuckSource:
    """A DuckDB source file, opened for each statement so that the connector may open it read-only."""

    def __init__(self, path: Path):
        self.path = path

    def cursor(self) -> Any:
        return _DuckCursor(self.path)

    def commit(self) -> None:
        pass

    def close(self) -> None:
        pass


class _DuckCursor:
    def __init__(self, path: Path):
        self.path = path
        self.result: list[tuple[Any, ...]] = []

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        with duckdb.connect(str(self.path)) as con:
            self.result = con.execute(sql, list(params)).fetchall()

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with duckdb.connect(str(self.path)) as con:
            con.executemany(sql, [list(r) for r in rows])

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self.result


def _duckdb(tmp_path: Path) -> Iterator[Db]:
    path = tmp_path / "ws" / "shop.duckdb"
    path.parent.mkdir(parents=True, exist_ok=True)
    yield Db("duckdb", _DuckSource(path), {"path": "shop.duckdb"}, {}, "?", "timestamp")


BACKENDS = {"postgres": _postgres, "mariadb": _mariadb, "sqlite": _sqlite, "duckdb": _duckdb}
ALL = [pytest.param("postgres", marks=pytest.mark.postgres), pytest.param("mariadb", marks=pytest.mark.mariadb),
       "sqlite", "duckdb"]
TYPES = {"postgres": "postgres", "mariadb": "mysql", "sqlite": "sqlite", "duckdb": "duckdb"}


@pytest.fixture
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Db]:
    yield from BACKENDS[request.param](tmp_path)


# --- helpers ------------------------------------------------------------------------------------

COLUMNS = "id, updated_at, amount, day, note"


def _create_orders(db: Db, n: int, table: str = "orders") -> None:
    db.run(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, updated_at {db.ts_type}, amount DECIMAL(12,2), "
           "day DATE, note VARCHAR(40))")
    db.many(f"INSERT INTO {table} ({COLUMNS}) VALUES (?, ?, ?, ?, ?)", [_order(i) for i in range(1, n + 1)])


def _order(i: int, bump: int = 0) -> tuple[Any, ...]:
    # Seven rows share each updated_at, so batches end in the middle of equal cursor values.
    stamp = datetime(2026 + bump, 1, 1) + timedelta(seconds=i // 7)
    return (i, stamp, Decimal(i * 3) / 4, date(2026, 1 + i % 12, 1 + i % 28), None if i % 5 == 0 else f"n°{i}")


def _canon(v: Any) -> Any:
    """One spelling per value: SQLite returns text for dates and floats for decimals."""
    if isinstance(v, Decimal | float | int):
        return f"{v:.2f}"
    if isinstance(v, datetime):
        return v.isoformat(" ")
    if isinstance(v, date):
        return v.isoformat()
    return v if v is None or isinstance(v, str) else str(v)


def _canon_rows(rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
    return [tuple(_canon(v) for v in r) for r in rows]


def _source(db: Db, tables: dict[str, Any], batch_size: int = 40) -> Source:
    return Source.model_validate({"key": "shop", "type": TYPES[db.kind], "batch_size": batch_size, "tables": tables,
                                  **db.fields})


def _sync(db: Db, wh: duckdb.DuckDBPyConnection, source: Source, tmp_path: Path, **kw: Any) -> SyncReport:
    report = sync_sources(wh, [source], tmp_path / "ws", environ=db.env, **kw)
    assert not report.failed, [t.error for t in report.failed]
    return report


def _same(db: Db, wh: duckdb.DuckDBPyConnection, table: str, source_table: str = "orders") -> None:
    """Row for row, and the hand-written totals, on both sides."""
    ours = wh.execute(f"SELECT {COLUMNS} FROM {table} ORDER BY id").fetchall()
    theirs = db.rows(f"SELECT {COLUMNS} FROM {source_table} ORDER BY id")
    assert _canon_rows(ours) == _canon_rows(theirs)
    ours_totals = wh.execute(f"SELECT count(*), count(DISTINCT id), sum(amount), count(note) FROM {table}").fetchall()
    theirs_totals = db.rows(f"SELECT count(*), count(DISTINCT id), sum(amount), count(note) FROM {source_table}")
    assert _canon_rows(ours_totals) == _canon_rows(theirs_totals)


# --- copy: full and incremental ------------------------------------------------------------------


@pytest.mark.parametrize("db", ALL, indirect=True)
def test_full_and_incremental_copy_equal_the_source(db: Db, tmp_path: Path) -> None:
    _create_orders(db, 250)
    source = _source(db, {"orders": {"cursor": "updated_at", "primary_key": "id"}, "orders_all": "orders"})
    wh = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    report = _sync(db, wh, source, tmp_path)
    assert [(t.table, t.status, t.rows) for t in report.tables] == [("orders", "synced", 250),
                                                                     ("orders_all", "copied", 250)]
    _same(db, wh, "orders")
    _same(db, wh, "orders_all")
    types = dict(wh.execute("SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'orders'")
                 .fetchall())
    assert types["id"] in ("BIGINT", "INTEGER") and types["amount"] == "DECIMAL(12,2)"
    assert types["day"] == "DATE" and types["updated_at"] == "TIMESTAMP" and types["note"] == "VARCHAR"

    # New rows and changed rows (a later updated_at) arrive; nothing is read twice into the table.
    db.many(f"INSERT INTO orders ({COLUMNS}) VALUES (?, ?, ?, ?, ?)", [_order(i) for i in range(251, 261)])
    for i in (3, 77, 140):
        db.run("UPDATE orders SET amount = ?, updated_at = ? WHERE id = ?", [Decimal("999.99"), _order(i, 1)[1], i])
    report = _sync(db, wh, source, tmp_path)
    again = {t.table: t for t in report.tables}
    assert again["orders"].rows == 260
    # Only the new and changed rows were read (plus the rows sharing the last cursor value).
    assert again["orders"].rows_read < 30
    _same(db, wh, "orders")
    _same(db, wh, "orders_all")
    assert wh.execute("SELECT amount FROM orders WHERE id = 77").fetchall() == [(Decimal("999.99"),)]

    state = wh.execute("SELECT cursor_column, rows, status, version FROM kpilot.syncs WHERE table_name = 'orders'")
    assert state.fetchall() == [("updated_at", 260, "ok", 2)]


@pytest.mark.parametrize("db", ["sqlite", "duckdb"], indirect=True)
def test_append_only_cursor_without_key_misses_and_repeats_nothing(db: Db, tmp_path: Path) -> None:
    """Without a primary key, a commit never splits rows with one cursor value, and the last value's rows
    are replaced by the next sync (rows 101-104 share the last cursor value of the first sync)."""
    _create_orders(db, 100)
    source = _source(db, {"orders": {"cursor": "updated_at"}}, batch_size=6)
    wh = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    _sync(db, wh, source, tmp_path)
    _same(db, wh, "orders")
    db.many(f"INSERT INTO orders ({COLUMNS}) VALUES (?, ?, ?, ?, ?)", [_order(i) for i in range(101, 130)])
    report = _sync(db, wh, source, tmp_path)
    _same(db, wh, "orders")
    assert report.tables[0].rows_read == 29 + 3  # the new rows, and the 3 rows of the last value read again


@pytest.mark.postgres
def test_postgres_quotes_identifiers_and_keeps_types(tmp_path: Path) -> None:
    gen = _postgres(tmp_path)
    db = next(gen)
    try:
        db.run('CREATE TABLE "Odd ""name""" ("sp ace" int, "select" text, at timestamptz, big numeric, ok boolean)')
        db.run('INSERT INTO "Odd ""name""" VALUES (1, $$it\'s; DROP TABLE x$$, \'2026-03-01 10:00+02\', '
               '12345678901234567890.5, true)')
        db.run('INSERT INTO "Odd ""name""" VALUES (2, NULL, NULL, NULL, NULL)')
        source = _source(db, {"odd": {"table": 'Odd "name"', "cursor": "sp ace"}})
        wh = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
        _sync(db, wh, source, tmp_path)
        rows = wh.execute('SELECT "sp ace", "select", "at" AT TIME ZONE \'UTC\', big, ok FROM odd ORDER BY 1')
        assert rows.fetchall() == [(1, "it's; DROP TABLE x", datetime(2026, 3, 1, 8, 0), 12345678901234567890.5, True),
                                   (2, None, None, None, None)]
    finally:
        gen.close()


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("db", ["sqlite", "duckdb"], indirect=True)
def test_unknown_table_or_column_is_reported_with_a_fix(db: Db, tmp_path: Path) -> None:
    _create_orders(db, 3)
    wh = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    report = sync_sources(wh, [_source(db, {"orders": "order", "o2": {"table": "orders", "cursor": "updatedat"}})],
                          tmp_path / "ws")
    errors = [t.error for t in report.failed]
    assert "table 'order' not found; did you mean 'orders'?" in errors[0]
    assert "has no column 'updatedat' (its `cursor`); did you mean 'updated_at'?" in errors[1]
    assert all("source 'shop'" in e and "Fix:" in e for e in errors if e)


def test_database_source_fields_are_checked() -> None:
    def error(**fields: Any) -> str:
        with pytest.raises(ValueError) as info:
            Source.model_validate({"key": "db", **fields})
        return str(info.value)

    assert "holds a password" in error(type="postgres", url=f"postgresql://u:{SECRET}@h/db", tables={"a": "a"})
    assert "needs `url_env:`" in error(type="mysql", tables={"a": "a"})
    assert "needs `path:`" in error(type="sqlite", tables={"a": "a"})
    assert "needs `tables:`" in error(type="duckdb", path="x.duckdb")
    assert Source.model_validate({"key": "db", "type": "sqlite", "path": "x.sqlite",  # computed in place
                                  "tables": {"a": {"mode": "in_place"}}}).table_specs()["a"].mode == "in_place"
    assert "cursor, primary_key and mode are for database sources" in error(
        type="csv", path="data/", tables={"a": {"cursor": "x"}})
    ok = Source.model_validate({"key": "db", "type": "postgres", "url_env": "DB_URL",
                                "tables": {"a": "s.t", "b": {"cursor": "c", "primary_key": ["x", "y"]}}})
    specs = ok.table_specs()
    assert (specs["a"].table, specs["a"].cursor, specs["b"].table, specs["b"].key_columns) == (
        "s.t", None, "b", ["x", "y"])


# --- the command: interruption and failures ---------------------------------------------------------


def _workspace(tmp_path: Path, source: dict[str, Any]) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir(exist_ok=True)
    doc = {"workspace": "sync", "sources": [source]}
    (ws / "kpilot.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return ws


def _kpilot(ws: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    full_env = {**os.environ, **env, "KPILOT_STATE_DIR": str(ws.parent / "state")}
    return subprocess.Popen([sys.executable, "-m", "kpilot.cli", *args, "-w", str(ws)], env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _run(ws: Path, env: dict[str, str], *args: str) -> tuple[int, str]:
    proc = _kpilot(ws, env, *args)
    stdout, stderr = proc.communicate(timeout=180)
    return proc.returncode, stdout + stderr


def _warehouse(ws: Path) -> Path:
    return next((ws.parent / "state").rglob("warehouse.duckdb"))


@pytest.mark.slow
@pytest.mark.parametrize("db", [pytest.param("postgres", marks=pytest.mark.postgres),
                                pytest.param("mariadb", marks=pytest.mark.mariadb), "sqlite"], indirect=True)
def test_sync_killed_mid_way_resumes_without_duplicate_or_gap(db: Db, tmp_path: Path) -> None:
    n = 40_000
    db.run(f"CREATE TABLE events (id INTEGER PRIMARY KEY, updated_at {db.ts_type}, amount DECIMAL(12,2), "
           "day DATE, note VARCHAR(40))")
    db.many(f"INSERT INTO events ({COLUMNS}) VALUES (?, ?, ?, ?, ?)", [_order(i) for i in range(1, n + 1)])
    ws = _workspace(tmp_path, {"key": "shop", "type": TYPES[db.kind], "batch_size": 50,
                               "tables": {"events": {"cursor": "updated_at", "primary_key": "id"}}, **db.fields})
    proc = _kpilot(ws, db.env, "sync")
    deadline = time.monotonic() + 120
    wal = None
    # Kill once a good number of batches are committed (the WAL grows with every commit).
    while time.monotonic() < deadline and proc.poll() is None:
        found = list((ws.parent / "state").rglob("warehouse.duckdb.wal"))
        wal = found[0] if found else None
        if wal is not None and wal.exists() and wal.stat().st_size > 150_000:
            break
        time.sleep(0.01)
    assert proc.poll() is None, f"the sync finished before it could be killed: {proc.communicate()}"
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)

    with duckdb.connect(str(_warehouse(ws))) as wh:
        copied = wh.execute("SELECT count(*), count(DISTINCT id) FROM events").fetchall()[0]
        state = wh.execute("SELECT rows FROM kpilot.syncs WHERE table_name = 'events'").fetchall()
    assert 0 < copied[0] < n and copied[0] == copied[1], copied  # killed mid-way, no duplicate so far
    assert state == [(copied[0],)]  # the state covers exactly the committed rows

    # Rows arrive and change while the sync is down.
    db.many(f"INSERT INTO events ({COLUMNS}) VALUES (?, ?, ?, ?, ?)", [_order(i) for i in range(n + 1, n + 21)])
    db.run("UPDATE events SET amount = 1.25, updated_at = ? WHERE id = 2", [_order(2, 1)[1]])
    code, output = _run(ws, db.env, "sync")
    assert code == 0, output
    with duckdb.connect(str(_warehouse(ws))) as wh:
        _same(db, wh, "events", "events")


@pytest.mark.parametrize("db", [pytest.param("postgres", marks=pytest.mark.postgres),
                                pytest.param("mariadb", marks=pytest.mark.mariadb)], indirect=True)
def test_failed_sync_keeps_previous_data_and_never_prints_the_password(db: Db, tmp_path: Path) -> None:
    _create_orders(db, 30)
    var = next(iter(db.env))
    ws = _workspace(tmp_path, {"key": "shop", "type": TYPES[db.kind], "url_env": var,
                               "tables": {"orders": {"cursor": "updated_at", "primary_key": "id"}}})
    code, output = _run(ws, db.env, "sync")
    assert code == 0, output

    # Bad credentials: a user that does not exist, or a wrong password.
    url = db.env[var]
    bad = (url.replace("postgres@", f"kpilot_nobody:{SECRET}@") if db.kind == "postgres"
           else url.replace("root@", f"root:{SECRET}@"))
    code, output = _run(ws, {var: bad}, "sync")
    assert code == 1
    assert "source 'shop': cannot connect to the database" in output and f"${var}" in output
    assert SECRET not in output and "kpilot_nobody:" not in output

    # The table is dropped at the source.
    db.run("DROP TABLE orders")
    code, output = _run(ws, db.env, "sync")
    assert code == 1
    assert "source 'shop': table 'orders' not found" in output and "Fix:" in output
    assert "1 table(s) failed; they keep the data of their last good sync." in output
    with duckdb.connect(str(_warehouse(ws))) as wh:
        assert wh.execute("SELECT count(*), sum(amount) FROM orders").fetchall() == [(30, Decimal("348.75"))]
        status = wh.execute("SELECT status, error, rows FROM kpilot.syncs").fetchall()
    assert status[0][0] == "failed" and "not found" in status[0][1] and status[0][2] == 30


def test_missing_environment_variable_says_which(tmp_path: Path) -> None:
    ws = _workspace(tmp_path, {"key": "crm", "type": "postgres", "url_env": "KP_SURELY_UNSET_URL",
                               "tables": {"deals": "deals"}})
    os.environ.pop("KP_SURELY_UNSET_URL", None)
    code, output = _run(ws, {}, "sync")
    assert code == 1
    assert "source 'crm': the environment variable KP_SURELY_UNSET_URL is not set" in output


# --- through the workspace: sync, then metrics over the copied table -----------------------------


def test_synced_table_feeds_metrics_and_load_asks_for_a_sync_first(tmp_path: Path) -> None:
    from kpilot.model import KpilotError
    from kpilot.service import WorkspaceService

    ws = tmp_path / "ws"
    ws.mkdir()
    with sqlite3.connect(ws / "shop.sqlite") as con:
        con.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, day DATE, amount REAL)")
        con.executemany("INSERT INTO orders VALUES (?, ?, ?)",
                        [(i, f"2026-0{1 + i % 3}-{1 + i % 28:02d}", i * 2.5) for i in range(1, 91)])
    doc = {"workspace": "sync", "sources": [{"key": "shop", "type": "sqlite", "path": "shop.sqlite",
                                             "tables": {"orders": {"cursor": "id", "primary_key": "id"}}}],
           "models": [{"key": "orders", "table": "orders", "source": "shop", "time": "day"}],
           "metrics": [{"key": "revenue", "model": "orders", "measure": "sum(amount)", "grain": "month"}]}
    (ws / "kpilot.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    with WorkspaceService(ws, state_dir=tmp_path / "state") as svc:
        with pytest.raises(KpilotError, match=r"orders come from database source\(s\) shop .* run `kpilot sync`"):
            svc.load()
        assert ("warning", "not_synced") in [(i.severity, i.code) for i in svc.validate()]
        assert [(t.table, t.rows) for t in svc.sync().tables] == [("orders", 90)]
        assert [i for i in svc.validate() if i.severity == "error" or i.code == "not_synced"] == []
        svc.load()
        svc.compute()
        series = svc.computer().series("revenue")
        got = dict(zip([p.isoformat() for p in series.periods], series.values, strict=True))
    with sqlite3.connect(ws / "shop.sqlite") as con:
        expected = dict(con.execute("SELECT substr(day, 1, 7) || '-01', sum(amount) FROM orders GROUP BY 1").fetchall())
    assert {k: v for k, v in got.items() if k in expected} == pytest.approx(expected)
    assert len(expected) == 3


def test_sync_command_prints_a_table_in_french(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    with sqlite3.connect(ws / "shop.sqlite") as con:
        con.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, amount REAL)")
        con.executemany("INSERT INTO orders VALUES (?, ?)", [(i, i / 2) for i in range(1, 1235)])
    doc = {"workspace": "sync", "language": "fr",
           "sources": [{"key": "shop", "type": "sqlite", "path": "shop.sqlite", "tables": {"orders": "orders"}}]}
    (ws / "kpilot.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    code, output = _run(ws, {}, "sync")
    assert code == 0, output
    assert "shop" in output and "orders" in output and "1\u202f234" in output
    code, output = _run(ws, {}, "sync", "nope")
    assert code == 1 and "aucune source de base de données « nope »" in output


def test_urls_never_print_and_types_map_to_the_warehouse() -> None:
    from kpilot.sources.databases.connectors import Secret, warehouse_type

    url = Secret(f"postgresql://kpilot:{SECRET}%40x@db:5432/shop")
    assert SECRET not in f"{url} {url!r} {[url]}"
    assert url.scrub(f"failed for {url.reveal()} with {SECRET}@x and {SECRET}%40x") == "failed for *** with *** and ***"
    assert {t: warehouse_type(t) for t in (
        "integer", "bigint unsigned", "numeric(12,2)", "numeric", "decimal(65,2)", "tinyint(1)", "boolean",
        "timestamp without time zone", "timestamp with time zone", "datetime", "date", "time", "double precision",
        "jsonb", "enum('print','x')", "bytea", "character varying(40)")} == {
        "integer": "BIGINT", "bigint unsigned": "DECIMAL(20,0)", "numeric(12,2)": "DECIMAL(12,2)",
        "numeric": "DOUBLE", "decimal(65,2)": "DOUBLE", "tinyint(1)": "BOOLEAN", "boolean": "BOOLEAN",
        "timestamp without time zone": "TIMESTAMP", "timestamp with time zone": "TIMESTAMPTZ",
        "datetime": "TIMESTAMP", "date": "DATE", "time": "TIME", "double precision": "DOUBLE", "jsonb": "VARCHAR",
        "enum('print','x')": "VARCHAR", "bytea": "BLOB", "character varying(40)": "VARCHAR"}


@pytest.mark.postgres
def test_url_from_the_secrets_file(tmp_path: Path) -> None:
    gen = _postgres(tmp_path)
    db = next(gen)
    try:
        _create_orders(db, 12)
        schema = db.rows("SELECT current_schema()")[0][0]
        ws = _workspace(tmp_path, {"key": "shop", "type": "postgres", "url_env": "KP_TEST_SECRET_URL",
                                   "tables": {"orders": f"{schema}.orders"}})
        (ws / ".kpilot").mkdir()
        (ws / ".kpilot" / "secrets.env").write_text(f"# kpilot secrets\nexport KP_TEST_SECRET_URL='{PG_URL}'\n",
                                                     encoding="utf-8")
        os.environ.pop("KP_TEST_SECRET_URL", None)
        code, output = _run(ws, {}, "sync")
        assert code == 0, output
        with duckdb.connect(str(_warehouse(ws))) as wh:
            _same(db, wh, "orders")
    finally:
        gen.close()


def test_a_value_that_does_not_fit_its_column_keeps_the_committed_rows(tmp_path: Path) -> None:
    """SQLite keeps text in an INTEGER column: the batch holding it fails, the batches before it stay."""
    (tmp_path / "ws").mkdir()
    with sqlite3.connect(tmp_path / "ws" / "shop.sqlite") as con:
        con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)")
        con.executemany("INSERT INTO t VALUES (?, ?)", [(i, "oops" if i == 25 else i) for i in range(1, 31)])
    source = Source.model_validate({"key": "shop", "type": "sqlite", "path": "shop.sqlite", "batch_size": 4,
                                    "tables": {"t": {"cursor": "id"}, "t_full": "t"}})
    wh = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    report = sync_sources(wh, [source], tmp_path / "ws")
    assert [t.status for t in report.tables] == ["failed", "failed"]
    assert all("Could not convert string 'oops'" in (t.error or "") and "Fix: correct the value" in (t.error or "")
               for t in report.tables)
    # The commits before the failing one (each holds back its last cursor value for the next).
    assert wh.execute("SELECT count(*), max(id) FROM t").fetchall() == [(23, 23)]
    assert wh.execute("SELECT rows, cursor_value FROM kpilot.syncs WHERE table_name = 't'").fetchall() == [
        (23, '{"type": "int", "value": 23}')]
    assert "t_full" not in {r[0] for r in wh.execute("SHOW TABLES").fetchall()}  # all or nothing


@pytest.mark.parametrize("db", ["sqlite", "duckdb"], indirect=True)
def test_full_resync_and_a_new_column_copy_the_table_afresh(db: Db, tmp_path: Path) -> None:
    _create_orders(db, 50)
    source = _source(db, {"orders": {"cursor": "updated_at", "primary_key": "id"}})
    wh = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    _sync(db, wh, source, tmp_path)
    db.run("DELETE FROM orders WHERE id IN (5, 6)")
    _sync(db, wh, source, tmp_path)
    assert wh.execute("SELECT count(*) FROM orders").fetchall() == [(50,)]  # incremental: deletions unseen
    report = _sync(db, wh, source, tmp_path, full=True)
    assert (report.tables[0].status, report.tables[0].rows) == ("copied", 48)
    _same(db, wh, "orders")
    db.run("ALTER TABLE orders ADD COLUMN region VARCHAR(10)")
    db.run("UPDATE orders SET region = 'west' WHERE id < 10")
    report = _sync(db, wh, source, tmp_path)
    assert report.tables[0].status == "copied"
    assert wh.execute("SELECT count(region) FROM orders").fetchall() == [(7,)]
    db.many(f"INSERT INTO orders ({COLUMNS}) VALUES (?, ?, ?, ?, ?)", [_order(51, 1)])
    report = _sync(db, wh, source, tmp_path)  # back to incremental from the new copy's cursor
    # The new row, and rows 49 and 50 read again: they share the last committed cursor value.
    assert (report.tables[0].status, report.tables[0].rows_read) == ("synced", 3)
    _same(db, wh, "orders")


def test_a_bare_name_in_several_schemas_follows_the_search_path() -> None:
    from kpilot.model.workspace import SourceTable
    from kpilot.sources.base import SourceTableInfo
    from kpilot.sources.base import SyncError as Refused
    from kpilot.sources.sync import resolve

    source = Source.model_validate({"key": "shop", "type": "postgres", "url_env": "X", "tables": {"orders": "orders"}})
    found = [SourceTableInfo("a", "orders", ()), SourceTableInfo("b", "orders", ())]
    assert resolve(source, SourceTable(table="orders"), found, ("b", "public")).schema == "b"
    assert resolve(source, SourceTable(table="a.orders"), found, ("b",)).schema == "a"
    with pytest.raises(Refused, match="several schemas have a table 'orders'"):
        resolve(source, SourceTable(table="orders"), found, ("public",))
