"""Whether `kpilot serve` may listen where other machines reach it.

On a loopback address only this machine reaches the server. Anywhere else, every workspace served must have a
user (a workspace without users is open to whoever reaches it: see `kpilot.web.auth`) and the server's secret key
must outlive the process (sign-ins are signed with it; a key made for one run would sign everyone out at each
restart, and a key nobody kept cannot be checked by anyone). A refusal says which and how to fix it; it never shows
a key.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fastapi import FastAPI

from kpilot.model import KpilotError
from kpilot.model.errors import Message, msg
from kpilot.service.state import key_kept

LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


def is_loopback(host: str) -> bool:
    """Whether `host` (the --host of kpilot serve) is an address only this machine reaches."""
    return host.strip().lower().strip("[]") in LOOPBACK_HOSTS


def exposure_problem(host: str, served: Sequence[tuple[Path, FastAPI]]) -> Message | None:
    """Why the workspaces `served` (folder, web app) may not listen on `host`; None when they may."""
    if is_loopback(host):
        return None
    for folder, app in served:
        if not app.state.accounts().has_users():
            return msg("kpilot serve --host {host} lets other machines reach the workspace in {folder}, which has no "
                       "user yet: anyone who reaches the server could read and change it. Fix: create its first admin "
                       "with `kpilot user create EMAIL -w {folder} --role admin`, or listen on this machine only "
                       "(--host 127.0.0.1, the default).", host=host, folder=str(folder))
    for _folder, app in served:
        gate = app.state.gate
        if key_kept(gate.state_dir or gate.primary.state_dir) is None:
            return msg("kpilot serve --host {host} needs a secret key kept across restarts (sign-ins are signed with "
                       "it), and none could be kept in the user's kpilot configuration folder. Fix: set "
                       "KPILOT_SECRET_KEY (32 random bytes in URL-safe base64, from a secret manager), or let kpilot "
                       "write its key file (set KPILOT_CONFIG_DIR to a folder it may write).", host=host)
    return None


def refuse_exposure(host: str, served: Sequence[tuple[Path, FastAPI]]) -> None:
    """Raise the `exposure_problem` as a KpilotError (shown by the CLI in the workspace's language), if any."""
    problem = exposure_problem(host, served)
    if problem is not None:
        raise KpilotError(problem)


__all__ = ["LOOPBACK_HOSTS", "exposure_problem", "is_loopback", "refuse_exposure"]
