"""The server computes today's analysis and board in the background after each load, so that the first person to
open the board does not wait for them."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from kpilot.web import create_app, state


def _settled(client: TestClient, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while client.get("/healthz").json()["warming"]:
        assert time.monotonic() < deadline, "the warming never ended"
        time.sleep(0.05)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Each analysis the gate computes, counted."""
    calls: list[object] = []
    real = state.analyse

    def counting(svc: object, as_of: object) -> state.Analysis:
        calls.append(as_of)
        return real(svc, as_of)  # type: ignore[arg-type]

    monkeypatch.setattr(state, "analyse", counting)
    return calls


def test_the_first_board_after_a_start_and_after_a_load_finds_the_analysis_done(
        acme_dir: Path, tmp_path: Path, counted: list[object]) -> None:
    ws = tmp_path / "acme"
    shutil.copytree(acme_dir, ws, ignore=shutil.ignore_patterns(".kpilot"))
    app = create_app(ws, state_dir=tmp_path / "state", warm=True)
    gate = app.state.gate
    with TestClient(app, base_url="http://127.0.0.1") as client:
        gate.refresh()  # as `kpilot serve` does before answering
        _settled(client)
        assert counted == [gate.today()]  # warmed once, for today
        assert client.get("/").status_code == 200
        assert counted == [gate.today()]  # the board computed no analysis of its own

        # A data file changes: the next look loads it and warms again, in the background.
        leads = ws / "data" / "leads.csv"
        leads.write_text(leads.read_text())
        gate._checked = 0.0  # look at the files now rather than after `check_every`
        gate.refresh()
        _settled(client)
        assert len(counted) == 2
        assert client.get("/").status_code == 200
        assert len(counted) == 2


def test_no_warming_unless_asked(acme_dir: Path, tmp_path: Path, counted: list[object]) -> None:
    app = create_app(acme_dir, state_dir=tmp_path / "state")
    with TestClient(app, base_url="http://127.0.0.1") as client:
        app.state.gate.refresh()
        assert client.get("/healthz").json() == {"status": "ok", "warming": False}
        assert counted == []


def test_a_board_kpis_page_reads_the_boards_status(acme_dir: Path, tmp_path: Path) -> None:
    """The status a KPI page shows is the one the board computed (not a second computation), and it is the
    service's own status of that KPI."""
    from kpilot.service import WorkspaceService

    app = create_app(acme_dir, state_dir=tmp_path / "state")
    gate = app.state.gate
    gate.refresh()
    day = gate.today()
    board = gate.board(day)
    with WorkspaceService(acme_dir, state_dir=tmp_path / "engine") as svc:
        svc.load()
        for s in board:
            assert gate.status(s.key, day) is s
            fresh = svc.metric_status(svc.computer(day), s.key, s.role)
            assert (fresh.verdict, fresh.value, fresh.target, fresh.period) == (s.verdict, s.value, s.target, s.period)
