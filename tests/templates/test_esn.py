"""The ESN template's sample data, checked with hand-written DuckDB SQL over the CSV files it writes
(independently of kpilot's compute engine): KPI values are sensible and statuses mostly green."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from kpilot.analysis.status import achievement, rag
from kpilot.model import Grain, Workspace, load_workspace
from kpilot.model.periods import add_months, next_start, period_start
from kpilot.templates import init_workspace
from tests.conftest import one

TODAY = date(2026, 11, 26)
LAST_MONTH = date(2026, 10, 1)  # the last full month before TODAY
TABLES = ("consultants", "timesheets", "missions", "opportunities")


def connect(target: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for t in TABLES:
        con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_csv('{target / 'data' / (t + '.csv')}')")
    return con


@pytest.fixture(scope="module")
def esn(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, duckdb.DuckDBPyConnection]:
    target = tmp_path_factory.mktemp("esn")
    ws, _ = load_workspace(init_workspace(target, "esn", today=TODAY))
    return ws, connect(target)


def tace(con: duckdb.DuckDBPyConnection, month: date) -> float:
    """Billed days / days worked excluding leave, summed over every consultant (a ratio of sums)."""
    return one(con, """
        SELECT sum(days) FILTER (WHERE kind = 'billed') / sum(days) FILTER (WHERE kind <> 'leave')
        FROM timesheets WHERE date_trunc('month', date) = ?""", month)


def headcount(con: duckdb.DuckDBPyConnection, day: date) -> float:
    return one(con, "SELECT count(*) FROM consultants WHERE hired_on <= ? AND (left_on IS NULL OR left_on > ?)",
               day, day)


def board_values(con: duckdb.DuckDBPyConnection, month: date) -> dict[str, float]:
    """The North Star and board KPIs for a full month (the pipeline at the month's last Sunday)."""
    month_end = next_start(month, Grain.month) - timedelta(days=1)
    revenue, cost, billed, bench = con.execute("""
        SELECT sum(t.days * m.daily_rate) FILTER (WHERE t.kind = 'billed'),
               sum(t.days * c.daily_cost) FILTER (WHERE t.kind <> 'leave'),
               sum(t.days) FILTER (WHERE t.kind = 'billed'),
               sum(t.days) FILTER (WHERE t.kind = 'bench')
        FROM timesheets t
        LEFT JOIN missions m ON m.mission_id = t.mission_id
        JOIN consultants c ON c.consultant_id = t.consultant_id
        WHERE date_trunc('month', t.date) = ?""", [month]).fetchone()  # type: ignore[misc]
    sunday = month_end - timedelta(days=(month_end.weekday() + 1) % 7)
    pipeline = one(con, """SELECT sum(amount * probability) FROM opportunities
                           WHERE created_at < ? AND (closed_at IS NULL OR closed_at >= ?)""",
                   sunday + timedelta(days=1), sunday + timedelta(days=1))
    leavers = one(con, "SELECT count(*) FROM consultants WHERE left_on > ? AND left_on <= ?",
                  month_end - timedelta(days=365), month_end)
    staff = headcount(con, month_end)
    return {
        "occupancy_rate": tace(con, month),
        "gross_margin_per_consultant": (revenue - cost) / staff,
        "average_daily_rate": revenue / billed,
        "weighted_pipeline": pipeline,
        "bench_days": bench,
        "consultant_attrition": leavers / staff,
    }


def status(ws: Workspace, key: str, value: float, month: date) -> str:
    metric = ws.metric(key)
    target = metric.targets[0].value  # the template has one target per KPI
    return rag(achievement(value, target, metric.direction), metric.bands)


def test_tace_of_the_last_full_month_is_realistic(esn: tuple[Workspace, duckdb.DuckDBPyConnection]) -> None:
    _, con = esn
    value = tace(con, LAST_MONTH)
    print(f"TACE {LAST_MONTH:%Y-%m}: {value:.3f}")
    assert 0.6 < value < 0.95


def test_tace_is_a_ratio_of_sums_not_an_average_of_ratios(esn: tuple[Workspace, duckdb.DuckDBPyConnection]) -> None:
    ws, con = esn
    metric = ws.metric("occupancy_rate")
    assert metric.type.value == "ratio" and metric.numerator and metric.denominator
    assert (metric.numerator.measure, metric.numerator.filter) == ("sum(days)", "kind = 'billed'")
    assert (metric.denominator.measure, metric.denominator.filter) == ("sum(days)", "kind <> 'leave'")
    mean_of_ratios = one(con, """
        SELECT avg(r) FROM (SELECT sum(days) FILTER (WHERE kind = 'billed')
                                   / sum(days) FILTER (WHERE kind <> 'leave') AS r
                            FROM timesheets WHERE date_trunc('month', date) = ? GROUP BY consultant_id)""",
                         LAST_MONTH)
    assert mean_of_ratios != pytest.approx(tace(con, LAST_MONTH), abs=1e-9)


def test_board_values_and_statuses_are_a_realistic_mix(esn: tuple[Workspace, duckdb.DuckDBPyConnection]) -> None:
    ws, con = esn
    values = board_values(con, LAST_MONTH)
    print({k: round(v, 3) for k, v in values.items()})
    assert 550 < values["average_daily_rate"] < 750
    assert 1500 < values["gross_margin_per_consultant"] < 6000
    assert 0.05 < values["consultant_attrition"] < 0.3
    statuses = {k: status(ws, k, v, LAST_MONTH) for k, v in values.items()}
    print(statuses)
    assert statuses["occupancy_rate"] != "red"
    assert sum(s == "green" for s in statuses.values()) >= 4
    assert set(values) == {ws.north_star, *ws.board}


@pytest.mark.parametrize("today", [date(2026, 3, 18), date(2026, 8, 5), date(2027, 1, 12)])
def test_tace_stays_realistic_whatever_the_day(today: date, tmp_path: Path) -> None:
    con = connect(init_workspace(tmp_path, "esn", today=today).parent)
    this_month = period_start(today, Grain.month)
    last_month = add_months(this_month, -1)
    monthly = [tace(con, add_months(this_month, -k)) for k in range(1, 12)]  # the eleven full months before
    assert 0.7 < tace(con, last_month) < 0.95
    assert 0.75 < sum(monthly) / len(monthly) < 0.92


def test_timesheets_agree_with_missions_and_employment(esn: tuple[Workspace, duckdb.DuckDBPyConnection]) -> None:
    _, con = esn
    assert one(con, """SELECT count(*) FROM timesheets t LEFT JOIN missions m USING (mission_id)
                       WHERE t.kind = 'billed' AND (m.mission_id IS NULL OR t.consultant_id <> m.consultant_id
                             OR t.date < m.start_date OR t.date > m.end_date)""") == 0
    assert one(con, "SELECT count(*) FROM timesheets WHERE kind <> 'billed' AND mission_id IS NOT NULL") == 0
    assert one(con, """SELECT count(*) FROM timesheets t JOIN consultants c USING (consultant_id)
                       WHERE t.date < c.hired_on OR t.date >= c.left_on""") == 0
    assert one(con, "SELECT count(*) FROM timesheets WHERE dayofweek(date) IN (0, 6)") == 0
    assert one(con, "SELECT max(d) FROM (SELECT sum(days) d FROM timesheets GROUP BY consultant_id, date)") == 1
    kinds = {r[0] for r in con.execute("SELECT DISTINCT kind FROM timesheets").fetchall()}
    assert kinds == {"billed", "bench", "training", "leave", "internal"}


def test_opportunities_and_missions_are_consistent(esn: tuple[Workspace, duckdb.DuckDBPyConnection]) -> None:
    _, con = esn
    assert one(con, """SELECT count(*) FROM opportunities WHERE (closed_at IS NULL) <>
                       (stage IN ('qualification', 'proposal', 'negotiation'))""") == 0
    assert one(con, "SELECT count(*) FROM opportunities WHERE closed_at < created_at OR proposal_sent_at < created_at"
               " OR probability NOT BETWEEN 0 AND 1 OR created_at > ?", TODAY + timedelta(days=1)) == 0
    assert one(con, "SELECT count(*) FROM missions WHERE end_date < start_date OR requested_on > start_date"
               " OR end_notice_on <> end_date - INTERVAL 30 DAY OR requested_on > ?", TODAY) == 0
    # Leading indicators have something to say this week: open pipeline, proposals, missions ending.
    assert one(con, "SELECT count(*) FROM opportunities WHERE closed_at IS NULL") >= 10
    assert one(con, "SELECT count(*) FROM missions WHERE end_date > ? AND end_notice_on <= ?", TODAY, TODAY) >= 3
