"""The command line: thin commands over `kpilot.service`. Output in the workspace's language.

The commands live in one module per group (workspace, board, web, sources, secrets, analysis, alerts, accounts) and
share their options, consoles and error handling through `kpilot.cli.options`. They are registered here, in the order
`kpilot --help` lists them; no command module imports another, nor this one.
"""

from __future__ import annotations

from collections.abc import Callable

import typer

from kpilot.cli import accounts, alerts, analysis, board, decisions, review, secrets, sources, web, workspace

app = typer.Typer(
    name="kpilot",
    help="kpilot — from vision to action: a North Star, 3-5 KPIs, status, forecasts and decisions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

COMMANDS: dict[str, Callable[..., None]] = {
    "init": workspace.init, "validate": workspace.validate, "load": workspace.load, "compute": workspace.compute,
    "status": board.status, "series": board.series, "serve": web.serve, "demo": board.demo,
    "export": workspace.export, "sync": sources.sync, "worker": sources.worker,
    "leads": analysis.leads, "forecast": analysis.forecast, "warnings": analysis.warnings_cmd,
    "anomalies": analysis.anomalies, "explain": analysis.explain, "audit": analysis.audit,
    "analyze": analysis.analyze, "decide": decisions.decide, "decisions": decisions.decisions,
    "review": review.review, "audit-log": accounts.audit_log,
}
for name, command in COMMANDS.items():
    app.command(name)(command)
app.add_typer(alerts.group, name="alerts")
app.add_typer(secrets.group, name="secrets")
app.add_typer(accounts.users, name="user")
app.add_typer(accounts.tokens, name="token")


def main() -> None:
    app()
