"""Where a workspace may read files from: its own folder, and the folders the server's operator lists.

A workspace file may come from someone the operator does not fully trust (a shared repository, a colleague's
branch): its sources' `path:` must not make the server read files elsewhere on the machine (a `path: /etc/passwd`
loaded as a table would be shown by a model). File sources and SQLite/DuckDB database files are therefore read only
inside the workspace folder (symbolic links followed), or inside a folder named in `KPILOT_DATA_DIRS`
(separated by the system's path separator, ':' on Linux and macOS) for data kept elsewhere. Spark and chDB tables
are held to the workspace folder in the same way (`kpilot.compute.in_place.table_file`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from kpilot.model.errors import Message, msg

DATA_DIRS_ENV = "KPILOT_DATA_DIRS"


def allowed_roots(base_dir: Path, environ: Mapping[str, str] | None = None) -> list[Path]:
    """The workspace folder and the operator's data folders, resolved."""
    env = os.environ if environ is None else environ
    extra = [Path(p.strip()).expanduser() for p in env.get(DATA_DIRS_ENV, "").split(os.pathsep) if p.strip()]
    return [Path(base_dir).resolve(), *(p.resolve() for p in extra)]


def readable(path: Path, base_dir: Path, environ: Mapping[str, str] | None = None) -> bool:
    """Whether kpilot may read `path` for a workspace of `base_dir`."""
    resolved = Path(path).resolve()
    return any(resolved == root or resolved.is_relative_to(root) for root in allowed_roots(base_dir, environ))


def outside(source: str, path: str | Path, base_dir: Path) -> Message:
    """The refusal of a path outside the folders kpilot reads, with the two ways to fix it."""
    return msg("source '{source}': `path: {path}` leads outside the workspace folder {folder}. Fix: keep the data "
               "under the workspace folder, or let the server read that folder by listing it in {env} (set by whoever "
               "runs kpilot, not by the workspace file).", source=source, path=str(path),
               folder=str(Path(base_dir).resolve()), env=DATA_DIRS_ENV)


__all__ = ["DATA_DIRS_ENV", "allowed_roots", "outside", "readable"]
