"""Fixtures of the CLI tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.cli.test_acme_cli import kpilot


@pytest.fixture()
def acme_copy(acme_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A writable copy of acme, loaded: (workspace folder, state folder)."""
    ws = tmp_path / "acme"
    shutil.copytree(acme_dir, ws)
    for p in ws.rglob("*"):
        p.chmod(0o644 if p.is_file() else 0o755)
    state = tmp_path / "state"
    r = kpilot("load", "-w", str(ws), env_state=state)
    assert r.returncode == 0, r.stderr
    return ws, state
