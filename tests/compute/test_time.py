"""Week starts, time zones and snapshots: the engine against hand-written SQL on synthetic rows."""

from __future__ import annotations

import itertools
import math
from datetime import date

import duckdb
import pytest

from kpilot.compute.engine import DuckDBEngine
from kpilot.compute.metrics import MetricComputer
from kpilot.model import Grain, parse_workspace, validate


def _computer(con: duckdb.DuckDBPyConnection, yaml_text: str, as_of: date, replay: bool = False) -> MetricComputer:
    ws, smap = parse_workspace(yaml_text, "w.yaml")
    engine = DuckDBEngine(con)
    schema = {t: engine.columns(t) for t in engine.tables()}
    errors = [i for i in validate(ws, smap, schema) if i.severity == "error"]
    assert not errors, errors
    return MetricComputer(engine, ws, schema, as_of=as_of, replay=replay)


def _values(mc: MetricComputer, key: str, grain: Grain | None = None) -> dict[date, float | None]:
    mc.prepare([(key, grain or mc.ws.metric(key).grain)])
    s = mc.series(key, grain)
    return {p: (None if math.isnan(v) else float(v)) for p, v in zip(s.periods, s.values, strict=True)}


@pytest.fixture()
def events() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    # 2000 events over 2026, at random instants; amounts 1..100.
    con.execute("""CREATE TABLE events AS
        SELECT i AS id,
               TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_seconds((hash(i) % (365 * 86400))::BIGINT) AS at_utc,
               (hash(i * 7) % 100 + 1)::DOUBLE AS amount,
               CASE WHEN hash(i * 3) % 3 = 0 THEN 'a' ELSE 'b' END AS kind
        FROM range(2000) t(i)""")
    con.execute("ALTER TABLE events ADD COLUMN at_naive_utc TIMESTAMP")
    con.execute("UPDATE events SET at_naive_utc = timezone('UTC', at_utc)")
    return con


def test_week_start_sunday_and_paris_time_from_timestamptz(events) -> None:
    mc = _computer(events, """
workspace: w
timezone: Europe/Paris
week_start: sunday
models: [{key: events, table: events, time: at_utc}]
metrics: [{key: amount, model: events, measure: sum(amount), grain: week}]
""", date(2026, 12, 31))
    ref = dict(events.execute("""
        SELECT (timezone('Europe/Paris', at_utc)::DATE
                - ((isodow(timezone('Europe/Paris', at_utc)::DATE)) % 7)::INT) AS w, sum(amount)
        FROM events GROUP BY 1""").fetchall())
    ours = _values(mc, "amount")
    assert all(p.isoweekday() == 7 for p in ours)  # every week starts on a Sunday
    assert {p: v for p, v in ours.items() if p in ref} == pytest.approx(ref)
    assert sum(v for v in ours.values() if v) == pytest.approx(sum(ref.values()))


def test_naive_timestamps_in_another_zone(events) -> None:
    """Naive UTC timestamps, declared `timezone: UTC` on the model, bucketed in New York days."""
    mc = _computer(events, """
workspace: w
timezone: America/New_York
models: [{key: events, table: events, time: at_naive_utc, timezone: UTC}]
metrics: [{key: n, model: events, measure: count(*), grain: day, filter: "kind = 'a'"}]
""", date(2026, 12, 31))
    ref = dict(events.execute("""SELECT timezone('America/New_York', at_utc)::DATE, count(*)
                                 FROM events WHERE kind = 'a' GROUP BY 1""").fetchall())
    ours = _values(mc, "n")
    assert {p: v for p, v in ours.items() if v} == pytest.approx({p: float(v) for p, v in ref.items()})


def test_snapshot_validity_and_replay() -> None:
    con = duckdb.connect()
    con.execute("""CREATE TABLE subs AS SELECT * FROM (VALUES
        (1, DATE '2026-01-15', NULL, 100.0),
        (2, DATE '2026-02-01', DATE '2026-03-01', 50.0),
        (3, DATE '2026-02-28', DATE '2026-03-31', 30.0),
        (4, DATE '2026-03-31', NULL, 10.0)) t(id, start_date, end_date, mrr)""")
    text = """
workspace: w
models: [{key: subs, table: subs, validity: {from: start_date, to: end_date}}]
metrics: [{key: mrr, model: subs, type: snapshot, measure: sum(mrr), grain: month}]
"""
    ours = _values(_computer(con, text, date(2026, 4, 10)), "mrr")
    # A row counts while start <= day < end, read on the last day of each month.
    assert ours == {date(2026, 1, 1): 100.0, date(2026, 2, 1): 180.0, date(2026, 3, 1): 110.0,
                    date(2026, 4, 1): 110.0}
    # Replaying 2026-02-27: sub 3 has not started yet; later rows are ignored.
    replay = _values(_computer(con, text, date(2026, 2, 27), replay=True), "mrr")
    assert replay == {date(2026, 1, 1): 100.0, date(2026, 2, 1): 150.0}


def test_derived_with_offset_and_cumulative() -> None:
    con = duckdb.connect()
    con.execute("""CREATE TABLE sales AS SELECT DATE '2026-01-01' + INTERVAL (i * 10) DAY AS day, (10.0 * (i + 1))::DOUBLE AS amount
                   FROM range(12) t(i)""")
    text = """
workspace: w
models: [{key: sales, table: sales, time: day}]
metrics:
  - {key: revenue, model: sales, measure: sum(amount), grain: month}
  - {key: growth, type: derived, formula: "revenue / offset(revenue, -1) - 1", grain: month}
  - {key: ytd, type: cumulative, model: sales, measure: sum(amount), to_date: year, grain: month}
  - {key: last2, type: cumulative, model: sales, measure: sum(amount), window: 2, grain: month}
"""
    mc = _computer(con, text, date(2026, 4, 30))
    ref = dict(con.execute("SELECT date_trunc('month', day)::DATE, sum(amount) FROM sales GROUP BY 1 ORDER BY 1").fetchall())
    months = sorted(ref)
    rev = _values(mc, "revenue")
    assert rev == pytest.approx(ref)
    growth = _values(mc, "growth")
    assert growth[months[0]] is None
    for a, b in itertools.pairwise(months):
        assert growth[b] == pytest.approx(ref[b] / ref[a] - 1)
    ytd = _values(mc, "ytd")
    running = 0.0
    for m in months:
        running += ref[m]
        assert ytd[m] == pytest.approx(running)
    last2 = _values(mc, "last2")
    assert last2[months[0]] is None
    assert last2[months[2]] == pytest.approx(ref[months[1]] + ref[months[2]])


def test_join_fan_out_is_refused() -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE m AS SELECT 1 AS lead_id, DATE '2026-01-01' AS d UNION ALL SELECT 2, DATE '2026-01-02'")
    con.execute("CREATE TABLE l AS SELECT 1 AS lead_id, 'x' AS channel UNION ALL SELECT 1, 'y' UNION ALL SELECT 2, 'z'")
    mc = _computer(con, """
workspace: w
models:
  - {key: m, table: m, time: d, joins: [{model: l, on: lead_id}]}
  - {key: l, table: l}
metrics: [{key: n, model: m, measure: count(*), filter: "l.channel <> 'q'", grain: month}]
""", date(2026, 2, 1))
    from kpilot.compute.metrics import ComputeError

    with pytest.raises(ComputeError) as info:
        _values(mc, "n")
    assert "would count rows of m several times: lead_id = 1 appears 2 times in l" in str(info.value)
