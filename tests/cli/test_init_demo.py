"""`kpilot init` and `kpilot demo` end to end: a new workspace computes and shows its board."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_acme_cli import kpilot


@pytest.mark.parametrize(("template", "language"), [("saas", "en"), ("esn", "fr"), ("smarketing", "en"),
                                                    ("ecommerce", "fr")])
def test_init_then_status(tmp_path: Path, template: str, language: str) -> None:
    ws = tmp_path / template
    r = kpilot("init", str(ws), "--template", template, "--language", language, env_state=tmp_path / "s")
    assert r.returncode == 0, r.stderr
    assert (ws / "kpilot.yaml").exists() and any((ws / "data").iterdir())
    r = kpilot("validate", "-w", str(ws), "--format", "json", env_state=tmp_path / "s")
    assert json.loads(r.stdout)["valid"] is True
    r = kpilot("status", "-w", str(ws), "--format", "json", env_state=tmp_path / "s")
    assert r.returncode == 0, r.stderr
    board = json.loads(r.stdout)
    assert board[0]["role"] == "north_star"
    assert 4 <= len(board) <= 6
    assert all(b["value"] is not None for b in board)
    assert all(b["decision"] is not None for b in board)  # templates teach: every KPI has a decision
    # A second init refuses to overwrite.
    r = kpilot("init", str(ws), "--template", template, env_state=tmp_path / "s")
    assert r.returncode == 1 and "kpilot.yaml" in r.stderr


def test_demo_prints_the_board(tmp_path: Path) -> None:
    r = kpilot("demo", "--dir", str(tmp_path / "demo"), "--no-serve", env_state=tmp_path / "s")
    assert r.returncode == 0, r.stderr
    assert "Northwind Cloud" in r.stdout and "board as of" in r.stdout
    assert "Monthly recurring revenue (MRR)" in r.stdout
    assert "Decisions" in r.stdout
    # Running it again regenerates the same folder; a foreign folder is refused.
    assert kpilot("demo", "--dir", str(tmp_path / "demo"), "--no-serve", env_state=tmp_path / "s").returncode == 0
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("x")
    r = kpilot("demo", "--dir", str(tmp_path / "mine"), "--no-serve", env_state=tmp_path / "s")
    assert r.returncode == 1 and "not a kpilot demo folder" in r.stderr
