"""Where a workspace keeps its state, the keys the server signs with, and any failure put in words for people."""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
from pathlib import Path

import duckdb

from kpilot.compute.engine import storage_problem
from kpilot.model import KpilotError
from kpilot.model.errors import Message, msg
from kpilot.store import DATABASE_ENV
from kpilot.store.credentials import SECRET_KEY_ENV, key_path, key_seed


def _writable(path: Path) -> bool:
    """Writable, and meant to be: root may write anywhere, but a folder without write bits is read-only
    by intent (the shipped examples), so kpilot leaves it alone."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return bool(mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)) and os.access(path, os.W_OK)


def signing_key(state_dir: Path, purpose: str) -> bytes:
    """A key for signing what the server hands out (form tokens), derived from the encryption key of the stored
    credentials (`KPILOT_SECRET_KEY`, else the key file, created when missing), one per `purpose`. Where no key
    can be kept (a read-only home), a key for this process only: its tokens end with it."""
    try:
        seed = key_seed(state_dir)
    except (KpilotError, OSError):
        seed = os.urandom(32)
    return hmac.new(seed, f"kpilot:{purpose}".encode(), hashlib.sha256).digest()


def key_kept(state_dir: Path) -> str | None:
    """Where the server's secret key is kept across restarts (`KPILOT_SECRET_KEY`, else the key file, created when
    missing); None when no key can be kept: what it signs (sessions, form tokens) would then end with the process."""
    if os.environ.get(SECRET_KEY_ENV, "").strip():
        return SECRET_KEY_ENV
    try:
        key_seed(state_dir)
    except (KpilotError, OSError):
        return None
    path = key_path(state_dir)
    return str(path) if path.is_file() else None


def explain_failure(exc: BaseException, warehouse: Path | None = None) -> Message:
    """What any unexpected failure means for people, with a fix; never a traceback. The one place the CLI and the
    API turn an exception that is not a KpilotError into words."""
    problem = storage_problem(exc, warehouse)
    if problem is not None:
        return problem
    if isinstance(exc, duckdb.Error):
        return msg("the workspace's warehouse answered with an error ({reason}). Fix: run `kpilot load --force`; if it "
                   "happens again, report it with this message.",
                   reason=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    if isinstance(exc, MemoryError):
        return msg("kpilot ran out of memory. Fix: close other programs, or compute fewer metrics at once.")
    if isinstance(exc, RecursionError):
        return msg("the input is nested too deeply to read. Fix: check the file or request for runaway brackets.")
    if isinstance(exc, OSError):
        return msg("cannot read or write {path}: {reason}. Fix: check that the path exists and that kpilot may use it.",
                   path=str(exc.filename or "?"), reason=exc.strerror or type(exc).__name__)
    return msg("kpilot stopped on an unexpected error ({kind}: {reason}). Fix: report it with this message; set "
               "KPILOT_DEBUG=1 to see where it happened.", kind=type(exc).__name__,
               reason=(str(exc).splitlines() or [""])[0][:300])


def default_state_dir(ws_dir: Path, key: str, root: Path | None = None) -> Path:
    """Where a workspace keeps its warehouse: `<root>/<key>-<hash of its folder>` for a state root given by
    `--state-dir` or $KPILOT_STATE_DIR (the same place either way; one root serves many workspaces), else
    <workspace>/.kpilot, else the user's data folder when the workspace folder is read-only (e.g. the shipped
    examples)."""
    digest = hashlib.sha1(str(ws_dir.resolve()).encode()).hexdigest()[:8]
    chosen = root or os.environ.get("KPILOT_STATE_DIR")
    if chosen:
        return Path(chosen) / f"{key}-{digest}"
    local = ws_dir / ".kpilot"
    if _writable(local if local.exists() else ws_dir):
        return local
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "kpilot" / "workspaces" / f"{key}-{digest}"


__all__ = ["DATABASE_ENV", "default_state_dir", "explain_failure", "key_kept", "signing_key"]
