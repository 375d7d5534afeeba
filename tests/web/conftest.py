"""The web app over the acme workspace: a TestClient, a real uvicorn server on 127.0.0.1, Chromium."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient

from kpilot.analysis.audit import AuditVerdict
from kpilot.analysis.leadlag import LeadLagEdge
from kpilot.insights import Insights, KpiForecast
from kpilot.insights.findings import AnomalyFinding, EarlyWarningFinding
from kpilot.service import MetricStatus, WorkspaceService
from kpilot.web import create_app

AS_OF = date(2026, 11, 15)  # a fixed date: the board is the same whatever today is
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--disable-quic"]


@pytest.fixture(scope="session")
def web_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("web-state")


@pytest.fixture(scope="session")
def client(acme_dir: Path, web_state: Path) -> Iterator[TestClient]:
    with TestClient(create_app(acme_dir, state_dir=web_state), base_url="http://127.0.0.1") as c:
        yield c


@pytest.fixture(scope="session")
def engine_board(acme_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[MetricStatus]:
    """The board as the engine computes it, in a warehouse of its own (the independent side of the checks)."""
    with WorkspaceService(acme_dir, state_dir=tmp_path_factory.mktemp("engine")) as svc:
        svc.load()
        return svc.board(as_of=AS_OF)


@dataclass(frozen=True)
class Expected:
    """Insights' own results for acme as of AS_OF, computed in a warehouse of its own."""

    edges: list[LeadLagEdge]
    forecasts: dict[str, KpiForecast]
    warnings: list[EarlyWarningFinding]
    anomalies: list[AnomalyFinding]
    audit: list[AuditVerdict]


@pytest.fixture(scope="session")
def expected(acme_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Expected:
    with WorkspaceService(acme_dir, state_dir=tmp_path_factory.mktemp("insights")) as svc:
        svc.load()
        ins = Insights(svc, as_of=AS_OF)
        return Expected(ins.leads(), {f.metric: f for f in ins.forecasts()}, ins.warnings(), ins.anomalies(),
                        ins.audit())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def live_server(acme_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real uvicorn server in a thread, on 127.0.0.1 and a free port; yields its base URL."""
    with serving(create_app(acme_dir, state_dir=tmp_path_factory.mktemp("live-state"))) as url:
        yield url


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """`app` served by uvicorn in a thread, on 127.0.0.1 and a free port, while the block runs; its URL."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the web server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the browser tests save a picture of every page: $KPILOT_SCREENSHOTS, else a tmp folder."""
    folder = Path(os.environ["KPILOT_SCREENSHOTS"]) if os.environ.get("KPILOT_SCREENSHOTS") else \
        tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is missing at {CHROMIUM}: apt-get install -y chromium (run-tests does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()
