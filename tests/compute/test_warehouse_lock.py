"""Opening a warehouse another process holds: kpilot waits (up to $KPILOT_WAREHOUSE_WAIT seconds), then says who
holds it and what to do. The holders are real processes with DuckDB's real file lock."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from kpilot.compute.engine import WAIT_ENV, connect_duckdb, lock_wait
from kpilot.i18n import translator
from kpilot.model import KpilotError
from kpilot.model.errors import render

# Holds the warehouse for HOLD seconds, after writing one row: argv[1] is the file, argv[2] the seconds.
HOLDER = """
import sys, time
import duckdb
con = duckdb.connect(sys.argv[-2])
con.execute("CREATE OR REPLACE TABLE t AS SELECT 42 AS v")
print("held", flush=True)
time.sleep(float(sys.argv[-1]))
con.close()
"""


@contextmanager
def holding(path: Path, seconds: float, *, as_command: str | None = None) -> Iterator[subprocess.Popen[str]]:
    """A process holding the warehouse `path` for `seconds`; with `as_command`, its command line reads
    `.../kpilot <as_command> ...`, as a kpilot command's does."""
    script = path.parent / ("kpilot" if as_command else "holder.py")
    script.write_text(HOLDER, encoding="utf-8")
    argv = [sys.executable, str(script), *([as_command] if as_command else []), str(path), str(seconds)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=20)


def test_opening_waits_until_the_other_process_lets_go(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    with holding(path, 1.5):
        started = time.monotonic()
        con = connect_duckdb(path, wait=30)
        waited = time.monotonic() - started
    try:
        assert con.execute("SELECT v FROM t").fetchall() == [(42,)]  # what the holder wrote
    finally:
        con.close()
    assert waited >= 1.0


def test_still_held_after_the_wait_names_the_program_and_its_pid(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv(WAIT_ENV, "0.5")
    with holding(path, 60) as proc:
        started = time.monotonic()
        with pytest.raises(KpilotError) as caught:
            connect_duckdb(path)
        waited = time.monotonic() - started
    text = caught.value.message
    assert text == (f"the workspace's warehouse {path} is in use by {Path(sys.executable).resolve()} "
                    f"(PID {proc.pid}), still after 0.5 s of waiting. Fix: let it finish (or stop it), then run "
                    f"the command again; to wait longer, set KPILOT_WAREHOUSE_WAIT to a number of seconds.")
    assert 0.5 <= waited < 10


def test_held_by_kpilot_serve_says_it_is_the_web_server_in_french_too(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    with holding(path, 60, as_command="serve") as proc, pytest.raises(KpilotError) as caught:
        connect_duckdb(path, wait=0.2)
    assert f"is in use by the web server `kpilot serve` (PID {proc.pid}), which was still working after 0.2 s" \
        in caught.value.message
    assert f"utilisé par le serveur web `kpilot serve` (PID {proc.pid}), qui travaillait encore après 0.2 s" \
        in render(caught.value.message, translator("fr"))


def test_held_by_another_kpilot_command_names_it(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    with holding(path, 60, as_command="load") as proc, pytest.raises(KpilotError) as caught:
        connect_duckdb(path, wait=0)
    assert f"is in use by `kpilot load` (PID {proc.pid}), still after 0 s of waiting" in caught.value.message


def test_the_wait_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(WAIT_ENV, raising=False)
    assert lock_wait() == 30.0
    monkeypatch.setenv(WAIT_ENV, " 2.5 ")
    assert lock_wait() == 2.5
    monkeypatch.setenv(WAIT_ENV, "0")
    assert lock_wait() == 0.0
    for wrong in ("soon", "-1", "inf", "nan"):
        monkeypatch.setenv(WAIT_ENV, wrong)
        with pytest.raises(KpilotError) as caught:
            lock_wait()
        assert caught.value.message.startswith(f"KPILOT_WAREHOUSE_WAIT={wrong} is not a number of seconds.")
