"""A compute checks the workspace once: an unchanged kpilot.yaml (same bytes, settings, columns) is not checked
again, and any change to what the check reads is checked before computing."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Any

import pytest

import kpilot.service as service
from kpilot.model import WorkspaceInvalid
from kpilot.service import WorkspaceService

YAML = """
workspace: cache
sources: [{key: files, type: csv, path: data/}]
models:
  - {key: events, table: events, time: at}
metrics:
  - {key: amount, model: events, measure: sum(amount), grain: week}
"""


@pytest.fixture()
def ws(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    (tmp_path / "kpilot.yaml").write_text(YAML, encoding="utf-8")
    (tmp_path / "data" / "events.csv").write_text(
        "id,at,amount\n1,2026-01-05 10:00:00,10\n2,2026-01-13 10:00:00,20\n", encoding="utf-8")
    return tmp_path


@pytest.fixture()
def calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    seen: list[int] = []
    real = service.validate

    def counting(*args: Any, **kwargs: Any) -> Any:
        seen.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(service, "validate", counting)
    return seen


def _service(ws: Path, state: Path) -> WorkspaceService:
    svc = WorkspaceService(ws, state_dir=state)
    svc.today = lambda: date(2026, 1, 31)  # type: ignore[method-assign]
    return svc


def test_unchanged_workspace_is_not_checked_again(ws: Path, tmp_path_factory: pytest.TempPathFactory,
                                                  calls: list[int]) -> None:
    state = tmp_path_factory.mktemp("state")
    svc = _service(ws, state)
    svc.load()
    calls.clear()
    svc.compute()
    assert len(calls) == 1
    svc.close()
    again = _service(ws, state)  # a new process reading the same files
    again.compute()
    assert len(calls) == 1
    assert [r["value"] for r in again.series("amount", as_of=None)] == [10.0, 20.0, 0.0, 0.0]  # weeks of Jan 5, 12, 19, 26
    again.close()


def test_changed_file_is_checked_again(ws: Path, tmp_path_factory: pytest.TempPathFactory,
                                       calls: list[int]) -> None:
    state = tmp_path_factory.mktemp("state")
    svc = _service(ws, state)
    svc.load()
    svc.compute()
    svc.close()
    # Same size and modification time, one column misspelt: only the content tells the change.
    path = ws / "kpilot.yaml"
    stat = path.stat()
    path.write_text(YAML.replace("sum(amount)", "sum(amoumt)"), encoding="utf-8")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size
    calls.clear()
    broken = _service(ws, state)
    with pytest.raises(WorkspaceInvalid, match="amoumt"):
        broken.compute()
    assert len(calls) == 1
    broken.close()


def test_changed_columns_are_checked_again(ws: Path, tmp_path_factory: pytest.TempPathFactory,
                                           calls: list[int]) -> None:
    state = tmp_path_factory.mktemp("state")
    svc = _service(ws, state)
    svc.load()
    svc.compute()
    # The table loses its column: the unchanged kpilot.yaml no longer fits the data.
    svc.con.execute("ALTER TABLE events DROP COLUMN amount")
    calls.clear()
    with pytest.raises(WorkspaceInvalid):
        svc.compute()
    assert len(calls) == 1
    svc.close()
