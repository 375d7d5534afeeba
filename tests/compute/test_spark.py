"""Spark in place: the same compiled metrics as DuckDB's on the same rows, computed by a local Spark session.

The tests marked `spark` start one local session (`local[2]`) for the module: the JVM takes seconds to start,
so ./run-tests runs them as their own step, after the main suite (`pytest -m spark tests/compute/test_spark.py`).
The settings checks need no Spark and run in the main suite.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlglot
import yaml

from kpilot.compute.engine import EngineError
from kpilot.compute.engine_spark import warehouse_type
from kpilot.compute.in_place import OwnedEngine, open_source_engine
from kpilot.model import KpilotError, load_workspace
from kpilot.model.workspace import Source
from kpilot.service import WorkspaceService
from tests.cli.test_acme_cli import kpilot
from tests.compute.engine_cases import (
    assert_acme_equal,
    assert_same_as_loaded,
    assert_times_as_loaded,
)
from tests.conftest import ACME_TABLES

MASTER = "local[2]"


@pytest.fixture(scope="module")
def spark_acme(lake: Path, acme_dir: Path, acme_schema: dict[str, dict[str, str]]):
    """acme's Parquet files as the tables of a Spark source; the module's one Spark session underneath."""
    ws, _ = load_workspace(acme_dir, acme_schema)
    source = Source(key="lake", type="spark", master=MASTER,
                    tables={t: {"path": f"data/{t}.parquet", "format": "parquet"} for t in ACME_TABLES})
    engine = open_source_engine(source, ws, lake)
    yield engine
    engine.close()


@pytest.mark.spark
def test_every_acme_metric_on_spark_equals_duckdb(spark_acme: OwnedEngine, acme_dir: Path, acme_raw) -> None:
    types = assert_acme_equal(spark_acme, acme_dir, acme_raw)
    assert types == {"simple", "ratio", "snapshot", "derived"}
    assert spark_acme.dialect == "spark"


@pytest.mark.spark
def test_every_construct_on_spark_in_place_equals_the_files_loaded(spark_acme: OwnedEngine, tmp_path: Path) -> None:
    assert_same_as_loaded(tmp_path, {"type": "spark", "master": MASTER})


@pytest.mark.spark
def test_naive_times_and_instants_on_spark_are_bucketed_as_in_the_warehouse(spark_acme: OwnedEngine,
                                                                           tmp_path: Path) -> None:
    """A Spark TIMESTAMP (an instant) is read in the session's time zone, the workspace's."""
    assert_times_as_loaded(tmp_path, {"type": "spark", "master": MASTER})


@pytest.mark.spark
def test_a_division_by_zero_on_spark_equals_duckdb(spark_acme: OwnedEngine, tmp_path: Path, acme_dir: Path,
                                                   acme_schema: dict[str, dict[str, str]]) -> None:
    """Infinity, -Infinity, NaN or NULL as DuckDB computes them, where Spark's ANSI mode would fail."""
    rows = "(1, 3.0, 0.0), (2, -2.0, 0.0), (3, 0.0, 0.0), (4, NULL, 0.0), (5, 1.0, NULL), (6, 7.0, 2.0)"
    con = duckdb.connect()
    con.execute(f"CREATE TABLE t AS SELECT * FROM (VALUES {rows}) v(id, a, b)")
    (tmp_path / "data").mkdir()
    con.execute(f"COPY t TO '{tmp_path / 'data' / 't.parquet'}' (FORMAT parquet)")
    query = "SELECT id, a / b AS r, sum(a) / sum(b) AS s FROM t GROUP BY id, a, b ORDER BY id"
    expected = con.execute(query).fetchall()
    ws, _ = load_workspace(acme_dir, acme_schema)
    engine = open_source_engine(Source(key="t", type="spark", master=MASTER, tables={"t": {"path": "data/t.parquet"}}),
                                ws, tmp_path)
    try:
        got = [tuple(r.values()) for r in engine.query(sqlglot.parse_one(query, read="duckdb")).to_pylist()]
    finally:
        engine.close()
    assert len(got) == len(expected) == 6
    for g, e in zip(got, expected, strict=True):
        for x, y in zip(g, e, strict=True):
            assert (x is None and y is None) or (x != x and y != y) or x == y, (g, e)


@pytest.mark.spark
def test_median_and_quantiles_on_spark_equal_duckdb(spark_acme: OwnedEngine, acme_raw) -> None:
    expected = acme_raw.execute("SELECT median(amount_eur), quantile_cont(amount_eur, 0.9), "
                                "quantile_cont(amount_eur, 0.25) FROM deals").fetchone()
    tree = sqlglot.parse_one("SELECT median(amount_eur) AS m, quantile_cont(amount_eur, 0.9) AS q9, "
                             "quantile_cont(amount_eur, 0.25) AS q1 FROM deals", read="duckdb")
    got = spark_acme.query(tree).to_pylist()[0]
    assert expected is not None
    assert [got["m"], got["q9"], got["q1"]] == pytest.approx(list(expected), rel=1e-12)


@pytest.mark.spark
@pytest.mark.parametrize("query", [
    "SELECT * FROM read_files('/etc')",
    "SELECT * FROM parquet.`/etc/passwd`",
    "SELECT * FROM text.`/etc/passwd`",
    "SELECT * FROM default.leads",
    "SELECT * FROM leads, range(10)",
    "SELECT * FROM spark_catalog.default.leads",
])
def test_a_query_reading_anything_but_the_declared_tables_is_refused_on_spark(spark_acme: OwnedEngine,
                                                                             query: str) -> None:
    assert spark_acme.query(sqlglot.parse_one("SELECT count(*) AS n FROM leads")).to_pylist()[0]["n"] > 0
    with pytest.raises(EngineError, match="outside the workspace's tables; nothing was run"):
        spark_acme.query(sqlglot.parse_one(query, read="spark"))


@pytest.mark.spark
def test_a_table_of_the_spark_catalog_is_computed_by_its_name(spark_acme: OwnedEngine, lake: Path, acme_dir: Path,
                                                              acme_raw: duckdb.DuckDBPyConnection,
                                                              acme_schema: dict[str, dict[str, str]]) -> None:
    """`{table: database.name}`: here a global temporary view (database `global_temp`) of the process's session."""
    from kpilot.compute.engine_spark import root_session

    root = root_session(MASTER, None)
    root.read.parquet(str(lake / "data" / "deals.parquet")).createOrReplaceGlobalTempView("crm_deals")
    ws, _ = load_workspace(acme_dir, acme_schema)
    source = Source(key="crm", type="spark", master=MASTER, tables={"deals": "global_temp.crm_deals"})
    engine = open_source_engine(source, ws, lake)
    try:
        assert engine.columns("deals") == acme_schema["deals"]
        got = engine.query(sqlglot.parse_one("SELECT count(*) AS n, sum(amount_eur) AS s FROM deals"))
        expected = acme_raw.execute("SELECT count(*), sum(amount_eur) FROM deals").fetchone()
        assert expected is not None
        assert got.to_pylist()[0]["n"] == expected[0]
        assert got.to_pylist()[0]["s"] == pytest.approx(expected[1], rel=1e-12)
        with pytest.raises(EngineError, match="outside the workspace's tables"):
            engine.query(sqlglot.parse_one("SELECT * FROM global_temp.other", read="spark"))
    finally:
        engine.close()


@pytest.mark.spark
def test_a_delta_table_without_delta_lake_is_a_clear_error(spark_acme: OwnedEngine, lake: Path, acme_dir: Path,
                                                           acme_schema: dict[str, dict[str, str]]) -> None:
    ws, _ = load_workspace(acme_dir, acme_schema)
    source = Source(key="lake", type="spark", master=MASTER,
                    tables={"leads": {"path": "data/leads.parquet", "format": "delta"}})
    with pytest.raises(KpilotError, match="Delta tables need Delta Lake on the Spark session"):
        open_source_engine(source, ws, lake)


@pytest.mark.spark
def test_a_spark_workspace_validates_computes_and_stores_its_months(spark_acme: OwnedEngine, tmp_path: Path) -> None:
    """The service's whole path on the module's Spark session: validate, compute, the stored series."""
    ws = tmp_path / "ws"
    (ws / "data").mkdir(parents=True)
    duckdb.sql("SELECT * FROM (VALUES (1, TIMESTAMP '2026-01-05 10:00:00', 10.5), (2, TIMESTAMP '2026-02-06 "
               "23:30:00', 20.0), (3, TIMESTAMP '2026-02-28 08:00:00', 1.25)) v(id, ordered_at, amount)"
               ).write_parquet(str(ws / "data" / "orders.parquet"))
    _write(ws, {"key": "lake", "type": "spark", "master": MASTER,
                "tables": {"orders": {"path": "data/orders.parquet"}}})
    with WorkspaceService(ws, state_dir=tmp_path / "state") as svc:
        assert [str(i) for i in svc.validate() if i.severity == "error"] == []
        svc.compute()
        series = svc.computer().series("revenue")
        assert [p.isoformat() for p in series.periods[:3]] == ["2026-01-01", "2026-02-01", "2026-03-01"]
        assert list(series.values[:2]) == [10.5, 21.25]  # 10.5; 20.0 + 1.25
        assert all(v == 0 or math.isnan(v) for v in series.values[2:])
        assert "orders" not in svc.loaded_schema()  # nothing copied into the warehouse


def _write(ws: Path, source: dict[str, Any]) -> None:
    doc = {"workspace": "lake", "sources": [source],
           "models": [{"key": "orders", "table": "orders", "source": source["key"], "time": "ordered_at"}],
           "metrics": [{"key": "revenue", "model": "orders", "measure": "sum(amount)", "grain": "month"}]}
    ws.mkdir(parents=True, exist_ok=True)
    (ws / "kpilot.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")


# Settings: checked before any Spark starts, in the main suite.

@pytest.mark.parametrize(("source", "expected"), [
    ({"key": "lake", "type": "spark", "tables": {"orders": {"path": "data/orders.parquet"}}},
     "a spark source needs `master:`"),
    ({"key": "lake", "type": "spark", "master": "local[2]", "url": "sc://spark:15002",
      "tables": {"orders": "db.orders"}}, "a spark source needs `master:`"),
    ({"key": "lake", "type": "spark", "url": "http://spark:15002", "tables": {"orders": "db.orders"}},
     "a Spark Connect address starting with sc://"),
    ({"key": "lake", "type": "spark", "master": "local[2]",
      "tables": {"orders": {"path": "data/orders.parquet", "format": "orc"}}},
     "unknown format 'orc' for a spark source; formats: parquet, delta"),
    ({"key": "lake", "type": "spark", "master": "local[2]", "tables": {"orders": {"path": "../../etc/orders"}}},
     "is outside the workspace folder"),
    ({"key": "lake", "type": "spark", "master": "local[2]",
      "tables": {"orders": {"path": "data/orders.parquet", "table": "db.orders"}}}, "has both `table:` and `path:`"),
    ({"key": "lake", "type": "spark", "master": "local[2]", "tables": {"orders": {"format": "delta"}}},
     "`format:` goes with `path:`"),
    ({"key": "lake", "type": "spark", "master": "local[2]"}, "a spark source needs `tables:`"),
    ({"key": "lake", "type": "postgres", "url_env": "X", "tables": {"orders": {"path": "o.parquet"}}},
     "`path:` and `format:` are for spark and chdb sources"),
])
def test_bad_spark_settings_are_errors_at_their_line(tmp_path: Path, source: dict[str, Any], expected: str) -> None:
    ws = tmp_path / "ws"
    _write(ws, source)
    r = kpilot("validate", "-w", str(ws), env_state=tmp_path / "state")
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert expected in out, out
    assert f"{ws / 'kpilot.yaml'}:" in out and "Traceback" not in out, out


def test_spark_tables_are_always_in_place_and_named_in_its_catalog() -> None:
    source = Source(key="lake", type="spark", url="sc://spark.example.com:15002",
                    tables={"orders": "shop.orders", "leads": {"path": "data/leads"}, "deals": {}})
    specs = source.table_specs()
    assert {k: (v.table, v.path, v.mode) for k, v in specs.items()} == {
        "orders": ("shop.orders", None, "in_place"), "leads": (None, "data/leads", "in_place"),
        "deals": ("deals", None, "in_place")}


def test_spark_types_in_the_warehouse_names() -> None:
    assert [warehouse_type(t) for t in ("string", "bigint", "double", "decimal(12,2)", "timestamp_ntz",
                                        "timestamp", "date", "boolean")] == [
        "VARCHAR", "BIGINT", "DOUBLE", "DECIMAL", "TIMESTAMP", "TIMESTAMP", "DATE", "BOOLEAN"]
