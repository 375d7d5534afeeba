"""The server's listening socket, opened before anything else so that a port already taken is said at once,
in words, with the fix (instead of the server framework's own error after "Serving ...")."""

from __future__ import annotations

import errno
import socket

from kpilot.model import KpilotError
from kpilot.model.errors import msg


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to `host`:`port` and listening, for uvicorn's `Server.run(sockets=...)`."""
    if not 0 < port < 65536:
        raise KpilotError(msg("{port} is not a port number. Fix: give --port a number from 1 to 65535 "
                              "(e.g. 8000).", port=port))
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
    except socket.gaierror:
        raise KpilotError(msg("cannot listen on {host}: this machine knows no such address. Fix: give --host an "
                              "address of this machine (127.0.0.1 for this machine only, 0.0.0.0 for every "
                              "address).", host=host)) from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: a restart binds at once
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise KpilotError(msg("port {port} on {host} is already in use by another program (another kpilot "
                                  "serve or demo?). Fix: stop that program, or choose another port with --port "
                                  "(e.g. --port {other}).", port=port, host=host, other=port + 1)) from None
        if exc.errno == errno.EACCES:
            raise KpilotError(msg("this user may not listen on port {port} of {host} (ports below 1024 need "
                                  "administrator rights). Fix: choose a port from 1024 up with --port (e.g. "
                                  "--port 8000), and put a reverse proxy in front for port 80 or 443.",
                                  port=port, host=host)) from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise KpilotError(msg("cannot listen on {host}: it is not an address of this machine. Fix: give "
                                  "--host an address of this machine (127.0.0.1 for this machine only, 0.0.0.0 "
                                  "for every address).", host=host)) from None
        raise KpilotError(msg("cannot listen on {host} port {port}: {reason}. Fix: choose another --host or "
                              "--port.", host=host, port=port, reason=exc.strerror or str(exc))) from None
    return sock


def run(app: object, sock: socket.socket) -> None:
    """Serve `app` on the socket until interrupted (Ctrl-C)."""
    import uvicorn

    host, port = sock.getsockname()[:2]
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))  # type: ignore[arg-type]
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
