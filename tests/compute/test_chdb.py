"""ClickHouse in place, in-process (chDB): the same compiled metrics as DuckDB's on the same rows, its settings
checked at their line, and a sandbox no definition gets out of.

The `clickhouse` source type (a real server, through clickhouse-connect) generates the same SQL as chDB; no
server runs here, so only its settings are tested.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlglot
import yaml

from kpilot.compute.engine import EngineError
from kpilot.compute.engine_clickhouse import ChDBEngine, warehouse_type
from kpilot.compute.in_place import OwnedEngine, open_source_engine
from kpilot.model import KpilotError, WorkspaceInvalid, load_workspace
from kpilot.model.expressions import ExpressionError, parse_measure
from kpilot.model.source_checks import missing_package
from kpilot.model.workspace import Source
from kpilot.service import WorkspaceService
from tests.cli.test_acme_cli import kpilot
from tests.compute.engine_cases import assert_acme_equal, assert_same_as_loaded, assert_times_as_loaded
from tests.conftest import ACME_TABLES


@pytest.fixture(scope="module")
def chdb_acme(lake: Path, acme_dir: Path, acme_schema: dict[str, dict[str, str]]):
    ws, _ = load_workspace(acme_dir, acme_schema)
    source = Source(key="lake", type="chdb", tables={t: {"path": f"data/{t}.parquet"} for t in ACME_TABLES})
    engine = open_source_engine(source, ws, lake)
    yield engine
    engine.close()


def test_every_acme_metric_on_chdb_equals_duckdb(chdb_acme: OwnedEngine, acme_dir: Path, acme_raw) -> None:
    types = assert_acme_equal(chdb_acme, acme_dir, acme_raw)
    assert types == {"simple", "ratio", "snapshot", "derived"}
    assert chdb_acme.dialect == "clickhouse"


def test_every_construct_on_chdb_in_place_equals_the_files_loaded(tmp_path: Path) -> None:
    assert_same_as_loaded(tmp_path, {"type": "chdb"})


def test_median_and_quantiles_are_exact_on_chdb(tmp_path: Path) -> None:
    """ClickHouse's own median() is an estimate: kpilot asks for the exact, interpolated quantile."""
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT (i * 7919) % 1000 / 10.0 AS x FROM range(1, 2001) r(i)")
    con.execute(f"COPY t TO '{tmp_path / 't.parquet'}' (FORMAT parquet)")
    expected = con.execute("SELECT median(x), quantile_cont(x, 0.9), quantile_cont(x, 0.25) FROM t").fetchone()
    engine = ChDBEngine({"t": tmp_path / "t.parquet"})
    try:
        tree = sqlglot.parse_one("SELECT median(x) AS m, quantile_cont(x, 0.9) AS q9, quantile_cont(x, 0.25) AS q1 "
                                 "FROM kpilot.t", read="duckdb")
        got = engine.query(tree).to_pylist()[0]
    finally:
        engine.close()
    assert expected is not None
    assert [got["m"], got["q9"], got["q1"]] == pytest.approx(list(expected), rel=1e-12)


@pytest.mark.parametrize("query", [
    "SELECT * FROM file('/etc/passwd', 'LineAsString')",
    "SELECT * FROM url('http://127.0.0.1:9/x', 'CSV')",
    "SELECT * FROM s3('http://127.0.0.1:9/bucket/x.csv')",
    "SELECT * FROM system.tables",
    "SELECT * FROM kpilot.leads, numbers(10)",
    "SELECT * FROM other.leads",
])
def test_a_query_reading_anything_but_the_declared_files_is_refused_on_chdb(chdb_acme: OwnedEngine,
                                                                            query: str) -> None:
    assert chdb_acme.query(sqlglot.parse_one("SELECT count(*) AS n FROM leads")).to_pylist()[0]["n"] > 0
    with pytest.raises(EngineError, match="outside the workspace's tables; nothing was run"):
        chdb_acme.query(sqlglot.parse_one(query, read="clickhouse"))


@pytest.mark.parametrize("measure", [
    "sum(length(file('/etc/passwd')))", "count(url('http://127.0.0.1:9/'))", "max(read_files('/etc'))",
    "sum(getSetting('readonly'))", "max(reflect('java.lang.System', 'getenv', 'HOME'))",
    "max(java_method('java.lang.System', 'getenv', 'HOME'))", "sum(input_file_name() = '')",
])
def test_a_measure_cannot_call_a_file_or_engine_function(measure: str) -> None:
    with pytest.raises(ExpressionError):
        parse_measure(measure)


def _write(ws: Path, source: dict[str, Any], measure: str = "sum(amount)") -> None:
    doc = {"workspace": "lake", "sources": [source],
           "models": [{"key": "orders", "table": "orders", "source": source["key"], "time": "ordered_at"}],
           "metrics": [{"key": "revenue", "model": "orders", "measure": measure, "grain": "month"}]}
    ws.mkdir(parents=True, exist_ok=True)
    (ws / "kpilot.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")


def _orders(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    duckdb.sql("SELECT * FROM (VALUES (1, TIMESTAMP '2026-01-05 10:00:00', 10.5), (2, TIMESTAMP '2026-02-06 "
               "23:30:00', 20.0), (3, TIMESTAMP '2026-02-28 08:00:00', 1.25)) v(id, ordered_at, amount)"
               ).write_parquet(str(folder / "orders.parquet"))


def test_a_chdb_workspace_computes_and_stores_its_months(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    _orders(ws / "data")
    _write(ws, {"key": "lake", "type": "chdb", "tables": {"orders": {"path": "data/orders.parquet"}}})
    with WorkspaceService(ws, state_dir=tmp_path / "state") as svc:
        assert [str(i) for i in svc.validate() if i.severity == "error"] == []
        svc.compute()
        series = svc.computer().series("revenue")
        assert [p.isoformat() for p in series.periods[:3]] == ["2026-01-01", "2026-02-01", "2026-03-01"]
        assert list(series.values[:2]) == [10.5, 21.25]  # 10.5; 20.0 + 1.25
        assert all(v == 0 or math.isnan(v) for v in series.values[2:])
        assert "orders" not in svc.loaded_schema()  # nothing copied into the warehouse


@pytest.mark.parametrize(("source", "expected", "where"), [
    ({"key": "lake", "type": "chdb", "tables": {"orders": {"path": "../outside/orders.parquet"}}},
     "is outside the workspace folder", "sources[0]"),
    ({"key": "lake", "type": "chdb", "tables": {"orders": {"path": "/etc/orders.parquet"}}},
     "is outside the workspace folder", "sources[0]"),
    ({"key": "lake", "type": "chdb", "tables": {"orders": {"path": "data/orders.parquet", "format": "csv"}}},
     "unknown format 'csv' for a chdb source; formats: parquet", "sources[0]"),
    ({"key": "lake", "type": "chdb", "url": "http://127.0.0.1:8123", "tables": {"orders": {"path": "x.parquet"}}},
     "a chdb source runs ClickHouse inside kpilot", "sources[0]"),
    ({"key": "lake", "type": "chdb", "tables": {"orders": {"path": "data/orders.parquet", "cursor": "id"}}},
     "a chdb source computes its tables where they are, so it takes no `cursor:`", "sources[0]"),
    ({"key": "lake", "type": "clickhouse", "tables": {"orders": "shop.orders"}},
     "a clickhouse source needs `url_env:`", "sources[0]"),
    ({"key": "lake", "type": "clickhouse", "url": "https://kp:secret@ch.example.com:8443/shop",
      "tables": {"orders": "shop.orders"}}, "holds a password", "sources[0]"),
    ({"key": "lake", "type": "clickhouse", "url_env": "KP_CH_URL", "tables": {"orders": {"path": "o.parquet"}}},
     "a clickhouse source reads tables of the server", "sources[0]"),
    ({"key": "lake", "type": "csv", "path": "data/", "master": "local[2]"}, "`master:` is for spark sources",
     "sources[0]"),
])
def test_bad_chdb_and_clickhouse_settings_are_errors_at_their_line(tmp_path: Path, source: dict[str, Any],
                                                                   expected: str, where: str) -> None:
    ws = tmp_path / "ws"
    _orders(ws / "data")
    _write(ws, source)
    r = kpilot("validate", "-w", str(ws), env_state=tmp_path / "state")
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert expected in out, out
    assert f"{ws / 'kpilot.yaml'}:" in out and "Traceback" not in out, out


def test_a_chdb_table_file_that_is_missing_or_a_link_outside_is_a_clear_error(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    _orders(tmp_path / "outside")
    (ws / "data").mkdir(parents=True)
    (ws / "data" / "orders.parquet").symlink_to(tmp_path / "outside" / "orders.parquet")
    _write(ws, {"key": "lake", "type": "chdb", "tables": {"orders": {"path": "data/orders.parquet"}}})
    r = kpilot("compute", "-w", str(ws), env_state=tmp_path / "state")
    assert r.returncode == 1 and "leads outside the workspace folder" in r.stderr, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    _write(ws, {"key": "lake", "type": "chdb", "tables": {"orders": {"path": "data/missing.parquet"}}})
    r = kpilot("validate", "-w", str(ws), env_state=tmp_path / "state")
    assert r.returncode == 1 and "no file or folder at" in r.stdout + r.stderr, r.stdout + r.stderr
    assert "Traceback" not in r.stderr


def test_a_missing_engine_package_is_named_with_its_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in ("chdb", "pyspark", "grpc",
                                                                                      "clickhouse_connect")
                        else real(name, *a))
    for kind, package, extra in (("chdb", "chdb", "chdb"), ("spark", "pyspark", "spark"),
                                 ("clickhouse", "clickhouse_connect", "clickhouse")):
        settings: dict[str, Any] = {"master": "local[2]"} if kind == "spark" else (
            {"url_env": "KP_CH"} if kind == "clickhouse" else {})
        tables = {"orders": "shop.orders"} if kind == "clickhouse" else {"orders": {"path": "o.parquet"}}
        problem = missing_package(Source(key="s", type=kind, tables=tables, **settings))
        assert problem is not None and problem.field == ("type",)
        assert package in str(problem.message) and f"pip install 'kpilot[{extra}]'" in str(problem.fix)


def test_the_clickhouse_server_type_names_its_tables_and_reads_its_url_from_the_environment(tmp_path: Path) -> None:
    """No ClickHouse server runs here: the settings, and a clear error when the variable is unset."""
    source = Source(key="ch", type="clickhouse", url_env="KP_TEST_CH_URL_UNSET",
                    tables={"orders": "shop.orders", "leads": {"table": "crm.leads"}})
    assert {k: v.table for k, v in source.table_specs().items()} == {"orders": "shop.orders", "leads": "crm.leads"}
    assert all(v.mode == "in_place" for v in source.table_specs().values())
    ws, _ = load_workspace(_empty_ws(tmp_path), {})
    with pytest.raises(KpilotError, match="the environment variable KP_TEST_CH_URL_UNSET is not set"):
        open_source_engine(source, ws, tmp_path, environ={})


def _empty_ws(root: Path) -> Path:
    (root / "kpilot.yaml").write_text("workspace: empty\n", encoding="utf-8")
    return root


def test_clickhouse_types_in_the_warehouse_names() -> None:
    assert [warehouse_type(t) for t in ("Nullable(Float64)", "LowCardinality(Nullable(String))", "Date32",
                                        "DateTime64(6)", "Decimal(12, 2)", "Int64", "Bool")] == [
        "DOUBLE", "VARCHAR", "DATE", "TIMESTAMP", "DECIMAL", "BIGINT", "BOOLEAN"]


def test_a_time_zone_conversion_is_refused_at_its_line_on_chdb(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    _orders(ws / "data")
    _write(ws, {"key": "lake", "type": "chdb", "tables": {"orders": {"path": "data/orders.parquet"}}})
    doc = yaml.safe_load((ws / "kpilot.yaml").read_text(encoding="utf-8"))
    doc["models"][0]["timezone"] = "America/New_York"
    (ws / "kpilot.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    with pytest.raises(WorkspaceInvalid) as info:
        WorkspaceService(ws, state_dir=tmp_path / "state")
    errors = [str(i) for i in info.value.issues if i.severity == "error"]
    assert len(errors) == 1 and "time zone conversions are not supported" in errors[0], errors
    assert "on ClickHouse" in errors[0] and "models[0].timezone" in errors[0]


def test_validate_without_the_chdb_package_names_the_install_at_the_source_line(tmp_path: Path) -> None:
    """The package hidden from a kpilot process (as on a machine without it): an error at the source's `type:`
    line with the install command, never a traceback."""
    ws = tmp_path / "ws"
    _orders(ws / "data")
    _write(ws, {"key": "lake", "type": "chdb", "tables": {"orders": {"path": "data/orders.parquet"}}})
    hide = ("import sys, importlib.util as u\n"
            "real = u.find_spec\n"
            "u.find_spec = lambda name, *a: None if name.split('.')[0] == 'chdb' else real(name, *a)\n"
            "sys.modules['chdb'] = None  # import chdb: ImportError\n"
            "from kpilot.cli import main\n"
            f"sys.argv = ['kpilot', 'validate', '-w', {str(ws)!r}]\n"
            "main()\n")
    env = dict(os.environ, KPILOT_STATE_DIR=str(tmp_path / "state"), COLUMNS="200")
    r = subprocess.run([sys.executable, "-c", hide], capture_output=True, text=True, env=env, timeout=120)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert f"{ws / 'kpilot.yaml'}:4:9: error: sources[0].type: a chdb source needs the Python package chdb" in out, out
    assert "pip install 'kpilot[chdb]'" in out and "Traceback" not in out, out


def test_naive_times_and_instants_on_chdb_are_bucketed_as_in_the_warehouse(tmp_path: Path) -> None:
    assert_times_as_loaded(tmp_path, {"type": "chdb"})


def test_a_folder_of_parquet_files_is_one_chdb_table(tmp_path: Path) -> None:
    for part, rows in (("a", "(1, DATE '2026-01-05', 10.0::DOUBLE)"), ("b", "(2, DATE '2026-01-20', 5.5::DOUBLE)")):
        (tmp_path / "orders" / part).mkdir(parents=True)
        duckdb.sql(f"SELECT * FROM (VALUES {rows}) v(id, d, amount)").write_parquet(
            str(tmp_path / "orders" / part / "part.parquet"))
    engine = ChDBEngine({"orders": tmp_path / "orders"})
    try:
        assert engine.columns("orders") == {"id": "INTEGER", "d": "DATE", "amount": "DOUBLE"}
        got = engine.query(sqlglot.parse_one("SELECT count(*) AS n, sum(amount) AS s FROM kpilot.orders"))
        assert got.to_pylist() == [{"n": 2, "s": 15.5}]
    finally:
        engine.close()


def test_a_division_by_zero_on_chdb_equals_duckdb(tmp_path: Path) -> None:
    """Infinity, -Infinity, NaN or NULL, as DuckDB computes them."""
    rows = "(1, 3.0, 0.0), (2, -2.0, 0.0), (3, 0.0, 0.0), (4, NULL, 0.0), (5, 1.0, NULL), (6, 7.0, 2.0)"
    con = duckdb.connect()
    con.execute(f"CREATE TABLE t AS SELECT * FROM (VALUES {rows}) v(id, a, b)")
    con.execute(f"COPY t TO '{tmp_path / 't.parquet'}' (FORMAT parquet)")
    query = "SELECT id, a / b AS r, sum(a) / sum(b) AS s FROM t GROUP BY id, a, b ORDER BY id"
    expected = con.execute(query).fetchall()
    engine = ChDBEngine({"t": tmp_path / "t.parquet"})
    try:
        tree = sqlglot.parse_one(query.replace("FROM t", "FROM kpilot.t"), read="duckdb")
        got = [tuple(r.values()) for r in engine.query(tree).to_pylist()]
    finally:
        engine.close()
    assert len(got) == len(expected) == 6
    for g, e in zip(got, expected, strict=True):
        for x, y in zip(g, e, strict=True):
            assert (x is None and y is None) or (x != x and y != y) or x == y, (g, e)
