"""The SQL kpilot sends to BigQuery and Snowflake, one reviewed snapshot file per metric type and dialect.

SQL checked, not run here: no BigQuery or Snowflake is reachable from the tests. Each file under
tests/compute/snapshots/<dialect>/ was read and checked by hand for:
- date truncation: BigQuery `DATE_TRUNC(date, MONTH)` (date first, unit bare), Snowflake
  `DATE_TRUNC('MONTH', date)`; both cast back to DATE; a day is `CAST(x AS DATE)`;
- week start: the workspace's weeks start on Sunday: BigQuery `DATE_TRUNC(d, WEEK)` (its WEEK is
  WEEK(SUNDAY); other starts are written WEEK(MONDAY)...: see the test below); Snowflake
  `DATEADD(DAY, CAST((DAYOFWEEKISO(d) - 7 + 7) % 7 AS INT) * -1, d)`, independent of the session's WEEK_START
  (Sunday: ISO day 7 goes back 0 days, Monday (1) goes back 1);
- time zones: a naive UTC column shown in Europe/Paris is `DATETIME(TIMESTAMP(x, 'UTC'), 'Europe/Paris')` on
  BigQuery and `CONVERT_TIMEZONE('UTC', 'Europe/Paris', x)` on Snowflake; a TIMESTAMP WITH TIME ZONE column is
  `DATETIME(x, 'Europe/Paris')` / `CAST(CONVERT_TIMEZONE('Europe/Paris', x) AS TIMESTAMPNTZ)`;
- casts: values are FLOAT64 (BigQuery) / DOUBLE (Snowflake), integers INT64 / INT, timestamps DATETIME
  (BigQuery's naive type) / TIMESTAMP;
- quoting: BigQuery backticks, tables as `project`.`dataset`.`table`; Snowflake leaves the source's names
  unquoted (folded to upper case, as its tables are created) and quotes the names the query makes
  ("t", "period", "a0") so they come back as written;
- filters: no FILTER clause: `agg(CASE WHEN c THEN x END)`, count(*) as `COUNT(CASE WHEN c THEN 1 END)`,
  count_if with a filter as `SUM(CASE WHEN ... THEN 1 ELSE 0 END)`; COUNT(DISTINCT CASE ...) keeps DISTINCT;
- division by zero: ratios and formulas are divided by kpilot (NaN, shown as no value), never in SQL; a
  division inside a measure is `IEEE_DIVIDE(a, b)` / `CASE WHEN b = 0 THEN <inf, -inf or NaN by the sign of a>
  ELSE CAST(a AS DOUBLE) / CAST(b AS DOUBLE) END`: +-inf or NaN as on DuckDB, never an error;
- snapshots: validity ranges as start (+1) / end (-1) changes, a non-linear one (avg) joined to the period
  ends, written as a UNION ALL of SELECTs on BigQuery (no VALUES list there).

Regenerate after a deliberate change, then review the diff:
    KPILOT_UPDATE_SNAPSHOTS=1 python3 -m pytest -q tests/compute/test_dialect_snapshots.py
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest
from sqlglot import exp

from kpilot.compute.compiler import bucket
from kpilot.compute.dialects import DIALECTS, metric_queries, model_queries, render, week_start_of
from kpilot.compute.engine import EngineError
from kpilot.model import parse_workspace
from kpilot.model.periods import Grain, WeekStart

SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("KPILOT_UPDATE_SNAPSHOTS") == "1"
AS_OF = date(2026, 3, 18)
LOCATION = {"bigquery": ("my-project", "analytics"), "snowflake": ("ANALYTICS", "PUBLIC")}

YAML = """
workspace: snapshots
timezone: Europe/Paris
week_start: sunday
models:
  - {key: events, table: events, time: created_at, timezone: UTC,
     joins: [{model: customers, on: customer_id}]}
  - {key: customers, table: customers}
  - {key: tickets, table: tickets, time: opened_at}
  - {key: subs, table: subs, validity: {from: start_date, to: end_date}}
  - {key: stock, table: stock_daily, time: snapshot_date}
metrics:
  - {key: simple_sum, model: events, measure: sum(amount), filter: "kind = 'won'", grain: month}
  - {key: simple_count, model: tickets, measure: count(*), filter: "priority = 'high'", grain: week}
  - {key: simple_count_distinct, model: events, measure: count(distinct customer_id), filter: "kind = 'won'",
     grain: month}
  - {key: simple_avg, model: events, measure: avg(amount), filter: "kind = 'deal'", grain: quarter}
  - {key: simple_joined, model: events, measure: sum(amount), filter: "customers.region = 'EU'", grain: month}
  - {key: count_if, model: events, measure: count_if(amount > 1000), filter: "kind = 'deal'", grain: day}
  - {key: approx_count_distinct, model: events, measure: approx_count_distinct(customer_id), grain: month}
  - {key: measure_division, model: events, measure: "sum(amount) / count(*)", grain: year}
  - {key: ratio, type: ratio, grain: week,
     numerator: {model: events, measure: count(*), filter: "kind = 'won'"},
     denominator: {model: events, measure: count(*), filter: "kind in ('won', 'lost')"}}
  - {key: pipeline, model: events, measure: sum(amount), filter: "kind = 'deal'", grain: week}
  - {key: demos, model: events, measure: count(*), filter: "kind = 'demo'", grain: week}
  - {key: derived, type: derived, formula: pipeline / demos, grain: week}
  - {key: snapshot, type: snapshot, model: subs, measure: sum(mrr), filter: "segment = 'PME'", grain: month}
  - {key: snapshot_avg, type: snapshot, model: subs, measure: avg(mrr), grain: month}
  - {key: snapshot_time, type: snapshot, model: stock, measure: sum(units), grain: week}
  - {key: cumulative_window, type: cumulative, model: events, measure: count(*), filter: "kind = 'lead'",
     window: 4, grain: week}
  - {key: cumulative_to_date, type: cumulative, model: events, measure: sum(amount), filter: "kind = 'won'",
     to_date: year, grain: month}
"""
SCHEMA = {
    "events": {"created_at": "TIMESTAMP", "customer_id": "BIGINT", "kind": "VARCHAR", "amount": "DOUBLE"},
    "customers": {"customer_id": "BIGINT", "region": "VARCHAR"},
    "tickets": {"opened_at": "TIMESTAMP WITH TIME ZONE", "priority": "VARCHAR"},
    "subs": {"start_date": "DATE", "end_date": "DATE", "mrr": "DOUBLE", "segment": "VARCHAR"},
    "stock_daily": {"snapshot_date": "DATE", "units": "BIGINT"},
}
WS, _ = parse_workspace(YAML, "snapshots.yaml")
CASES = [m.key for m in WS.metrics if m.key not in ("pipeline", "demos")] + ["model_events"]


def _text(dialect: str, case: str) -> str:
    if case.startswith("model_"):
        queries = model_queries(WS, SCHEMA, case.removeprefix("model_"), dialect, location=LOCATION[dialect])
        what = f"model {case.removeprefix('model_')}: the span of its rows, its join's duplicate-key check"
    else:
        queries = metric_queries(WS, SCHEMA, case, dialect, as_of=AS_OF, location=LOCATION[dialect])
        m = WS.metric(case)
        shown = {**m.model_dump(mode="json", exclude_none=True, exclude_defaults=True), "grain": m.grain.value}
        what = f"metric {case}: {shown}"
    header = (f"-- {what}\n-- test: tests/compute/test_dialect_snapshots.py::test_sql_snapshot[{dialect}-{case}]\n"
              "-- SQL checked, not run here. Regenerate: KPILOT_UPDATE_SNAPSHOTS=1 python3 -m pytest -q "
              "tests/compute/test_dialect_snapshots.py\n")
    return header + ";\n\n".join(queries) + ";\n"


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("case", CASES)
def test_sql_snapshot(dialect: str, case: str) -> None:
    path = SNAPSHOTS / dialect / f"{case}.sql"
    text = _text(dialect, case)
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no snapshot {path}; run with KPILOT_UPDATE_SNAPSHOTS=1, then review it"
    assert text == path.read_text(encoding="utf-8"), f"{path} differs; review, then regenerate"


def test_every_snapshot_file_is_a_case() -> None:
    """A snapshot left behind by a removed case would no longer be checked."""
    for dialect in DIALECTS:
        assert sorted(p.stem for p in (SNAPSHOTS / dialect).glob("*.sql")) == sorted(CASES)


@pytest.mark.parametrize("start", list(WeekStart))
def test_week_bucket_is_recognised_for_every_week_start(start: WeekStart) -> None:
    day = exp.column("d", quoted=True)
    tree = bucket(day, Grain.week, start, "bigquery")
    assert week_start_of(tree) == start.isodow
    sql = render(exp.select(tree).from_("t"), "bigquery", pretty=False)
    # BigQuery's bare WEEK is WEEK(SUNDAY): SQLGlot writes it so.
    unit = "WEEK" if start is WeekStart.sunday else f"WEEK({start.name.upper()})"
    assert f"DATE_TRUNC(CAST(`d` AS DATE), {unit})" in sql
    snow = render(exp.select(bucket(day, Grain.week, start, "snowflake")).from_("t"), "snowflake", pretty=False)
    assert "DAYOFWEEKISO(CAST(d AS DATE))" in snow and "isodow" not in snow.lower()


def test_median_is_refused_on_bigquery_with_a_clear_error() -> None:
    ws, _ = parse_workspace(YAML.replace("measure: avg(mrr)", "measure: median(mrr)"), "x.yaml")
    with pytest.raises(EngineError, match="median"):
        metric_queries(ws, SCHEMA, "snapshot_avg", "bigquery", as_of=AS_OF)
    assert "MEDIAN" in metric_queries(ws, SCHEMA, "snapshot_avg", "snowflake", as_of=AS_OF)[0]


def test_snowflake_division_gives_what_duckdb_gives() -> None:
    """The CASE written for Snowflake, run by DuckDB, equals DuckDB's own division (zero divisors included)."""
    import math

    import duckdb
    import sqlglot

    from kpilot.compute.dialects import _snowflake_division

    rows = "(VALUES (5.0, 2.0), (-3.0, 4.0), (5.0, 0.0), (-5.0, 0.0), (0.0, 0.0), (NULL, 1.0), (1.0, NULL)) v(a, b)"
    native = duckdb.sql(f"SELECT a / b FROM {rows}").fetchall()
    tree = sqlglot.parse_one(f"SELECT a / b FROM {rows}", read="duckdb").transform(_snowflake_division)
    rewritten = duckdb.sql(tree.sql(dialect="duckdb")).fetchall()
    assert "CASE" in tree.sql(dialect="duckdb")
    for (x,), (y,) in zip(native, rewritten, strict=True):
        assert (x is None and y is None) or (math.isnan(x) and math.isnan(y)) or x == y, (x, y)
