"""Scheduled syncs: cron schedules and their next run (DST included), ticks driven by a fake clock over real
CSV files and a real DuckDB warehouse, a failing source retried, and `kpilot worker --once`."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from kpilot import worker
from kpilot.model import WorkspaceInvalid, load_workspace
from kpilot.model.schedule import CronError, parse_cron
from kpilot.service import WorkspaceService
from kpilot.worker import Scheduler, TickReport, metrics_reading

PARIS = "Europe/Paris"
ROOT = Path(__file__).resolve().parents[1]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- cron -------------------------------------------------------------------------------------------------


def test_cron_fields() -> None:
    c = parse_cron("*/15 8-18 * * mon-fri")
    assert sorted(c.minutes) == [0, 15, 30, 45]
    assert sorted(c.hours) == list(range(8, 19))
    assert sorted(c.weekdays) == [1, 2, 3, 4, 5]
    assert sorted(parse_cron("0 0 1 jan,jul *").months) == [1, 7]
    assert sorted(parse_cron("0 0 * * 7").weekdays) == [0]  # 7 is Sunday too
    daily, midnight = parse_cron("@daily"), parse_cron("0 0 * * *")
    assert (daily.minutes, daily.hours, daily.days, daily.weekdays) == (midnight.minutes, midnight.hours,
                                                                        midnight.days, midnight.weekdays)


def test_cron_next_run() -> None:
    every15 = parse_cron("*/15 * * * *")
    assert every15.next_after(utc(2026, 1, 5, 10, 7), "UTC") == utc(2026, 1, 5, 10, 15)
    assert every15.next_after(utc(2026, 1, 5, 10, 15), "UTC") == utc(2026, 1, 5, 10, 30)  # strictly after
    weekdays7 = parse_cron("0 7 * * mon-fri")  # 7:00 in Paris (CET, UTC+1 in January)
    assert weekdays7.next_after(utc(2026, 1, 9, 6, 0), PARIS) == utc(2026, 1, 12, 6, 0)  # Friday 7:00 passed -> Monday
    # Both day fields restricted: either one matches (cron's rule): the 1st of the month or any Monday.
    either = parse_cron("0 0 1 * mon")
    assert either.next_after(utc(2026, 1, 1, 0, 0), "UTC") == utc(2026, 1, 5)
    assert either.next_after(utc(2026, 1, 26, 1, 0), "UTC") == utc(2026, 2, 1)


def test_cron_across_dst_changes_in_paris() -> None:
    nightly = parse_cron("30 2 * * *")
    # 29 March 2026: clocks go from 02:00 to 03:00; 02:30 does not exist that night, the next run is the 30th.
    assert nightly.next_after(utc(2026, 3, 28, 2, 0), PARIS) == utc(2026, 3, 30, 0, 30)  # 02:30 CEST
    assert nightly.next_after(utc(2026, 3, 27, 12, 0), PARIS) == utc(2026, 3, 28, 1, 30)  # 02:30 CET
    # 25 October 2026: clocks go back from 03:00 to 02:00; 02:30 happens twice and runs once, the first time.
    first = nightly.next_after(utc(2026, 10, 24, 12, 0), PARIS)
    assert first == utc(2026, 10, 25, 0, 30)  # 02:30 CEST
    assert nightly.next_after(first, PARIS) == utc(2026, 10, 26, 1, 30)  # not 01:30 UTC, the second 02:30
    # Every half hour across the change: one hour of wall clock is skipped in spring, not repeated in autumn.
    half = parse_cron("*/30 * * * *")

    def runs(start: datetime, n: int) -> list[datetime]:
        out = [half.next_after(start, PARIS)]
        while len(out) < n:
            out.append(half.next_after(out[-1], PARIS))
        return out

    assert runs(utc(2026, 3, 29, 0, 10), 3) == [utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 1, 0),
                                                utc(2026, 3, 29, 1, 30)]  # 01:30 CET, then 03:00 and 03:30 CEST
    assert runs(utc(2026, 10, 24, 23, 10), 4) == [utc(2026, 10, 24, 23, 30), utc(2026, 10, 25, 0, 0),
                                                  utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 2, 0)]


@pytest.mark.parametrize(("text", "says"), [
    ("* * * *", "has 4 field(s); a cron schedule has 5"),
    ("61 * * * *", "'61' is not a valid minute"),
    ("*/0 * * * *", "'*/0' is not a valid minute"),
    ("0 7 * * 8", "'8' is not a valid day of week"),
    ("0 0 * foo *", "'foo' is not a valid month"),
    ("0 9-5 * * *", "'9-5' is not a valid hour"),
])
def test_cron_errors(text: str, says: str) -> None:
    with pytest.raises(CronError, match=None) as caught:
        parse_cron(text)
    assert says in str(caught.value)


def test_a_bad_schedule_is_reported_at_its_line(tmp_path: Path) -> None:
    (tmp_path / "kpilot.yaml").write_text(
        "workspace: t\nsources:\n  - key: files\n    type: csv\n    path: data/\n    schedule: '*/61 * * * *'\n",
        encoding="utf-8")
    with pytest.raises(WorkspaceInvalid) as caught:
        load_workspace(tmp_path / "kpilot.yaml")
    [issue] = caught.value.issues
    assert issue.location is not None and issue.location.line == 6
    assert "'*/61' is not a valid minute" in issue.message


# --- ticks ------------------------------------------------------------------------------------------------

YAML = """\
workspace: sched
timezone: Europe/Paris
sources:
  - {key: shop, type: csv, path: shop/, schedule: "* * * * *"}
  - {key: crm, type: csv, path: crm/, schedule: "* * * * *"}
models:
  - {key: orders, table: orders, time: day}
  - {key: leads, table: leads, time: day}
north_star: revenue
board: [order_count, lead_count, big_leads]
metrics:
  - {key: revenue, model: orders, measure: sum(amount), grain: month}
  - {key: order_count, model: orders, measure: count(*), grain: month}
  - {key: lead_count, model: leads, measure: count(*), grain: month}
  - {key: big_leads, model: leads, measure: count(*), filter: "score >= 50", grain: month}
"""


class FakeClock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _csv(path: Path, header: str, rows: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    # A new modification time even within the file system's time resolution.
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def _workspace(root: Path, yaml: str = YAML) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "kpilot.yaml").write_text(yaml, encoding="utf-8")
    _csv(root / "shop" / "orders.csv", "day,amount", ["2026-01-05,100", "2026-01-20,50", "2026-02-03,70"])
    _csv(root / "crm" / "leads.csv", "day,score", ["2026-01-02,10", "2026-01-09,80", "2026-02-11,60"])
    return root


def _scheduler(root: Path, clock: FakeClock, reports: list[TickReport]) -> Scheduler:
    @contextmanager
    def session() -> Iterator[WorkspaceService]:
        with WorkspaceService(root, state_dir=root / "state") as svc:
            yield svc

    return Scheduler(session, lambda: load_workspace(root / "kpilot.yaml")[0], clock=clock, sleep=clock.sleep,
                     on_tick=reports.append)


def _stored(root: Path, metric: str) -> dict[date, float]:
    # The service's own state folder, or the one `--state-dir` (a root of state folders) gave the CLI.
    [warehouse] = [*(root / "state").glob("warehouse.duckdb"), *(root / "state").glob("*/warehouse.duckdb")]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute("SELECT period, value FROM kpilot.series WHERE metric = ? ORDER BY period",
                           [metric]).fetchall()
    # Months after the data's last one (up to today) are materialized as 0: a count or sum of no rows.
    assert all(v == 0 for p, v in rows if p > date(2026, 2, 1)), rows
    return {p: v for p, v in rows if p <= date(2026, 2, 1)}


def _by_hand(sql: str) -> dict[date, float]:
    return {p: float(v) for p, v in duckdb.sql(sql).fetchall()}


def test_two_ticks_recompute_only_the_metrics_of_the_changed_source(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    clock = FakeClock(utc(2026, 2, 27, 9, 59, 30))
    reports: list[TickReport] = []
    scheduler = _scheduler(root, clock, reports)
    assert scheduler.next_runs() == {"shop": utc(2026, 2, 27, 10, 0), "crm": utc(2026, 2, 27, 10, 0)}
    assert scheduler.due() == []
    clock.now = utc(2026, 2, 27, 10, 0)

    def between_ticks(report: TickReport) -> None:
        reports.append(report)
        if len(reports) == 1:  # the shop's file changes before the next tick: one more order, one amended
            _csv(root / "shop" / "orders.csv", "day,amount",
                 ["2026-01-05,100", "2026-01-20,55", "2026-02-03,70", "2026-02-20,30"])

    scheduler.on_tick = between_ticks
    reports.clear()
    scheduler.run_forever(ticks=2)

    first, second = reports
    assert [(r.source, r.ok, r.changed) for r in first.runs] == [("shop", True, ["orders"]), ("crm", True, ["leads"])]
    assert first.metrics == ["revenue", "order_count", "lead_count", "big_leads"]
    assert second.at == utc(2026, 2, 27, 10, 1)  # slept until the next minute
    assert [(r.source, r.ok, r.changed) for r in second.runs] == [("shop", True, ["orders"]), ("crm", True, [])]
    assert second.metrics == ["revenue", "order_count"]  # the CRM's metrics were not recomputed
    assert first.analysis is not None and second.analysis is not None, second.error
    assert first.error is None and second.error is None

    orders = (root / "shop" / "orders.csv").as_posix()
    leads = (root / "crm" / "leads.csv").as_posix()
    month = "date_trunc('month', day)::DATE"
    assert _stored(root, "revenue") == _by_hand(f"SELECT {month}, sum(amount) FROM read_csv('{orders}') GROUP BY 1")
    assert _stored(root, "revenue") == {date(2026, 1, 1): 155.0, date(2026, 2, 1): 100.0}
    assert _stored(root, "order_count") == _by_hand(f"SELECT {month}, count(*) FROM read_csv('{orders}') GROUP BY 1")
    assert _stored(root, "big_leads") == _by_hand(
        f"SELECT {month}, count(*) FILTER (WHERE score >= 50) FROM read_csv('{leads}') GROUP BY 1")
    assert scheduler.next_runs() == {"shop": utc(2026, 2, 27, 10, 2), "crm": utc(2026, 2, 27, 10, 2)}


def test_metrics_reading_follows_joins_and_formulas(tmp_path: Path) -> None:
    yaml = YAML.replace("  - {key: leads, table: leads, time: day}",
                        "  - {key: leads, table: leads, time: day, joins: [{model: regions, on: score}]}\n"
                        "  - {key: regions, table: regions}")
    yaml += "  - {key: revenue_per_lead, type: derived, formula: revenue / lead_count, grain: month}\n"
    (tmp_path / "kpilot.yaml").write_text(yaml, encoding="utf-8")
    ws = load_workspace(tmp_path / "kpilot.yaml")[0]
    assert metrics_reading(ws, {"orders"}) == ["revenue", "order_count", "revenue_per_lead"]
    assert metrics_reading(ws, {"regions"}) == ["lead_count", "big_leads", "revenue_per_lead"]
    assert metrics_reading(ws, {"elsewhere"}) == []


def test_a_failing_source_is_reported_and_retried_at_the_next_tick(tmp_path: Path) -> None:
    yaml = YAML.replace("  - {key: crm, type: csv, path: crm/, schedule: \"* * * * *\"}",
                        "  - {key: crm, type: sqlite, path: crm.sqlite, tables: {leads: leads}, "
                        "schedule: \"*/5 * * * *\"}")
    root = _workspace(tmp_path, yaml)
    with sqlite3.connect(root / "crm.sqlite") as db:
        db.execute("CREATE TABLE leads (day DATE, score INTEGER)")
        db.executemany("INSERT INTO leads VALUES (?, ?)", [("2026-01-02", 10), ("2026-02-11", 60)])
    db.close()
    clock = FakeClock(utc(2026, 2, 27, 9, 59, 30))
    reports: list[TickReport] = []
    scheduler = _scheduler(root, clock, reports)
    scheduler.next_runs()
    clock.now = utc(2026, 2, 27, 10, 0)
    ok = scheduler.tick()
    # Databases are synced first (a file load checks the definitions against the copied tables too).
    assert [(r.source, r.ok) for r in ok.runs] == [("crm", True), ("shop", True)] and ok.error is None

    (root / "crm.sqlite").rename(root / "crm.sqlite.moved")  # the database is away at the next sync
    clock.now = utc(2026, 2, 27, 10, 5)
    failed = scheduler.tick()
    crm, shop = failed.runs
    assert shop.ok  # the other source still ran
    assert not crm.ok and "database file 'crm.sqlite' not found" in str(crm.error)
    assert scheduler.last["crm"] is crm and failed.error is None
    assert scheduler.due() == ["crm"]  # still due: tried again at the next tick, a minute later
    assert scheduler.seconds_to_wait() == 60

    (root / "crm.sqlite.moved").rename(root / "crm.sqlite")
    with sqlite3.connect(root / "crm.sqlite") as db:
        db.execute("INSERT INTO leads VALUES ('2026-02-12', 90)")
    db.close()
    clock.sleep(scheduler.seconds_to_wait())
    retried = scheduler.tick()
    assert retried.at == utc(2026, 2, 27, 10, 6)
    assert [(r.source, r.ok, r.changed) for r in retried.runs] == [("crm", True, ["leads"]), ("shop", True, [])]
    assert retried.metrics == ["lead_count", "big_leads"] and retried.error is None
    assert _stored(root, "lead_count") == {date(2026, 1, 1): 1.0, date(2026, 2, 1): 2.0}
    assert _stored(root, "big_leads") == {date(2026, 1, 1): 0.0, date(2026, 2, 1): 2.0}
    assert scheduler.next_runs()["crm"] == utc(2026, 2, 27, 10, 10)
    assert reports == [ok, failed, retried]


def test_a_source_already_syncing_is_not_synced_twice(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    clock = FakeClock(utc(2026, 2, 27, 10, 0))
    scheduler = _scheduler(root, clock, [])
    claim = (str((root / "state").resolve()), "shop")
    worker._running.add(claim)  # another thread of this process is syncing the shop
    try:
        report = scheduler.tick(["shop", "crm"])
    finally:
        worker._running.discard(claim)
    assert report.busy == ["shop"]
    assert [r.source for r in report.runs] == ["crm"]
    assert report.metrics == ["lead_count", "big_leads"] or report.error is not None


def test_kpilot_worker_once(tmp_path: Path) -> None:
    root = _workspace(tmp_path / "ws")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "COLUMNS": "200"}
    done = subprocess.run([sys.executable, "-m", "kpilot.cli", "worker", "-w", str(root), "--state-dir",
                           str(root / "state"), "--once"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "shop: synced in" in done.stdout and "changed tables: orders" in done.stdout
    assert "recomputed 4 metric(s): revenue, order_count, lead_count, big_leads" in done.stdout
    assert _stored(root, "revenue") == {date(2026, 1, 1): 150.0, date(2026, 2, 1): 70.0}

    (root / "shop" / "orders.csv").write_text("day,amount\n2026-01-05,oops\n", encoding="utf-8")
    failed = subprocess.run([sys.executable, "-m", "kpilot.cli", "worker", "-w", str(root), "--state-dir",
                             str(root / "state"), "--once", "--lang", "fr"], capture_output=True, text=True, env=env,
                            timeout=120)
    assert failed.returncode == 1
    assert "la source « shop » a échoué" in failed.stderr, failed.stderr
    assert _stored(root, "revenue") == {date(2026, 1, 1): 150.0, date(2026, 2, 1): 70.0}  # the last good data


def test_kpilot_worker_needs_a_schedule(tmp_path: Path) -> None:
    root = _workspace(tmp_path, YAML.replace(', schedule: "* * * * *"', ""))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, "-m", "kpilot.cli", "worker", "-w", str(root), "--once"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 1
    assert "has no source with a `schedule:`" in done.stderr


def test_in_the_web_app_a_run_goes_through_the_gate_and_drops_its_caches(tmp_path: Path) -> None:
    import threading

    from fastapi.testclient import TestClient

    from kpilot.web.app import create_app

    yaml = YAML.replace("  - {key: crm, type: csv, path: crm/, schedule: \"* * * * *\"}",
                        "  - {key: crm, type: sqlite, path: crm.sqlite, tables: {leads: leads}, "
                        "schedule: \"0 0 1 1 *\"}")
    # Yearly schedules: the app's own scheduler thread (on the real clock) must not run during the test.
    root = _workspace(tmp_path, yaml.replace('schedule: "* * * * *"', 'schedule: "0 0 1 1 *"'))
    with sqlite3.connect(root / "crm.sqlite") as db:
        db.execute("CREATE TABLE leads (day DATE, score INTEGER)")
        db.executemany("INSERT INTO leads VALUES (?, ?)", [("2026-01-02", 10), ("2026-02-11", 60)])
    db.close()
    with WorkspaceService(root, state_dir=root / "state") as svc:
        svc.sync()
    app = create_app(root, state_dir=root / "state")
    with TestClient(app, base_url="http://127.0.0.1"):
        assert any(t.name == "kpilot-scheduler" for t in threading.enumerate())  # started by the lifespan
        gate = app.state.gate
        as_of = date(2026, 2, 27)

        def leads_in_february() -> object:
            return next(r["value"] for r in gate.series("lead_count", as_of) if r["period"] == "2026-02-01")

        assert leads_in_february() == 1.0  # now cached
        with sqlite3.connect(root / "crm.sqlite") as db:
            db.execute("INSERT INTO leads VALUES ('2026-02-12', 90)")
        db.close()
        assert leads_in_february() == 1.0  # a database changes no file: the cache still answers
        clock = FakeClock(utc(2026, 2, 27, 10, 0))
        scheduler = Scheduler(gate.exclusive, lambda: gate.primary.ws, clock=clock, sleep=clock.sleep)
        report = scheduler.tick(["crm"])
        assert [(r.source, r.ok, r.changed) for r in report.runs] == [("crm", True, ["leads"])], report.error
        assert report.metrics == ["lead_count", "big_leads"]
        assert leads_in_february() == 2.0  # the caches were dropped
    assert not any(t.name == "kpilot-scheduler" for t in threading.enumerate())  # stopped with the app
