"""What the Spark and chDB tests share: the same rows as Parquet files, and the comparisons with DuckDB.

Two comparisons, each on the same rows: every metric of acme computed by the engine against DuckDB on acme's
CSVs; and every construct the compiler uses (snapshots over validity ranges, joins, weeks starting on a
Wednesday, distinct counts, count_if, breakdowns) computed in place against the same files loaded into the
warehouse.
"""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from kpilot.compute.engine import DuckDBEngine, Engine
from kpilot.compute.metrics import MetricComputer
from kpilot.model import load_workspace
from kpilot.service import WorkspaceService
from tests.conftest import ACME_TABLES
from tests.sources.test_in_place import BALANCES, CUSTOMERS, FULL_METRICS, FULL_MODELS, SUBS, series_of

AS_OF = date(2026, 11, 26)


def acme_parquet(acme_raw: duckdb.DuckDBPyConnection, folder: Path) -> dict[str, dict[str, str]]:
    """acme's tables (as DuckDB read the CSVs) written as Parquet files `folder/<table>.parquet`; their schema."""
    folder.mkdir(parents=True, exist_ok=True)
    for table in ACME_TABLES:
        acme_raw.execute(f"COPY {table} TO '{folder / (table + '.parquet')}' (FORMAT parquet)")
    return {t: {r[0]: r[1] for r in acme_raw.execute(f"DESCRIBE {t}").fetchall()} for t in ACME_TABLES}


def assert_acme_equal(engine: Engine, acme_dir: Path, acme_raw: duckdb.DuckDBPyConnection) -> set[str]:
    """Every metric of acme computed by `engine` equals DuckDB's on the same rows; the metric types covered."""
    schema = {t: engine.columns(t) for t in ACME_TABLES}
    duck = DuckDBEngine(acme_raw.cursor())
    duck_schema = {t: duck.columns(t) for t in ACME_TABLES}
    assert schema == duck_schema  # the files' columns, read back by the engine in the warehouse's type names
    ws, _ = load_workspace(acme_dir, schema)
    on_engine = MetricComputer(engine, ws, schema, as_of=AS_OF)
    on_duck = MetricComputer(duck, ws, duck_schema, as_of=AS_OF)
    for key in ws.metric_keys:
        a, b = on_engine.series(key), on_duck.series(key)
        assert a.periods == b.periods, key
        assert len(a.periods) > 10, key
        for x, y in zip(a.values, b.values, strict=True):
            assert (math.isnan(x) and math.isnan(y)) or x == pytest.approx(y, rel=1e-12), key
    assert on_engine.report.queries > 0
    return {str(ws.metric(k).type) for k in ws.metric_keys}


def full_parquet(folder: Path) -> None:
    """The rows of the every-construct case (subscriptions, customers, balances) as Parquet files."""
    folder.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("CREATE TABLE subs (id INTEGER, customer_id INTEGER, started_at DATE, ended_at DATE, mrr DOUBLE, "
                "plan VARCHAR)")
    con.executemany("INSERT INTO subs VALUES (?, ?, ?, ?, ?, ?)", SUBS)
    con.execute("CREATE TABLE customers (id INTEGER, segment VARCHAR)")
    con.executemany("INSERT INTO customers VALUES (?, ?)", CUSTOMERS)
    con.execute("CREATE TABLE balances (taken_at TIMESTAMP, account VARCHAR, balance DOUBLE)")
    con.executemany("INSERT INTO balances VALUES (?, ?, ?)", BALANCES)
    for table in ("subs", "customers", "balances"):
        con.execute(f"COPY {table} TO '{folder / (table + '.parquet')}' (FORMAT parquet)")
    con.close()


def _workspace(ws: Path, source: dict[str, Any]) -> None:
    doc = {"workspace": "inplace", "week_start": "wednesday", "sources": [source], "models": FULL_MODELS,
           "metrics": FULL_METRICS}
    (ws / "kpilot.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")


def assert_same_as_loaded(tmp_path: Path, engine_source: dict[str, Any]) -> None:
    """Every construct computed in place by the engine source equals the same Parquet files loaded and computed
    in the warehouse (DuckDB)."""
    tables = {t: f"{t}.parquet" for t in ("subs", "customers", "balances")}
    for name in ("loaded", "inplace"):
        full_parquet(tmp_path / name / "data")
    _workspace(tmp_path / "loaded", {"key": "shop", "type": "parquet", "path": "data/", "tables": tables})
    _workspace(tmp_path / "inplace", {"key": "shop", **engine_source,
                                      "tables": {t: {"path": f"data/{f}"} for t, f in tables.items()}})
    loaded = series_of(tmp_path / "loaded", tmp_path / "state_loaded", sync=False)
    in_place = series_of(tmp_path / "inplace", tmp_path / "state_inplace", sync=False)
    assert loaded.pop("engines") == [] and in_place.pop("engines") == [_DIALECTS[engine_source["type"]]]
    assert set(loaded) == set(in_place)
    for key, value in loaded.items():
        parts = value if isinstance(value, dict) else {(): value}
        got = in_place[key] if isinstance(value, dict) else {(): in_place[key]}
        assert set(got) == set(parts), key
        for k, (periods, values) in parts.items():
            assert got[k][0] == periods, (key, k)
            assert [v is None for v in got[k][1]] == [v is None for v in values], (key, k)
            assert [v for v in got[k][1] if v is not None] == pytest.approx([v for v in values if v is not None]), key
    assert any(v is not None and v > 0 for v in in_place["active_mrr"][1])


_DIALECTS = {"spark": "spark", "chdb": "clickhouse", "clickhouse": "clickhouse"}


# Times near midnight, as written (naive) and as instants (UTC-adjusted Parquet): a day's bucket depends on
# the time zone they are read in (the workspace's, Europe/Paris: UTC+1 in winter, UTC+2 in summer).
VISITS = [(f"2026-{1 + i % 12:02d}-{1 + i % 28:02d} {(21 + i % 5) % 24:02d}:{(i * 13) % 60:02d}:00", float(1 + i % 4))
          for i in range(120)]
TIME_METRICS: list[dict[str, Any]] = [
    {"key": "visits_naive", "model": "visits", "measure": "sum(n)", "grain": "day"},
    {"key": "visits_instant", "model": "visits", "time": "at_instant", "measure": "sum(n)", "grain": "day"},
    {"key": "visits_instant_week", "model": "visits", "time": "at_instant", "measure": "count(*)", "grain": "week"},
    {"key": "visits_instant_month", "model": "visits", "time": "at_instant", "measure": "avg(n)", "grain": "month"},
]


def assert_times_as_loaded(tmp_path: Path, engine_source: dict[str, Any]) -> None:
    """Naive times and instants bucketed by the engine as by the warehouse, on the same Parquet file."""
    for name in ("loaded", "inplace"):
        (tmp_path / name / "data").mkdir(parents=True)
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        con.execute("CREATE TABLE visits (at_naive TIMESTAMP, at_instant TIMESTAMPTZ, n DOUBLE)")
        con.executemany("INSERT INTO visits VALUES (?, CAST(? AS TIMESTAMP) AT TIME ZONE 'UTC', ?)",
                        [(t, t, n) for t, n in VISITS])
        con.execute(f"COPY visits TO '{tmp_path / name / 'data' / 'visits.parquet'}' (FORMAT parquet)")
        con.close()
    out = {}
    for name, source in (("loaded", {"key": "shop", "type": "parquet", "path": "data/",
                                     "tables": {"visits": "visits.parquet"}}),
                         ("inplace", {"key": "shop", **engine_source,
                                      "tables": {"visits": {"path": "data/visits.parquet"}}})):
        doc = {"workspace": "times", "timezone": "Europe/Paris", "sources": [source],
               "models": [{"key": "visits", "table": "visits", "source": "shop", "time": "at_naive"}],
               "metrics": TIME_METRICS}
        (tmp_path / name / "kpilot.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        with WorkspaceService(tmp_path / name, state_dir=tmp_path / f"state_{name}") as svc:
            assert [str(i) for i in svc.validate() if i.severity == "error"] == []
            svc.load()
            svc.compute()
            mc = svc.computer()
            assert bool(mc.engines) == (name == "inplace")
            out[name] = {m["key"]: mc.series(m["key"]) for m in TIME_METRICS}
    for key, loaded in out["loaded"].items():
        got = out["inplace"][key]
        assert got.periods == loaded.periods, key
        assert [None if math.isnan(v) else v for v in got.values] == pytest.approx(
            [None if math.isnan(v) else v for v in loaded.values]), key
    # The instants really moved across midnight: their days differ from the naive times' days.
    assert out["loaded"]["visits_naive"].periods != out["loaded"]["visits_instant"].periods or \
        list(out["loaded"]["visits_naive"].values) != list(out["loaded"]["visits_instant"].values)
