"""`kpilot serve`: the workspace's web app. Thin, over kpilot.web."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kpilot.cli.options import StateOpt, WorkspaceOpt, _errors, _open
from kpilot.model import KpilotError
from kpilot.model.errors import msg


def serve(
    workspace: WorkspaceOpt = Path("."), state_dir: StateOpt = None,
    host: Annotated[str, typer.Option(help="Address to listen on (127.0.0.1: this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    db: Annotated[str | None, typer.Option("--db", help="Application database URL (settings, decisions); "
                                                        "default: $KPILOT_DATABASE_URL, else SQLite in the state "
                                                        "folder.")] = None,
    allowed_host: Annotated[list[str] | None, typer.Option(
        "--allowed-host", help="A host name the server is reached by (behind a proxy: its public name); "
                               "repeat for several. Loopback names are always allowed.")] = None,
    root: Annotated[Path | None, typer.Option(
        "--root", help="Serve every workspace under this folder (each subfolder holding a kpilot.yaml), each at "
                       "/<its workspace key>/, instead of -w's one.")] = None,
) -> None:
    """Serve the workspace's web app: the board and a page per KPI, in French or English."""
    if root is not None:
        folders = sorted(p for p in root.iterdir() if (p / "kpilot.yaml").is_file()) if root.is_dir() else []
        with _errors(None, folders[0] if folders else None):  # in the first workspace's language
            from kpilot.web import serve_root

            if workspace != Path("."):
                raise KpilotError(msg("give either -w (one workspace) or --root (every workspace under a folder), "
                                      "not both. Fix: drop one of the two."))
            serve_root(root, host=host, port=port, state_root=state_dir, db_url=db, hosts=allowed_host or [])
        return
    with _errors(None, workspace):
        from kpilot.web import serve as serve_web

        with _open(workspace, state_dir) as svc:  # --state-dir is a root, as KPILOT_STATE_DIR is
            state = svc.state_dir
        serve_web(workspace, host=host, port=port, state_dir=state, db_url=db, hosts=allowed_host or [])
