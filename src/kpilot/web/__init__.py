"""The web app: `create_app(workspace_dir)` gives the FastAPI app of a workspace, `serve(directory)` runs it;
`serve_root(folder)` runs every workspace under a folder, each at /<key>/ (`kpilot.web.root`).

Pages are rendered on the server (Jinja2 + htmx); charts are Vega-Lite specs built in
`kpilot.report.charts`, shared with the weekly review.
"""

from kpilot.web.app import create_app, serve
from kpilot.web.listen import listening_socket
from kpilot.web.root import create_root_app, serve_root

__all__ = ["create_app", "create_root_app", "listening_socket", "serve", "serve_root"]
