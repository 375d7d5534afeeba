"""Storage failing under kpilot: a truncated or corrupt warehouse and a full disk get the real cause and the fix,
never a traceback nor a message blaming the CSV file; `kpilot load --force` rebuilds a damaged warehouse."""

from __future__ import annotations

import os
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from tests.cli.test_acme_cli import kpilot

YAML = """workspace: shop
sources: [{key: files, type: csv, path: data/}]
models: [{key: orders, table: orders, time: ordered_at}]
metrics: [{key: revenue, model: orders, measure: sum(amount), grain: month}]
"""


def _workspace(root: Path, rows: int = 50) -> Path:
    ws = root / "ws"
    (ws / "data").mkdir(parents=True)
    (ws / "kpilot.yaml").write_text(YAML, encoding="utf-8")
    rng = random.Random(1)
    with (ws / "data" / "orders.csv").open("w", encoding="utf-8") as f:
        f.write("id,ordered_at,amount,note\n")
        for i in range(rows):
            f.write(f"{i},2026-{1 + i % 9:02d}-{1 + i % 27:02d},{rng.random() * 1000:.2f},{rng.random()}\n")
    return ws


def _warehouse(state: Path) -> Path:
    found = list(state.glob("*/warehouse.duckdb"))
    assert len(found) == 1
    return found[0]


def _series(ws: Path, state: Path) -> str:
    r = kpilot("series", "revenue", "-w", str(ws), "--format", "csv", "--as-of", "2026-09-30", env_state=state)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.fixture
def loaded(tmp_path: Path) -> tuple[Path, Path, str]:
    ws, state = _workspace(tmp_path, rows=30_000), tmp_path / "state"
    r = kpilot("compute", "-w", str(ws), env_state=state)
    assert r.returncode == 0, r.stderr
    return ws, state, _series(ws, state)


def _damage_then_rebuild(ws: Path, state: Path, before: str) -> None:
    r = kpilot("series", "revenue", "-w", str(ws), "--format", "csv", env_state=state)
    assert r.returncode == 1
    assert "is damaged" in r.stderr and "Fix: run `kpilot load --force`" in r.stderr
    assert "Traceback" not in r.stderr and "CSV" not in r.stderr
    r = kpilot("load", "--force", "-w", str(ws), env_state=state)
    assert r.returncode == 0, r.stderr
    assert len(list(_warehouse(state).parent.glob("warehouse.duckdb.damaged-*"))) == 1  # set aside, not deleted
    assert _series(ws, state) == before
    assert before.count("\n") == 10  # a header and nine months


def test_a_truncated_warehouse_is_named_and_rebuilt(loaded: tuple[Path, Path, str]) -> None:
    ws, state, before = loaded
    path = _warehouse(state)
    path.write_bytes(path.read_bytes()[:100_000])
    _damage_then_rebuild(ws, state, before)


def test_a_corrupt_block_is_named_and_rebuilt(loaded: tuple[Path, Path, str]) -> None:
    ws, state, before = loaded
    path = _warehouse(state)
    data = bytearray(path.read_bytes())
    rng = random.Random(2)
    for i in range(12_288, len(data)):  # every block after the file header
        data[i] = rng.randrange(256)
    path.write_bytes(bytes(data))
    _damage_then_rebuild(ws, state, before)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MB file system (tmpfs), for the state folder: a real full disk, not a simulated one."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root (CI runs as root)")
    mount = tmp_path / "small-disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_says_so_and_keeps_the_previous_data(tmp_path: Path, small_disk: Path) -> None:
    ws = _workspace(tmp_path, rows=100)
    r = kpilot("compute", "-w", str(ws), env_state=small_disk)
    assert r.returncode == 0, r.stderr
    big = _workspace(tmp_path / "big", rows=300_000)
    os.replace(big / "data" / "orders.csv", ws / "data" / "orders.csv")
    r = kpilot("load", "-w", str(ws), env_state=small_disk)
    assert r.returncode == 1
    assert "the disk is full" in r.stderr and "Fix: free some space" in r.stderr
    assert "Traceback" not in r.stderr and "CSV" not in r.stderr
    con = duckdb.connect(str(_warehouse(small_disk)), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM orders").fetchall() == [(100,)]  # the previous load's rows
    finally:
        con.close()


def test_state_dir_option_and_variable_name_the_same_place(tmp_path: Path) -> None:
    ws, root = _workspace(tmp_path), tmp_path / "states"
    r = kpilot("load", "-w", str(ws), "--state-dir", str(root), env_state=tmp_path / "elsewhere")
    assert r.returncode == 0, r.stderr
    [warehouse] = root.glob("shop-*/warehouse.duckdb")
    assert list((tmp_path / "elsewhere").rglob("warehouse.duckdb")) == []  # the option won over the variable
    r = kpilot("load", "-w", str(ws), env_state=root)
    assert r.returncode == 0, r.stderr
    assert "unchanged" in r.stdout  # the same warehouse: nothing to load again
    assert list(root.glob("*/warehouse.duckdb")) == [warehouse]
