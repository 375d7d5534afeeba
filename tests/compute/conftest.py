"""Fixtures of the in-place engine tests (chDB, Spark): acme's tables as Parquet files."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from tests.compute.engine_cases import acme_parquet


@pytest.fixture(scope="module")
def lake(acme_raw: duckdb.DuckDBPyConnection, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace folder holding acme's tables as Parquet files under data/."""
    root = tmp_path_factory.mktemp("lake")
    acme_parquet(acme_raw, root / "data")
    return root
