"""A workspace reads files in its own folder, and elsewhere only in the folders the operator lists."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kpilot.model import KpilotError
from kpilot.service import WorkspaceService


def _outside_data(acme_dir: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "acme"
    shutil.copytree(acme_dir, folder)
    shutil.move(folder / "data", tmp_path / "exports")
    text = (folder / "kpilot.yaml").read_text(encoding="utf-8")
    assert "path: data/" in text
    (folder / "kpilot.yaml").write_text(text.replace("path: data/", "path: ../exports/", 1), encoding="utf-8")
    return folder


def test_data_outside_the_workspace_folder_is_refused(acme_dir: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KPILOT_DATA_DIRS", raising=False)
    folder = _outside_data(acme_dir, tmp_path)
    with WorkspaceService(folder, state_dir=tmp_path / "state") as svc, \
            pytest.raises(KpilotError, match=r"leads outside the workspace folder.*KPILOT_DATA_DIRS"):
        svc.load()


def test_a_folder_the_operator_lists_is_read(acme_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _outside_data(acme_dir, tmp_path)
    monkeypatch.setenv("KPILOT_DATA_DIRS", f"/nonexistent:{tmp_path / 'exports'}")
    with WorkspaceService(folder, state_dir=tmp_path / "state") as svc:
        svc.load()
        assert svc.con.execute("select count(*) from leads").fetchone()[0] > 0


def test_a_link_inside_the_folder_to_a_file_elsewhere_is_refused(acme_dir: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KPILOT_DATA_DIRS", raising=False)
    folder = tmp_path / "acme"
    shutil.copytree(acme_dir, folder)
    secret = tmp_path / "secret.csv"
    secret.write_text("id,password\n1,hunter2\n", encoding="utf-8")
    (folder / "data" / "secret.csv").symlink_to(secret)
    with WorkspaceService(folder, state_dir=tmp_path / "state") as svc, \
            pytest.raises(KpilotError, match="leads outside the workspace folder"):
        svc.load()
