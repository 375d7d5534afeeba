"""acme values from the engine, checked against hand-written DuckDB SQL over the same CSVs."""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import duckdb
import pytest

from kpilot.compute.engine import DuckDBEngine
from kpilot.compute.metrics import MetricComputer
from kpilot.model import Grain, load_workspace

AS_OF = date(2026, 11, 26)


@pytest.fixture(scope="module")
def acme_series(acme_dir: Path, acme_raw: duckdb.DuckDBPyConnection, acme_schema):
    ws, _ = load_workspace(acme_dir, acme_schema)
    mc = MetricComputer(DuckDBEngine(acme_raw.cursor()), ws, acme_schema, as_of=AS_OF)
    mc.prepare([(k, ws.metric(k).grain) for k in ws.metric_keys])

    def get(key: str, grain: Grain | None = None) -> dict[date, float | None]:
        s = mc.series(key, grain)
        return {p: (None if math.isnan(v) else float(v)) for p, v in zip(s.periods, s.values, strict=True)}

    return get


def _sql(con: duckdb.DuckDBPyConnection, query: str) -> dict[date, float | None]:
    return {p: (None if v is None else float(v)) for p, v in con.execute(query).fetchall()}


def _assert_same(ours: dict[date, float | None], theirs: dict[date, float | None], *, zero_missing: bool) -> None:
    assert theirs, "the reference query returned nothing"
    for p, v in theirs.items():
        assert p in ours, f"period {p} missing"
        if v is None:
            assert ours[p] is None, p
        else:
            assert ours[p] == pytest.approx(v, rel=1e-9, abs=1e-9), p
    for p, v in ours.items():
        if p not in theirs and zero_missing:
            assert v == 0.0, (p, v)


def test_mrr_at_month_ends(acme_series, acme_raw) -> None:
    ref = _sql(acme_raw, """
        WITH months AS (SELECT unnest(generate_series(DATE '2024-02-01', DATE '2026-10-01', INTERVAL 1 MONTH))::DATE AS m)
        SELECT m, sum(mrr_eur) FROM months JOIN subscriptions
          ON start_date <= last_day(m) AND (end_date IS NULL OR end_date > last_day(m))
        GROUP BY m ORDER BY m""")
    ours = acme_series("mrr")
    assert len(ref) == 33
    _assert_same(ours, ref, zero_missing=False)
    # November is in progress on the as-of date: it is the MRR of today.
    today = acme_raw.execute("""SELECT sum(mrr_eur) FROM subscriptions WHERE start_date <= DATE '2026-11-26'
                                AND (end_date IS NULL OR end_date > DATE '2026-11-26')""").fetchone()[0]
    assert ours[date(2026, 11, 1)] == pytest.approx(today)


def test_weekly_pipeline_generated(acme_series, acme_raw) -> None:
    ref = _sql(acme_raw, "SELECT date_trunc('week', created_at)::DATE, sum(amount_eur) FROM deals GROUP BY 1")
    _assert_same(acme_series("pipeline_generated"), ref, zero_missing=True)


def test_weekly_demos(acme_series, acme_raw) -> None:
    ref = _sql(acme_raw, "SELECT date_trunc('week', booked_at)::DATE, count(*) FROM meetings WHERE type = 'demo' GROUP BY 1")
    _assert_same(acme_series("demos_booked"), ref, zero_missing=True)
    assert acme_series("demos_booked")[date(2026, 9, 7)] == ref[date(2026, 9, 7)]


def test_monthly_win_rate_is_a_ratio_of_sums(acme_series, acme_raw) -> None:
    ref = _sql(acme_raw, """SELECT date_trunc('month', closed_at)::DATE,
        count(*) FILTER (WHERE stage = 'won') / count(*) FILTER (WHERE stage IN ('won', 'lost'))
        FROM deals WHERE closed_at IS NOT NULL GROUP BY 1""")
    _assert_same(acme_series("win_rate"), ref, zero_missing=False)
    # Not the average of weekly win rates.
    weekly_avg = acme_raw.execute("""SELECT avg(r) FROM (SELECT date_trunc('week', closed_at) w,
        count(*) FILTER (WHERE stage = 'won') / count(*) FILTER (WHERE stage IN ('won','lost')) r
        FROM deals WHERE closed_at >= '2026-10-01' AND closed_at < '2026-11-01' GROUP BY 1)""").fetchone()[0]
    assert acme_series("win_rate")[date(2026, 10, 1)] != pytest.approx(weekly_avg, rel=1e-6)


def test_monthly_logo_churn(acme_series, acme_raw) -> None:
    ref = _sql(acme_raw, """
        WITH months AS (SELECT unnest(generate_series(DATE '2024-03-01', DATE '2026-11-01', INTERVAL 1 MONTH))::DATE AS m),
        churned AS (SELECT date_trunc('month', end_date)::DATE AS m, count(*) AS n FROM subscriptions
                    WHERE end_date IS NOT NULL GROUP BY 1),
        active AS (SELECT m, (SELECT count(*) FROM subscriptions WHERE start_date < m
                              AND (end_date IS NULL OR end_date >= m)) AS a FROM months)
        SELECT active.m, coalesce(churned.n, 0) / active.a FROM active LEFT JOIN churned USING (m)""")
    _assert_same(acme_series("logo_churn"), ref, zero_missing=False)


def test_weekly_cost_per_demo(acme_series, acme_raw) -> None:
    ref = _sql(acme_raw, """
        WITH s AS (SELECT date_trunc('week', date)::DATE w, sum(amount_eur) v FROM ad_spend GROUP BY 1),
             d AS (SELECT date_trunc('week', booked_at)::DATE w, count(*) n FROM meetings WHERE type = 'demo' GROUP BY 1)
        SELECT s.w, s.v / d.n FROM s JOIN d USING (w) WHERE s.w < DATE '2026-11-23'""")
    _assert_same(acme_series("cost_per_demo"), ref, zero_missing=False)


def test_mql_rate_and_month_rollup_of_weekly_metric(acme_series, acme_raw) -> None:
    ref = _sql(acme_raw, """SELECT date_trunc('week', created_at)::DATE, avg(is_mql::INT) FROM leads GROUP BY 1""")
    _assert_same(acme_series("mql_rate"), ref, zero_missing=False)
    monthly = _sql(acme_raw, "SELECT date_trunc('month', created_at)::DATE, sum(amount_eur) FROM deals GROUP BY 1")
    _assert_same(acme_series("pipeline_generated", Grain.month), monthly, zero_missing=True)


@pytest.fixture(scope="module")
def acme_computer(acme_dir: Path, acme_raw: duckdb.DuckDBPyConnection, acme_schema) -> MetricComputer:
    ws, _ = load_workspace(acme_dir, acme_schema)
    return MetricComputer(DuckDBEngine(acme_raw.cursor()), ws, acme_schema, as_of=AS_OF)


def _by(mc: MetricComputer, key: str, dims: list[str]) -> dict[tuple[object, date], float | None]:
    out = {}
    for values, s in mc.breakdown(key, dims).items():
        for p, v in zip(s.periods, s.values, strict=True):
            out[(values[0], p)] = None if math.isnan(v) else float(v)
    return out


def test_breakdown_through_a_join(acme_computer, acme_raw) -> None:
    ours = _by(acme_computer, "demos_booked", ["leads.channel"])
    ref = acme_raw.execute("""SELECT l.channel, date_trunc('week', m.booked_at)::DATE, count(*) FROM meetings m
        LEFT JOIN leads l USING (lead_id) WHERE m.type = 'demo' GROUP BY 1, 2""").fetchall()
    assert len(ref) > 500
    for channel, week, n in ref:
        assert ours[(channel, week)] == n
    # The slices add up to the total.
    total = acme_computer.series("demos_booked")
    week = date(2026, 9, 7)
    assert sum(v for (c, p), v in ours.items() if p == week) == total.value_at(week)


def test_breakdown_of_ratio_and_snapshot_by_segment(acme_computer, acme_raw) -> None:
    ours = _by(acme_computer, "win_rate", ["segment"])
    ref = acme_raw.execute("""SELECT segment, date_trunc('month', closed_at)::DATE,
        count(*) FILTER (WHERE stage = 'won') / count(*) FILTER (WHERE stage IN ('won', 'lost'))
        FROM deals WHERE closed_at IS NOT NULL GROUP BY 1, 2""").fetchall()
    for seg, month, rate in ref:
        assert ours[(seg, month)] == pytest.approx(rate)
    mrr = _by(acme_computer, "mrr", ["segment"])
    ref = acme_raw.execute("""SELECT segment, sum(mrr_eur) FROM subscriptions
        WHERE start_date <= DATE '2026-09-30' AND (end_date IS NULL OR end_date > DATE '2026-09-30') GROUP BY 1""").fetchall()
    for seg, value in ref:
        assert mrr[(seg, date(2026, 9, 1))] == pytest.approx(value)
    # A ratio whose denominator is another metric, offset by one period, sliced the same way.
    churn = _by(acme_computer, "logo_churn", ["segment"])
    pme = acme_raw.execute("""SELECT
        (SELECT count(*) FROM subscriptions WHERE segment = 'PME' AND end_date >= '2026-10-01' AND end_date < '2026-11-01')
      / (SELECT count(*) FROM subscriptions WHERE segment = 'PME' AND start_date <= '2026-09-30'
         AND (end_date IS NULL OR end_date > '2026-09-30'))""").fetchone()[0]
    assert churn[("PME", date(2026, 10, 1))] == pytest.approx(pme)


def test_breakdown_refuses_an_unknown_dimension(acme_computer) -> None:
    from kpilot.compute.metrics import ComputeError

    with pytest.raises(ComputeError, match=r"cannot be sliced by 'chanel'; did you mean 'leads\.channel'"):
        acme_computer.breakdown("demos_booked", ["chanel"])
