"""Several workspaces on one server: `kpilot serve --root DIR`.

Every immediate subfolder of DIR that holds a kpilot.yaml is a workspace, served under `/<key>/` (its kpilot.yaml's
`workspace:` key) by its own web app (`create_app`), exactly as `kpilot serve -w` serves it alone: its own state
folder, warehouse, application database rows, users, sessions and tokens. Nothing is shared but the process:

- the mounted app sees `root_path` = `/<key>`; every link, form and redirect it writes starts with it;
- its session cookie is scoped to `/<key>`, so a browser holds one session per workspace and never sends one
  workspace's session to another; sessions and tokens are looked up in the asking workspace's rows only;
- `/` lists the workspaces (titles and links, nothing else) and `/healthz` says the server is up.

Starlette runs the lifespan of the outer app only: this app's lifespan enters every workspace's (its scheduler,
closing its warehouse).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from html import escape
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from kpilot.i18n import LANGUAGES
from kpilot.model import WORKSPACE_FILE, KpilotError, parse_workspace
from kpilot.model.errors import msg
from kpilot.service import default_state_dir
from kpilot.web.app import STATIC, create_app
from kpilot.web.auth import SESSION_COOKIE
from kpilot.web.exposure import refuse_exposure
from kpilot.web.guard import App, Guard, Receive, Scope, Send, allowed_hosts
from kpilot.web.locale import COOKIE, choose_language, web_translator

ASSETS = "/-/static"  # the index's stylesheet and icon: a workspace key cannot begin with "-"
INDEX_CSP = "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'"
log = logging.getLogger("kpilot.web")


@dataclass(frozen=True)
class Found:
    """A workspace folder under the root: its key (its address, `/<key>/`), its title and where it is."""

    key: str
    title: str
    folder: Path


@dataclass(frozen=True)
class Served:
    """A workspace served under the root, by its own web app."""

    key: str
    title: str
    folder: Path
    app: FastAPI


def workspace_folders(root: Path) -> list[Found]:
    """The workspaces under `root` (each immediate subfolder holding a kpilot.yaml), by key; KpilotError when there
    is none, or when two folders share a key (two workspaces cannot have one address)."""
    root = Path(root)
    if not root.is_dir():
        raise KpilotError(msg("--root {root}: no such folder. Fix: give the folder whose subfolders are the "
                              "workspaces (each with its kpilot.yaml).", root=str(root)))
    found: list[Found] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        file = folder / WORKSPACE_FILE
        if not file.is_file():
            continue
        ws, _ = parse_workspace(file.read_text(encoding="utf-8"), str(file))
        found.append(Found(ws.workspace, ws.title or ws.workspace, folder))
    if not found:
        raise KpilotError(msg("no workspace under {root}: none of its subfolders holds a kpilot.yaml. Fix: put each "
                              "workspace in a subfolder of its own ({root}/<name>/kpilot.yaml), or serve one "
                              "workspace with -w.", root=str(root)))
    seen: dict[str, Path] = {}
    for f in found:
        if f.key in seen:
            raise KpilotError(msg("two workspaces under {root} have the key '{key}' ({first} and {second}): each is "
                                  "served at /<key>/, so keys must differ. Fix: change `workspace:` in one of the two "
                                  "kpilot.yaml files.", root=str(root), key=f.key, first=str(seen[f.key]),
                                  second=str(f.folder)))
        seen[f.key] = f.folder
    return sorted(found, key=lambda f: f.key)


def create_root_app(root: Path, *, state_root: Path | None = None, pool_size: int = 1, cache_size: int = 256,
                    db_url: str | None = None, hosts: Iterable[str] = (), warm: bool = False) -> FastAPI:
    """The web app of every workspace under `root`, each under `/<key>/` (see the module). `state_root` is a folder
    of state folders (`--state-dir`); the other options are `create_app`'s, for each workspace."""
    hosts = list(hosts)
    served: list[Served] = []
    try:
        for f in workspace_folders(root):
            app = create_app(f.folder, state_dir=default_state_dir(f.folder, f.key, state_root), pool_size=pool_size,
                             cache_size=cache_size, db_url=db_url, hosts=hosts, warm=warm)
            served.append(Served(f.key, f.title, f.folder, app))
    except BaseException:
        for s in served:
            s.app.state.gate.close()
        raise

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            for s in served:  # Starlette runs the outer lifespan only
                await stack.enter_async_context(s.app.router.lifespan_context(s.app))
            yield

    parent = FastAPI(title="kpilot", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    parent.state.workspaces = served

    @parent.get("/", response_class=HTMLResponse)
    def index(request: Request) -> HTMLResponse:
        """The workspaces this server serves: their titles and addresses, nothing else."""
        return HTMLResponse(_index_page(request, served), headers={"Content-Security-Policy": INDEX_CSP})

    @parent.get("/healthz")
    def healthz() -> dict[str, object]:
        """Alive; `warming` while a workspace's analysis of today is being computed in the background."""
        return {"status": "ok", "warming": any(s.app.state.gate.warming for s in served)}

    @parent.exception_handler(404)
    def _not_found(request: Request, exc: HTTPException) -> Response:
        tr = web_translator(_language(request, served))
        text = tr("No workspace at this address. Fix: choose one on the list of workspaces.")
        return HTMLResponse(_document(tr("Not found"), f'<p class="error">{escape(text)}</p><p><a href="/">'
                                                      f'{escape(tr("Workspaces"))}</a></p>', request, served),
                            status_code=404, headers={"Content-Security-Policy": INDEX_CSP})

    parent.mount(ASSETS, StaticFiles(directory=STATIC), name="static")  # the index's; "-" begins no key
    for s in served:
        parent.mount(f"/{s.key}", s.app, name=s.key)
    parent.add_middleware(FirstSession)
    parent.add_middleware(Guard, hosts=allowed_hosts(hosts))
    return parent


class FirstSession:
    """ASGI middleware: keep the first session cookie a browser sends. A browser sends the cookie of the longest
    path first (`/<key>`); a session cookie left at `/` by a server that served one workspace there would otherwise
    shadow it."""

    def __init__(self, app: App):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope["headers"] = _first_session(list(scope.get("headers", [])))
        await self.app(scope, receive, send)


def _first_session(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    name = SESSION_COOKIE.encode() + b"="
    seen = False
    out: list[tuple[bytes, bytes]] = []
    for key, value in headers:
        if key.lower() == b"cookie":
            kept = []
            for part in value.split(b";"):
                if part.strip().startswith(name):
                    if seen:
                        continue
                    seen = True
                kept.append(part)
            value = b";".join(kept)
        out.append((key, value))
    return out


def _language(request: Request, served: Sequence[Served]) -> str:
    accept = request.headers.get("accept-language", "").lower()
    default = "fr" if accept.startswith("fr") else served[0].app.state.gate.primary.ws.language.value
    return choose_language(request.cookies.get(COOKIE), default if default in LANGUAGES else "en")


def _document(title: str, body: str, request: Request, served: Sequence[Served]) -> str:
    lang = _language(request, served)
    return (f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width, initial-scale=1"><title>{escape(title)} · kpilot</title>'
            f'<link rel="icon" href="{ASSETS}/favicon.svg" type="image/svg+xml">'
            f'<link rel="stylesheet" href="{ASSETS}/app.css"></head><body><main id="main" class="wrap">'
            f'<section class="panel">{body}</section></main></body></html>')


def _index_page(request: Request, served: Sequence[Served]) -> str:
    tr = web_translator(_language(request, served))
    items = "".join(f'<li><a href="/{s.key}/" data-key="{escape(s.key)}">{escape(s.title)}</a></li>' for s in served)
    return _document(tr("Workspaces"), f'<h1>{escape(tr("Workspaces"))}</h1><ul class="workspaces">{items}</ul>',
                     request, served)


def serve_root(root: Path, host: str = "127.0.0.1", port: int = 8000, *, state_root: Path | None = None,
               pool_size: int = 1, db_url: str | None = None, hosts: Iterable[str] = ()) -> None:
    """Serve every workspace under `root` until interrupted (Ctrl-C), each at /<key>/ (see the module). Off
    loopback, every workspace needs a user and the server a kept secret key (`kpilot.web.exposure`). The port
    is taken first: one in use is an error before any work."""
    from kpilot.web.listen import listening_socket, run

    sock = listening_socket(host, port)
    named = [] if host in ("0.0.0.0", "::", "") else [host]
    try:
        app = create_root_app(Path(root), state_root=state_root, pool_size=pool_size, db_url=db_url,
                              hosts=[*named, *hosts], warm=True)
    except BaseException:
        sock.close()
        raise
    served: list[Served] = app.state.workspaces
    try:
        refuse_exposure(host, [(s.folder, s.app) for s in served])
        for s in served:  # load the data now: a broken file is reported here, not on the first page
            s.app.state.gate.refresh()
    except BaseException:
        sock.close()
        for s in served:
            s.app.state.gate.close()
        raise
    tr = web_translator(served[0].app.state.gate.primary.ws.language.value)
    for s in served:
        print(tr("Serving {workspace} on {url} (Ctrl-C to stop).").format(
            workspace=s.folder.resolve(), url=f"http://{host}:{port}/{s.key}/"), flush=True)
    if not named and not hosts:
        print(tr("Listening on every address, but answering only to loopback names: give the name people use to "
                 "reach this server with --allowed-host NAME (see docs/security.md)."), flush=True)
    run(app, sock)


__all__ = ["Found", "Served", "create_root_app", "serve_root", "workspace_folders"]
