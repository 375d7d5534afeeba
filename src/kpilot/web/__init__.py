"""The web app: `create_app(workspace_dir)` gives the FastAPI app of a workspace, `serve(directory)` runs it.

Pages are rendered on the server (Jinja2 + htmx); charts are Vega-Lite specs built in
`kpilot.report.charts`, shared with the weekly review.
"""

from kpilot.web.app import create_app, serve

__all__ = ["create_app", "serve"]
