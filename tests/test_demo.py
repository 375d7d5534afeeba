"""The demo workspace (Northwind Cloud): deterministic, valid, and telling a story the analyses can find.

Values are checked with hand-written DuckDB SQL over the generated CSV files and NumPy, never
through kpilot's own compute engine, so these tests are an independent witness of the data. The one
exception checks the other way round: the SQL the generator sets targets with (`kpilot.templates.demo.SERIES`)
must agree with the metrics' YAML definitions as kpilot computes them.
"""

from __future__ import annotations

import errno
import time
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from kpilot.analysis.status import achievement, rag
from kpilot.compute.engine import DuckDBEngine
from kpilot.compute.metrics import MetricComputer
from kpilot.model import Grain, KpilotError, Workspace, load_workspace
from kpilot.model.targets import native_target
from kpilot.templates import saas, smarketing
from kpilot.templates.demo import (
    DEMO_TARGETS,
    MARKER,
    SERIES,
    DemoCalendar,
    TargetRule,
    create_demo,
    generate_demo,
    series,
)
from tests.conftest import csv_schema, fail_copy, files_under, one

TODAY = date(2026, 11, 26)          # a Thursday; the last complete week starts 2026-11-16
SEED = 7
CAL = DemoCalendar.around(TODAY, 3)
TABLES = ("leads", "meetings", "deals", "subscriptions", "product_usage", "ad_spend", "web_sessions")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    start = time.perf_counter()
    path = generate_demo(tmp_path_factory.mktemp("demo") / "northwind", today=TODAY, seed=SEED)
    print(f"\ngenerate_demo (3 years, en): {time.perf_counter() - start:.2f} s")
    return path


@pytest.fixture(scope="module")
def con(demo: Path) -> duckdb.DuckDBPyConnection:
    db = duckdb.connect()
    for t in TABLES:
        db.execute(f"CREATE TABLE {t} AS SELECT * FROM read_csv('{demo.parent / 'data' / (t + '.csv')}')")
    return db


@pytest.fixture(scope="module")
def workspace(demo: Path) -> Workspace:
    ws, issues = load_workspace(demo, csv_schema(demo.parent / "data"))
    assert issues == [], "\n".join(map(str, issues))
    return ws


def weekly(con: duckdb.DuckDBPyConnection, sql: str) -> dict[date, float]:
    """{week start: value} from a query returning (timestamp or date, value) per week."""
    return {(w.date() if hasattr(w, "date") else w): float(v) for w, v in con.execute(sql).fetchall()}


def test_same_seed_same_bytes_and_another_seed_differs(tmp_path: Path) -> None:
    first = generate_demo(tmp_path / "a", today=TODAY, seed=SEED)
    second = generate_demo(tmp_path / "b", today=TODAY, seed=SEED)
    files = sorted(p.relative_to(first.parent) for p in first.parent.rglob("*") if p.is_file())
    assert len(files) == len(TABLES) + 1
    for f in files:
        assert (first.parent / f).read_bytes() == (second.parent / f).read_bytes(), f"{f} differs between runs"
    other = generate_demo(tmp_path / "c", today=TODAY, seed=SEED + 1)
    assert (other.parent / "data" / "leads.csv").read_bytes() != (first.parent / "data" / "leads.csv").read_bytes()


def test_create_demo_writes_the_demo_and_regenerates_only_its_own_folder(demo: Path, tmp_path: Path) -> None:
    target = tmp_path / "kpilot-demo"
    manifest = create_demo(target, today=TODAY)
    assert manifest == target / "kpilot.yaml" and (target / MARKER).is_file()
    for f in ["kpilot.yaml", *(f"data/{t}.csv" for t in TABLES)]:
        assert (target / f).read_bytes() == (demo.parent / f).read_bytes(), f
    (target / "data" / "leads.csv").write_text("edited", encoding="utf-8")
    create_demo(target, today=TODAY)
    assert (target / "data" / "leads.csv").read_bytes() == (demo.parent / "data" / "leads.csv").read_bytes()

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("x", encoding="utf-8")
    with pytest.raises(KpilotError, match=r"mine exists and is not a kpilot demo folder; pass --dir"):
        create_demo(mine, today=TODAY)
    assert files_under(mine) == ["notes.txt"]


def test_create_demo_refuses_bad_input_before_writing(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x", encoding="utf-8")
    for target in (tmp_path / "notes.txt", tmp_path / "notes.txt" / "sub"):
        with pytest.raises(KpilotError, match=r"notes\.txt is a file, not a folder"):
            create_demo(target, today=TODAY)
    with pytest.raises(KpilotError, match=r"the seed must be 0 or more, not -1\. Fix: pass a whole number"):
        create_demo(tmp_path / "a", seed=-1, today=TODAY)
    with pytest.raises(KpilotError) as err:
        create_demo(tmp_path / "a", language="FR", today=TODAY)
    assert "unknown language 'FR'; did you mean 'fr'? languages: 'en', 'fr'" in str(err.value)
    assert files_under(tmp_path) == ["notes.txt"]


def test_create_demo_failing_midway_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "kpilot-demo"
    copies = fail_copy(monkeypatch, at=3, error=errno.ENOSPC)
    with pytest.raises(KpilotError) as err:
        create_demo(target, today=TODAY)
    assert f"could not write to {copies[2]}: No space left on device; nothing was written" in str(err.value)
    assert files_under(tmp_path) == []
    monkeypatch.undo()
    assert create_demo(target, today=TODAY).is_file(), "a re-run is not refused"


def test_validates_with_no_error_and_no_warning(workspace: Workspace) -> None:
    assert workspace.north_star == "mrr"
    assert workspace.board == ["pipeline_generated", "demos_booked", "net_new_mrr", "logo_churn"]
    for key in [*workspace.board, "mrr"]:
        metric = workspace.metric(key)
        assert metric.is_kpi and metric.decision is not None, f"{key} needs a target, owners and a decision"
        assert len(metric.targets) >= 4, f"{key}: targets vary over time"
    assert set(workspace.metric("pipeline_generated").owners) == {"marketing", "sales"}
    types = {m.type.value for m in workspace.metrics}
    assert types == {"simple", "ratio", "snapshot", "derived", "cumulative"}
    assert workspace.metric("net_new_mrr").formula == "mrr - offset(mrr, -1)"


def test_french_demo_is_the_same_company_in_french(demo: Path, tmp_path: Path) -> None:
    fr = generate_demo(tmp_path / "fr", today=TODAY, seed=SEED, language="fr")
    for t in TABLES:
        assert (fr.parent / "data" / f"{t}.csv").read_bytes() == (demo.parent / "data" / f"{t}.csv").read_bytes()
    ws, issues = load_workspace(fr, csv_schema(fr.parent / "data"))
    assert issues == [], "\n".join(map(str, issues))
    assert ws.language.value == "fr"
    assert ws.team("sales").name == "Ventes"
    assert ws.metric("demos_booked").name == "Démos planifiées"
    english = load_workspace(demo, csv_schema(demo.parent / "data"))[0]
    assert ws.metric_keys == english.metric_keys, "keys stay English"
    assert all("${" not in line for line in fr.read_text(encoding="utf-8").splitlines())


def test_row_counts_and_time_range(con: duckdb.DuckDBPyConnection) -> None:
    counts = {t: int(one(con, f"SELECT count(*) FROM {t}")) for t in TABLES}
    print("\nrows:", counts, "total", sum(counts.values()))
    days = (TODAY - CAL.start).days
    assert counts["ad_spend"] == 2 * days and counts["web_sessions"] == 5 * days
    ranges = {"leads": (45_000, 110_000), "meetings": (12_000, 40_000), "deals": (4_000, 14_000),
              "subscriptions": (1_500, 5_000), "product_usage": (25_000, 70_000)}
    for table, (low, high) in ranges.items():
        assert low <= counts[table] <= high, f"{table}: {counts[table]} rows"
    assert 90_000 <= sum(counts.values()) <= 250_000
    first, last = con.execute("SELECT min(created_at), max(created_at) FROM leads").fetchall()[0]
    assert first.date() >= CAL.start and last.date() < TODAY, "three years, ending before today"
    assert one(con, f"SELECT count(*) FROM deals WHERE closed_at >= DATE '{TODAY}'") == 0
    assert one(con, f"SELECT count(*) FROM subscriptions WHERE start_date >= DATE '{TODAY}'") == 0
    assert one(con, "SELECT count(*) FROM deals WHERE stage = 'open' AND closed_at IS NOT NULL") == 0
    assert one(con, "SELECT count(*) FROM meetings m JOIN leads l USING (lead_id) WHERE m.booked_at < l.mql_at") == 0


def test_weekday_pattern_and_seasons(con: duckdb.DuckDBPyConnection) -> None:
    per_day = dict(con.execute(
        "SELECT isodow(created_at) >= 6, count(*) / count(DISTINCT created_at::DATE) FROM leads GROUP BY 1"
    ).fetchall())
    assert per_day[True] < 0.3 * per_day[False], f"few leads at weekends: {per_day}"
    august = one(con, "SELECT count(*) FROM leads WHERE month(created_at) = 8 AND year(created_at) = 2026")
    june = one(con, "SELECT count(*) FROM leads WHERE month(created_at) = 6 AND year(created_at) = 2026")
    assert august < 0.85 * june
    year_ago = one(con, "SELECT count(*) FROM leads WHERE created_at >= DATE '2024-01-01' AND created_at < DATE '2024-07-01'")
    now = one(con, "SELECT count(*) FROM leads WHERE created_at >= DATE '2026-01-01' AND created_at < DATE '2026-07-01'")
    assert 1.4 < now / year_ago < 2.4, "growth over two years"


def test_demos_lead_won_revenue_by_three_to_six_weeks(con: duckdb.DuckDBPyConnection) -> None:
    demos = weekly(con, "SELECT date_trunc('week', booked_at), count(*) FROM meetings WHERE type = 'demo' GROUP BY 1")
    won = weekly(con, "SELECT date_trunc('week', closed_at), sum(amount) FROM deals WHERE stage = 'won' GROUP BY 1")
    weeks = sorted(w for w in demos if CAL.start <= w and w + timedelta(days=7) <= TODAY)  # complete weeks

    def detrended(values: list[float]) -> np.ndarray:
        # Log, minus a centered 13-week moving average: what is left are the weekly swings.
        logs = np.log(np.array(values) + 1.0)
        padded = np.pad(logs, 6, mode="edge")
        return logs - np.convolve(padded, np.ones(13) / 13, mode="valid")

    x = detrended([demos[w] for w in weeks])
    y = detrended([won.get(w, 0.0) for w in weeks])
    corr = [float(np.corrcoef(x[: len(x) - lag], y[lag:])[0, 1]) for lag in range(11)]
    best = int(np.argmax(corr))
    print("\ncross-correlation demos -> won revenue by lag (weeks):", np.round(corr, 2).tolist())
    assert 3 <= best <= 6, f"demos should lead won revenue by 3-6 weeks, best lag {best}"
    assert corr[best] > 0.15 and corr[best] > corr[0] + 0.15


def test_linkedin_pause_shows_in_demos_then_in_won_revenue(con: duckdb.DuckDBPyConnection) -> None:
    spend = one(con, f"SELECT sum(amount) FROM ad_spend WHERE channel = 'linkedin_ads' "
                     f"AND date >= DATE '{CAL.pause_start}' AND date < DATE '{CAL.pause_end}'")
    assert spend == 0
    demos = weekly(con, "SELECT date_trunc('week', booked_at), count(*) FROM meetings WHERE type = 'demo' GROUP BY 1")
    paused = np.mean([demos[CAL.pause_start + timedelta(weeks=k)] for k in range(3)])
    before = np.mean([demos[CAL.pause_start - timedelta(weeks=k)] for k in range(1, 9)])
    print(f"\ndemos per week: {paused:.0f} during the pause, {before:.0f} in the 8 weeks before")
    assert paused < 0.85 * before
    won = weekly(con, "SELECT date_trunc('week', closed_at), sum(amount) FROM deals WHERE stage = 'won' GROUP BY 1")
    echo = CAL.pause_start + timedelta(weeks=5)     # demos -> won revenue takes about five weeks
    dipped = np.mean([won[echo + timedelta(weeks=k)] for k in range(3)])
    normal = np.mean([won[echo - timedelta(weeks=k)] for k in range(1, 9)])
    print(f"won revenue per week: {dipped:,.0f} five weeks later, {normal:,.0f} before")
    assert dipped < 0.9 * normal


def test_usage_drop_of_small_customers_comes_before_churn(con: duckdb.DuckDBPyConnection) -> None:
    usage = dict(con.execute("SELECT month, sum(active_users) / sum(seats) FROM product_usage "
                             "WHERE segment = 'smb' GROUP BY 1").fetchall())
    normal = np.mean([usage[date(2026, m, 1)] for m in (3, 4, 5, 6)])
    assert usage[date(2026, 10, 1)] < normal - 0.04, "the integration incident shows in smb usage"
    churn_by_month = dict(con.execute(
        "SELECT date_trunc('month', end_date)::DATE, count(*) FROM subscriptions WHERE segment = 'smb' "
        "AND end_date IS NOT NULL GROUP BY 1").fetchall())
    spring = np.mean([churn_by_month[date(2026, m, 1)] for m in (3, 4, 5, 6)])
    november_pace = churn_by_month[date(2026, 11, 1)] * 30 / (TODAY.day - 1)
    assert november_pace > 1.3 * spring, "smb churn rises after usage falls"


def _target(ws: Workspace, key: str, period: date) -> float:
    value = native_target(ws.metric(key), period)
    assert value is not None, f"{key} has no target for {period}"
    return value


def _status(ws: Workspace, key: str, value: float, period: date) -> str:
    metric = ws.metric(key)
    return rag(achievement(value, _target(ws, key, period), metric.direction), metric.bands)


def test_board_at_the_last_complete_periods_is_mostly_green(con: duckdb.DuckDBPyConnection,
                                                            workspace: Workspace) -> None:
    week, month = date(2026, 11, 16), date(2026, 10, 1)
    sep_end, oct_end = date(2026, 9, 30), date(2026, 10, 31)

    def mrr_at(day: date) -> float:
        return one(con, f"SELECT sum(mrr) FROM subscriptions WHERE start_date <= DATE '{day}' "
                        f"AND (end_date IS NULL OR end_date > DATE '{day}')")

    active_sep = one(con, f"SELECT count(*) FROM subscriptions WHERE start_date <= DATE '{sep_end}' "
                          f"AND (end_date IS NULL OR end_date > DATE '{sep_end}')")
    values = {
        "mrr": (mrr_at(oct_end), month),
        "pipeline_generated": (one(con, f"SELECT sum(amount) FROM deals WHERE created_at >= DATE '{week}' "
                                        f"AND created_at < DATE '{week + timedelta(days=7)}'"), week),
        "demos_booked": (one(con, f"SELECT count(*) FROM meetings WHERE type = 'demo' AND booked_at >= DATE '{week}' "
                                  f"AND booked_at < DATE '{week + timedelta(days=7)}'"), week),
        "net_new_mrr": (mrr_at(oct_end) - mrr_at(sep_end), month),
        "logo_churn": (one(con, "SELECT count(*) FROM subscriptions WHERE end_date >= DATE '2026-10-01' "
                                "AND end_date < DATE '2026-11-01'") / active_sep, month),
    }
    status = {k: _status(workspace, k, v, p) for k, (v, p) in values.items()}
    for k, (v, p) in values.items():
        print(f"\n{k:20} {p}  value {v:,.4g}  target {_target(workspace, k, p):,.4g}  {status[k]}", end="")
    board = [status[k] for k in workspace.board]
    assert board.count("green") >= 2 and 1 <= 4 - board.count("green") <= 2, status
    assert status["logo_churn"] != "green", "churn is rising after the usage incident"
    assert status["mrr"] != "red"


# --- The generator's reference SQL against the metrics' definitions.

@pytest.fixture(scope="module")
def computers(demo: Path, con: duckdb.DuckDBPyConnection, workspace: Workspace,
              tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Workspace, MetricComputer]]:
    """kpilot's own computation of the demo, saas and smarketing definitions over the demo's CSV files
    (a superset of the templates' tables) in an in-memory DuckDB."""
    schema = csv_schema(demo.parent / "data")
    folder = tmp_path_factory.mktemp("definitions")
    spaces = {"demo": workspace}
    for module in (saas, smarketing):
        name = module.__name__.rsplit(".", 1)[-1]
        module.write(folder / name, "en", TODAY)
        spaces[name], issues = load_workspace(folder / name, schema)
        assert [i for i in issues if i.severity == "error"] == [], name
    return {name: (ws, MetricComputer(DuckDBEngine(con.cursor()), ws, schema, as_of=TODAY))
            for name, ws in spaces.items()}


@pytest.fixture(scope="module")
def tables(con: duckdb.DuckDBPyConnection) -> dict[str, pa.Table]:
    """The generated tables as read back from their CSV files."""
    return {t: con.sql(f"SELECT * FROM {t}").to_arrow_table() for t in TABLES}


def _assert_agree(reference: list[tuple[date, float]], computed: list[tuple[date, float | None]], what: str) -> None:
    ours = dict(computed)
    assert len(reference) >= 30, f"{what}: {len(reference)} reference periods"
    for period, value in reference:
        assert ours.get(period) == pytest.approx(value, rel=1e-9, abs=1e-9), f"{what} at {period}"


TARGET_RULES: dict[str, tuple[TargetRule, ...]] = {"demo": DEMO_TARGETS, "saas": saas.TARGETS,
                                                   "smarketing": smarketing.TARGETS}


def test_every_reference_series_equals_its_metric_computed_by_kpilot(
        computers: dict[str, tuple[Workspace, MetricComputer]], tables: dict[str, pa.Table]) -> None:
    checked = set()
    for name, rules in TARGET_RULES.items():
        ws, computer = computers[name]
        for rule in rules:
            grain, _ = SERIES[rule.metric]
            metric = ws.metric(rule.metric)
            assert metric.grain is grain, f"{name}: {rule.metric} is per {metric.grain}, its reference per {grain}"
            computed = computer.series(rule.metric, grain)
            _assert_agree(series(tables, CAL, rule.metric),
                          list(zip(computed.periods, map(float, computed.values), strict=True)), f"{name}.{rule.metric}")
            checked.add(rule.metric)
    assert checked == set(SERIES), "every reference series sets some workspace's targets, and is checked here"


def test_demo_won_revenue_is_weekly_while_the_reference_is_monthly(
        computers: dict[str, tuple[Workspace, MetricComputer]], tables: dict[str, pa.Table]) -> None:
    # The monthly reference series of won revenue sets smarketing's new_bookings (a monthly metric).
    # The demo's won_revenue is the same sum, but per week: it agrees once rolled up to months.
    ws, computer = computers["demo"]
    assert ws.metric("won_revenue").grain is Grain.week and SERIES["new_bookings"][0] is Grain.month
    monthly = computer.series("won_revenue", Grain.month)
    _assert_agree(series(tables, CAL, "new_bookings"),
                  list(zip(monthly.periods, map(float, monthly.values), strict=True)), "demo.won_revenue by month")


def test_the_north_star_gets_its_leading_indicators_with_lags_in_weeks(demo: Path,
                                                                      tmp_path_factory: pytest.TempPathFactory) -> None:
    # Monthly MRR tested on its weekly values against the weekly leaders. The story: deals created close 3 to 6 weeks
    # later and their subscriptions start days after: pipeline leads MRR by ~5 weeks; sessions, further up the
    # funnel (session -> lead -> demo -> deal), by ~8.
    from kpilot.insights import Insights
    from kpilot.service import WorkspaceService

    svc = WorkspaceService(demo.parent, state_dir=tmp_path_factory.mktemp("demo-leads"))
    svc.load()
    edges = [e for e in Insights(svc, as_of=TODAY, computer=svc.computer(TODAY)).leads() if e.follower == "mrr"]
    found = {e.leader: e for e in edges}
    assert set(found) == {"pipeline_generated", "sessions"}
    assert all(e.grain is Grain.week and e.p_value <= 0.05 and e.correlation > 0 for e in edges)
    assert 4 <= found["pipeline_generated"].lag <= 6 and 7 <= found["sessions"].lag <= 10
