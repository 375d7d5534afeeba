"""Shared fixtures: the acme acceptance workspace and its data, real DuckDB files in tmp folders."""

from __future__ import annotations

import os
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
    """Never write warehouses into the shared examples or the user's home."""
    monkeypatch.setenv("KPILOT_STATE_DIR", str(tmp_path_factory.mktemp("state")))
