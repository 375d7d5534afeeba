"""Shared fixtures: the acme acceptance workspace and its data, real DuckDB files in tmp folders; and the
helpers tests share (`from tests.conftest import csv_schema, one, files_under, fail_copy`)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
if not SHARED.exists():  # CI checks out the repository elsewhere; the shared folder sits beside it
    SHARED = Path(os.environ.get("KPILOT_SHARED", "/work/shared"))
ACME = SHARED / "examples" / "acme"
ACME_TABLES = ["leads", "meetings", "deals", "subscriptions", "ad_spend", "web_sessions"]


@pytest.fixture(scope="session")
def acme_dir() -> Path:
    if not (ACME / "kpilot.yaml").exists():
        pytest.fail(f"the acme acceptance workspace is missing at {ACME}; set KPILOT_SHARED")
    return ACME


@pytest.fixture(scope="session")
def acme_raw(acme_dir: Path) -> duckdb.DuckDBPyConnection:
    """The acme CSVs read by DuckDB directly: the independent side of value checks."""
    con = duckdb.connect()
    for t in ACME_TABLES:
        con.execute(f"CREATE TABLE {t} AS SELECT * FROM read_csv_auto('{acme_dir / 'data' / (t + '.csv')}')")
    return con


@pytest.fixture(scope="session")
def acme_schema(acme_raw: duckdb.DuckDBPyConnection) -> dict[str, dict[str, str]]:
    return {t: {r[0]: r[1] for r in acme_raw.execute(f"DESCRIBE {t}").fetchall()} for t in ACME_TABLES}


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never write warehouses into the shared examples, nor keys into the user's home."""
    monkeypatch.setenv("KPILOT_STATE_DIR", str(tmp_path_factory.mktemp("state")))
    monkeypatch.setenv("KPILOT_CONFIG_DIR", str(tmp_path_factory.mktemp("config")))


def csv_schema(data: Path) -> dict[str, dict[str, str]]:
    """The schema kpilot's validation needs, read by DuckDB from the CSV files of a data folder."""
    con = duckdb.connect()
    return {f.stem: {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM read_csv('{f}')").fetchall()}
            for f in sorted(data.glob("*.csv"))}


def one(con: duckdb.DuckDBPyConnection, sql: str, *params: object) -> float:
    """The single value a query returns, as a float; fails when it returns nothing or NULL."""
    rows = con.execute(sql, list(params)).fetchall()  # all: the connection is left with no pending result
    assert rows and rows[0][0] is not None, sql
    return float(rows[0][0])


def files_under(folder: Path) -> list[str]:
    """Every file and folder under `folder`, relative to it, hidden ones included (nothing left over)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def fail_copy(monkeypatch: pytest.MonkeyPatch, at: int, error: int) -> list[Path]:
    """Make the `at`-th file copy fail with the operating-system error `error` (an errno), as a full disk
    or a folder kpilot may not write to would; returns the destinations copied to, in order.

    Permission bits cannot stage this for root, who ignores them, nor can tests fill a disk."""
    real = shutil.copyfile
    destinations: list[Path] = []

    def copyfile(src: str | os.PathLike[str], dst: str | os.PathLike[str], **kwargs: object) -> object:
        destinations.append(Path(dst))
        if len(destinations) == at:
            raise OSError(error, os.strerror(error), str(dst))
        return real(src, dst)

    monkeypatch.setattr(shutil, "copyfile", copyfile)
    return destinations
