"""An edit of kpilot.yaml lands in the audit log at the next opening: each definition added, changed or removed."""

from __future__ import annotations

import shutil
from pathlib import Path

from kpilot.service import WorkspaceService
from kpilot.store import open_store


def test_an_edit_of_the_file_is_logged_definition_by_definition(acme_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "acme"
    shutil.copytree(acme_dir, folder)
    state = tmp_path / "state"
    with open_store(state):
        pass  # the application database exists (a served or shared workspace)
    WorkspaceService(folder, state_dir=state).close()  # the first opening takes the snapshot only
    with open_store(state) as store:
        assert store.changes("acme", kind="definition") == []
    text = (folder / "kpilot.yaml").read_text(encoding="utf-8")
    assert "    owners: [marketing]\n" in text and "  - key: customer_success\n" in text
    edited = text.replace("    owners: [marketing]\n", "    owners: [marketing, sales]\n", 1)
    (folder / "kpilot.yaml").write_text(edited, encoding="utf-8")
    WorkspaceService(folder, state_dir=state).close()
    WorkspaceService(folder, state_dir=state).close()  # nothing new: nothing logged twice
    with open_store(state) as store:
        log = store.changes("acme", kind="definition")
    assert len(log) == 1 and log[0].actor == "kpilot.yaml" and log[0].subject.startswith("metrics.")
    assert log[0].before["owners"] == ["marketing"] and log[0].after["owners"] == ["marketing", "sales"]


def test_no_application_database_is_created_for_it(acme_dir: Path, tmp_path: Path) -> None:
    WorkspaceService(acme_dir, state_dir=tmp_path / "state").close()
    assert not (tmp_path / "state" / "app.db").exists()
