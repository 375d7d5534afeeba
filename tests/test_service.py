"""Where a workspace keeps its state."""

from __future__ import annotations

from pathlib import Path

import pytest

from kpilot.service import default_state_dir


def test_state_dir_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KPILOT_STATE_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    ws = tmp_path / "ws"
    ws.mkdir()
    assert default_state_dir(ws, "w") == ws / ".kpilot"
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)  # read-only by intent, even for root (the shipped examples are like this)
    try:
        state = default_state_dir(ro, "acme")
        assert state.parent == tmp_path / "xdg" / "kpilot" / "workspaces"
        assert state.name.startswith("acme-")
    finally:
        ro.chmod(0o755)
    monkeypatch.setenv("KPILOT_STATE_DIR", str(tmp_path / "env"))
    assert default_state_dir(ws, "w").parent == tmp_path / "env"
