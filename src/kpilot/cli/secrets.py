"""`kpilot secrets`: sources' credentials stored encrypted in the application database. Thin, over the service.

A value is read from standard input or a hidden prompt, never from the command line (where `ps` and the shell's
history would keep it), and never printed: `list` shows names only.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from kpilot.cli.options import DbOpt, LangOpt, StateOpt, WorkspaceOpt, _errors, _open, out
from kpilot.i18n import Translator, translator
from kpilot.model import KpilotError
from kpilot.model.errors import msg

group = typer.Typer(help="Sources' credentials, stored encrypted in the application database.", no_args_is_help=True)

SourceArg = Annotated[str, typer.Argument(help="The source's key in kpilot.yaml.")]
NameArg = Annotated[str, typer.Argument(help="The variable the source reads (its token_env, url_env, api_key_env...).")]


def _read_value(name: str, tr: Translator) -> str:
    """The credential from standard input when it is piped, else from a prompt that does not echo."""
    if sys.stdin is not None and not sys.stdin.isatty():
        return sys.stdin.read().rstrip("\r\n")
    return str(typer.prompt(tr("Value of {name}").format(name=name), hide_input=True, err=True))


@group.command("set")
def set_secret(source: SourceArg, name: NameArg, workspace: WorkspaceOpt = Path("."), state_dir: StateOpt = None,
               db: DbOpt = None, lang: LangOpt = None) -> None:
    """Store a credential of SOURCE under NAME, encrypted; the value comes from standard input or a hidden prompt."""
    with _errors(lang, workspace):
        svc = _open(workspace, state_dir)
        svc.check_credential(source, name)
        value = _read_value(name, translator(lang or svc.ws.language.value))
        with svc.credentials(db) as vault:
            vault.set(svc.ws.workspace, source, name, value)
    tr = translator(lang or svc.ws.language.value)
    out.print(tr("Stored {name} for source '{source}', encrypted in the application database.").format(
        name=name, source=source))


@group.command("list")
def list_secrets(workspace: WorkspaceOpt = Path("."), state_dir: StateOpt = None, db: DbOpt = None,
                 lang: LangOpt = None) -> None:
    """The credentials stored for the workspace: source and name, never the value."""
    with _errors(lang, workspace):
        svc = _open(workspace, state_dir)
        with svc.credentials(db) as vault:
            names = vault.names(svc.ws.workspace)
    tr = translator(lang or svc.ws.language.value)
    if not names:
        out.print(tr("No credential is stored for workspace '{workspace}'.").format(workspace=svc.ws.workspace))
        return
    table = Table(title=tr("Stored credentials"))
    for col in (tr("Source"), tr("Name"), tr("Updated")):
        table.add_column(col)
    for source, name, updated in names:
        table.add_row(source, name, updated.strftime("%Y-%m-%d %H:%M UTC"))
    out.print(table)


@group.command("delete")
def delete_secret(source: SourceArg, name: NameArg, workspace: WorkspaceOpt = Path("."), state_dir: StateOpt = None,
                  db: DbOpt = None, lang: LangOpt = None) -> None:
    """Remove a stored credential."""
    with _errors(lang, workspace):
        svc = _open(workspace, state_dir)
        with svc.credentials(db) as vault:
            if not vault.delete(svc.ws.workspace, source, name):
                raise KpilotError(msg("no credential {name} is stored for source '{source}'. Fix: see `kpilot secrets "
                                      "list`.", name=name, source=source))
    out.print(translator(lang or svc.ws.language.value)("Deleted {name} of source '{source}'.").format(
        name=name, source=source))
