"""`kpilot serve` and the CLI on the same workspace at the same time: every command runs while a real server
process answers, and what a command writes into the warehouse shows on the server without a restart."""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
import yaml

from kpilot.compute.engine import WAIT_ENV
from kpilot.model import KpilotError
from kpilot.service import WorkspaceService
from kpilot.web.state import WorkspaceGate
from tests.compute.test_warehouse_lock import holding
from tests.web.conftest import _free_port

AS_OF = "2026-03-15"
DAYS = [date(2024, 1, 1) + timedelta(days=i) for i in range(800)]  # up to 2026-03-10


def _amount(i: int) -> float:
    return float(100 + (i * 37) % 50 + (i // 30) * 3)


def _workspace(root: Path) -> Path:
    """A small workspace: daily orders in a CSV file, refunds in a SQLite database (a database source)."""
    ws = root / "ws"
    (ws / "data").mkdir(parents=True)
    with (ws / "data" / "orders.csv").open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["order_id", "day", "amount", "channel"])
        out.writerows([i, d.isoformat(), _amount(i), "web" if i % 3 else "shop"] for i, d in enumerate(DAYS))
    with sqlite3.connect(ws / "shop.sqlite") as con:
        con.execute("CREATE TABLE refunds (id INTEGER PRIMARY KEY, day DATE, amount REAL)")
        con.executemany("INSERT INTO refunds VALUES (?, ?, ?)",
                        [(i, d.isoformat(), 5.0) for i, d in enumerate(DAYS) if i % 4 == 0])
    doc = {
        "workspace": "side", "language": "en", "timezone": "UTC",
        "sources": [{"key": "files", "type": "csv", "path": "data/"},
                    {"key": "shop", "type": "sqlite", "path": "shop.sqlite",
                     "tables": {"refunds": {"cursor": "id", "primary_key": "id"}}}],
        "models": [{"key": "orders", "table": "orders", "time": "day", "dimensions": ["channel"]},
                   {"key": "refunds", "table": "refunds", "source": "shop", "time": "day"}],
        "north_star": "revenue",
        "board": ["orders", "refunded"],
        "metrics": [
            {"key": "revenue", "model": "orders", "measure": "sum(amount)", "grain": "month", "unit": "EUR",
             "direction": "up", "targets": [{"from": "2024-01", "to": "2026-12", "value": 4000}]},
            {"key": "orders", "model": "orders", "measure": "count(*)", "grain": "month", "direction": "up",
             "targets": [{"from": "2024-01", "to": "2026-12", "value": 30}]},
            {"key": "refunded", "model": "refunds", "measure": "sum(amount)", "grain": "month", "unit": "EUR",
             "direction": "down", "targets": [{"from": "2024-01", "to": "2026-12", "value": 40}]},
        ],
    }
    (ws / "kpilot.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return ws


def _warehouse_of(gate: WorkspaceGate) -> Path:
    assert gate.state_dir is not None
    return gate.state_dir / "warehouse.duckdb"


def _in_another_process(warehouse: Path, sql: str = "SELECT 1", wait: float = 0) -> subprocess.CompletedProcess[str]:
    """`sql` run on the warehouse by another process, which gives up at once when the file is held."""
    code = ("import sys\nfrom kpilot.compute.engine import connect_duckdb\n"
            "con = connect_duckdb(sys.argv[1], wait=float(sys.argv[3]))\ncon.execute(sys.argv[2])\ncon.close()")
    return subprocess.run([sys.executable, "-c", code, str(warehouse), sql, str(wait)], capture_output=True,
                          text=True, timeout=120)


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[WorkspaceGate]:
    """The web's access to the small workspace (synced, loaded), looking at the files on every request."""
    ws = _workspace(tmp_path)
    with WorkspaceService(ws, state_dir=tmp_path / "state") as svc:
        svc.sync()
    g = WorkspaceGate(ws, state_dir=tmp_path / "state", check_every=0)
    g.refresh()
    yield g
    g.close()


def test_the_server_holds_the_warehouse_only_while_it_answers(gate: WorkspaceGate) -> None:
    day = date.fromisoformat(AS_OF)
    assert _in_another_process(_warehouse_of(gate)).returncode == 0  # after the load at start
    revenue = {s.key: s for s in gate.board(day)}["revenue"].value
    assert revenue == pytest.approx(_month_sum([(d, _amount(i)) for i, d in enumerate(DAYS)], date(2026, 3, 1)))
    done = _in_another_process(_warehouse_of(gate))
    assert done.returncode == 0, done.stderr
    with gate.service():
        held = _in_another_process(_warehouse_of(gate))
    assert held.returncode == 1 and "still after 0 s of waiting" in held.stderr


def test_a_request_waits_while_another_process_holds_the_warehouse(gate: WorkspaceGate) -> None:
    day = date.fromisoformat(AS_OF)
    with holding(_warehouse_of(gate), 1.5):
        started = time.monotonic()
        revenue = {s.key: s for s in gate.board(day)}["revenue"].value
        waited = time.monotonic() - started
    assert revenue == pytest.approx(_month_sum([(d, _amount(i)) for i, d in enumerate(DAYS)], date(2026, 3, 1)))
    assert waited >= 1.0


def test_a_request_gives_up_after_the_wait_and_says_who_holds_it(gate: WorkspaceGate,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WAIT_ENV, "0.3")
    with holding(_warehouse_of(gate), 60, as_command="load") as proc, pytest.raises(KpilotError) as caught:
        gate.board(date.fromisoformat(AS_OF))
    assert f"is in use by `kpilot load` (PID {proc.pid}), still after 0.3 s of waiting" in caught.value.message
    monkeypatch.delenv(WAIT_ENV)
    assert {s.key for s in gate.board(date.fromisoformat(AS_OF))} == {"revenue", "orders", "refunded"}


UPDATE = "UPDATE orders SET amount = amount + 1000 WHERE CAST(day AS DATE) = DATE '2026-03-02'"


def test_a_change_by_another_process_is_served_at_the_next_look(gate: WorkspaceGate) -> None:
    day = date.fromisoformat(AS_OF)
    before = {s.key: s for s in gate.board(day)}["revenue"].value
    assert before is not None
    changed = _in_another_process(_warehouse_of(gate), UPDATE)
    assert changed.returncode == 0, changed.stderr
    assert {s.key: s for s in gate.board(day)}["revenue"].value == pytest.approx(before + 1000)


def test_a_change_found_on_opening_drops_what_was_cached(gate: WorkspaceGate) -> None:
    day = date.fromisoformat(AS_OF)
    gate.check_every = 3600.0  # no look at the files: only the opening can notice the change
    before = {s.key: s for s in gate.board(day)}["revenue"].value
    assert before is not None
    changed = _in_another_process(_warehouse_of(gate), UPDATE)
    assert changed.returncode == 0, changed.stderr
    assert {s.key: s for s in gate.board(day)}["revenue"].value == before  # cached, the files not looked at
    march = next(r for r in gate.series("revenue", day) if r["period"] == "2026-03-01")  # not cached: opens
    assert march["value"] == pytest.approx(before + 1000)
    assert {s.key: s for s in gate.board(day)}["revenue"].value == pytest.approx(before + 1000)


def _kpilot(ws: Path, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kpilot.cli", *args, "-w", str(ws), "--state-dir", str(state)],
                          capture_output=True, text=True, timeout=180, env=os.environ.copy())


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, str]]:
    """The workspace (synced once), its state root, and the URL of a `kpilot serve` process running on it."""
    root = tmp_path_factory.mktemp("side")
    ws, state = _workspace(root), root / "state"
    first = _kpilot(ws, state, "sync")
    assert first.returncode == 0, first.stdout + first.stderr
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "kpilot.cli", "serve", "-w", str(ws), "--state-dir", str(state),
                             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=os.environ.copy())
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/healthz", timeout=10)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
                time.sleep(0.2)
        httpx.get(f"{url}/api/v1/status?as_of={AS_OF}", timeout=60)  # the server has used the warehouse
        yield ws, state, url
    finally:
        proc.terminate()
        proc.communicate(timeout=20)


def _board(url: str) -> dict[str, dict[str, object]]:
    r = httpx.get(f"{url}/api/v1/status?as_of={AS_OF}", timeout=60)
    assert r.status_code == 200, r.text
    return {str(s["key"]): s for s in r.json()}


def _month_sum(values: list[tuple[date, float]], first: date) -> float:
    return sum(v for d, v in values if d.year == first.year and d.month == first.month)


def _board_until(url: str, key: str, expected: float) -> float:
    """The board's value of `key` once it shows `expected` (the server looks at the warehouse about once a
    second), else its last value after 10 s."""
    deadline = time.monotonic() + 10
    while True:
        value = float(_board(url)[key]["value"])  # type: ignore[arg-type]
        if value == pytest.approx(expected) or time.monotonic() > deadline:
            return value
        time.sleep(0.3)


@pytest.mark.slow
def test_every_command_runs_beside_the_server(served: tuple[Path, Path, str]) -> None:
    ws, state, url = served
    commands = [("status", "--as-of", AS_OF, "--format", "json"), ("series", "revenue", "--format", "json"),
                ("forecast", "revenue", "--as-of", AS_OF, "--format", "json"), ("leads", "--as-of", AS_OF),
                ("analyze", "--as-of", AS_OF), ("load",), ("compute",), ("sync",)]
    results = {args[0]: _kpilot(ws, state, *args) for args in commands}
    failed = {name: r.stdout[-500:] + r.stderr[-1500:] for name, r in results.items() if r.returncode != 0}
    assert sorted(failed) == [], "\n".join(f"kpilot {name}: {text}" for name, text in failed.items())
    statuses = {s["key"]: s for s in json.loads(results["status"].stdout)}
    assert statuses["revenue"]["value"] == pytest.approx(
        _month_sum([(d, _amount(i)) for i, d in enumerate(DAYS)], date(2026, 3, 1)))
    assert _board(url)["revenue"]["value"] == statuses["revenue"]["value"]  # the server answers all along


@pytest.mark.slow
def test_what_the_cli_writes_shows_on_the_board_without_a_restart(served: tuple[Path, Path, str]) -> None:
    ws, state, url = served
    before = _board(url)
    march = date(2026, 3, 1)
    # A CSV changed and loaded by `kpilot load`: a larger order on 2026-03-02.
    path = ws / "data" / "orders.csv"
    rows = path.read_text(encoding="utf-8").splitlines()
    rows.append(f"{len(DAYS)},2026-03-02,1000.0,web")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    loaded = _kpilot(ws, state, "load")
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    assert _board_until(url, "revenue", float(before["revenue"]["value"]) + 1000.0) == pytest.approx(  # type: ignore[arg-type]
        float(before["revenue"]["value"]) + 1000.0)  # type: ignore[arg-type]
    # A database source changed and copied by `kpilot sync`: the server sees no file of its own change.
    with sqlite3.connect(ws / "shop.sqlite") as con:
        con.execute("INSERT INTO refunds VALUES (?, ?, ?)", (10_000, "2026-03-03", 70.0))
    synced = _kpilot(ws, state, "sync")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    expected = _month_sum([(d, 5.0) for i, d in enumerate(DAYS) if i % 4 == 0], march) + 70.0
    assert float(before["refunded"]["value"]) != pytest.approx(expected)  # type: ignore[arg-type]
    assert _board_until(url, "refunded", expected) == pytest.approx(expected)
