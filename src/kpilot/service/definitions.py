"""The definitions of kpilot.yaml in the audit log: what an edit of the file changed, noticed at the next opening.

kpilot.yaml is edited outside kpilot (an editor, a pull request), so nobody tells kpilot who changed what. Each
opening of a workspace compares its definitions (each metric, team, source, model... and the workspace's own
fields) with the last ones it saw, kept in the state folder (`definitions.json`), and writes one audit log entry
per definition added, changed or removed, by "kpilot.yaml". The first opening only takes the snapshot. Nothing is
written while the workspace has no application database (none is created for this).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from kpilot.model import Workspace
from kpilot.store import AppStore

SNAPSHOT = "definitions.json"
ACTOR = "kpilot.yaml"


def definitions(ws: Workspace) -> dict[str, Any]:
    """Each definition of the workspace by a stable name: `metrics.mrr`, `teams.sales`, `workspace.title`..."""
    data = ws.model_dump(mode="json", by_alias=True, exclude_none=True)
    out: dict[str, Any] = {}
    for field, value in data.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) and "key" in v for v in value):
            for item in value:
                out[f"{field}.{item['key']}"] = item
        else:
            out[f"workspace.{field}"] = value
    return out


def _print(found: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(found, sort_keys=True, default=str).encode()).hexdigest()


def note_changes(ws: Workspace, state_dir: Path, store: AppStore) -> int:
    """Log the definitions that changed since the last opening; how many entries were written."""
    path = Path(state_dir) / SNAPSHOT
    now = definitions(ws)
    fingerprint = _print(now)
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
        before, seen = dict(kept["definitions"]), str(kept["print"])
    except (OSError, ValueError, KeyError, TypeError):
        before, seen = None, ""
    if seen == fingerprint:
        return 0
    written = 0
    if before is not None:
        for name in sorted(set(before) | set(now)):
            if before.get(name) != now.get(name):
                store.log_change(ws.workspace, ACTOR, "definition", name, before.get(name), now.get(name))
                written += 1
    _write(path, {"print": fingerprint, "definitions": now})
    return written


def _write(path: Path, data: dict[str, Any]) -> None:
    """Replace the snapshot at once (a reader never sees half of it); a read-only state folder keeps the old one."""
    temp = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temp.write_text(json.dumps(data, sort_keys=True, default=str), encoding="utf-8")
        os.chmod(temp, 0o600)
        os.replace(temp, path)
    except OSError:
        with contextlib.suppress(OSError):
            temp.unlink()


__all__ = ["ACTOR", "SNAPSHOT", "definitions", "note_changes"]
