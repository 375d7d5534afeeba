"""Spark Connect in place (`url: sc://host:port`): the same compiled metrics as DuckDB's, computed by a real Spark
Connect server that the tests start on 127.0.0.1 (pyspark ships the server; `spark-submit` runs it, offline).

Marked `spark`: ./run-tests runs them in the Spark step, after the main suite, with the `spark-connect` extra.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import sqlglot

from kpilot.compute.engine import EngineError
from kpilot.compute.in_place import OwnedEngine, open_source_engine
from kpilot.model import load_workspace
from kpilot.model.workspace import Source
from tests.compute.engine_cases import assert_acme_equal
from tests.conftest import ACME_TABLES

pytestmark = pytest.mark.spark
STARTUP_SECONDS = 120


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def connect_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Spark Connect server of its own on a free loopback port; its URL."""
    import pyspark

    home = Path(pyspark.__file__).parent
    port = _free_port()
    log = tmp_path_factory.mktemp("spark-connect") / "server.log"
    env = {**os.environ, "SPARK_HOME": str(home)}
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(home / "bin" / "spark-submit"), "--class", "org.apache.spark.sql.connect.service.SparkConnectServer",
             "--master", "local[2]", "--conf", f"spark.connect.grpc.binding.port={port}",
             "--conf", "spark.connect.grpc.binding.address=127.0.0.1", "--conf", "spark.ui.enabled=false",
             "--conf", "spark.driver.bindAddress=127.0.0.1", "--conf", "spark.driver.host=127.0.0.1",
             "--conf", "spark.sql.shuffle.partitions=4"],
            stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not _listening(port):
            if server.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-2000:]
                pytest.fail(f"the Spark Connect server did not start on port {port}:\n{tail}")
            time.sleep(0.5)
        yield f"sc://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.fixture(scope="module")
def connect_acme(connect_url: str, lake: Path, acme_dir: Path, acme_schema: dict[str, dict[str, str]]
                 ) -> Iterator[OwnedEngine]:
    ws, _ = load_workspace(acme_dir, acme_schema)
    source = Source(key="lake", type="spark", url=connect_url,
                    tables={t: {"path": f"data/{t}.parquet", "format": "parquet"} for t in ACME_TABLES})
    engine = open_source_engine(source, ws, lake)
    yield engine
    engine.close()


def test_every_acme_metric_through_spark_connect_equals_duckdb(connect_acme: OwnedEngine, acme_dir: Path,
                                                               acme_raw: duckdb.DuckDBPyConnection) -> None:
    types = assert_acme_equal(connect_acme, acme_dir, acme_raw)
    assert types == {"simple", "ratio", "snapshot", "derived"}  # every metric type of acme was compared
    assert connect_acme.dialect == "spark"


@pytest.mark.parametrize("query", [
    "SELECT * FROM parquet.`/etc/passwd`",
    "SELECT * FROM read_files('/etc')",
    "SELECT * FROM spark_catalog.default.leads",
])
def test_a_query_outside_the_declared_tables_is_refused_through_spark_connect(connect_acme: OwnedEngine,
                                                                              query: str) -> None:
    with pytest.raises(EngineError, match="outside the workspace's tables; nothing was run"):
        connect_acme.query(sqlglot.parse_one(query, read="spark"))
