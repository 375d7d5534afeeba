"""A load killed with SIGKILL in the middle leaves the previous data exactly as it was."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb

YAML = """
workspace: crash
sources: [{key: files, type: csv, path: data/}]
models: [{key: events, table: events, time: day}]
metrics: [{key: amount, model: events, measure: sum(amount), grain: month}]
"""


def _kpilot(ws: Path, state: Path, *args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, KPILOT_STATE_DIR=str(state))
    return subprocess.Popen([sys.executable, "-m", "kpilot.cli", *args, "-w", str(ws)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_kill_during_load_keeps_previous_data(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / "data").mkdir(parents=True)
    (ws / "kpilot.yaml").write_text(YAML, encoding="utf-8")
    csv = ws / "data" / "events.csv"
    csv.write_text("id,day,amount\n1,2026-01-01,10.5\n2,2026-01-02,20\n", encoding="utf-8")
    state = tmp_path / "state"
    first = _kpilot(ws, state, "load")
    assert first.wait(120) == 0, first.communicate()

    # A much larger file, so the second load is still running when it is killed.
    big = tmp_path / "big.csv"
    duckdb.execute(f"""COPY (SELECT i AS id, DATE '2024-01-01' + (i % 900)::INT AS day, (i % 1000) / 4.0 AS amount
                        FROM range(6000000) t(i)) TO '{big}' (HEADER)""")
    big.replace(csv)
    warehouse = next(state.rglob("warehouse.duckdb"))
    wal = warehouse.with_name(warehouse.name + ".wal")
    size = warehouse.stat().st_size
    proc = _kpilot(ws, state, "load")
    deadline = time.monotonic() + 60
    # Wait until the load is writing (the database file or its WAL grows), then kill it without warning.
    while time.monotonic() < deadline and proc.poll() is None:
        grown = warehouse.stat().st_size - size + (wal.stat().st_size if wal.exists() else 0)
        if grown > 2_000_000:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the load finished before it could be killed; make the file larger"
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)

    con = duckdb.connect(str(warehouse))
    assert con.execute("SELECT id, day::VARCHAR, amount FROM events ORDER BY id").fetchall() == [
        (1, "2026-01-01", 10.5), (2, "2026-01-02", 20.0)]
    assert con.execute("SELECT version, rows FROM kpilot.loads WHERE table_name = 'events'").fetchall() == [(1, 2)]
    con.close()

    # The next load starts over and completes.
    again = _kpilot(ws, state, "load")
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    con = duckdb.connect(str(warehouse))
    assert con.execute("SELECT count(*), sum(id) FROM events").fetchall() == [(6_000_000, 17_999_997_000_000)]
    assert con.execute("SELECT version FROM kpilot.loads WHERE table_name = 'events'").fetchall() == [(2,)]
    con.close()
