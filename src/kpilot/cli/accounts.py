"""`kpilot user`, `kpilot token`, `kpilot audit-log`: who may sign in, API tokens, and the log of changes. Thin,
over `kpilot.service.accounts`.

Whoever runs these commands can open the application database, so the CLI acts as an admin; the audit log records
it as `cli:<name of the operating-system user>`. A password is read from standard input (`--password-stdin`) or a
hidden prompt, never from the command line (where `ps` and the shell's history would keep it). A token is printed
once, alone on the last line of standard output, and never again.
"""

from __future__ import annotations

import csv
import getpass
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from kpilot.cli.options import DbOpt, Fmt, LangOpt, StateOpt, WorkspaceOpt, _errors, _escape, _open, err, out
from kpilot.i18n import Translator, translator
from kpilot.model import KpilotError
from kpilot.model.errors import did_you_mean, msg
from kpilot.service.accounts import AccountError, AccountService, check_password, check_role, check_teams

users = typer.Typer(help="The people who may sign in to the workspace, and their roles.", no_args_is_help=True)
tokens = typer.Typer(help="API tokens: for scripts and other tools calling the REST API.", no_args_is_help=True)

# The kinds of change the audit log keeps (`kpilot audit-log --kind`).
KINDS = ("user", "password", "token", "setting", "decision", "annotation", "credential", "alert", "definition")

EmailArg = Annotated[str, typer.Argument(help="The address the person signs in with.")]
RoleOpt = Annotated[str, typer.Option("--role", help="viewer | editor | admin.")]
TeamOpt = Annotated[list[str] | None, typer.Option("--team", help="A team of kpilot.yaml whose KPIs an editor may "
                                                                  "change (repeat for several; none: every KPI).")]
StdinOpt = Annotated[bool, typer.Option("--password-stdin", help="Read the password from standard input (one line).")]
FormatOpt = Annotated[Fmt, typer.Option("--format", help="table | json")]


class LogFmt(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def actor() -> str:
    """Who acts, as the audit log records it: `cli:<operating-system user>`."""
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no user name in the environment nor in the password database (a bare container)
        return "cli"


@contextmanager
def _accounts(workspace: Path, state_dir: Path | None, db: str | None) -> Iterator[tuple[Any, AccountService]]:
    """The workspace and its accounts, in the application database of `--db` (else the workspace's)."""
    with _open(workspace, state_dir, database_url=db) as svc:
        yield svc, AccountService(svc.app_store(), svc.ws.workspace)


def _tr(svc: Any, lang: str | None) -> Translator:
    return translator(lang or svc.ws.language.value)


def _stdin_password() -> str:
    """Standard input, less one trailing line break."""
    text = sys.stdin.read() if sys.stdin is not None else ""
    for end in ("\r\n", "\n"):
        if text.endswith(end):
            return text[: -len(end)]
    return text


def _terminal() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def _prompt_password(email: str, tr: Translator) -> str:
    """A new password typed twice at a prompt that does not echo; checked before it is asked again."""
    first = str(typer.prompt(tr("New password for {email}").format(email=email), hide_input=True, err=True))
    check_password(first)
    again = str(typer.prompt(tr("The same password again"), hide_input=True, err=True))
    if again != first:
        raise AccountError(msg("the two passwords differ. Fix: run the command again and type the same password "
                               "twice."))
    return first


def _user(accounts: AccountService, email: str) -> Any:
    found = accounts.store.user(accounts.workspace, email)
    if found is None:
        raise AccountError(msg("there is no user {email} in this workspace. Fix: check the address, or list the users "
                               "with `kpilot user list`.", email=email))
    return found


def _yes_no(value: bool, tr: Translator) -> str:
    return tr("yes") if value else tr("no")


def _when(value: Any, tr: Translator) -> str:
    return tr("never") if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def _row(table: Table, *cells: str) -> None:
    """A row of plain text: an address or a JSON list is never read as rich markup."""
    table.add_row(*(_escape(c) for c in cells))


def _dump(rows: list[dict[str, object]]) -> None:
    sys.stdout.write(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")


# --- users -------------------------------------------------------------------------------------------


@users.command("create")
def create_user(email: EmailArg, role: RoleOpt, team: TeamOpt = None,
                name: Annotated[str | None, typer.Option("--name", help="The person's name, as shown.")] = None,
                password_stdin: StdinOpt = False, workspace: WorkspaceOpt = Path("."), state_dir: StateOpt = None,
                db: DbOpt = None, lang: LangOpt = None) -> None:
    """Add a user. The password comes from standard input (--password-stdin) or a prompt; without either, the user
    signs in through single sign-on only."""
    with _errors(lang, workspace), _accounts(workspace, state_dir, db) as (svc, accounts):
        tr = _tr(svc, lang)
        teams = check_teams(svc.ws, svc.file, check_role(role), team or [])
        first = not accounts.has_users()
        password = _stdin_password() if password_stdin else _prompt_password(email, tr) if _terminal() else None
        user = accounts.create_user(email, role=role, teams=teams, password=password, name=name, by=actor())
        admins = [u for u in accounts.store.users(accounts.workspace) if u.role == "admin" and not u.disabled]
    out.print(_escape(tr("Created user {email} ({role}).").format(email=user.email, role=user.role)))
    if user.teams:
        out.print(_escape(tr("As an editor, they change the KPIs of these teams only: {teams}.").format(
            teams=", ".join(user.teams))))
    if password is None:
        out.print(_escape(tr("{email} has no password: they sign in through single sign-on only, until `kpilot user "
                             "password {email}` sets one.").format(email=user.email)))
    if first:
        out.print(_escape(tr("The workspace now has a user: from now on every page and API route asks who is there "
                             "(a sign-in, or a token).")))
    if not admins:
        err.print("[yellow]" + _escape(tr("warning:")) + "[/] " + _escape(tr(
            "nobody is admin of this workspace: nobody can manage users in the web app. Fix: `kpilot user create "
            "EMAIL --role admin`.")), markup=True)


@users.command("list")
def list_users(format: FormatOpt = Fmt.table, workspace: WorkspaceOpt = Path("."), state_dir: StateOpt = None,
               db: DbOpt = None, lang: LangOpt = None) -> None:
    """The users of the workspace: role, teams, whether they have a password, last sign-in."""
    with _errors(lang, workspace), _accounts(workspace, state_dir, db) as (svc, accounts):
        tr = _tr(svc, lang)
        found = accounts.store.users(accounts.workspace)
    if format is Fmt.json:
        _dump([u.to_dict() for u in found])
        return
    if not found:
        out.print(_escape(tr("Workspace '{workspace}' has no user: anyone who reaches `kpilot serve` may do anything, "
                             "so it listens on this computer only. Add the first admin with `kpilot user create EMAIL "
                             "--role admin`.").format(workspace=svc.ws.workspace)))
        return
    table = Table(title=tr("Users"))
    table.add_column(tr("E-mail"), no_wrap=True)
    for col in (tr("Name"), tr("Role"), tr("Teams"), tr("Password"), tr("Disabled"), tr("Last sign-in")):
        table.add_column(col)
    for u in found:
        _row(table, u.email, u.name or "", u.role, ", ".join(u.teams), _yes_no(u.has_password, tr),
             _yes_no(u.disabled, tr), _when(u.last_login_at, tr))
    out.print(table)


@users.command("set")
def set_user(email: EmailArg, role: Annotated[str | None, typer.Option("--role", help="viewer | editor | admin.")]
             = None, team: TeamOpt = None,
             no_teams: Annotated[bool, typer.Option("--no-teams", help="An editor of every KPI.")] = False,
             workspace: WorkspaceOpt = Path("."), state_dir: StateOpt = None, db: DbOpt = None,
             lang: LangOpt = None) -> None:
    """Change a user's role or teams (a role other than editor drops the teams)."""
    with _errors(lang, workspace), _accounts(workspace, state_dir, db) as (svc, accounts):
        if role is None and not team and not no_teams:
            raise KpilotError(msg("nothing to change. Fix: give --role, --team or --no-teams."))
        if team and no_teams:
            raise KpilotError(msg("--team and --no-teams contradict each other. Fix: give one of them."))
        current = _user(accounts, email)
        new_role = check_role(role) if role is not None else current.role
        teams: list[str] | None = check_teams(svc.ws, svc.file, new_role, team or [])
        if not team and not no_teams:
            teams = None if new_role == "editor" else []
        user = accounts.store.update_user(accounts.workspace, email, role=role, teams=teams, by=actor())
        tr = _tr(svc, lang)
    if user.role != "editor":
        said = tr("{email} is {role}.").format(email=user.email, role=user.role)
    elif user.teams:
        said = tr("{email} is editor of the KPIs of these teams: {teams}.").format(email=user.email,
                                                                                   teams=", ".join(user.teams))
    else:
        said = tr("{email} is editor of every KPI.").format(email=user.email)
    out.print(_escape(said))


@users.command("password")
def set_password(email: EmailArg, password_stdin: StdinOpt = False, workspace: WorkspaceOpt = Path("."),
                 state_dir: StateOpt = None, db: DbOpt = None, lang: LangOpt = None) -> None:
    """Set a user's password (from standard input or a prompt); they are signed out everywhere."""
    with _errors(lang, workspace), _accounts(workspace, state_dir, db) as (svc, accounts):
        tr = _tr(svc, lang)
        user = _user(accounts, email)
        if password_stdin:
            password = _stdin_password()
        elif _terminal():
            password = _prompt_password(user.email, tr)
        else:
            raise KpilotError(msg("no password given, and there is no terminal to type it. Fix: pipe it in with "
                                  "--password-stdin."))
        accounts.set_password(email, password, by=actor())
    out.print(_escape(tr("New password set for {email}; their sessions ended.").format(email=user.email)))


@users.command("disable")
def disable_user(email: EmailArg, workspace: WorkspaceOpt = Path("."), state_dir: StateOpt = None, db: DbOpt = None,
                 lang: LangOpt = None) -> None:
    """Stop a user from signing in (their sessions end); `kpilot user enable` lets them in again."""
    with _errors(lang, workspace), _accounts(workspace, state_dir, db) as (svc, accounts):
        user = accounts.store.update_user(accounts.workspace, email, disabled=True, by=actor())
        tr = _tr(svc, lang)
    out.print(_escape(tr("{email} is disabled: their sessions ended, and they cannot sign in until `kpilot user enable "
                         "{email}`.").format(email=user.email)))


@users.command("enable")
def enable_user(email: EmailArg, workspace: WorkspaceOpt = Path("."), state_dir: StateOpt = None, db: DbOpt = None,
                lang: LangOpt = None) -> None:
    """Let a disabled user sign in again."""
    with _errors(lang, workspace), _accounts(workspace, state_dir, db) as (svc, accounts):
        user = accounts.store.update_user(accounts.workspace, email, disabled=False, by=actor())
        tr = _tr(svc, lang)
    out.print(_escape(tr("{email} may sign in again.").format(email=user.email)))


@users.command("delete")
def delete_user(email: EmailArg, workspace: WorkspaceOpt = Path("."), state_dir: StateOpt = None, db: DbOpt = None,
                lang: LangOpt = None) -> None:
    """Remove a user (the audit log keeps what they did)."""
    with _errors(lang, workspace), _accounts(workspace, state_dir, db) as (svc, accounts):
        user = _user(accounts, email)
        accounts.store.delete_user(accounts.workspace, email, by=actor())
        left = accounts.has_users()
        tr = _tr(svc, lang)
    out.print(_escape(tr("Deleted user {email}.").format(email=user.email)))
    if not left:
        out.print(_escape(tr("The workspace has no user left: every page and API route is open again, to whoever "
                             "reaches the server.")))


@users.command("logout")
def logout_user(email: EmailArg, workspace: WorkspaceOpt = Path("."), state_dir: StateOpt = None, db: DbOpt = None,
                lang: LangOpt = None) -> None:
    """Sign a user out of every browser (they may sign in again)."""
    with _errors(lang, workspace), _accounts(workspace, state_dir, db) as (svc, accounts):
        user = _user(accounts, email)
        ended = accounts.end_all_sessions(user.id)
        tr = _tr(svc, lang)
    out.print(_escape(tr("Signed {email} out: {n} session(s) ended.").format(email=user.email, n=ended)))


# --- API tokens --------------------------------------------------------------------------------------


@tokens.command("create")
def create_token(role: RoleOpt,
                 name: Annotated[str | None, typer.Option("--name", help="What the token is for (default: the date).")]
                 = None, team: TeamOpt = None, workspace: WorkspaceOpt = Path("."), state_dir: StateOpt = None,
                 db: DbOpt = None, lang: LangOpt = None) -> None:
    """Create an API token; it is printed once, alone on the last line (`... | tail -1`), and never again."""
    with _errors(lang, workspace), _accounts(workspace, state_dir, db) as (svc, accounts):
        tr = _tr(svc, lang)
        teams = check_teams(svc.ws, svc.file, check_role(role), team or [])
        token, record = accounts.create_token(role=role, name=name, teams=teams, by=actor())
        open_workspace = not accounts.has_users()
    if open_workspace:
        err.print("[yellow]" + _escape(tr("warning:")) + "[/] " + _escape(tr(
            "the workspace has no user yet, so nothing asks for this token: every route is open. It is asked for "
            "once a user exists (`kpilot user create EMAIL --role admin`).")), markup=True)
    out.print(_escape(tr("Created token '{name}' ({role}), id {id}. Send it in the header `Authorization: Bearer "
                         "<token>`. It is shown this once only: keep it now. `kpilot token revoke {id}` revokes it.")
                      .format(name=record.name, role=record.role, id=record.id)))
    out.print(token, markup=False, highlight=False)


@tokens.command("list")
def list_tokens(format: FormatOpt = Fmt.table, workspace: WorkspaceOpt = Path("."), state_dir: StateOpt = None,
                db: DbOpt = None, lang: LangOpt = None) -> None:
    """The workspace's API tokens (never the tokens themselves: their first characters only)."""
    with _errors(lang, workspace), _accounts(workspace, state_dir, db) as (svc, accounts):
        tr = _tr(svc, lang)
        found = accounts.store.tokens(accounts.workspace)
    if format is Fmt.json:
        _dump([t.to_dict() for t in found])
        return
    if not found:
        out.print(_escape(tr("No API token in workspace '{workspace}'. Create one with `kpilot token create --role "
                             "viewer`.").format(workspace=svc.ws.workspace)))
        return
    table = Table(title=tr("API tokens"))
    for col in (tr("Id"), tr("Name"), tr("Prefix"), tr("Role"), tr("Teams"), tr("Created"), tr("Created by"),
                tr("Last used"), tr("Revoked")):
        table.add_column(col)
    for t in found:
        _row(table, str(t.id), t.name, t.prefix + "…", t.role, ", ".join(t.teams), _when(t.created_at, tr),
             t.created_by or "", _when(t.last_used_at, tr), _yes_no(t.revoked, tr))
    out.print(table)


@tokens.command("revoke")
def revoke_token(which: Annotated[str, typer.Argument(help="The token's id, name or prefix (`kpilot token list`).")],
                 workspace: WorkspaceOpt = Path("."), state_dir: StateOpt = None, db: DbOpt = None,
                 lang: LangOpt = None) -> None:
    """Revoke a token: requests carrying it are refused from now on."""
    with _errors(lang, workspace), _accounts(workspace, state_dir, db) as (svc, accounts):
        record = accounts.revoke_token(which, by=actor())
        tr = _tr(svc, lang)
    out.print(_escape(tr("Revoked token '{name}' (id {id}): requests carrying it are refused from now on.").format(
        name=record.name, id=record.id)))


# --- the audit log -----------------------------------------------------------------------------------


def _compact(value: object) -> str:
    """A before or after value as compact JSON text; empty when there is none."""
    return "" if value is None else json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _shown(value: object) -> str:
    """A before or after value for a person: a record as one `field: value` line per field."""
    if isinstance(value, dict):
        return "\n".join(f"{k}: {v if isinstance(v, str) else _compact(v) or 'null'}" for k, v in value.items())
    return _compact(value)


def _changed(before: object, after: object) -> tuple[str, str]:
    """Before and after for a person: of two records, only the fields that changed."""
    if isinstance(before, dict) and isinstance(after, dict):
        keys = [k for k in dict.fromkeys([*before, *after]) if before.get(k) != after.get(k)]
        before = {k: before.get(k) for k in keys if k in before}
        after = {k: after.get(k) for k in keys if k in after}
    return _shown(before), _shown(after)


def audit_log(
    format: Annotated[LogFmt, typer.Option("--format", help="table | json | csv")] = LogFmt.table,
    kind: Annotated[str | None, typer.Option("--kind", help="Only changes of this kind: " + " | ".join(KINDS) + ".")]
    = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many changes, newest first.")] = 100,
    workspace: WorkspaceOpt = Path("."), state_dir: StateOpt = None, db: DbOpt = None, lang: LangOpt = None,
) -> None:
    """Who changed what and when: users, tokens, settings, decisions, annotations, credentials, newest first."""
    with _errors(lang, workspace), _accounts(workspace, state_dir, db) as (svc, accounts):
        if kind is not None and kind not in KINDS:
            raise KpilotError(msg("unknown kind of change '{kind}';{hint} kinds: {kinds}. Fix: use one of them.",
                                  kind=kind, hint=did_you_mean(kind, KINDS), kinds=", ".join(KINDS)))
        found = accounts.store.changes(accounts.workspace, kind=kind, limit=limit)
        tr = _tr(svc, lang)
    if format is LogFmt.json:
        _dump([c.to_dict() for c in found])
        return
    if format is LogFmt.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["id", "at", "actor", "kind", "subject", "before", "after"])
        for c in found:
            row = c.to_dict()
            writer.writerow([row["id"], row["at"], row["actor"] or "", row["kind"], row["subject"],
                             _compact(row["before"]), _compact(row["after"])])
        return
    if not found:
        out.print(_escape(tr("The audit log of workspace '{workspace}' is empty.").format(workspace=svc.ws.workspace)))
        return
    table = Table(title=tr("Audit log"))
    table.add_column(tr("When (UTC)"), no_wrap=True)
    table.add_column(tr("Who"), overflow="fold")
    table.add_column(tr("What"), overflow="fold")
    for col in (tr("Before"), tr("After")):
        table.add_column(col, overflow="fold", min_width=18)
    for c in found:
        before, after = _changed(c.before, c.after)
        _row(table, c.at.strftime("%Y-%m-%d %H:%M"), c.actor or "", f"{c.kind} {c.subject}", before, after)
    out.print(table)
